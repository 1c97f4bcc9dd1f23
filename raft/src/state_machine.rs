//! The replicated state machine: applies committed entries to the engines (metrics now) and
//! turns their immutable files into snapshots. Implements openraft's `RaftStateMachine`.
//!
//! ```text
//! <dir>/CURRENT                      sealed: name of the live engine directory
//! <dir>/engine-<seq:016x>/tsdb/      the metrics engine (o11y-tsdb data directory)
//! <dir>/engine-<seq:016x>/APPLIED    sealed: last applied log id + membership at the engine's
//!                                    last checkpoint
//! <dir>/engine-<seq:016x>/METADATA   sealed: metric metadata as of APPLIED (crate::metadata)
//! <dir>/snapshots/<id>/tsdb/...      a snapshot: hard links to the engine's immutable files
//! <dir>/snapshots/<id>/META          sealed: snapshot meta + file list (path, length, mutable)
//! <dir>/snapshots/<id>/METADATA      sealed: metric metadata (listed as a snapshot file)
//! <dir>/incoming/<id>/               a snapshot being received from the leader
//! ```
//!
//! Apply: each entry's commands go to `Db::apply_ops` under the entry's log index, so every node
//! applying the same log reaches the same engine state, and re-applying an entry after a crash
//! is a no-op. Metadata commands go to the [`MetadataStore`] (last write wins, so replaying
//! them is harmless too). Membership entries update the stored membership. An engine I/O error is fatal
//! (openraft stops the node; it recovers from its log on restart).
//!
//! Persistence: the engine records the applied index in its own checkpoint; `APPLIED` records
//! the log id and membership for it. Both are written under the apply gate when a snapshot is
//! built, at shutdown, and by the [`CheckpointPolicy`] (every few thousand entries, 32 MiB of
//! payload or 10 s of applying), which bounds what a node re-applies after a crash. After a
//! crash openraft re-applies from `APPLIED` (entries the engine already holds are skipped by
//! index).
//!
//! Snapshot install: files are linked (copied when the engine appends to them) into a new
//! engine directory and into `snapshots/`, `APPLIED` is written, the snapshot is renamed into
//! place, and only then `CURRENT` is switched atomically; a crash at any point leaves either
//! the old or the new engine whole, and the current snapshot always covers the engine's
//! applied state (openraft's invariant at startup). Leftovers are removed at open.
//!
//! Durability gate: the index up to which the applied state is on disk is published
//! ([`StateMachine::durable_index`]); the log store purges nothing above it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use o11y_tsdb::matcher::Matcher;
use o11y_tsdb::{Db, Op, OpOutcome, Options};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use parking_lot::{Mutex, RwLock};

use crate::codec::{self, put_str, put_u8, put_uvarint, Reader};
use crate::command::{BatchPool, Command, CommandResult, ItemRejection, Response};
use crate::log_store::crash_point;
use crate::metadata::MetadataStore;
use crate::sealed::{self, SealedError};
use crate::TypeConfig;

const CURRENT_MAGIC: &[u8; 8] = b"O11YSMCR";
const APPLIED_MAGIC: &[u8; 8] = b"O11YSMAP";
const SNAPSHOT_MAGIC: &[u8; 8] = b"O11YSNAP";
/// Name of the metric metadata file in an engine directory and in a snapshot.
const METADATA_FILE: &str = "METADATA";

/// State machine errors.
#[derive(Debug, thiserror::Error)]
pub enum SmError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(transparent)]
    Engine(#[from] o11y_tsdb::Error),
}

impl From<SealedError> for SmError {
    fn from(e: SealedError) -> Self {
        match e {
            SealedError::Io { path, source } => SmError::Io { path, source },
            SealedError::Corrupt {
                path,
                offset,
                reason,
            } => SmError::Corrupt {
                path,
                reason: format!("at byte {offset}: {reason}"),
            },
        }
    }
}

