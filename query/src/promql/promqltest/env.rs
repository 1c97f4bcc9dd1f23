//! The data a script's evals run against: a real tsdb [`Db`] in a temporary directory, plus
//! the series the runner could not load because they hold native histograms.
//!
//! ```text
//!   Load ─► TestEnv::load ─► WriteBatch (float samples at i*interval) ─► Db::apply
//!                        └─► histogram series (and the NHCB series `load_with_nhcb` derives)
//!                            remembered with their time range
//!   Clear ─► TestEnv::clear ─► a fresh Db in a fresh directory
//!   Eval ─► TestEnv::storage() ─► EnvStorage: promql::Storage over the Db that flags any
//!           `select` whose matchers and time range hit a remembered histogram series
//! ```
//!
//! The Db is opened with no retention, a practically unbounded block range and an
//! out-of-order window of half of it, so that loads starting at timestamp 0, loads that add
//! older samples to existing series, and timestamps far from "now" are all accepted.

use std::sync::atomic::{AtomicBool, Ordering};

use o11y_tsdb::labels::{Label, Labels};
use o11y_tsdb::matcher::{matches_all, Matcher};
use o11y_tsdb::{Db, Options, Sample, SeriesSamples, WriteBatch, DEFAULT_TENANT};
use tempfile::TempDir;

use super::script::{Load, SeqValue, SeriesDef};
use crate::promql::{QueryError, Storage};

/// Block range of the test Db: ~35,000 years, so nothing is ever "too old".
const BLOCK_RANGE_MS: i64 = 1 << 50;

/// A series with native-histogram samples in `[mint, maxt]`, which the Db does not hold.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSeries {
    pub labels: Labels,
    pub mint: i64,
    pub maxt: i64,
}

/// A sample the Db refused, with the script line of its series.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadRejection {
    pub line: usize,
    pub labels: Labels,
    pub reason: String,
}

/// The loaded data of one script run.
pub struct TestEnv {
    // Dropped before `_dir`, which removes the directory.
    db: Db,
    _dir: TempDir,
    histograms: Vec<HistogramSeries>,
    log_index: u64,
}

impl TestEnv {
    /// An empty environment in a new temporary directory.
    pub fn new() -> std::io::Result<TestEnv> {
        let dir = tempfile::Builder::new().prefix("promqltest-").tempdir()?;
        let db = Db::open(dir.path(), db_options()).map_err(std::io::Error::other)?;
        Ok(TestEnv {
            db,
            _dir: dir,
            histograms: Vec::new(),
            log_index: 0,
        })
    }

    /// Drops all data (a fresh Db in a fresh directory).
    pub fn clear(&mut self) -> std::io::Result<()> {
        *self = TestEnv::new()?;
        Ok(())
    }

    pub fn histograms(&self) -> &[HistogramSeries] {
        &self.histograms
    }

    /// Applies a `load` block. Returns the samples the Db rejected (an `Err` is an I/O
    /// failure of the Db).
    pub fn load(&mut self, load: &Load) -> Result<Vec<LoadRejection>, o11y_tsdb::Error> {
        let mut batch = WriteBatch::default();
        let mut lines = Vec::new();
        for def in &load.series {
            let mut samples = Vec::new();
            let mut hist: Option<(i64, i64)> = None;
            for (i, v) in def.values.iter().enumerate() {
                let t = (i as i64).saturating_mul(load.interval_ms);
                match v {
                    SeqValue::Float(f) => samples.push(Sample { t, v: *f }),
                    SeqValue::Omitted => {}
                    SeqValue::Histogram => {
                        hist = Some(hist.map_or((t, t), |(a, _)| (a, t)));
                    }
                }
            }
            if let Some((mint, maxt)) = hist {
                self.histograms.push(HistogramSeries {
                    labels: def.labels.clone(),
                    mint,
                    maxt,
                });
            }
            if load.with_nhcb && !samples.is_empty() {
                if let Some(labels) = nhcb_series(&def.labels) {
                    self.histograms.push(HistogramSeries {
                        labels,
                        mint: samples[0].t,
                        maxt: samples[samples.len() - 1].t,
                    });
                }
            }
            if samples.is_empty() {
                continue;
            }
            lines.push(def);
            batch.series.push(SeriesSamples {
                labels: def.labels.iter().cloned().collect(),
                samples,
            });
        }
        if batch.series.is_empty() {
            return Ok(Vec::new());
        }
        self.log_index += 1;
        let report = self.db.apply(DEFAULT_TENANT, &batch, self.log_index)?;
        Ok(report
            .rejections
            .iter()
            .map(|r| {
                let def: &SeriesDef = lines[r.series];
                let at = r.sample.map_or(String::new(), |s| {
                    format!(" (sample at {} ms)", batch.series[r.series].samples[s].t)
                });
                LoadRejection {
                    line: def.line,
                    labels: def.labels.clone(),
                    reason: format!("{}{at}", r.reason),
                }
            })
            .collect())
    }

    /// The engine's view of this environment.
    pub fn storage(&self) -> EnvStorage<'_> {
        EnvStorage {
            db: &self.db,
            histograms: &self.histograms,
            touched_histogram: AtomicBool::new(false),
        }
    }
}

fn db_options() -> Options {
    Options {
        block_range_ms: BLOCK_RANGE_MS,
        ooo_window_ms: BLOCK_RANGE_MS / 2,
        retention_ms: None,
        retention_bytes: None,
        max_block_range_ms: BLOCK_RANGE_MS,
        ..Options::default()
    }
}

/// The native histogram with custom buckets that `load_with_nhcb` derives from a classic
/// histogram series (`<name>_bucket` with a numeric `le`, `<name>_count`, `<name>_sum`): the
/// same labels with the base name and without `le`.
pub fn nhcb_series(labels: &Labels) -> Option<Labels> {
    let name = labels.metric_name()?;
    let base = if let Some(b) = name.strip_suffix("_bucket") {
        let le: f64 = labels.get("le")?.trim().parse().ok()?;
        if le.is_nan() {
            return None;
        }
        b
    } else {
        name.strip_suffix("_count")
            .or_else(|| name.strip_suffix("_sum"))?
    };
    let v: Vec<Label> = labels
        .iter()
        .filter(|l| l.name != "le")
        .map(|l| {
            if l.name == "__name__" {
                Label::new("__name__", base)
            } else {
                l.clone()
            }
        })
        .collect();
    Some(Labels::from_sorted_unchecked(v))
}

/// [`Storage`] over the test Db that records whether the engine selected a series holding
/// native histograms.
pub struct EnvStorage<'a> {
    db: &'a Db,
    histograms: &'a [HistogramSeries],
    touched_histogram: AtomicBool,
}

impl EnvStorage<'_> {
    /// Whether any `select` so far matched a native-histogram series in its time range.
    pub fn touched_histogram(&self) -> bool {
        self.touched_histogram.load(Ordering::Relaxed)
    }
}

impl Storage for EnvStorage<'_> {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<o11y_tsdb::Series>, QueryError> {
        if self
            .histograms
            .iter()
            .any(|h| h.mint <= maxt && h.maxt >= mint && matches_all(matchers, &h.labels))
        {
            self.touched_histogram.store(true, Ordering::Relaxed);
        }
        Ok(self.db.select(DEFAULT_TENANT, matchers, mint, maxt)?)
    }
}
