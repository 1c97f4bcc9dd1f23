//! Crash recovery with a stand-in for the Raft log: a plain append-only log file.
//!
//! A child process (this test binary, re-executed) appends each batch to `log` and then applies
//! it, checkpointing and compacting now and then, until it is killed with SIGKILL at an arbitrary
//! point. On restart it replays the log from `Db::persisted_index() + 1` and carries on. After
//! several kills, the recovered state must equal that of a database that applied the whole log
//! once without crashing — the property a replicated state machine needs.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use o11y_tsdb::labels::Label;
use o11y_tsdb::{Db, Sample, SeriesSamples, WriteBatch};
use xxhash_rust::xxh3::xxh3_64;

use crate::common::*;

const CHILD_ENV: &str = "O11Y_TSDB_CRASH_CHILD_DIR";
const TENANTS: [&str; 2] = ["default", "team-b"];

/// The deterministic batch for log index `i`: 30 series a second, with late samples, exact
/// duplicates and an invalid series mixed in.
fn make_batch(i: u64) -> WriteBatch {
    let t = i as i64 * 1000;
    let mut series = Vec::new();
    for s in 0..30u64 {
        let mut samples = vec![Sample {
            t,
            v: (i * 7 + s) as f64,
        }];
        if i.is_multiple_of(7) && i > 5 {
            samples.push(Sample {
                t: t - 3500,
                v: -(s as f64),
            });
        }
        if i.is_multiple_of(11) {
            samples.push(Sample {
                t,
                v: (i * 7 + s) as f64,
            });
        }
        series.push(SeriesSamples {
            labels: labels(&[
                ("__name__", if s % 3 == 0 { "a" } else { "b" }),
                ("s", &s.to_string()),
                ("host", &format!("h{}", s % 4)),
            ]),
            samples,
        });
    }
    series.push(SeriesSamples {
        labels: labels(&[("no_name", "x")]),
        samples: vec![Sample { t, v: 1.0 }],
    });
    WriteBatch {
        series,
        received_ms: None,
    }
}

fn encode(i: u64, tenant: &str, b: &WriteBatch) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&i.to_le_bytes());
    let put = |p: &mut Vec<u8>, s: &str| {
        p.extend_from_slice(&(s.len() as u32).to_le_bytes());
        p.extend_from_slice(s.as_bytes());
    };
    put(&mut p, tenant);
    p.extend_from_slice(&(b.series.len() as u32).to_le_bytes());
    for s in &b.series {
        p.extend_from_slice(&(s.labels.len() as u32).to_le_bytes());
        for l in &s.labels {
            put(&mut p, &l.name);
            put(&mut p, &l.value);
        }
        p.extend_from_slice(&(s.samples.len() as u32).to_le_bytes());
        for x in &s.samples {
            p.extend_from_slice(&x.t.to_le_bytes());
            p.extend_from_slice(&x.v.to_bits().to_le_bytes());
        }
    }
    let mut rec = Vec::with_capacity(p.len() + 12);
    rec.extend_from_slice(&(p.len() as u32).to_le_bytes());
    rec.extend_from_slice(&xxh3_64(&p).to_le_bytes());
    rec.extend_from_slice(&p);
    rec
}

struct Cursor<'a>(&'a [u8]);
impl Cursor<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().unwrap())
    }
    fn str(&mut self) -> String {
        let n = self.u32() as usize;
        String::from_utf8(self.take(n).to_vec()).unwrap()
    }
}

/// Reads the log; a torn record at the tail (the writer died mid-append) is cut off.
fn read_log(path: &Path) -> Vec<(u64, String, WriteBatch)> {
    let mut data = Vec::new();
    if let Ok(mut f) = File::open(path) {
        f.read_to_end(&mut data).unwrap();
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 12 <= data.len() {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let sum = u64::from_le_bytes(data[pos + 4..pos + 12].try_into().unwrap());
        if pos + 12 + len > data.len() || xxh3_64(&data[pos + 12..pos + 12 + len]) != sum {
            break;
        }
        let mut c = Cursor(&data[pos + 12..pos + 12 + len]);
        let i = c.u64();
        let tenant = c.str();
        let mut series = Vec::new();
        for _ in 0..c.u32() {
            let labels = (0..c.u32())
                .map(|_| Label {
                    name: c.str(),
                    value: c.str(),
                })
                .collect();
            let samples = (0..c.u32())
                .map(|_| Sample {
                    t: c.u64() as i64,
                    v: f64::from_bits(c.u64()),
                })
                .collect();
            series.push(SeriesSamples { labels, samples });
        }
        out.push((
            i,
            tenant,
            WriteBatch {
                series,
                received_ms: None,
            },
        ));
        pos += 12 + len;
    }
    if pos < data.len() {
        OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(pos as u64)
            .unwrap();
    }
    out
}

/// The child: recover, then write until killed (bounded to 20,000 batches).
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let log_path = dir.join("log");
    let db = Db::open(dir.join("db"), small_opts()).unwrap();
    let log = read_log(&log_path);
    let from = db.persisted_index();
    for (i, tenant, b) in log.iter().filter(|(i, ..)| *i > from) {
        db.apply(tenant, b, *i).unwrap();
    }
    let first = log.last().map_or(1, |l| l.0 + 1);
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .unwrap();
    let stdout = std::io::stdout();
    for next in first..first + 20_000 {
        let tenant = TENANTS[next.is_multiple_of(5) as usize];
        let b = make_batch(next);
        f.write_all(&encode(next, tenant, &b)).unwrap();
        db.apply(tenant, &b, next).unwrap();
        if next.is_multiple_of(37) {
            db.checkpoint().unwrap();
        }
        if next.is_multiple_of(101) {
            db.compact().unwrap();
        }
        writeln!(stdout.lock(), "applied {next}").unwrap();
    }
}

#[test]
fn kill_during_writes_then_replay_matches_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut target = 0u64;
    for round in 0..4 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_recovery::child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait (on the child's own progress reports) until it is well past the last target.
        target += 150 + round * 40;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut reached = false;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(n) = line.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()) {
                if line.starts_with("applied") && n >= target {
                    reached = true;
                    break;
                }
            }
        }
        assert!(reached, "child stopped before reaching {target}");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    // Recover in this process exactly as the child does.
    let log = read_log(&dir.path().join("log"));
    assert!(log.len() as u64 >= target);
    let db = Db::open(dir.path().join("db"), small_opts()).unwrap();
    let from = db.persisted_index();
    assert!(from > 0, "checkpoints were taken");
    for (i, tenant, b) in log.iter().filter(|(i, ..)| *i > from) {
        db.apply(tenant, b, *i).unwrap();
    }
    // The reference: the whole log applied once, never compacted.
    let clean = tempfile::tempdir().unwrap();
    let reference = Db::open(clean.path(), small_opts()).unwrap();
    for (i, tenant, b) in &log {
        reference.apply(tenant, b, *i).unwrap();
    }
    for t in TENANTS {
        let (got, want) = (dump(&db, t), dump(&reference, t));
        assert_eq!(got.len(), want.len(), "tenant {t}: series count");
        assert_eq!(
            got, want,
            "tenant {t}: recovered state differs from a clean run"
        );
    }
    assert!(
        !db.blocks("default").is_empty(),
        "the run crossed block cuts"
    );
    let _ = fs::remove_dir_all(clean.path());
}