fn io_err(path: &Path, source: io::Error) -> SmError {
    SmError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One file of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFileInfo {
    /// Relative to the snapshot directory, `/`-separated.
    pub path: String,
    pub len: u64,
    pub mutable: bool,
}

/// openraft's snapshot data: a directory of files (hard links to engine files) and their
/// lengths. Only the first `len` bytes of each file belong to the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFiles {
    pub dir: PathBuf,
    pub files: Vec<SnapshotFileInfo>,
}

fn write_sealed(path: &Path, magic: &[u8; 8], payload: &[u8]) -> Result<(), SmError> {
    sealed::write(path, magic, payload).map_err(SmError::from)
}

fn read_sealed(path: &Path, magic: &[u8; 8]) -> Result<Option<Vec<u8>>, SmError> {
    sealed::read(path, magic).map_err(SmError::from)
}

fn sync_dir(dir: &Path) -> Result<(), SmError> {
    sealed::sync_dir(dir).map_err(SmError::from)
}

pub(crate) fn encode_snapshot_meta(
    meta: &SnapshotMeta<u64, BasicNode>,
    files: &[SnapshotFileInfo],
) -> Vec<u8> {
    let mut b = Vec::new();
    codec::put_snapshot_meta(&mut b, meta);
    put_uvarint(&mut b, files.len() as u64);
    for f in files {
        put_str(&mut b, &f.path);
        put_uvarint(&mut b, f.len);
        put_u8(&mut b, f.mutable as u8);
    }
    b
}

pub(crate) fn decode_snapshot_meta(
    data: &[u8],
) -> Result<(SnapshotMeta<u64, BasicNode>, Vec<SnapshotFileInfo>), codec::DecodeError> {
    let mut r = Reader::new("snapshot meta", data);
    let meta = codec::snapshot_meta(&mut r)?;
    let n = r.count(3)?;
    let mut files = Vec::with_capacity(n);
    for _ in 0..n {
        let path = r.str()?.to_string();
        if path.is_empty()
            || path.starts_with('/')
            || path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(r.err(format!("unsafe snapshot file path {path:?}")));
        }
        files.push(SnapshotFileInfo {
            path,
            len: r.uvarint()?,
            mutable: r.bool()?,
        });
    }
    r.expect_end()?;
    Ok((meta, files))
}

struct SmState {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    engine_seq: u64,
    snapshot_seq: u64,
    /// Entries and payload bytes applied since the last checkpoint, and when it was.
    since_checkpoint: (u64, u64),
    last_checkpoint: std::time::Instant,
}

/// When the state machine checkpoints the engine on its own (between snapshots), bounding
/// how much log a node re-applies after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    pub every_entries: u64,
    pub every_bytes: u64,
    pub every: std::time::Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            every_entries: 5_000,
            every_bytes: 32 << 20,
            every: std::time::Duration::from_secs(10),
        }
    }
}

struct Shared {
    dir: PathBuf,
    opts: Options,
    db: RwLock<Arc<Db>>,
    /// Metric metadata; replaced in place by a snapshot install.
    metadata: Arc<MetadataStore>,
    state: Mutex<SmState>,
    /// Held while applying entries and while a snapshot copies the engine: a snapshot sees
    /// exactly the entries up to its last log id.
    gate: Mutex<()>,
    /// The log index up to which the applied state is durable (`APPLIED` on disk). The log
    /// store purges no entry above it, so a crash never leaves a gap between the durable
    /// state and the log.
    durable: tokio::sync::watch::Sender<u64>,
    policy: Mutex<CheckpointPolicy>,
    /// Batches of applied entries, reused to decode the next ones.
    pool: Mutex<BatchPool>,
}

/// The state machine. Clones share it; one clone is owned by openraft, others serve reads.
#[derive(Clone)]
pub struct StateMachine {
    shared: Arc<Shared>,
}

fn engine_dir(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("engine-{seq:016x}"))
}

