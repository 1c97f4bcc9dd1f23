//! The database: tenants, each with a head and a list of blocks, plus the files that persist them.
//!
//! ```text
//!            apply(tenant, batch, log_index)                select(tenant, matchers, mint, maxt)
//!                         │                                           │
//!                         ▼                                           ▼
//!   tenant ─► head (RwLock: one batch at a time) ────────► head series ─┐
//!          └► blocks (Arc<Vec<Block>>, swapped atomically) ► block series ┴► merge by labels
//!
//!   compact(): cut head data below min_valid into blocks ─► truncate head ─► merge blocks
//!              (rayon) ─► retention ─► MANIFEST
//!   checkpoint(): head state + applied index ─► head/checkpoint-<seq> ─► MANIFEST
//! ```
//!
//! On-disk layout under the data directory:
//!
//! ```text
//! MANIFEST                        which files are live, and the applied log index they hold
//! head/chunks/<seq:08>            head chunk segments (mmap'd)
//! head/checkpoint-<seq:016x>      serialized head of every tenant
//! tombstones-<seq:016x>           deleted intervals of block series
//! blocks/<tenant>/<id:016x>/      immutable blocks: meta, index, chunks
//! ```
//!
//! The engine keeps no write-ahead log: the owner's (Raft) log is the WAL. The manifest records
//! the log index of the last batch whose effects the persisted files contain
//! ([`Db::persisted_index`]); after a crash the owner re-applies its log from the next index.
//! Every decision that affects what is accepted depends only on the applied data, so replicas
//! that apply the same batches reach the same state whatever their compaction timing.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;

use crate::block::{encode_chunks, Block, BlockMeta, BlockWriter, EncodedChunk};
use crate::error::{Error, Rejection, Result};
use crate::format::{self, Decoder};
use crate::head::{align_down, HeadConfig, HeadData};
use crate::headfile::HeadFiles;
use crate::labels::{LabelLimits, Labels};
use crate::manifest::Manifest;
use crate::matcher::Matcher;
use crate::series::{merge_sorted, Series};
use crate::tombstones::Tombstones;
use crate::WriteBatch;

const CHECKPOINT_MAGIC: &[u8; 8] = b"O11YHCKP";
const CHECKPOINT_VERSION: u16 = 1;
/// Series decoded and encoded together (in parallel) when writing a block.
const WRITE_BATCH_SERIES: usize = 4096;

/// The tenant used when a request names none.
pub const DEFAULT_TENANT: &str = "default";

/// Engine options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Time range of blocks cut from the head (default 2h).
    pub block_range_ms: i64,
    /// How far behind the newest sample an out-of-order sample is still accepted (default 10m).
    pub ooo_window_ms: i64,
    /// Blocks whose newest sample is older than the tenant's newest sample minus this are
    /// deleted (default 15 days, as Prometheus). `None` keeps data forever.
    pub retention_ms: Option<i64>,
    /// When the total size exceeds this, the oldest blocks are deleted. `None`: no limit.
    pub retention_bytes: Option<u64>,
    /// Largest range compaction builds (default 31 days or a tenth of the retention).
    pub max_block_range_ms: i64,
    /// How far ahead of a batch's `received_ms` a sample may be (default 10m).
    pub future_grace_ms: i64,
    /// Label validation limits.
    pub limits: LabelLimits,
}

const HOUR: i64 = 3_600_000;

impl Default for Options {
    fn default() -> Self {
        Options {
            block_range_ms: 2 * HOUR,
            ooo_window_ms: 10 * 60_000,
            retention_ms: Some(15 * 24 * HOUR),
            retention_bytes: None,
            max_block_range_ms: 31 * 24 * HOUR,
            future_grace_ms: 10 * 60_000,
            limits: LabelLimits::default(),
        }
    }
}

impl Options {
    fn validate(&self) -> Result<()> {
        if self.block_range_ms < 1000 {
            return Err(Error::InvalidOptions(format!(
                "block range {} ms is below 1 s",
                self.block_range_ms
            )));
        }
        if self.ooo_window_ms < 0 || self.ooo_window_ms > self.block_range_ms / 2 {
            return Err(Error::InvalidOptions(format!(
                "out-of-order window {} ms must be between 0 and half the block range ({} ms)",
                self.ooo_window_ms,
                self.block_range_ms / 2
            )));
        }
        Ok(())
    }

    fn max_range(&self) -> i64 {
        let by_retention = self.retention_ms.map_or(i64::MAX, |r| r / 10);
        self.max_block_range_ms
            .min(by_retention)
            .max(self.block_range_ms)
    }
}

/// The outcome of [`Db::apply`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ApplyReport {
    /// Samples written (including exact duplicates of existing samples, which change nothing).
    pub samples_accepted: u64,
    /// Series created by this batch.
    pub series_created: u64,
    /// Items not written, with the reason.
    pub rejections: Vec<Rejection>,
    /// True when `log_index` had already been applied and the batch was skipped.
    pub already_applied: bool,
}

/// One operation of a replicated entry, for [`Db::apply_ops`].
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// Append a batch of samples.
    Write {
        tenant: &'a str,
        batch: &'a WriteBatch,
    },
    /// Delete the series matching `matchers` in `[mint, maxt]` (see [`Db::delete_series`]).
    Delete {
        tenant: &'a str,
        matchers: &'a [Matcher],
        mint: i64,
        maxt: i64,
    },
}

/// The outcome of one [`Op`].
#[derive(Debug, Clone, PartialEq)]
pub enum OpOutcome {
    Written(ApplyReport),
    /// Number of matching series (see [`Db::delete_series`]).
    Deleted(u64),
    /// The entry's log index had already been applied; nothing was done.
    AlreadyApplied,
}

