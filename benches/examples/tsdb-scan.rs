//! Re-runs tsdb-bench's timed full scan over a database left by `tsdb-bench --dir PATH`, so the
//! read path can be profiled without re-ingesting.
//!
//! ```text
//! cargo run --release -p o11y-benches --bin tsdb-bench -- --series 100000 --samples 720 --dir /tmp/ds
//! cargo run --release -p o11y-benches --example tsdb-scan -- /tmp/ds [runs]
//! ```
//!
//! Prints, per run, the select time, the total time and samples per second (as tsdb-bench's
//! `decode_samples_per_sec`), then the median. On a busy machine the wall time includes waiting
//! for a CPU, so the thread's CPU time (Linux schedstat) is printed too, with its own median.

use anyhow::{Context, Result};
use o11y_benches::scan::full_scan;
use o11y_tsdb::{Db, Options};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().context("usage: tsdb-scan DIR [RUNS]")?;
    let runs: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let opts = Options {
        retention_ms: None,
        ..Options::default()
    };
    let db = Db::open(&dir, opts)?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let mut rates = Vec::new();
    for _ in 0..runs {
        let (count, select, total, cpu) = pool.install(|| -> Result<_> {
            let cpu0 = thread_cpu_ns();
            let scan = full_scan(&db)?;
            let cpu = thread_cpu_ns().zip(cpu0).map(|(b, a)| b.saturating_sub(a));
            Ok((scan.samples, scan.select, scan.total, cpu))
        })?;
        let rate = count as f64 / total.as_secs_f64();
        let cpu_rate = cpu.map_or(f64::NAN, |ns| count as f64 / (ns as f64 / 1e9));
        println!(
            "{count} samples: select {select:?}, total {total:?}, {:.1} M samples/s; \
             on-CPU {:.1} M samples/s",
            rate / 1e6,
            cpu_rate / 1e6
        );
        rates.push((rate, cpu_rate));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median {:.1} M samples/s; on-CPU {:.1} M samples/s",
        median(rates.iter().map(|r| r.0).collect()) / 1e6,
        median(rates.iter().map(|r| r.1).collect()) / 1e6
    );
    Ok(())
}

/// CPU time of the calling thread in ns, from `/proc/thread-self/schedstat` (Linux only).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
