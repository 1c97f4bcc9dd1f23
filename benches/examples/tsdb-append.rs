//! Times `Db::apply` alone, as tsdb-bench's `append_samples_per_sec` does, on fewer rounds, so the
//! append path can be profiled (`perf record`, `valgrind --tool=callgrind`) without the rest of
//! the benchmark.
//!
//! ```text
//! cargo run --release -p o11y-benches --example tsdb-append -- [series] [rounds]
//! ```
//!
//! Rounds are generated eight at a time, untimed; prints wall and on-CPU samples per second.

use std::time::{Duration, Instant};

use anyhow::Result;
use o11y_benches::node::NodeExporterGen;
use o11y_tsdb::{Db, Options, DEFAULT_TENANT};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let series: usize = args.next().map_or(Ok(100_000), |s| s.parse())?;
    let rounds: usize = args.next().map_or(Ok(120), |s| s.parse())?;
    let tmp = tempfile::tempdir()?;
    let start_ms = 1_700_000_000_000 - 1_700_000_000_000 % (2 * 3_600_000);
    let mut gen = NodeExporterGen::new(42, series, start_ms);
    let db = Db::open(
        tmp.path(),
        Options {
            retention_ms: None,
            ..Options::default()
        },
    )?;
    let (mut wall, mut cpu) = (Duration::ZERO, 0u64);
    let (mut index, mut accepted) = (0u64, 0u64);
    let mut round = 0;
    while round < rounds {
        let n = 8.min(rounds - round);
        let group: Vec<_> = (0..n).map(|_| gen.next_round(2000)).collect();
        let c0 = thread_cpu_ns();
        let t0 = Instant::now();
        for b in group.iter().flatten() {
            index += 1;
            accepted += db.apply(DEFAULT_TENANT, b, index)?.samples_accepted;
        }
        wall += t0.elapsed();
        cpu += thread_cpu_ns().saturating_sub(c0);
        round += n;
    }
    println!(
        "{accepted} samples: {:.2} M samples/s; on-CPU {:.2} M samples/s",
        accepted as f64 / wall.as_secs_f64() / 1e6,
        accepted as f64 / (cpu as f64 / 1e9) / 1e6
    );
    Ok(())
}

/// CPU time of the calling thread in ns, from `/proc/thread-self/schedstat` (0 if unavailable).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