/// A file of a snapshot made by [`Db::snapshot_to`]: its path relative to the data directory
/// and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    pub path: PathBuf,
    pub len: u64,
    /// True for files the engine appends to after opening them (head chunk segments): a
    /// database opened from the snapshot needs its own copy, not a link.
    pub mutable: bool,
}

/// What [`Db::compact`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CompactReport {
    pub blocks_cut: usize,
    pub blocks_merged: usize,
    pub blocks_deleted: usize,
}

/// Head statistics in the shape of Prometheus's `/api/v1/status/tsdb`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TsdbStats {
    pub num_series: u64,
    pub num_label_pairs: u64,
    pub chunk_count: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub series_count_by_metric_name: Vec<(String, u64)>,
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

struct Tenant {
    name: String,
    head: RwLock<HeadData>,
    blocks: RwLock<Arc<Vec<Arc<Block>>>>,
}

struct Maint {
    manifest: Manifest,
}

/// A metrics database in one directory.
pub struct Db {
    dir: PathBuf,
    opts: Options,
    cfg: HeadConfig,
    files: HeadFiles,
    tenants: RwLock<BTreeMap<String, Arc<Tenant>>>,
    /// Serializes batches, and excludes them while a checkpoint copies the head.
    apply_lock: Mutex<()>,
    /// Serializes compaction and checkpoints; owns the manifest.
    maint: Mutex<Maint>,
    applied: AtomicU64,
    persisted: AtomicU64,
    tombstones: RwLock<Arc<Tombstones>>,
}

/// Tenant names as Cortex/Mimir allow them; they are used as directory names.
pub fn validate_tenant(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "!-_.*'()".contains(c);
    if name.is_empty()
        || name.len() > 150
        || name == "."
        || name == ".."
        || !name.chars().all(ok_char)
    {
        return Err(Error::InvalidTenant(name.chars().take(64).collect()));
    }
    Ok(())
}

impl Db {
    /// Opens (or creates) the database in `dir`, restoring the state named by its manifest.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Db> {
        opts.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(dir.join("blocks")).map_err(|e| Error::io(&dir, e))?;
        fs::create_dir_all(dir.join("head")).map_err(|e| Error::io(&dir, e))?;
        let mpath = dir.join("MANIFEST");
        let manifest = if mpath.exists() {
            Manifest::decode(&mpath, &format::read_file(&mpath)?)?
        } else {
            Manifest::default()
        };
        let cfg = HeadConfig {
            block_range: opts.block_range_ms,
            ooo_window: opts.ooo_window_ms,
            limits: opts.limits.clone(),
        };

        // Head checkpoint.
        let mut heads: BTreeMap<String, HeadData> = BTreeMap::new();
        let mut segments = Vec::new();
        if manifest.checkpoint != 0 {
            let cpath = dir
                .join("head")
                .join(format!("checkpoint-{:016x}", manifest.checkpoint));
            let data = format::read_file(&cpath)?;
            let body = format::open_sealed(&cpath, &data, CHECKPOINT_MAGIC, CHECKPOINT_VERSION)?;
            let mut d = Decoder::new(&cpath, body, format::HEADER_LEN as u64);
            let applied = d.u64()?;
            if applied != manifest.applied_index {
                return Err(d.err(format!(
                    "checkpoint holds index {applied}, manifest says {}",
                    manifest.applied_index
                )));
            }
            for _ in 0..d.len(d.remaining())? {
                let seq = d.u32()?;
                segments.push((seq, d.u64()?));
            }
            for _ in 0..d.len(d.remaining())? {
                let name = d.str()?.to_string();
                heads.insert(name, HeadData::decode(&mut d)?);
            }
            d.expect_end()?;
        }
        let files = HeadFiles::open(&dir.join("head").join("chunks"), &segments)?;
        for h in heads.values() {
            if let Some(seq) = h
                .referenced_segments()
                .find(|s| files.segment(*s).is_none())
            {
                return Err(Error::corrupt(
                    dir.join("head"),
                    0,
                    format!("checkpoint references missing segment {seq:08}"),
                ));
            }
        }

        // Blocks: open the listed ones, delete everything else.
        let listed: HashSet<(String, u64)> = manifest.blocks.iter().cloned().collect();
        let mut blocks: BTreeMap<String, Vec<Arc<Block>>> = BTreeMap::new();
        for (tenant, id) in &manifest.blocks {
            let b = Block::open(dir.join("blocks").join(tenant).join(format!("{id:016x}")))?;
            blocks.entry(tenant.clone()).or_default().push(Arc::new(b));
        }
        remove_unlisted_blocks(&dir.join("blocks"), &listed)?;

        let tombstones = if manifest.tombstones != 0 {
            let p = dir.join(format!("tombstones-{:016x}", manifest.tombstones));
            Tombstones::decode(&p, &format::read_file(&p)?)?
        } else {
            Tombstones::default()
        };
        remove_stale_files(&dir, &manifest)?;

        let mut tenants = BTreeMap::new();
        let names: BTreeSet<String> = heads.keys().chain(blocks.keys()).cloned().collect();
        for name in names {
            let head = heads.remove(&name).unwrap_or_else(HeadData::new);
            let mut bl = blocks.remove(&name).unwrap_or_default();
            bl.sort_by_key(|b| (b.meta.mint, b.meta.id));
            tenants.insert(
                name.clone(),
                Arc::new(Tenant {
                    name,
                    head: RwLock::new(head),
                    blocks: RwLock::new(Arc::new(bl)),
                }),
            );
        }
        let applied = manifest.applied_index;
        Ok(Db {
            dir,
            opts,
            cfg,
            files,
            tenants: RwLock::new(tenants),
            apply_lock: Mutex::new(()),
            maint: Mutex::new(Maint { manifest }),
            applied: AtomicU64::new(applied),
            persisted: AtomicU64::new(applied),
            tombstones: RwLock::new(Arc::new(tombstones)),
        })
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    fn tenant(&self, name: &str) -> Option<Arc<Tenant>> {
        self.tenants.read().get(name).cloned()
    }

