//! Matcher semantics through the engine's postings, in the head and in blocks, as Prometheus
//! documents them: absent labels read as "", regexes are fully anchored.

use o11y_tsdb::matcher::MatchOp::{self, *};
use o11y_tsdb::{Db, Options};

use crate::common::*;

fn names(db: &Db, ms: &[(MatchOp, &str, &str)]) -> Vec<String> {
    let ms: Vec<_> = ms.iter().map(|&(op, n, v)| m(op, n, v)).collect();
    db.select("t", &ms, i64::MIN, i64::MAX)
        .unwrap()
        .iter()
        .map(|s| s.labels().get("id").unwrap_or("").to_string())
        .collect()
}

#[test]
fn prometheus_matcher_semantics_in_head_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.apply(
        "t",
        &batch(vec![
            series(
                &[("__name__", "m"), ("id", "1"), ("env", "prod")],
                &[(1000, 1.0)],
            ),
            series(
                &[("__name__", "m"), ("id", "2"), ("env", "production")],
                &[(1000, 1.0)],
            ),
            series(
                &[("__name__", "m"), ("id", "3"), ("env", "dev")],
                &[(1000, 1.0)],
            ),
            series(&[("__name__", "m"), ("id", "4")], &[(1000, 1.0)]),
            series(
                &[("__name__", "m"), ("id", "5"), ("env", "line\nbreak")],
                &[(1000, 1.0)],
            ),
        ]),
        1,
    )
    .unwrap();
    type Case<'a> = (Vec<(MatchOp, &'a str, &'a str)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (vec![(Equal, "env", "prod")], vec!["1"]),
        (vec![(Regex, "env", "prod")], vec!["1"]), // anchored: not "production"
        (vec![(Regex, "env", "prod.*")], vec!["1", "2"]),
        (
            vec![(Equal, "__name__", "m"), (Equal, "env", "")],
            vec!["4"],
        ), // absent label
        (
            vec![(Equal, "__name__", "m"), (NotEqual, "env", "")],
            vec!["1", "2", "3", "5"],
        ),
        (
            vec![(Equal, "__name__", "m"), (NotEqual, "env", "prod")],
            vec!["2", "3", "4", "5"],
        ),
        (
            vec![(Equal, "__name__", "m"), (NotRegex, "env", "prod.*|dev")],
            vec!["4", "5"],
        ),
        (
            vec![(Equal, "__name__", "m"), (Regex, "env", "dev|")],
            vec!["3", "4"],
        ),
        (
            vec![(Equal, "__name__", "m"), (Regex, "env", ".*")],
            vec!["1", "2", "3", "4", "5"],
        ),
        (
            vec![(Equal, "__name__", "m"), (Regex, "env", ".+")],
            vec!["1", "2", "3", "5"],
        ),
        (vec![(Regex, "env", "line.break")], vec!["5"]), // `.` matches a newline
        (vec![(Regex, "env", "(?i)PROD")], vec!["1"]),
        (vec![(Equal, "env", "nope")], vec![]),
        (
            vec![(Regex, "id", "[0-9]"), (NotRegex, "id", "[13]")],
            vec!["2", "4", "5"],
        ),
    ];
    let check = |db: &Db| {
        for (ms, want) in &cases {
            let mut got = names(db, ms);
            got.sort();
            assert_eq!(got, *want, "matchers {ms:?}");
        }
    };
    check(&db);
    db.flush_head().unwrap();
    check(&db);
}
