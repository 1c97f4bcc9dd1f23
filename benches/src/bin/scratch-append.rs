use std::time::Instant;
use o11y_benches::node::NodeExporterGen;
use o11y_tsdb::{Db, Options};
fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let mut gen = NodeExporterGen::new(1, 10000, 1_700_000_000_000);
    let mut rounds = Vec::new();
    for _ in 0..300 { rounds.push(gen.next_round(2000)); }
    let t0 = Instant::now();
    let mut n = 0u64;
    let mut idx = 0;
    for r in &rounds { for b in r { idx += 1; n += db.apply("default", b, idx).unwrap().samples_accepted; } }
    let el = t0.elapsed();
    println!("{} samples in {:?}: {:.0}/s", n, el, n as f64 / el.as_secs_f64());
}