    fn tenant_or_create(&self, name: &str) -> Result<Arc<Tenant>> {
        validate_tenant(name)?;
        if let Some(t) = self.tenant(name) {
            return Ok(t);
        }
        let mut w = self.tenants.write();
        Ok(w.entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(Tenant {
                    name: name.to_string(),
                    head: RwLock::new(HeadData::new()),
                    blocks: RwLock::new(Arc::new(Vec::new())),
                })
            })
            .clone())
    }

    /// Tenants that have data.
    pub fn tenants(&self) -> Vec<String> {
        self.tenants.read().keys().cloned().collect()
    }

    /// Series in the tenant's head (0 for a tenant without data). Cheap: one brief read lock,
    /// unlike [`Db::stats`].
    pub fn head_series(&self, tenant: &str) -> u64 {
        self.tenant(tenant)
            .map_or(0, |t| t.head.read().num_series())
    }

    /// Applies one batch for `tenant`. Bad series and samples are reported per item and the rest
    /// is written. `log_index` is the owner's log position of this batch; a batch at or below the
    /// last applied index (other than 0) is skipped, which makes replay idempotent.
    ///
    /// An `Err` is an I/O failure of the head chunk files: the batch may be partly applied and
    /// the owner must stop and recover from its log.
    pub fn apply(&self, tenant: &str, batch: &WriteBatch, log_index: u64) -> Result<ApplyReport> {
        let t = self.tenant_or_create(tenant)?;
        let _a = self.apply_lock.lock();
        if self.already_applied(log_index) {
            return Ok(ApplyReport {
                already_applied: true,
                ..Default::default()
            });
        }
        let report = self.write_locked(&t, batch)?;
        self.mark_applied(log_index);
        Ok(report)
    }

    /// Applies several operations that share one log index (one replicated entry holding
    /// coalesced proposals), atomically with respect to checkpoints: either all or none of them
    /// are in the persisted state of that index. Each operation gets its own outcome; an invalid
    /// tenant fails only its operation. The outer `Err` is an I/O failure, as for [`Db::apply`].
    /// When `log_index` was already applied, every outcome is `Ok(OpOutcome::AlreadyApplied)`.
    pub fn apply_ops(&self, ops: &[Op<'_>], log_index: u64) -> Result<Vec<Result<OpOutcome>>> {
        let _a = self.apply_lock.lock();
        if self.already_applied(log_index) {
            return Ok(ops.iter().map(|_| Ok(OpOutcome::AlreadyApplied)).collect());
        }
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            out.push(match *op {
                Op::Write { tenant, batch } => match self.tenant_or_create(tenant) {
                    Ok(t) => Ok(OpOutcome::Written(self.write_locked(&t, batch)?)),
                    Err(e) => Err(e),
                },
                Op::Delete {
                    tenant,
                    matchers,
                    mint,
                    maxt,
                } => match validate_tenant(tenant).map(|_| self.tenant(tenant)) {
                    Ok(Some(t)) => Ok(OpOutcome::Deleted(
                        self.delete_locked(&t, matchers, mint, maxt)?,
                    )),
                    Ok(None) => Ok(OpOutcome::Deleted(0)),
                    Err(e) => Err(e),
                },
            });
        }
        self.mark_applied(log_index);
        Ok(out)
    }

    fn already_applied(&self, log_index: u64) -> bool {
        log_index != 0 && log_index <= self.applied.load(Ordering::Acquire)
    }

    fn mark_applied(&self, log_index: u64) {
        if log_index != 0 {
            self.applied.store(log_index, Ordering::Release);
        }
    }

    /// Appends `batch` to `t`'s head; the caller holds `apply_lock`.
    fn write_locked(&self, t: &Tenant, batch: &WriteBatch) -> Result<ApplyReport> {
        let mut report = ApplyReport::default();
        let max_t = batch
            .received_ms
            .map_or(i64::MAX, |r| r.saturating_add(self.opts.future_grace_ms));
        let stats = t.head.write().append(
            &self.files,
            &self.cfg,
            &batch.series,
            max_t,
            &mut report.rejections,
        )?;
        report.samples_accepted = stats.samples;
        report.series_created = stats.series_created;
        Ok(report)
    }

    /// Marks samples of the series matching `matchers` in `[mint, maxt]` deleted (as
    /// Prometheus's `admin/tsdb/delete_series`). Returns the number of matching series found in
    /// the head and blocks (a series in several places counts in each).
    pub fn delete_series(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        log_index: u64,
    ) -> Result<u64> {
        let Some(t) = self.tenant(tenant) else {
            return Ok(0);
        };
        let _a = self.apply_lock.lock();
        if self.already_applied(log_index) {
            return Ok(0);
        }
        let n = self.delete_locked(&t, matchers, mint, maxt)?;
        self.mark_applied(log_index);
        Ok(n)
    }

    /// Deletes from `t`'s head and tombstones its block series; the caller holds `apply_lock`.
    fn delete_locked(&self, t: &Tenant, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<u64> {
        let mut n = t.head.write().delete(matchers, mint, maxt)?;
        let blocks = t.blocks.read().clone();
        let mut tomb = (**self.tombstones.read()).clone();
        for b in blocks
            .iter()
            .filter(|b| b.meta.maxt >= mint && b.meta.mint <= maxt)
        {
            for id in b.postings(matchers)? {
                tomb.add(b.meta.id, id, mint, maxt);
                n += 1;
            }
        }
        *self.tombstones.write() = Arc::new(tomb);
        Ok(n)
    }

    /// The last log index applied (in memory).
    pub fn applied_index(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// The last log index whose effects are durable on disk; replay after a crash starts after it.
    pub fn persisted_index(&self) -> u64 {
        self.persisted.load(Ordering::Acquire)
    }

    /// Series of `tenant` matching all `matchers` with samples in `[mint, maxt]`, sorted by
    /// labels. The result is a consistent snapshot: it reflects whole batches only.
    pub fn select(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Series>> {
        let Some(t) = self.tenant(tenant) else {
            return Ok(Vec::new());
        };
        // Head first, then blocks: a head cut that runs in between adds its block before it
        // truncates the head, so data is seen twice (and deduplicated), never missed.
        let head = t.head.read().select(&self.files, matchers, mint, maxt)?;
        let blocks = t.blocks.read().clone();
        let tomb = self.tombstones.read().clone();
        let overlapping: Vec<&Arc<Block>> = blocks
            .iter()
            .filter(|b| b.meta.maxt >= mint && b.meta.mint <= maxt)
            .collect();
        let mut lists: Vec<Vec<Series>> = overlapping
            .par_iter()
            .map(|b| b.select(matchers, mint, maxt, tomb.0.get(&b.meta.id)))
            .collect::<Result<_>>()?;
        lists.push(head);
        Ok(merge_sorted(lists))
    }

    /// Label names of the series matching `matchers` (all series when empty) with data in the
    /// time range, sorted.
    pub fn label_names(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        let Some(t) = self.tenant(tenant) else {
            return Ok(Vec::new());
        };
        let mut names = BTreeSet::new();
        {
            let h = t.head.read();
            if h.maxt >= mint && h.mint <= maxt && h.num_series() > 0 {
                if matchers.is_empty() {
                    names.extend(h.label_names());
                } else {
                    for id in h.postings_of(matchers)? {
                        names.extend(h.labels_of(id).into_vec().into_iter().map(|l| l.name));
                    }
                }
            }
        }
        for b in t
            .blocks
            .read()
            .iter()
            .filter(|b| b.meta.maxt >= mint && b.meta.mint <= maxt)
        {
            if matchers.is_empty() {
                names.extend(b.index.label_names()?.into_iter().map(|(n, ..)| n));
            } else {
                for id in b.postings(matchers)? {
                    names.extend(b.index.series(id)?.0.into_vec().into_iter().map(|l| l.name));
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Values of label `name` on the series matching `matchers` with data in the time range,
    /// sorted.
    pub fn label_values(
        &self,
        tenant: &str,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        let Some(t) = self.tenant(tenant) else {
            return Ok(Vec::new());
        };
        let mut values = BTreeSet::new();
        {
            let h = t.head.read();
            if h.maxt >= mint && h.mint <= maxt && h.num_series() > 0 {
                let ids = if matchers.is_empty() {
                    None
                } else {
                    Some(h.postings_of(matchers)?)
                };
                for (v, bm) in h.label_values(name) {
                    if ids.as_ref().is_none_or(|ids| !bm.is_disjoint(ids)) {
                        values.insert(v);
                    }
                }
            }
        }
        for b in t
            .blocks
            .read()
            .iter()
            .filter(|b| b.meta.maxt >= mint && b.meta.mint <= maxt)
        {
            if matchers.is_empty() {
                values.extend(b.index.label_values(name)?.into_iter().map(|(v, _)| v));
            } else {
                for id in b.postings(matchers)? {
                    if let Some(v) = b.index.series(id)?.0.get(name) {
                        values.insert(v.to_string());
                    }
                }
            }
        }
        Ok(values.into_iter().collect())
    }

    /// Cardinality statistics of the tenant's head; each list holds the top `limit` entries.
    pub fn stats(&self, tenant: &str, limit: usize) -> Result<TsdbStats> {
        let Some(t) = self.tenant(tenant) else {
            return Ok(TsdbStats::default());
        };
        let h = t.head.read();
        let mut by_metric = Vec::new();
        let mut pairs = Vec::new();
        let mut num_pairs = 0u64;
        for name in h.label_names() {
            for (v, bm) in h.label_values(&name) {
                num_pairs += 1;
                if name == crate::labels::METRIC_NAME {
                    by_metric.push((v.clone(), bm.len()));
                }
                pairs.push((format!("{name}={v}"), bm.len()));
            }
        }
        let (mem, counts) = h.label_stats();
        let top = |mut v: Vec<(String, u64)>| {
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(limit);
            v
        };
        let empty = h.num_series() == 0;
        Ok(TsdbStats {
            num_series: h.num_series(),
            num_label_pairs: num_pairs,
            chunk_count: h.num_chunks(),
            min_time: if empty { 0 } else { h.mint.max(h.phys_min) },
            max_time: if empty { 0 } else { h.maxt },
            series_count_by_metric_name: top(by_metric),
            label_value_count_by_label_name: top(counts.into_iter().collect()),
            memory_in_bytes_by_label_name: top(mem.into_iter().collect()),
            series_count_by_label_value_pair: top(pairs),
        })
    }

    /// Bytes of all persisted files (blocks, head chunk files, checkpoint, manifest).
    pub fn disk_bytes(&self) -> u64 {
        let blocks: u64 = self
            .tenants
            .read()
            .values()
            .flat_map(|t| t.blocks.read().iter().map(|b| b.size()).collect::<Vec<_>>())
            .sum();
        let m = self.maint.lock();
        let ckpt = if m.manifest.checkpoint != 0 {
            fs::metadata(self.checkpoint_path(m.manifest.checkpoint))
                .map(|md| md.len())
                .unwrap_or(0)
        } else {
            0
        };
        blocks + self.files.bytes() + ckpt
    }

    /// Metadata of the tenant's blocks, oldest first.
    pub fn blocks(&self, tenant: &str) -> Vec<BlockMeta> {
        self.tenant(tenant)
            .map(|t| t.blocks.read().iter().map(|b| b.meta.clone()).collect())
            .unwrap_or_default()
    }

    fn checkpoint_path(&self, seq: u64) -> PathBuf {
        self.dir.join("head").join(format!("checkpoint-{seq:016x}"))
    }

    /// Persists the head of every tenant with the applied index, so that recovery replays the
    /// log only from there. Cheap to call often; the owner decides when (for example every few
    /// thousand batches, and before truncating its log).
    pub fn checkpoint(&self) -> Result<u64> {
        let mut m = self.maint.lock();
        self.checkpoint_locked(&mut m)
    }

    /// Checkpoints, then writes a consistent copy of the persisted state into `dest` (created;
    /// it must not exist) and returns the applied index the copy holds and its files. Immutable
    /// files (manifest, checkpoint, tombstones, block files) are hard links, so this costs no
    /// copy of block data; head chunk segments, which keep growing, are copied up to the length
    /// the checkpoint names. [`Db::open`] on `dest` opens the copy. Compaction waits meanwhile.
    pub fn snapshot_to(&self, dest: &Path) -> Result<(u64, Vec<SnapshotFile>)> {
        let mut m = self.maint.lock();
        let (applied, segments) = self.checkpoint_with_segments(&mut m)?;
        fs::create_dir(dest).map_err(|e| Error::io(dest, e))?;
        let mut files = Vec::new();
        let mut link = |rel: PathBuf| -> Result<()> {
            let from = self.dir.join(&rel);
            let to = dest.join(&rel);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            fs::hard_link(&from, &to).map_err(|e| Error::io(&from, e))?;
            let len = fs::metadata(&to).map_err(|e| Error::io(&to, e))?.len();
            files.push(SnapshotFile {
                path: rel,
                len,
                mutable: false,
            });
            Ok(())
        };
        link(PathBuf::from("MANIFEST"))?;
        link(Path::new("head").join(format!("checkpoint-{:016x}", m.manifest.checkpoint)))?;
        if m.manifest.tombstones != 0 {
            link(PathBuf::from(format!(
                "tombstones-{:016x}",
                m.manifest.tombstones
            )))?;
        }
        for (tenant, id) in &m.manifest.blocks {
            let rel = Path::new("blocks").join(tenant).join(format!("{id:016x}"));
            let dir = self.dir.join(&rel);
            let mut names: Vec<_> = fs::read_dir(&dir)
                .map_err(|e| Error::io(&dir, e))?
                .map(|e| e.map(|e| e.file_name()).map_err(|e| Error::io(&dir, e)))
                .collect::<Result<_>>()?;
            names.sort();
            for name in names {
                link(rel.join(name))?;
            }
        }
        let chunks = Path::new("head").join("chunks");
        fs::create_dir_all(dest.join(&chunks)).map_err(|e| Error::io(dest, e))?;
        for (seq, len) in segments {
            let rel = chunks.join(format!("{seq:08}"));
            let from = self.dir.join(&rel);
            let to = dest.join(&rel);
            let mut src = fs::File::open(&from).map_err(|e| Error::io(&from, e))?;
            let mut out = fs::File::create(&to).map_err(|e| Error::io(&to, e))?;
            let copied = std::io::copy(&mut std::io::Read::take(&mut src, len), &mut out)
                .map_err(|e| Error::io(&to, e))?;
            if copied != len {
                return Err(Error::corrupt(
                    &from,
                    copied,
                    format!("segment shorter than {len}"),
                ));
            }
            out.sync_all().map_err(|e| Error::io(&to, e))?;
            files.push(SnapshotFile {
                path: rel,
                len,
                mutable: true,
            });
        }
        for d in [dest.join(&chunks), dest.join("head"), dest.to_path_buf()] {
            format::sync_dir(&d)?;
        }
        Ok((applied, files))
    }

    fn checkpoint_locked(&self, m: &mut Maint) -> Result<u64> {
        self.checkpoint_with_segments(m).map(|(applied, _)| applied)
    }

    /// Writes a checkpoint; returns the applied index and the head segments with the lengths it
    /// names.
    fn checkpoint_with_segments(&self, m: &mut Maint) -> Result<(u64, Vec<(u32, u64)>)> {
        let (buf, applied, tomb, segments) = {
            let _a = self.apply_lock.lock();
            let applied = self.applied.load(Ordering::Acquire);
            let segments = self.files.sync()?;
            let mut buf = format::header(CHECKPOINT_MAGIC, CHECKPOINT_VERSION);
            buf.extend_from_slice(&applied.to_le_bytes());
            format::put_uvarint(&mut buf, segments.len() as u64);
            for &(seq, len) in &segments {
                buf.extend_from_slice(&seq.to_le_bytes());
                buf.extend_from_slice(&len.to_le_bytes());
            }
            let tenants: Vec<Arc<Tenant>> = self.tenants.read().values().cloned().collect();
            format::put_uvarint(&mut buf, tenants.len() as u64);
            for t in tenants {
                format::put_str(&mut buf, &t.name);
                t.head.read().encode(&mut buf);
            }
            (buf, applied, self.tombstones.read().clone(), segments)
        };
        let mut buf = buf;
        format::seal(&mut buf);
        let seq = m.manifest.checkpoint.max(m.manifest.tombstones) + 1;
        format::write_atomic(&self.checkpoint_path(seq), &buf)?;
        let mut next = m.manifest.clone();
        next.checkpoint = seq;
        next.applied_index = applied;
        if tomb.0.is_empty() {
            next.tombstones = 0;
        } else {
            format::write_atomic(
                &self.dir.join(format!("tombstones-{seq:016x}")),
                &tomb.encode(),
            )?;
            next.tombstones = seq;
        }
        self.write_manifest(m, next)?;
        self.persisted.store(applied, Ordering::Release);
        Ok((applied, segments))
    }

    fn write_manifest(&self, m: &mut Maint, mut next: Manifest) -> Result<()> {
        next.blocks = self
            .tenants
            .read()
            .values()
            .flat_map(|t| {
                t.blocks
                    .read()
                    .iter()
                    .map(|b| (t.name.clone(), b.meta.id))
                    .collect::<Vec<_>>()
            })
            .collect();
        format::write_atomic(&self.dir.join("MANIFEST"), &next.encode())?;
        m.manifest = next;
        remove_stale_files(&self.dir, &m.manifest)
    }

    /// Cuts head data older than each tenant's `min_valid` into blocks, merges blocks whose
    /// ranges are complete, and applies retention. Safe to run concurrently with apply and
    /// select; run it periodically from a background thread ([`Db::spawn_compactor`]).
    pub fn compact(&self) -> Result<CompactReport> {
        let mut m = self.maint.lock();
        let mut report = CompactReport::default();
        let tenants: Vec<Arc<Tenant>> = self.tenants.read().values().cloned().collect();
        for t in &tenants {
            let upto = t.head.read().min_valid;
            report.blocks_cut += self.cut_head(&mut m, t, upto)?;
        }
        if report.blocks_cut > 0 {
            self.checkpoint_locked(&mut m)?;
            self.remove_unused_segments(&tenants)?;
        }
        for t in &tenants {
            while let Some(group) = self.plan(t) {
                report.blocks_merged += group.len();
                self.merge(&mut m, t, group)?;
            }
        }
        report.blocks_deleted = self.apply_retention(&mut m, &tenants)?;
        Ok(report)
    }

    /// Writes all head data into blocks, whatever its age, and advances every tenant's
    /// `min_valid` past it: later samples older than that are rejected. Like a batch, this
    /// changes what is accepted, so a replicated owner must order it through its log. Used at
    /// shutdown and by benchmarks.
    pub fn flush_head(&self) -> Result<usize> {
        let mut m = self.maint.lock();
        let tenants: Vec<Arc<Tenant>> = self.tenants.read().values().cloned().collect();
        let mut n = 0;
        for t in &tenants {
            let upto = {
                let _a = self.apply_lock.lock();
                let mut h = t.head.write();
                if h.maxt == i64::MIN {
                    continue;
                }
                h.min_valid = h.min_valid.max(h.maxt.saturating_add(1));
                h.min_valid
            };
            n += self.cut_head(&mut m, t, upto)?;
        }
        self.checkpoint_locked(&mut m)?;
        self.remove_unused_segments(&tenants)?;
        Ok(n)
    }

    /// Deletes head chunk segments no series references. Holding the apply lock, no chunk can
    /// be appended meanwhile, so even the newest segment may go when nothing refers to it.
    fn remove_unused_segments(&self, tenants: &[Arc<Tenant>]) -> Result<()> {
        let _a = self.apply_lock.lock();
        let min = tenants
            .iter()
            .filter_map(|t| t.head.read().referenced_segments().min())
            .min()
            .unwrap_or(u32::MAX);
        self.files.remove_below(min, true)
    }

    fn alloc_id(m: &mut Maint) -> u64 {
        m.manifest.next_id = m.manifest.next_id.max(1);
        let id = m.manifest.next_id;
        m.manifest.next_id += 1;
        id
    }

    /// Cuts `[phys_min, upto)` of a tenant's head into one block per aligned block range.
    fn cut_head(&self, m: &mut Maint, t: &Tenant, upto: i64) -> Result<usize> {
        let (phys_min, mint) = {
            let h = t.head.read();
            (h.phys_min, h.mint)
        };
        let start = mint.max(phys_min);
        if start >= upto || mint == i64::MAX {
            if phys_min < upto {
                t.head.write().truncate(upto);
            }
            return Ok(0);
        }
        let range = self.opts.block_range_ms;
        let mut a = align_down(start, range);
        let mut cut = 0;
        while a < upto {
            let (lo, hi) = (
                a.max(start),
                (a.saturating_add(range)).min(upto).saturating_sub(1),
            );
            let series = t.head.read().select(&self.files, &[], lo, hi)?;
            let mut written = false;
            if !series.is_empty() {
                let id = Self::alloc_id(m);
                let inputs = series
                    .into_iter()
                    .map(|s| (s.labels.clone(), SeriesInput::Head(s)));
                if let Some(meta) = self.write_block(&t.name, id, 1, vec![], inputs)? {
                    let b = Arc::new(Block::open(self.block_dir(&t.name, meta.id))?);
                    let mut list = (**t.blocks.read()).clone();
                    list.push(b);
                    list.sort_by_key(|b| (b.meta.mint, b.meta.id));
                    *t.blocks.write() = Arc::new(list);
                    cut += 1;
                    written = true;
                }
            }
            a = a.saturating_add(range);
            if !written && a < upto {
                // An empty range: jump straight to the range of the next sample, so that sparse
                // data (samples years apart) costs one step per block, not per empty range.
                let rest = t.head.read().select(&self.files, &[], a, upto - 1)?;
                let mut next = None;
                for s in &rest {
                    if let Some((ts, _)) = s.iter().next() {
                        next = Some(next.map_or(ts, |n: i64| n.min(ts)));
                    }
                }
                match next {
                    Some(ts) => a = align_down(ts, range).max(a),
                    None => break,
                }
            }
        }
        t.head.write().truncate(upto);
        Ok(cut)
    }

    fn block_dir(&self, tenant: &str, id: u64) -> PathBuf {
        self.dir
            .join("blocks")
            .join(tenant)
            .join(format!("{id:016x}"))
    }

    /// Writes a block from label-sorted inputs; decoding and encoding run in parallel batches.
    fn write_block(
        &self,
        tenant: &str,
        id: u64,
        level: u32,
        sources: Vec<u64>,
        inputs: impl Iterator<Item = (Labels, SeriesInput)>,
    ) -> Result<Option<BlockMeta>> {
        let inputs: Vec<(Labels, SeriesInput)> = inputs.collect();
        let mut symbols = BTreeSet::new();
        for (l, _) in &inputs {
            for x in l.iter() {
                if !symbols.contains(&x.name) {
                    symbols.insert(x.name.clone());
                }
                if !symbols.contains(&x.value) {
                    symbols.insert(x.value.clone());
                }
            }
        }
        let parent = self.dir.join("blocks").join(tenant);
        fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let meta = BlockMeta {
            id,
            tenant: tenant.to_string(),
            mint: 0,
            maxt: 0,
            level,
            num_series: 0,
            num_chunks: 0,
            num_samples: 0,
            sources,
        };
        let mut w = BlockWriter::new(&parent, meta, symbols)?;
        for batch in inputs.chunks(WRITE_BATCH_SERIES) {
            let encoded: Vec<Vec<EncodedChunk>> = batch
                .par_iter()
                .map(|(_, input)| input.samples().map(|s| encode_chunks(&s)))
                .collect::<Result<_>>()?;
            for ((labels, _), chunks) in batch.iter().zip(encoded) {
                w.add_series(labels, &chunks)?;
            }
        }
        let meta = w.finish()?;
        if meta.num_series == 0 {
            let d = self.block_dir(tenant, id);
            fs::remove_dir_all(&d).map_err(|e| Error::io(&d, e))?;
            return Ok(None);
        }
        Ok(Some(meta))
    }

    /// Picks blocks of a tenant to merge: overlapping blocks first, then complete aligned
    /// ranges of 3×, 9×, 27×… the block range up to the maximum.
    fn plan(&self, t: &Tenant) -> Option<Vec<Arc<Block>>> {
        let blocks = t.blocks.read().clone();
        if blocks.len() < 2 {
            return None;
        }
        // Overlaps (out-of-order data, or an interrupted cut): merge each overlapping run.
        let mut run = vec![blocks[0].clone()];
        let mut run_max = blocks[0].meta.maxt;
        for b in blocks.iter().skip(1) {
            if b.meta.mint <= run_max {
                run.push(b.clone());
                run_max = run_max.max(b.meta.maxt);
            } else {
                if run.len() > 1 {
                    return Some(run);
                }
                run = vec![b.clone()];
                run_max = b.meta.maxt;
            }
        }
        if run.len() > 1 {
            return Some(run);
        }
        let horizon = t.head.read().min_valid;
        let newest = blocks.iter().map(|b| b.meta.maxt).max().unwrap_or(i64::MIN);
        let limit = horizon.max(newest.saturating_add(1));
        let mut r = self.opts.block_range_ms.saturating_mul(3);
        let max = self.opts.max_range();
        while r <= max {
            let mut groups: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
            for b in blocks.iter() {
                let g = align_down(b.meta.mint, r);
                if b.meta.maxt < g.saturating_add(r) {
                    groups.entry(g).or_default().push(b.clone());
                }
            }
            for (g, group) in groups {
                // Only ranges that no new data can still fall into.
                if group.len() > 1 && g.saturating_add(r) <= limit && g.saturating_add(r) <= horizon
                {
                    return Some(group);
                }
            }
            r = r.saturating_mul(3);
        }
        None
    }

    fn merge(&self, m: &mut Maint, t: &Tenant, group: Vec<Arc<Block>>) -> Result<()> {
        let tomb = self.tombstones.read().clone();
        let id = Self::alloc_id(m);
        let level = group.iter().map(|b| b.meta.level).max().unwrap_or(1) + 1;
        let sources: Vec<u64> = group.iter().map(|b| b.meta.id).collect();
        // K-way merge of the blocks' label-sorted series.
        let mut all: BTreeMap<Labels, Vec<BlockChunk>> = BTreeMap::new();
        for b in &group {
            let bt = tomb.0.get(&b.meta.id);
            for item in b.all_series() {
                let (sid, labels, metas) = item?;
                let deleted = bt.and_then(|x| x.get(&sid)).cloned().unwrap_or_default();
                let e = all.entry(labels).or_default();
                for c in metas {
                    e.push((b.clone(), c, deleted.clone()));
                }
            }
        }
        let meta = self.write_block(
            &t.name,
            id,
            level,
            sources,
            all.into_iter().map(|(l, c)| (l, SeriesInput::Blocks(c))),
        )?;
        let new_block = match meta {
            Some(meta) => Some(Arc::new(Block::open(self.block_dir(&t.name, meta.id))?)),
            None => None,
        };
        self.replace_blocks(m, t, &group, new_block)
    }

    /// Swaps `old` for `new` in the tenant's list, persists the manifest, deletes the old dirs.
    fn replace_blocks(
        &self,
        m: &mut Maint,
        t: &Tenant,
        old: &[Arc<Block>],
        new: Option<Arc<Block>>,
    ) -> Result<()> {
        let old_ids: HashSet<u64> = old.iter().map(|b| b.meta.id).collect();
        let mut list: Vec<Arc<Block>> = t
            .blocks
            .read()
            .iter()
            .filter(|b| !old_ids.contains(&b.meta.id))
            .cloned()
            .collect();
        list.extend(new);
        list.sort_by_key(|b| (b.meta.mint, b.meta.id));
        *t.blocks.write() = Arc::new(list);
        let had_tombstones = old_ids
            .iter()
            .any(|id| self.tombstones.read().0.contains_key(id));
        if had_tombstones {
            let mut tomb = (**self.tombstones.read()).clone();
            tomb.0.retain(|id, _| !old_ids.contains(id));
            *self.tombstones.write() = Arc::new(tomb);
            // The checkpoint writes the trimmed tombstones together with the manifest.
            self.checkpoint_locked(m)?;
        } else {
            let next = m.manifest.clone();
            self.write_manifest(m, next)?;
        }
        for b in old {
            fs::remove_dir_all(&b.dir).map_err(|e| Error::io(&b.dir, e))?;
        }
        Ok(())
    }

    fn apply_retention(&self, m: &mut Maint, tenants: &[Arc<Tenant>]) -> Result<usize> {
        let mut doomed: Vec<(Arc<Tenant>, Arc<Block>)> = Vec::new();
        if let Some(ret) = self.opts.retention_ms {
            for t in tenants {
                let blocks = t.blocks.read().clone();
                let newest = blocks
                    .iter()
                    .map(|b| b.meta.maxt)
                    .chain([t.head.read().maxt])
                    .max()
                    .unwrap_or(i64::MIN);
                for b in blocks
                    .iter()
                    .filter(|b| b.meta.maxt < newest.saturating_sub(ret))
                {
                    doomed.push((t.clone(), b.clone()));
                }
            }
        }
        if let Some(limit) = self.opts.retention_bytes {
            let mut all: Vec<(Arc<Tenant>, Arc<Block>)> = tenants
                .iter()
                .flat_map(|t| {
                    t.blocks
                        .read()
                        .iter()
                        .map(|b| (t.clone(), b.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            all.sort_by_key(|(_, b)| (b.meta.maxt, b.meta.id));
            let mut total: u64 =
                all.iter().map(|(_, b)| b.size()).sum::<u64>() + self.files.bytes();
            for (t, b) in all {
                if total <= limit {
                    break;
                }
                total = total.saturating_sub(b.size());
                if !doomed.iter().any(|(_, d)| d.meta.id == b.meta.id) {
                    doomed.push((t, b));
                }
            }
        }
        let n = doomed.len();
        for (t, b) in doomed {
            self.replace_blocks(m, &t, &[b], None)?;
        }
        Ok(n)
    }

    /// Rewrites every block that has tombstones without the deleted samples.
    pub fn clean_tombstones(&self) -> Result<usize> {
        let mut m = self.maint.lock();
        let tomb = self.tombstones.read().clone();
        let tenants: Vec<Arc<Tenant>> = self.tenants.read().values().cloned().collect();
        let mut n = 0;
        for t in &tenants {
            let blocks = t.blocks.read().clone();
            for b in blocks.iter().filter(|b| tomb.0.contains_key(&b.meta.id)) {
                self.merge(&mut m, t, vec![b.clone()])?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Runs [`Db::compact`] every `every` on a background thread until the handle is dropped.
    pub fn spawn_compactor(db: Arc<Db>, every: Duration) -> Compactor {
        let (tx, rx) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("tsdb-compactor".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    // Errors surface again on the next run; the owner's metrics watch them.
                    let _ = db.compact();
                }
            })
            .expect("spawn compactor thread");
        Compactor {
            stop: Some(tx),
            handle: Some(handle),
        }
    }
}

/// Handle of the background compactor; dropping it stops the thread.
pub struct Compactor {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Compactor {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A chunk of a block to merge, with the deleted intervals of its series.
type BlockChunk = (Arc<Block>, crate::block::ChunkMeta, Vec<(i64, i64)>);

/// Where a series' samples come from when writing a block.
enum SeriesInput {
    Head(Series),
    Blocks(Vec<BlockChunk>),
}

impl SeriesInput {
    fn samples(&self) -> Result<Vec<(i64, f64)>> {
        match self {
            SeriesInput::Head(s) => s.samples(),
            SeriesInput::Blocks(chunks) => {
                let mut out = Vec::new();
                let mut sorted = true;
                for (b, c, deleted) in chunks {
                    let mut s = b.decode_chunk(c)?;
                    if !deleted.is_empty() {
                        s.retain(|&(t, _)| !deleted.iter().any(|&(a, z)| a <= t && t <= z));
                    }
                    if let (Some(last), Some(first)) = (out.last(), s.first()) {
                        let (l, f): (&(i64, f64), &(i64, f64)) = (last, first);
                        sorted &= l.0 < f.0;
                    }
                    out.extend(s);
                }
                if !sorted {
                    out.sort_by_key(|s| s.0);
                    out.dedup_by_key(|s| s.0);
                }
                Ok(out)
            }
        }
    }
}

fn remove_unlisted_blocks(root: &Path, listed: &HashSet<(String, u64)>) -> Result<()> {
    let Ok(tenants) = fs::read_dir(root) else {
        return Ok(());
    };
    for t in tenants {
        let t = t.map_err(|e| Error::io(root, e))?;
        let tname = t.file_name().to_string_lossy().to_string();
        let tdir = t.path();
        for b in fs::read_dir(&tdir).map_err(|e| Error::io(&tdir, e))? {
            let b = b.map_err(|e| Error::io(&tdir, e))?;
            let name = b.file_name().to_string_lossy().to_string();
            let id = u64::from_str_radix(&name, 16).ok();
            if id.is_none_or(|id| !listed.contains(&(tname.clone(), id))) {
                let p = b.path();
                fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
    }
    Ok(())
}

fn remove_stale_files(dir: &Path, m: &Manifest) -> Result<()> {
    let keep_ckpt = format!("checkpoint-{:016x}", m.checkpoint);
    let keep_tomb = format!("tombstones-{:016x}", m.tombstones);
    for (d, prefix, keep) in [
        (dir.join("head"), "checkpoint-", keep_ckpt),
        (dir.to_path_buf(), "tombstones-", keep_tomb),
    ] {
        for e in fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let e = e.map_err(|e| Error::io(&d, e))?;
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with(prefix) && name != keep {
                let p = e.path();
                fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
    }
    Ok(())
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[test]
fn db_is_send_and_sync() {
    fn is<T: Send + Sync>() {}
    is::<Db>();
}