impl StateMachine {
    /// Opens (or creates) the state machine in `dir`, with engines opened with `opts`.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<StateMachine, SmError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(dir.join("snapshots")).map_err(|e| io_err(&dir, e))?;
        let incoming = dir.join("incoming");
        if incoming.exists() {
            fs::remove_dir_all(&incoming).map_err(|e| io_err(&incoming, e))?;
        }
        let cpath = dir.join("CURRENT");
        let engine_seq = match read_sealed(&cpath, CURRENT_MAGIC)? {
            Some(b) if b.len() == 8 => u64::from_le_bytes(b.try_into().expect("8 bytes")),
            Some(_) => {
                return Err(SmError::Corrupt {
                    path: cpath,
                    reason: "bad length".into(),
                })
            }
            None => {
                let seq = 1;
                fs::create_dir_all(engine_dir(&dir, seq)).map_err(|e| io_err(&dir, e))?;
                write_sealed(&cpath, CURRENT_MAGIC, &seq.to_le_bytes())?;
                seq
            }
        };
        // Remove engines and snapshots that are not live (an interrupted install or build).
        let mut snapshot_seq = 0;
        for e in fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
            let e = e.map_err(|e| io_err(&dir, e))?;
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("engine-") && e.path() != engine_dir(&dir, engine_seq) {
                fs::remove_dir_all(e.path()).map_err(|x| io_err(&e.path(), x))?;
            }
        }
        let snaps = dir.join("snapshots");
        for e in fs::read_dir(&snaps).map_err(|e| io_err(&snaps, e))? {
            let e = e.map_err(|e| io_err(&snaps, e))?;
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".tmp") || !e.path().join("META").exists() {
                fs::remove_dir_all(e.path()).map_err(|x| io_err(&e.path(), x))?;
            } else if let Ok(seq) = u64::from_str_radix(&name, 16) {
                snapshot_seq = snapshot_seq.max(seq);
            }
        }
        let edir = engine_dir(&dir, engine_seq);
        let db = Db::open(edir.join("tsdb"), opts.clone())?;
        let metadata = Arc::new(MetadataStore::new());
        metadata.load(&edir.join(METADATA_FILE))?;
        let (last_applied, membership) = match read_sealed(&edir.join("APPLIED"), APPLIED_MAGIC)? {
            Some(b) => {
                let mut r = Reader::new("applied state", &b);
                let la = codec::opt_log_id(&mut r);
                let m = la.and_then(|la| Ok((la, codec::stored_membership(&mut r)?)));
                m.map_err(|e| SmError::Corrupt {
                    path: edir.join("APPLIED"),
                    reason: e.to_string(),
                })?
            }
            None => (None, StoredMembership::default()),
        };
        Ok(StateMachine {
            shared: Arc::new(Shared {
                dir,
                opts,
                db: RwLock::new(Arc::new(db)),
                metadata,
                state: Mutex::new(SmState {
                    last_applied,
                    membership,
                    engine_seq,
                    snapshot_seq,
                    since_checkpoint: (0, 0),
                    last_checkpoint: std::time::Instant::now(),
                }),
                policy: Mutex::new(CheckpointPolicy::default()),
                pool: Mutex::new(BatchPool::default()),
                gate: Mutex::new(()),
                durable: tokio::sync::watch::Sender::new(last_applied.map_or(0, |l| l.index)),
            }),
        })
    }

    /// Sets when the engine is checkpointed between snapshots.
    pub fn set_checkpoint_policy(&self, p: CheckpointPolicy) {
        *self.shared.policy.lock() = p;
    }

    /// Watches the index up to which the applied state is durable.
    pub fn durable_index(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.durable.subscribe()
    }

    /// The live metrics engine (replaced when a snapshot is installed).
    pub fn db(&self) -> Arc<Db> {
        self.shared.db.read().clone()
    }

    /// The replicated metric metadata (the same object for the life of the state machine).
    pub fn metadata(&self) -> Arc<MetadataStore> {
        self.shared.metadata.clone()
    }

    /// The last applied log id.
    pub fn last_applied(&self) -> Option<LogId<u64>> {
        self.shared.state.lock().last_applied
    }

    /// Where incoming snapshots are written.
    pub fn incoming_dir(&self) -> PathBuf {
        self.shared.dir.join("incoming")
    }

    /// Checkpoints the engine and records the applied log id with it (bounds replay after a
    /// restart). Called at shutdown and when snapshots are built.
    pub fn checkpoint(&self) -> Result<(), SmError> {
        let _g = self.shared.gate.lock();
        self.checkpoint_locked()
    }

    fn checkpoint_locked(&self) -> Result<(), SmError> {
        let db = self.db();
        db.checkpoint()?;
        self.write_applied()
    }

    fn write_applied(&self) -> Result<(), SmError> {
        let (la, m, seq) = {
            let mut st = self.shared.state.lock();
            st.since_checkpoint = (0, 0);
            st.last_checkpoint = std::time::Instant::now();
            (st.last_applied, st.membership.clone(), st.engine_seq)
        };
        // Metadata first: after a crash between the two files, the log replays from APPLIED
        // over newer metadata, which last-wins writes bring to the same end state.
        let edir = engine_dir(&self.shared.dir, seq);
        self.shared
            .metadata
            .save(&edir.join(METADATA_FILE), false)?;
        let mut b = Vec::new();
        codec::put_opt_log_id(&mut b, &la);
        codec::put_stored_membership(&mut b, &m);
        write_sealed(&edir.join("APPLIED"), APPLIED_MAGIC, &b)?;
        let idx = la.map_or(0, |l| l.index);
        self.shared.durable.send_if_modified(|d| {
            let up = idx > *d;
            *d = (*d).max(idx);
            up
        });
        Ok(())
    }

    fn apply_entry(&self, db: &Db, e: &Entry<TypeConfig>) -> Result<Response, SmError> {
        let req = match &e.payload {
            EntryPayload::Normal(r) => r,
            EntryPayload::Blank | EntryPayload::Membership(_) => return Ok(Response::default()),
        };
        let mut pool = self.shared.pool.lock();
        let commands = match req.decode_reusing(&mut pool) {
            Ok(c) => c,
            Err(err) => {
                // Validated before proposing, so this means a bug or a corrupt entry that passed
                // its checksum; every node decides the same way.
                tracing::error!(index = e.log_id.index, %err, "undecodable entry");
                return Ok(Response {
                    results: vec![CommandResult::Refused {
                        reason: err.to_string(),
                    }],
                });
            }
        };
        let mut matchers: Vec<Result<Vec<Matcher>, String>> = Vec::with_capacity(commands.len());
        for c in &commands {
            matchers.push(match c {
                Command::DeleteSeries { matchers, .. } => matchers
                    .iter()
                    .map(|(op, n, v)| Matcher::new(*op, n.as_str(), v.as_str()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string()),
                Command::Metrics { .. } | Command::Metadata { .. } => Ok(Vec::new()),
            });
        }
        let mut ops = Vec::with_capacity(commands.len());
        // Per command: Ok(index into ops) for engine work, Err(result) when already decided.
        let mut slots: Vec<Result<usize, CommandResult>> = Vec::with_capacity(commands.len());
        for (c, m) in commands.iter().zip(&matchers) {
            match (c, m) {
                (Command::Metrics { tenant, batch }, _) => {
                    slots.push(Ok(ops.len()));
                    ops.push(Op::Write { tenant, batch });
                }
                (
                    Command::DeleteSeries {
                        tenant, mint, maxt, ..
                    },
                    Ok(m),
                ) => {
                    slots.push(Ok(ops.len()));
                    ops.push(Op::Delete {
                        tenant,
                        matchers: m,
                        mint: *mint,
                        maxt: *maxt,
                    });
                }
                (Command::DeleteSeries { .. }, Err(reason)) => {
                    slots.push(Err(CommandResult::Refused {
                        reason: reason.clone(),
                    }))
                }
                (Command::Metadata { tenant, entries }, _) => {
                    self.shared.metadata.apply(tenant, entries);
                    slots.push(Err(CommandResult::Written {
                        samples_accepted: 0,
                        series_created: 0,
                        rejections: Vec::new(),
                    }));
                }
            }
        }
        let outcomes = db.apply_ops(&ops, e.log_id.index)?;
        let results = slots
            .into_iter()
            .map(|s| match s {
                Err(decided) => decided,
                Ok(i) => match &outcomes[i] {
                    Err(err) => CommandResult::Refused {
                        reason: err.to_string(),
                    },
                    Ok(OpOutcome::Written(r)) => CommandResult::Written {
                        samples_accepted: r.samples_accepted,
                        series_created: r.series_created,
                        rejections: r.rejections.iter().map(ItemRejection::from).collect(),
                    },
                    Ok(OpOutcome::Deleted(n)) => CommandResult::Deleted { series: *n },
                    Ok(OpOutcome::AlreadyApplied) => CommandResult::Written {
                        samples_accepted: 0,
                        series_created: 0,
                        rejections: Vec::new(),
                    },
                },
            })
            .collect();
        drop(ops);
        pool.recycle(commands);
        Ok(Response { results })
    }

    fn build(&self) -> Result<Snapshot<TypeConfig>, SmError> {
        let sh = &self.shared;
        let _g = sh.gate.lock();
        let (la, m, seq) = {
            let mut st = sh.state.lock();
            st.snapshot_seq += 1;
            (st.last_applied, st.membership.clone(), st.snapshot_seq)
        };
        let id = match la {
            Some(l) => format!(
                "{}-{}-{}-{seq}",
                l.leader_id.term, l.leader_id.node_id, l.index
            ),
            None => format!("0-0-0-{seq}"),
        };
        let snaps = sh.dir.join("snapshots");
        let name = format!("{seq:016x}");
        let tmp = snaps.join(format!("{name}.tmp"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
        let db = self.db();
        let (applied, files) = db.snapshot_to(&tmp.join("tsdb"))?;
        // The engine holds every write entry up to `la` (blank and membership entries after
        // its own index do not touch it).
        if applied > la.map_or(0, |l| l.index) {
            return Err(SmError::Corrupt {
                path: tmp,
                reason: format!("engine holds index {applied}, beyond the applied {la:?}"),
            });
        }
        self.write_applied()?;
        let mut files: Vec<SnapshotFileInfo> = files
            .into_iter()
            .map(|f| SnapshotFileInfo {
                path: format!("tsdb/{}", f.path.to_string_lossy()),
                len: f.len,
                mutable: f.mutable,
            })
            .collect();
        let mpath = tmp.join(METADATA_FILE);
        sh.metadata.save(&mpath, true)?;
        files.push(SnapshotFileInfo {
            path: METADATA_FILE.to_string(),
            len: fs::metadata(&mpath).map_err(|e| io_err(&mpath, e))?.len(),
            mutable: false,
        });
        let meta = SnapshotMeta {
            last_log_id: la,
            last_membership: m,
            snapshot_id: id.clone(),
        };
        write_sealed(
            &tmp.join("META"),
            SNAPSHOT_MAGIC,
            &encode_snapshot_meta(&meta, &files),
        )?;
        crash_point("snapshot-build");
        let dest = snaps.join(&name);
        fs::rename(&tmp, &dest).map_err(|e| io_err(&dest, e))?;
        sync_dir(&snaps)?;
        self.remove_snapshots_except(&name)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(SnapshotFiles { dir: dest, files }),
        })
    }

    fn remove_snapshots_except(&self, keep: &str) -> Result<(), SmError> {
        let snaps = self.shared.dir.join("snapshots");
        for e in fs::read_dir(&snaps).map_err(|e| io_err(&snaps, e))? {
            let e = e.map_err(|e| io_err(&snaps, e))?;
            if e.file_name().to_string_lossy() != keep {
                fs::remove_dir_all(e.path()).map_err(|x| io_err(&e.path(), x))?;
            }
        }
        Ok(())
    }

    /// The newest complete snapshot on disk.
    pub fn current_snapshot(&self) -> Result<Option<Snapshot<TypeConfig>>, SmError> {
        let snaps = self.shared.dir.join("snapshots");
        let mut dirs: Vec<(u64, PathBuf)> = Vec::new();
        for e in fs::read_dir(&snaps).map_err(|e| io_err(&snaps, e))? {
            let e = e.map_err(|e| io_err(&snaps, e))?;
            let name = e.file_name().to_string_lossy().to_string();
            if let Ok(seq) = u64::from_str_radix(&name, 16) {
                dirs.push((seq, e.path()));
            }
        }
        dirs.sort_unstable_by_key(|d| std::cmp::Reverse(d.0));
        // A snapshot beyond the applied state (installed, then a crash before the engine
        // switched to it) is not this node's state: openraft requires snapshot ≤ applied.
        let applied = self.last_applied().map_or(0, |l| l.index);
        for (_, dir) in dirs {
            let mpath = dir.join("META");
            let Some(b) = read_sealed(&mpath, SNAPSHOT_MAGIC)? else {
                continue;
            };
            let (meta, files) = decode_snapshot_meta(&b).map_err(|e| SmError::Corrupt {
                path: mpath,
                reason: e.to_string(),
            })?;
            if meta.last_log_id.map_or(0, |l| l.index) > applied {
                continue;
            }
            return Ok(Some(Snapshot {
                meta,
                snapshot: Box::new(SnapshotFiles { dir, files }),
            }));
        }
        Ok(None)
    }

    /// Replaces the engine with the snapshot's state.
    pub fn install(
        &self,
        meta: &SnapshotMeta<u64, BasicNode>,
        data: &SnapshotFiles,
    ) -> Result<(), SmError> {
        let sh = &self.shared;
        let _g = sh.gate.lock();
        let (old_seq, snap_seq) = {
            let mut st = sh.state.lock();
            st.snapshot_seq += 1;
            (st.engine_seq, st.snapshot_seq)
        };
        let new_seq = old_seq + 1;
        let edir = engine_dir(&sh.dir, new_seq);
        if edir.exists() {
            fs::remove_dir_all(&edir).map_err(|e| io_err(&edir, e))?;
        }
        // Keep a copy as this node's current snapshot (so it can serve it as a leader), then
        // build the engine directory from it.
        let name = format!("{snap_seq:016x}");
        let snaps = sh.dir.join("snapshots");
        let tmp = snaps.join(format!("{name}.tmp"));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
        }
        for f in &data.files {
            let from = data.dir.join(&f.path);
            for (root, copy) in [(&tmp, false), (&edir, f.mutable)] {
                let to = root.join(&f.path);
                if let Some(p) = to.parent() {
                    fs::create_dir_all(p).map_err(|e| io_err(p, e))?;
                }
                if copy {
                    copy_prefix(&from, &to, f.len)?;
                } else {
                    fs::hard_link(&from, &to).map_err(|e| io_err(&from, e))?;
                }
            }
        }
        fs::create_dir_all(edir.join("tsdb")).map_err(|e| io_err(&edir, e))?;
        write_sealed(
            &tmp.join("META"),
            SNAPSHOT_MAGIC,
            &encode_snapshot_meta(meta, &data.files),
        )?;
        let mut b = Vec::new();
        codec::put_opt_log_id(&mut b, &meta.last_log_id);
        codec::put_stored_membership(&mut b, &meta.last_membership);
        write_sealed(&edir.join("APPLIED"), APPLIED_MAGIC, &b)?;
        sync_dir(&edir)?;
        // The snapshot is in place before the engine switches to it: openraft requires the
        // current snapshot to cover the applied state it finds after a restart.
        let dest = snaps.join(&name);
        fs::rename(&tmp, &dest).map_err(|e| io_err(&dest, e))?;
        sync_dir(&snaps)?;
        crash_point("install-before-switch");
        write_sealed(
            &sh.dir.join("CURRENT"),
            CURRENT_MAGIC,
            &new_seq.to_le_bytes(),
        )?;
        crash_point("install-after-switch");
        let db = Db::open(edir.join("tsdb"), sh.opts.clone())?;
        // Snapshots from before metadata was kept have no file: no metadata.
        sh.metadata.load(&edir.join(METADATA_FILE))?;
        {
            let mut st = sh.state.lock();
            st.engine_seq = new_seq;
            st.last_applied = meta.last_log_id;
            st.membership = meta.last_membership.clone();
        }
        *sh.db.write() = Arc::new(db);
        let idx = meta.last_log_id.map_or(0, |l| l.index);
        sh.durable.send_modify(|d| *d = (*d).max(idx));
        let old = engine_dir(&sh.dir, old_seq);
        fs::remove_dir_all(&old).map_err(|e| io_err(&old, e))?;
        self.remove_snapshots_except(&name)?;
        if data.dir.starts_with(self.incoming_dir()) {
            let _ = fs::remove_dir_all(&data.dir);
        }
        Ok(())
    }
}

