//! O11y's metrics storage engine: Prometheus's data model, Gorilla-compressed chunks, mmap'd
//! immutable blocks with roaring-bitmap postings, per-tenant isolation, and a deterministic,
//! batch-oriented write API meant to be driven by a replicated log.
//!
//! ```text
//!   WriteBatch ─► Db::apply ─► tenant head (open chunks on the heap, full chunks in mmap'd
//!                              head files) ─► compact(): blocks (index + chunks, mmap'd)
//!   Db::select ─► head + blocks ─► Series (lazy chunk iterators, merged by labels and time)
//! ```
//!
//! Modules: [`chunk`] (sample encodings), [`labels`] and [`matcher`] (data model),
//! `head`/`headfile` (recent data), [`block`] (immutable blocks), `db` (tenants, manifest,
//! compaction, retention). The engine has no WAL: see [`Db::persisted_index`].
//!
//! ```
//! use o11y_tsdb::{Db, Options, WriteBatch, SeriesSamples, Sample, DEFAULT_TENANT};
//! use o11y_tsdb::labels::Label;
//! use o11y_tsdb::matcher::{Matcher, MatchOp};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let db = Db::open(dir.path(), Options::default()).unwrap();
//! let batch = WriteBatch { received_ms: None, series: vec![SeriesSamples {
//!     labels: vec![Label { name: "__name__".into(), value: "up".into() },
//!                  Label { name: "job".into(), value: "node".into() }],
//!     samples: vec![Sample { t: 1_000, v: 1.0 }, Sample { t: 16_000, v: 1.0 }],
//! }]};
//! let report = db.apply(DEFAULT_TENANT, &batch, 1).unwrap();
//! assert_eq!(report.samples_accepted, 2);
//! let m = Matcher::new(MatchOp::Equal, "__name__", "up").unwrap();
//! let series = db.select(DEFAULT_TENANT, &[m], 0, 20_000).unwrap();
//! assert_eq!(series[0].samples().unwrap(), vec![(1_000, 1.0), (16_000, 1.0)]);
//! ```

pub mod block;
pub mod chunk;
mod db;
pub mod error;
mod format;
mod head;
mod headfile;
pub mod labels;
mod manifest;
pub mod matcher;
mod postings;
mod series;
mod tombstones;

pub use block::BlockMeta;
pub use db::{
    validate_tenant, ApplyReport, CompactReport, Compactor, Db, Op, OpOutcome, Options,
    SnapshotFile, TsdbStats, DEFAULT_TENANT,
};
pub use error::{Error, RejectReason, Rejection, Result};
pub use series::{ChunkSource, Series, SeriesIter};

use labels::Label;

/// One sample: a millisecond timestamp and a value. The stale marker is the NaN with bits
/// [`STALE_NAN_BITS`]; it is stored and returned bit-exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

/// Bits of Prometheus's staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Samples for one series, as they arrive from the wire: labels in any order, not validated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesSamples {
    pub labels: Vec<Label>,
    pub samples: Vec<Sample>,
}

/// A write batch: the unit the owner's log replicates and [`Db::apply`] applies atomically.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteBatch {
    pub series: Vec<SeriesSamples>,
    /// Wall-clock time (ms) at which the proposer accepted the batch. When set, samples more
    /// than [`Options::future_grace_ms`] ahead of it are rejected. It travels in the batch so
    /// that every replica decides the same way.
    pub received_ms: Option<i64>,
}
