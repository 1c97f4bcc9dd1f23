//! Sample chunk speed: encoding and decoding of Xor (the Gorilla baseline, what Prometheus
//! stores and what our head writes) and Decimal chunks of 120 samples, on synthetic series of
//! one kind each and on the node_exporter-like mix of `o11y_benches::node` (fixed seeds).
//! Throughput is in samples. Before measuring, the bench prints each data set's size in bytes
//! per sample for both encodings and for `encode_best`.
//!
//! ```text
//! cargo bench -p o11y-benches --bench chunks
//! cargo bench -p o11y-benches --bench chunks -- decode     # only the decode benches
//! ```
//!
//! The target for Decimal decoding is at least 60 M samples/s on the simple kinds (constant,
//! counter, counter_2dec) in release mode; the engine's full scan targets 50 M samples/s end to
//! end.
//!
//! Recorded 2026-11-21 on the 2-core AMD EPYC build VM (shared; load ≈ 0.5–1) with
//! `cargo bench -p o11y-benches --bench chunks -- chunk_decode`, M samples/s (criterion's mean):
//!
//! ```text
//!   data set          xor B/s  decimal B/s  best B/s | decode xor  decimal  best
//!   constant            1.070      0.490     0.490   |      104      118    113
//!   counter             3.327      1.415     1.415   |       88       79     87
//!   gauge_4096          3.037      1.188     1.188   |       85       77     66
//!   counter_2dec        5.642      0.936     0.936   |       88       70     72
//!   small_int_gauge     1.802      1.155     1.155   |       77       82     69
//!   random_float        8.086          -     8.086   |       69        -     66
//!   node_exporter       2.168          -     1.206   |       81        -     69
//! ```
//!
//! Encoding Decimal costs about 2–4 M samples/s (it tries several codings per chunk); the Xor
//! appender 25–55 M samples/s.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use o11y_benches::node::NodeExporterGen;
use o11y_tsdb::chunk::{
    encode, encode_best, ChunkIter, Encoding, XorAppender, MAX_SAMPLES_PER_CHUNK,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Chunks per data set.
const CHUNKS: usize = 1000;

/// Samples of one chunk.
type Samples = Vec<(i64, f64)>;

/// A named data set of chunks.
type DataSet = (String, Vec<Samples>);

/// Encoded chunks.
type Encoded = Vec<(Encoding, Vec<u8>)>;

/// A synthetic series of one kind: 15 s scrapes with ±2 ms jitter on every scrape.
fn synthetic(kind: &str, n: usize, rng: &mut SmallRng) -> Vec<(i64, f64)> {
    let mut t = 1_700_000_000_000i64;
    let mut acc = 0i64;
    (0..n)
        .map(|_| {
            let ts = t + rng.gen_range(-2..=2);
            t += 15_000;
            let v = match kind {
                "constant" => 1.0,
                "counter" => {
                    acc += 1000 + rng.gen_range(-50..=50);
                    acc as f64
                }
                "gauge_4096" => {
                    acc += 4096 * rng.gen_range(-8..=8);
                    (1i64 << 30) as f64 + acc as f64
                }
                "counter_2dec" => {
                    acc += 15 + rng.gen_range(-3..=3);
                    (123_456_700 + acc) as f64 / 100.0
                }
                "small_int_gauge" => rng.gen_range(40..60) as f64,
                _ => rng.gen::<f64>(),
            };
            (ts, v)
        })
        .collect()
}

const KINDS: [&str; 6] = [
    "constant",
    "counter",
    "gauge_4096",
    "counter_2dec",
    "small_int_gauge",
    "random_float",
];

/// Chunks of the node_exporter-like workload: every series of a few hosts, 120 scrapes.
fn node_exporter_chunks() -> Vec<Samples> {
    let mut gen = NodeExporterGen::new(42, 8 * 1024, 1_700_000_000_000);
    let mut series = vec![Vec::with_capacity(MAX_SAMPLES_PER_CHUNK); gen.len()];
    for _ in 0..MAX_SAMPLES_PER_CHUNK {
        let batches = gen.next_round(usize::MAX);
        for (s, x) in series
            .iter_mut()
            .zip(batches.iter().flat_map(|b| &b.series))
        {
            s.extend(x.samples.iter().map(|p| (p.t, p.v)));
        }
    }
    series
}

/// Every data set: (name, chunks).
fn data_sets() -> Vec<DataSet> {
    let mut rng = SmallRng::seed_from_u64(7);
    let mut sets: Vec<DataSet> = KINDS
        .iter()
        .map(|kind| {
            let chunks = (0..CHUNKS)
                .map(|_| synthetic(kind, MAX_SAMPLES_PER_CHUNK, &mut rng))
                .collect();
            (kind.to_string(), chunks)
        })
        .collect();
    sets.push(("node_exporter".to_string(), node_exporter_chunks()));
    sets
}

fn samples(chunks: &[Samples]) -> u64 {
    chunks.iter().map(|c| c.len() as u64).sum()
}

/// Decodes every chunk, folding the samples so that nothing is optimized away.
fn decode_each(chunks: &[(Encoding, Vec<u8>)]) -> i64 {
    let mut sum = 0i64;
    for (enc, data) in chunks {
        let it = ChunkIter::new(*enc, black_box(data)).expect("valid chunk");
        for (t, v) in it {
            sum = sum.wrapping_add(t ^ v.to_bits() as i64);
        }
    }
    sum
}

fn print_sizes(sets: &[DataSet]) {
    eprintln!("data set           xor B/sample  decimal B/sample  best B/sample");
    for (name, chunks) in sets {
        let n = samples(chunks) as f64;
        let (mut xor, mut dec, mut best) = (0usize, Some(0usize), 0usize);
        for c in chunks {
            xor += encode(Encoding::Xor, c).map_or(0, |d| d.len());
            dec = dec
                .zip(encode(Encoding::Decimal, c))
                .map(|(a, d)| a + d.len());
            best += encode_best(c).1.len();
        }
        let dec = dec.map_or("-".to_string(), |d| format!("{:.3}", d as f64 / n));
        eprintln!(
            "{name:<18} {:>12.3}  {dec:>16}  {:>13.3}",
            xor as f64 / n,
            best as f64 / n
        );
    }
}

fn chunks(c: &mut Criterion) {
    let sets = data_sets();
    print_sizes(&sets);
    for (name, chunks) in &sets {
        let n = samples(chunks);

        let mut group = c.benchmark_group("chunk_encode");
        group.throughput(Throughput::Elements(n));
        group.bench_function(BenchmarkId::new("xor_append", name), |b| {
            b.iter(|| {
                let mut bytes = 0;
                for s in chunks {
                    let mut a = XorAppender::new();
                    for &(t, v) in s {
                        a.append(t, v);
                    }
                    bytes += a.into_bytes().len();
                }
                bytes
            })
        });
        if chunks
            .iter()
            .all(|s| encode(Encoding::Decimal, s).is_some())
        {
            group.bench_function(BenchmarkId::new("decimal", name), |b| {
                b.iter(|| {
                    chunks
                        .iter()
                        .map(|s| encode(Encoding::Decimal, black_box(s)).map_or(0, |d| d.len()))
                        .sum::<usize>()
                })
            });
        }
        group.bench_function(BenchmarkId::new("best", name), |b| {
            b.iter(|| {
                chunks
                    .iter()
                    .map(|s| encode_best(black_box(s)).1.len())
                    .sum::<usize>()
            })
        });
        group.finish();

        let mut group = c.benchmark_group("chunk_decode");
        group.throughput(Throughput::Elements(n));
        let xor: Encoded = chunks
            .iter()
            .map(|s| {
                (
                    Encoding::Xor,
                    encode(Encoding::Xor, s).expect("xor encodes"),
                )
            })
            .collect();
        group.bench_function(BenchmarkId::new("xor", name), |b| {
            b.iter(|| decode_each(&xor))
        });
        let decimal: Option<Encoded> = chunks
            .iter()
            .map(|s| encode(Encoding::Decimal, s).map(|d| (Encoding::Decimal, d)))
            .collect();
        if let Some(decimal) = decimal {
            group.bench_function(BenchmarkId::new("decimal", name), |b| {
                b.iter(|| decode_each(&decimal))
            });
        }
        // What a block scan decodes: each chunk in its smallest encoding.
        let best: Encoded = chunks.iter().map(|s| encode_best(s)).collect();
        group.bench_function(BenchmarkId::new("best", name), |b| {
            b.iter(|| decode_each(&best))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = chunks
}
criterion_main!(benches);
