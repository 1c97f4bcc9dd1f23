//! promql-bench: loads node_exporter-like data (plus request-latency histograms) into a real
//! tsdb and times a fixed set of dashboard queries through the PromQL engine.
//!
//! ```text
//! cargo run --release -p o11y-benches --bin promql-bench -- --series 10000 --hours 24
//! ```
//!
//! Data: `--series` series in total — the tsdb-bench generator ([`NodeExporterGen`]) for most
//! of them, plus per host one `http_request_duration_seconds_bucket` histogram (4 handlers ×
//! 12 buckets, cumulative counters) — scraped every 15 s for `--hours`, then flushed into
//! blocks and compacted, as a server's data would be after a day.
//!
//! Every query runs as an instant query at the end of the data and as a range query over
//! the whole period at 60 s steps; each is repeated `--runs` times and the median latency is
//! reported. The last line is one JSON object.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use o11y_benches::node::{NodeExporterGen, INTERVAL_MS};
use o11y_query::promql::engine::TenantStorage;
use o11y_query::promql::value::Value;
use o11y_query::promql::{Engine, EngineOptions};
use o11y_tsdb::labels::Label;
use o11y_tsdb::{Db, Options, Sample, SeriesSamples, WriteBatch, DEFAULT_TENANT};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The dashboard queries the issue names.
const QUERIES: &[(&str, &str)] = &[
    ("rate", "rate(node_cpu_seconds_total[5m])"),
    (
        "sum_by_rate",
        "sum by (instance) (rate(node_cpu_seconds_total{mode!=\"idle\"}[5m]))",
    ),
    (
        "histogram_quantile",
        "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    ("topk", "topk(5, rate(node_network_receive_bytes_total[5m]))"),
    (
        "group_left",
        "rate(node_network_receive_bytes_total[5m]) * on(instance, device) group_left(operstate) node_network_info",
    ),
];

const BUCKETS: &[&str] = &[
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];
const HANDLERS: &[&str] = &["/api/v1/query", "/api/v1/write", "/metrics", "/-/healthy"];

struct Args {
    series: usize,
    hours: i64,
    runs: usize,
    seed: u64,
    /// Keep the data here and reuse it on the next run with the same data flags.
    dir: Option<String>,
    /// Run only the query with this name.
    only: Option<String>,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        series: 10_000,
        hours: 24,
        runs: 5,
        seed: 42,
        dir: None,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--series" => a.series = v()?.parse()?,
            "--hours" => a.hours = v()?.parse()?,
            "--runs" => a.runs = v()?.parse()?,
            "--seed" => a.seed = v()?.parse()?,
            "--dir" => a.dir = Some(v()?),
            "--only" => a.only = Some(v()?),
            "-h" | "--help" => {
                println!("promql-bench [--series N] [--hours H] [--runs R] [--seed S] [--dir PATH (keep and reuse the data)] [--only QUERY_NAME]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if a.series < 1000 || a.hours < 1 || a.runs < 1 {
        bail!("--series must be at least 1000, --hours and --runs at least 1");
    }
    Ok(a)
}

/// Per host and handler, cumulative bucket counters that grow like a latency distribution.
struct HistGen {
    instances: Vec<String>,
    counts: Vec<f64>,
    rng: SmallRng,
}

impl HistGen {
    fn series_count(hosts: usize) -> usize {
        hosts * HANDLERS.len() * BUCKETS.len()
    }

    fn new(seed: u64, hosts: usize) -> HistGen {
        HistGen {
            instances: (0..hosts)
                .map(|h| format!("host-{h:05}.dc{}.example.com:9100", h % 3))
                .collect(),
            counts: vec![0.0; Self::series_count(hosts)],
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    fn round(&mut self, t: i64) -> WriteBatch {
        let mut batch = WriteBatch::default();
        let mut i = 0;
        for inst in &self.instances {
            for handler in HANDLERS {
                let requests = self.rng.gen_range(0..200) as f64;
                // Share of requests at or below each bucket: a skewed latency distribution.
                let mut below = 0.0;
                for (b, le) in BUCKETS.iter().enumerate() {
                    let share = 1.0 - 0.6f64.powi(b as i32 + 1);
                    let target = if *le == "+Inf" {
                        requests
                    } else {
                        (requests * share).floor()
                    };
                    below = f64::max(below, target);
                    self.counts[i] += below;
                    batch.series.push(SeriesSamples {
                        labels: vec![
                            Label::new("__name__", "http_request_duration_seconds_bucket"),
                            Label::new("handler", *handler),
                            Label::new("instance", inst.clone()),
                            Label::new("job", "api"),
                            Label::new("le", *le),
                        ],
                        samples: vec![Sample {
                            t,
                            v: self.counts[i],
                        }],
                    });
                    i += 1;
                }
            }
        }
        batch
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn result_size(v: &Value) -> (usize, usize) {
    match v {
        Value::Vector(v) => (v.len(), v.len()),
        Value::Matrix(m) => (m.len(), m.iter().map(|s| s.floats.len()).sum()),
        Value::Scalar { .. } | Value::String { .. } => (1, 1),
    }
}

fn main() -> Result<()> {
    let args = parse()?;
    let tmp = tempfile::tempdir()?;
    let dir = match &args.dir {
        Some(d) => std::path::PathBuf::from(d),
        None => tmp.path().to_path_buf(),
    };
    let marker = dir.join("promql-bench.data");
    let data_id = format!(
        "series={} hours={} seed={}",
        args.series, args.hours, args.seed
    );
    let reuse = std::fs::read_to_string(&marker).is_ok_and(|m| m == data_id);
    if !reuse && dir.exists() && args.dir.is_some() {
        std::fs::remove_dir_all(&dir)?;
    }
    let hosts = (args.series / 1000).max(1);
    let hist_series = HistGen::series_count(hosts);
    let node_series = args.series.saturating_sub(hist_series).max(1);
    let start_ms = 1_700_000_000_000 - 1_700_000_000_000 % (2 * 3_600_000);
    let mut gen = NodeExporterGen::new(args.seed, node_series, start_ms);
    let mut hist = HistGen::new(args.seed + 1, hosts);
    let db = Db::open(
        &dir,
        Options {
            retention_ms: None,
            ..Options::default()
        },
    )?;

    let rounds = args.hours * 3_600_000 / INTERVAL_MS;
    let load_start = Instant::now();
    let mut index = 1u64;
    let mut samples = 0u64;
    for r in 0..if reuse { 0 } else { rounds } {
        let t = start_ms + r * INTERVAL_MS;
        let mut batches = gen.next_round(5000);
        batches.push(hist.round(t));
        for b in &batches {
            let rep = db.apply(DEFAULT_TENANT, b, index)?;
            samples += rep.samples_accepted as u64;
            index += 1;
        }
        if r > 0 && r % 240 == 0 {
            db.compact()?;
        }
    }
    if !reuse {
        db.flush_head()?;
        db.compact()?;
        std::fs::write(&marker, &data_id)?;
    }
    let load_secs = load_start.elapsed().as_secs_f64();
    let end_ms = start_ms + rounds * INTERVAL_MS;
    if reuse {
        samples = (gen.len() + hist_series) as u64 * rounds as u64;
        eprintln!("reusing the data in {}", dir.display());
    } else {
        eprintln!(
            "loaded {} series, {samples} samples in {load_secs:.1} s",
            gen.len() + hist_series
        );
    }

    let engine = Engine::new(EngineOptions::default());
    let storage = TenantStorage {
        db: &db,
        tenant: DEFAULT_TENANT,
    };
    let range_start = start_ms;
    let mut results = serde_json::Map::new();
    for (name, q) in QUERIES {
        if args.only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let mut instant = Vec::new();
        let mut range = Vec::new();
        let mut sizes = ((0, 0), (0, 0));
        for _ in 0..args.runs {
            let t0 = Instant::now();
            let r = engine
                .instant_query(&storage, q, end_ms)
                .with_context(|| format!("instant {q}"))?;
            instant.push(t0.elapsed().as_secs_f64() * 1000.0);
            sizes.0 = result_size(&r.value);
            let t0 = Instant::now();
            let r = engine
                .range_query(&storage, q, range_start, end_ms, 60_000)
                .with_context(|| format!("range {q}"))?;
            range.push(t0.elapsed().as_secs_f64() * 1000.0);
            sizes.1 = result_size(&r.value);
        }
        if sizes.0 .0 == 0 || sizes.1 .0 == 0 {
            bail!("query {q} returned no data: the bench data does not exercise it");
        }
        let (im, rm) = (median(instant), median(range));
        eprintln!(
            "{name:20} instant {im:8.1} ms ({} series)   range {rm:8.1} ms ({} series, {} points)",
            sizes.0 .0, sizes.1 .0, sizes.1 .1
        );
        results.insert(
            name.to_string(),
            serde_json::json!({
                "query": q,
                "instant_ms_p50": (im * 10.0).round() / 10.0,
                "range_ms_p50": (rm * 10.0).round() / 10.0,
                "range_series": sizes.1 .0,
                "range_points": sizes.1 .1,
            }),
        );
    }
    let out = serde_json::json!({
        "series": gen.len() + hist_series,
        "hours": args.hours,
        "samples": samples,
        "range_step_s": 60,
        "range_hours": args.hours,
        "runs": args.runs,
        "load_secs": (load_secs * 10.0).round() / 10.0,
        "queries": results,
    });
    println!("{out}");
    Ok(())
}