fn copy_prefix(from: &Path, to: &Path, len: u64) -> Result<(), SmError> {
    let mut src = fs::File::open(from).map_err(|e| io_err(from, e))?;
    let mut out = fs::File::create(to).map_err(|e| io_err(to, e))?;
    let n = io::copy(&mut io::Read::take(&mut src, len), &mut out).map_err(|e| io_err(to, e))?;
    if n != len {
        return Err(SmError::Corrupt {
            path: from.to_path_buf(),
            reason: format!("{n} bytes, snapshot says {len}"),
        });
    }
    out.sync_all().map_err(|e| io_err(to, e))
}

fn sm_err(e: SmError, write: bool) -> StorageError<u64> {
    let any = AnyError::new(&e);
    StorageError::IO {
        source: if write {
            StorageIOError::write_state_machine(any)
        } else {
            StorageIOError::read_state_machine(any)
        },
    }
}

fn snap_err(e: SmError) -> StorageError<u64> {
    StorageError::IO {
        source: StorageIOError::write_snapshot(None, AnyError::new(&e)),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        self.build().map_err(snap_err)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let st = self.shared.state.lock();
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let _g = self.shared.gate.lock();
        let db = self.db();
        let mut out = Vec::new();
        let policy = *self.shared.policy.lock();
        let mut due = false;
        for e in entries {
            let r = self.apply_entry(&db, &e).map_err(|err| sm_err(err, true))?;
            let mut st = self.shared.state.lock();
            st.last_applied = Some(e.log_id);
            st.since_checkpoint.0 += 1;
            match &e.payload {
                EntryPayload::Membership(m) => {
                    st.membership = StoredMembership::new(Some(e.log_id), m.clone());
                }
                EntryPayload::Normal(req) => st.since_checkpoint.1 += req.as_bytes().len() as u64,
                EntryPayload::Blank => {}
            }
            due |= st.since_checkpoint.0 >= policy.every_entries
                || st.since_checkpoint.1 >= policy.every_bytes
                || st.last_checkpoint.elapsed() >= policy.every;
            out.push(r);
        }
        // Bound the replay after a crash: the engine's checkpoint plus APPLIED make everything
        // applied so far durable (and let the log be purged up to here).
        if due {
            self.checkpoint_locked().map_err(|err| sm_err(err, true))?;
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFiles>, StorageError<u64>> {
        let dir = self.incoming_dir().join(format!(
            "local-{}",
            self.shared.state.lock().snapshot_seq + 1
        ));
        Ok(Box::new(SnapshotFiles {
            dir,
            files: Vec::new(),
        }))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<SnapshotFiles>,
    ) -> Result<(), StorageError<u64>> {
        self.install(meta, &snapshot).map_err(snap_err)
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        self.current_snapshot().map_err(|e| sm_err(e, false))
    }
}
