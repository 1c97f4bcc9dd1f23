//! Label matcher speed: the fast paths `Matcher::new` plans for common PromQL patterns
//! (literal, small alternation, prefix, suffix, contains), the hash set for large alternations,
//! and the regex fallback, each matching a rotation of eight job names.
//!
//! ```text
//! cargo bench -p o11y-benches --bench matchers
//! ```
//!
//! Recorded 2026-11-21 on the 2-core AMD EPYC build VM (shared, load ≈ 4), with the timed unit
//! test this bench replaces: literal 5–11 ns, 3-value alternation 8–14 ns, `prom.*` 8–14 ns,
//! `.*server` 6–12 ns, `.*-.*` 9–15 ns, 200-value alternation (hash set) 10–27 ns, regex
//! fallback `p[a-z]+s` 25–48 ns per match. The target for the literal, small-alternation and
//! prefix/suffix paths is under 20 ns.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use o11y_tsdb::matcher::{MatchOp, Matcher};

const VALUES: [&str; 8] = [
    "api-server",
    "node-exporter",
    "prometheus",
    "alertmanager",
    "grafana",
    "loki",
    "tempo",
    "mimir",
];

fn matchers(c: &mut Criterion) {
    let big_set: Vec<String> = (0..200).map(|i| format!("value-{i:03}")).collect();
    let big_set = big_set.join("|");
    let cases = [
        ("equal", MatchOp::Equal, "prometheus"),
        ("regex_literal", MatchOp::Regex, "prometheus"),
        (
            "alternation_3",
            MatchOp::Regex,
            "api-server|prometheus|grafana",
        ),
        ("alternation_200", MatchOp::Regex, big_set.as_str()),
        ("prefix", MatchOp::Regex, "prom.*"),
        ("suffix", MatchOp::Regex, ".*server"),
        ("contains", MatchOp::Regex, ".*-.*"),
        ("regex_fallback", MatchOp::Regex, "p[a-z]+s"),
    ];
    let mut group = c.benchmark_group("matcher");
    // One element = one value matched.
    group.throughput(Throughput::Elements(VALUES.len() as u64));
    for (name, op, pattern) in cases {
        let matcher = Matcher::new(op, "job", pattern).expect("valid matcher");
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut hits = 0usize;
                for v in VALUES {
                    if black_box(&matcher).matches(black_box(v)) {
                        hits += 1;
                    }
                }
                hits
            })
        });
    }
    group.finish();
}

criterion_group!(benches, matchers);
criterion_main!(benches);
