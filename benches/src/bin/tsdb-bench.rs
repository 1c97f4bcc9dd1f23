//! tsdb-bench: runs node_exporter-like data through the metrics engine and reports size and speed.
//!
//! ```text
//! cargo run --release -p o11y-benches --bin tsdb-bench -- --series 100000 --samples 720
//! ```
//!
//! Phases: (1) append the first 120 samples of every series and read the growth of the process's
//! resident memory (`head_bytes_per_series`); (2) append the rest, running `compact()` every
//! simulated hour as the background compactor would; (3) flush the head into blocks and compact;
//! (4) scan every sample back on one thread. Appends are timed around `Db::apply` only; batch
//! generation is not timed. The last line is one JSON object.
//!
//! As a naive baseline, the scan also re-encodes every chunk with plain Gorilla XOR (what
//! Prometheus stores) and reports its bytes per sample beside ours.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use o11y_benches::node::NodeExporterGen;
use o11y_benches::rss::trimmed_rss_bytes;
use o11y_benches::scan::{full_scan, Scan};
use o11y_tsdb::chunk::{encode, encode_best, Encoding, MAX_SAMPLES_PER_CHUNK};
use o11y_tsdb::{Db, Options, DEFAULT_TENANT};

struct Args {
    series: usize,
    samples: usize,
    batch: usize,
    seed: u64,
    dir: Option<String>,
    breakdown: bool,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        series: 100_000,
        samples: 720,
        batch: 2000,
        seed: 42,
        dir: None,
        breakdown: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--series" => a.series = v()?.parse()?,
            "--samples" => a.samples = v()?.parse()?,
            "--batch" => a.batch = v()?.parse()?,
            "--seed" => a.seed = v()?.parse()?,
            "--dir" => a.dir = Some(v()?),
            "--breakdown" => a.breakdown = true,
            "-h" | "--help" => {
                println!("tsdb-bench [--series N] [--samples M] [--batch SAMPLES_PER_BATCH] [--seed S] [--dir PATH] [--breakdown]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

fn main() -> Result<()> {
    let args = parse()?;
    let tmp = tempfile::tempdir()?;
    let dir = args
        .dir
        .clone()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let start_ms = 1_700_000_000_000 - 1_700_000_000_000 % (2 * 3_600_000);
    let mut gen = NodeExporterGen::new(args.seed, args.series, start_ms);
    let n = gen.len();
    let opts = Options {
        retention_ms: None,
        ..Options::default()
    };

    let rss0 = trimmed_rss_bytes();
    let db = Db::open(&dir, opts)?;
    let mut append_time = Duration::ZERO;
    let mut accepted = 0u64;
    let mut rejected = 0u64;
    let mut index = 0u64;
    let mut head_bytes_per_series = 0.0;
    let rounds_per_hour = 3_600_000 / o11y_benches::node::INTERVAL_MS as usize;
    // Batches are generated ahead, a few rounds at a time, so that only `apply` is timed and
    // it runs over pre-built batches as it would when draining a log.
    const AHEAD: usize = 8;
    let mut round = 0;
    while round < args.samples {
        let n_rounds = AHEAD.min(args.samples - round).min(
            // Stop a group at the memory reading and at each simulated hour.
            [
                MAX_SAMPLES_PER_CHUNK,
                rounds_per_hour * (round / rounds_per_hour + 1),
            ]
            .into_iter()
            .filter(|&b| b > round)
            .min()
            .unwrap_or(usize::MAX)
                - round,
        );
        let group: Vec<_> = (0..n_rounds).map(|_| gen.next_round(args.batch)).collect();
        let t0 = Instant::now();
        for b in group.iter().flatten() {
            index += 1;
            let r = db.apply(DEFAULT_TENANT, b, index)?;
            accepted += r.samples_accepted;
            rejected += r.rejections.len() as u64;
        }
        append_time += t0.elapsed();
        drop(group);
        round += n_rounds;
        if round == MAX_SAMPLES_PER_CHUNK.min(args.samples) {
            head_bytes_per_series = trimmed_rss_bytes().saturating_sub(rss0) as f64 / n as f64;
        }
        if round % rounds_per_hour == 0 {
            db.compact()?;
        }
    }
    db.flush_head()?;
    db.compact()?;
    let disk = db.disk_bytes();
    if args.breakdown {
        let mut sizes: std::collections::BTreeMap<String, u64> = Default::default();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d)? {
                let e = e?;
                if e.file_type()?.is_dir() {
                    stack.push(e.path());
                } else {
                    *sizes
                        .entry(
                            e.file_name()
                                .to_string_lossy()
                                .chars()
                                .take_while(|c| !c.is_ascii_digit() && *c != '-')
                                .collect(),
                        )
                        .or_default() += e.metadata()?.len();
                }
            }
        }
        eprintln!("files by name: {sizes:?}");
    }
    let blocks = db.blocks(DEFAULT_TENANT);
    eprintln!(
        "blocks: {:?}",
        blocks
            .iter()
            .map(|b| (b.mint, b.maxt, b.num_series, b.num_samples))
            .collect::<Vec<_>>()
    );

    // Full scan on one thread.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let (scanned, scan_time, xor_bytes) = pool.install(|| -> Result<(u64, Duration, u64)> {
        let Scan {
            series,
            samples: count,
            select: select_time,
            total: elapsed,
        } = full_scan(&db)?;
        eprintln!("scan: select {select_time:?}, total {elapsed:?}");
        // Baseline: the same samples in plain Gorilla XOR chunks of 120 samples.
        let mut xor = 0u64;
        let mut by_name: std::collections::BTreeMap<String, (u64, u64, u64)> = Default::default();
        for s in &series {
            let samples = s.samples()?;
            let e = by_name
                .entry(s.labels().metric_name().unwrap_or("").to_string())
                .or_default();
            for c in samples.chunks(MAX_SAMPLES_PER_CHUNK) {
                let x = encode(Encoding::Xor, c).map_or(0, |b| b.len() as u64);
                xor += x;
                e.0 += c.len() as u64;
                e.1 += x;
                e.2 += encode_best(c).1.len() as u64;
            }
        }
        if args.breakdown {
            let mut rows: Vec<_> = by_name.into_iter().collect();
            rows.sort_by_key(|r| std::cmp::Reverse(r.1 .2));
            eprintln!(
                "{:<45} {:>10} {:>8} {:>8}",
                "metric", "samples", "xor B/s", "best B/s"
            );
            for (name, (n, x, b)) in rows.iter().take(40) {
                eprintln!(
                    "{:<45} {:>10} {:>8.3} {:>8.3}",
                    name,
                    n,
                    *x as f64 / *n as f64,
                    *b as f64 / *n as f64
                );
            }
        }
        Ok((count, elapsed, xor))
    })?;
    if scanned != accepted {
        bail!("scan returned {scanned} samples but {accepted} were accepted");
    }
    let out = serde_json::json!({
        "series": n,
        "samples_per_series": args.samples,
        "total_samples": accepted,
        "rejected": rejected,
        "blocks": blocks.len(),
        "disk_bytes": disk,
        "bytes_per_sample": disk as f64 / accepted as f64,
        "xor_baseline_chunk_bytes_per_sample": xor_bytes as f64 / accepted as f64,
        "head_bytes_per_series": head_bytes_per_series,
        "append_samples_per_sec": accepted as f64 / append_time.as_secs_f64(),
        "decode_samples_per_sec": scanned as f64 / scan_time.as_secs_f64(),
    });
    println!("{out}");
    Ok(())
}
