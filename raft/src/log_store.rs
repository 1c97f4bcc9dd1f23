//! The Raft log on disk: segment files of checksummed records, group commit, vote and purge
//! point in small sealed files. Implements openraft's `RaftLogStorage` and `RaftLogReader`.
//!
//! ```text
//! <dir>/<first index:020>.seg   segments, named by the index of their first entry
//! <dir>/vote                    the vote (sealed file, replaced atomically)
//! <dir>/purged                  the last purged log id (sealed file, replaced atomically)
//!
//! segment  magic "O11YRLOG" (8) · version u16 · pad (6) · record...
//! record   len u32 LE · kind u8 · payload (len bytes) · xxh3-64(kind ‖ payload) u64 LE
//!          kind 1: an entry (codec::put_entry)   kind 2: the committed log id (opt log id)
//! sealed   magic (8) · version u16 · payload · xxh3-64(everything before) u64 LE
//! ```
//!
//! Write path: `append` encodes the entries and writes them to the active segment at once
//! (page cache), then queues openraft's flush callback. One flusher thread takes every queued
//! callback, issues a single `fdatasync` for all of them, then completes them: concurrent
//! appends share one fsync (group commit). A full segment is synced and a new one started.
//!
//! Recovery (`open`): every segment is scanned and every record's checksum verified. A bad or
//! short record in the newest segment is a torn write from a crash: the segment is truncated
//! there and the rest of the log kept. A bad record in any older segment, a gap in the indexes
//! or a bad header is corruption and a [`LogError::Corrupt`] naming the file and offset.
//!
//! Truncation (conflicting entries) deletes newer segments first, then cuts the segment that
//! holds the first removed entry, and syncs: a crash midway leaves a prefix of the old log,
//! which is safe because removed entries were never committed. Purge records the purge point
//! first, then deletes segments whose entries are all purged (never the active one).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::{Bound, RangeBounds};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use bytes::Bytes;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, RaftLogReader, StorageError, StorageIOError, Vote};
use parking_lot::{Condvar, Mutex};
use xxhash_rust::xxh3::xxh3_64;

use crate::codec::{self, Reader};
use crate::sealed::{self, SealedError};
use crate::TypeConfig;

const SEGMENT_MAGIC: &[u8; 8] = b"O11YRLOG";
const SEGMENT_VERSION: u16 = 1;
const HEADER_LEN: u64 = 16;
const RECORD_OVERHEAD: u64 = 4 + 1 + 8;
const KIND_ENTRY: u8 = 1;
const KIND_COMMITTED: u8 = 2;
const VOTE_MAGIC: &[u8; 8] = b"O11YVOTE";
const PURGED_MAGIC: &[u8; 8] = b"O11YPRGD";

/// Log storage errors.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: corrupt at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

impl From<SealedError> for LogError {
    fn from(e: SealedError) -> Self {
        match e {
            SealedError::Io { path, source } => LogError::Io { path, source },
            SealedError::Corrupt {
                path,
                offset,
                reason,
            } => LogError::Corrupt {
                path,
                offset,
                reason,
            },
        }
    }
}

fn io_err(path: &Path, source: io::Error) -> LogError {
    LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> LogError {
    LogError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Log store options.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// A segment is closed and a new one started once it exceeds this size.
    pub segment_bytes: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_bytes: 64 << 20,
        }
    }
}

/// What `open` found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OpenReport {
    pub segments: usize,
    pub entries: u64,
    /// A torn tail was cut: the segment and the offset it was cut at.
    pub truncated_tail: Option<(PathBuf, u64)>,
}

struct Segment {
    first: u64,
    path: PathBuf,
    file: File,
}

#[derive(Clone, Copy)]
struct Pos {
    seg: u64,
    offset: u64,
    len: u32,
}

struct State {
    segments: BTreeMap<u64, Arc<Segment>>,
    /// Key of the active (newest) segment and its length.
    active: u64,
    active_len: u64,
    /// Position of every entry after the purge point; `positions[0]` is index `first_index`.
    positions: VecDeque<Pos>,
    first_index: u64,
    last_log_id: Option<LogId<u64>>,
    purged: Option<LogId<u64>>,
    committed: Option<LogId<u64>>,
    vote: Option<Vote<u64>>,
    /// Set once a write failed: the log refuses further writes (the node must restart).
    failed: Option<String>,
}

struct Flush {
    pending: Vec<LogFlushed<TypeConfig>>,
    shutdown: bool,
}

struct Shared {
    dir: PathBuf,
    opts: LogOptions,
    state: Mutex<State>,
    flush: Mutex<Flush>,
    flush_cv: Condvar,
    fsyncs: std::sync::atomic::AtomicU64,
    /// The state machine's durable index: purges wait for it (see `set_purge_gate`).
    purge_gate: Mutex<Option<tokio::sync::watch::Receiver<u64>>>,
}

/// The segment log. Cheap to clone; clones share the files (a clone is the log reader).
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
    _flusher: Arc<FlusherGuard>,
}

struct FlusherGuard {
    shared: Arc<Shared>,
    handle: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Drop for FlusherGuard {
    fn drop(&mut self) {
        self.shared.flush.lock().shutdown = true;
        self.shared.flush_cv.notify_all();
        if let Some(h) = self.handle.lock().take() {
            let _ = h.join();
        }
    }
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.seg"))
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    sealed::sync_dir(dir).map_err(LogError::from)
}

fn record(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let start = out.len();
    out.push(kind);
    out.extend_from_slice(payload);
    let sum = xxh3_64(&out[start..]);
    out.extend_from_slice(&sum.to_le_bytes());
}

fn new_segment(dir: &Path, first: u64) -> Result<Segment, LogError> {
    let path = segment_path(dir, first);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    let mut h = Vec::with_capacity(HEADER_LEN as usize);
    h.extend_from_slice(SEGMENT_MAGIC);
    h.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h.resize(HEADER_LEN as usize, 0);
    file.write_all(&h).map_err(|e| io_err(&path, e))?;
    file.sync_all().map_err(|e| io_err(&path, e))?;
    sync_dir(dir)?;
    Ok(Segment { first, path, file })
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, recovering from a torn tail.
    pub fn open(
        dir: impl AsRef<Path>,
        opts: LogOptions,
    ) -> Result<(LogStore, OpenReport), LogError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let vote = match sealed::read(&dir.join("vote"), VOTE_MAGIC)? {
            Some(b) => {
                let mut r = Reader::new("vote", &b);
                let v = codec::vote(&mut r)
                    .map_err(|e| corrupt(&dir.join("vote"), 10, e.to_string()))?;
                Some(v)
            }
            None => None,
        };
        let purged = match sealed::read(&dir.join("purged"), PURGED_MAGIC)? {
            Some(b) => {
                let mut r = Reader::new("purge point", &b);
                codec::opt_log_id(&mut r)
                    .map_err(|e| corrupt(&dir.join("purged"), 10, e.to_string()))?
            }
            None => None,
        };
        let purged_index = purged.map(|p| p.index);

        let mut firsts = Vec::new();
        for e in fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
            let e = e.map_err(|e| io_err(&dir, e))?;
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(n) = name
                .strip_suffix(".seg")
                .and_then(|n| n.parse::<u64>().ok())
            {
                firsts.push(n);
            } else if name.ends_with(".tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
        firsts.sort_unstable();

        let mut report = OpenReport::default();
        let mut segments = BTreeMap::new();
        let mut positions = VecDeque::new();
        let mut first_index = purged_index.map_or(1, |p| p + 1);
        let mut last_log_id: Option<LogId<u64>> = None;
        let mut committed: Option<LogId<u64>> = None;
        let mut active_len = HEADER_LEN;
        for (i, &first) in firsts.iter().enumerate() {
            let is_last = i + 1 == firsts.len();
            let path = segment_path(&dir, first);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            let data = fs::read(&path).map_err(|e| io_err(&path, e))?;
            let mut cut: Option<(u64, String)> = None;
            if data.len() < HEADER_LEN as usize {
                if !is_last {
                    return Err(corrupt(&path, 0, "segment shorter than its header"));
                }
                cut = Some((0, "segment shorter than its header".into()));
            } else if &data[..8] != SEGMENT_MAGIC {
                return Err(corrupt(&path, 0, "bad magic"));
            } else if u16::from_le_bytes([data[8], data[9]]) != SEGMENT_VERSION {
                return Err(corrupt(&path, 8, "unsupported segment version"));
            }
            let mut off = HEADER_LEN as usize;
            while cut.is_none() && off < data.len() {
                let rest = &data[off..];
                if rest.len() < RECORD_OVERHEAD as usize {
                    cut = Some((off as u64, "partial record header".into()));
                    break;
                }
                let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
                if rest.len() < RECORD_OVERHEAD as usize + len {
                    cut = Some((
                        off as u64,
                        format!("record of {len} bytes runs past the end"),
                    ));
                    break;
                }
                let body = &rest[4..5 + len];
                let sum = u64::from_le_bytes(rest[5 + len..13 + len].try_into().expect("8 bytes"));
                if xxh3_64(body) != sum {
                    cut = Some((off as u64, "record checksum mismatch".into()));
                    break;
                }
                let payload = &body[1..];
                match body[0] {
                    KIND_ENTRY => {
                        let mut r = Reader::new("log entry", payload);
                        let id = codec::log_id(&mut r)
                            .map_err(|e| corrupt(&path, off as u64, e.to_string()))?;
                        if let Some(prev) = last_log_id {
                            let after_purge =
                                purged_index.is_some_and(|p| prev.index <= p && id.index == p + 1);
                            if id.index != prev.index + 1 && !after_purge {
                                return Err(corrupt(
                                    &path,
                                    off as u64,
                                    format!("entry {} follows entry {}", id.index, prev.index),
                                ));
                            }
                        }
                        if purged_index.is_none_or(|p| id.index > p) {
                            if positions.is_empty() {
                                first_index = id.index;
                            }
                            positions.push_back(Pos {
                                seg: first,
                                offset: off as u64,
                                len: (RECORD_OVERHEAD as usize + len) as u32,
                            });
                        }
                        last_log_id = Some(id);
                        report.entries += 1;
                    }
                    KIND_COMMITTED => {
                        let mut r = Reader::new("committed", payload);
                        committed = codec::opt_log_id(&mut r)
                            .map_err(|e| corrupt(&path, off as u64, e.to_string()))?;
                    }
                    k => {
                        return Err(corrupt(
                            &path,
                            off as u64,
                            format!("unknown record kind {k}"),
                        ))
                    }
                }
                off += RECORD_OVERHEAD as usize + len;
            }
            if let Some((at, reason)) = cut {
                if !is_last {
                    return Err(corrupt(&path, at, reason));
                }
                tracing::warn!(path = %path.display(), offset = at, %reason, "truncating torn log tail");
                let keep = at.max(HEADER_LEN);
                if at < HEADER_LEN {
                    drop(file);
                    let seg = new_segment(&dir, first)?;
                    segments.insert(first, Arc::new(seg));
                } else {
                    file.set_len(keep).map_err(|e| io_err(&path, e))?;
                    file.sync_all().map_err(|e| io_err(&path, e))?;
                    segments.insert(
                        first,
                        Arc::new(Segment {
                            first,
                            path: path.clone(),
                            file,
                        }),
                    );
                }
                report.truncated_tail = Some((path, at));
                active_len = keep;
            } else {
                active_len = data.len() as u64;
                segments.insert(first, Arc::new(Segment { first, path, file }));
            }
        }
        // A purge point beyond the newest entry (after installing a snapshot) restarts the log.
        if let Some(p) = purged {
            if last_log_id.is_none_or(|l| l.index < p.index) {
                last_log_id = Some(p);
            }
        }
        if committed.is_some_and(|c| last_log_id.is_none_or(|l| c.index > l.index)) {
            committed = None;
        }
        let active = match segments.keys().next_back() {
            Some(&k) => k,
            None => {
                let first = last_log_id.map_or(1, |l| l.index + 1);
                let seg = new_segment(&dir, first)?;
                segments.insert(first, Arc::new(seg));
                active_len = HEADER_LEN;
                first
            }
        };
        report.segments = segments.len();
        let shared = Arc::new(Shared {
            dir,
            opts,
            state: Mutex::new(State {
                segments,
                active,
                active_len,
                positions,
                first_index,
                last_log_id,
                purged,
                committed,
                vote,
                failed: None,
            }),
            flush: Mutex::new(Flush {
                pending: Vec::new(),
                shutdown: false,
            }),
            flush_cv: Condvar::new(),
            fsyncs: Default::default(),
            purge_gate: Mutex::new(None),
        });
        let s2 = shared.clone();
        let handle = thread::Builder::new()
            .name("raft-log-flush".into())
            .spawn(move || flusher(s2))
            .map_err(|e| io_err(&shared.dir, e))?;
        let guard = Arc::new(FlusherGuard {
            shared: shared.clone(),
            handle: Mutex::new(Some(handle)),
        });
        Ok((
            LogStore {
                shared,
                _flusher: guard,
            },
            report,
        ))
    }

    /// The directory holding the log.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Index of the newest entry (or the purge point), 0 when empty.
    pub fn last_index(&self) -> u64 {
        self.shared.state.lock().last_log_id.map_or(0, |l| l.index)
    }

    /// Makes purges wait until the state machine's durable applied index (`gate`) reaches the
    /// purge point. openraft runs the state machine (snapshot install) and the log (purge)
    /// concurrently; without the gate a crash between them leaves the log purged beyond the
    /// state the node restarts with, and the entries in between are lost to it.
    pub fn set_purge_gate(&self, gate: tokio::sync::watch::Receiver<u64>) {
        *self.shared.purge_gate.lock() = Some(gate);
    }

    /// Group-commit fsyncs issued so far.
    pub fn fsyncs(&self) -> u64 {
        self.shared
            .fsyncs
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.shared.state.lock().segments.len()
    }

    fn read_range(&self, start: u64, end: u64) -> Result<Vec<Entry<TypeConfig>>, LogError> {
        // Collect the positions under the lock, read outside it.
        let spans: Vec<(Arc<Segment>, Vec<Pos>)> = {
            let st = self.shared.state.lock();
            let lo = start.max(st.first_index);
            let hi = end.min(st.first_index + st.positions.len() as u64);
            let mut spans: Vec<(Arc<Segment>, Vec<Pos>)> = Vec::new();
            for i in lo..hi {
                let p = st.positions[(i - st.first_index) as usize];
                match spans.last_mut() {
                    Some((s, v)) if s.first == p.seg => v.push(p),
                    _ => {
                        let seg = st.segments.get(&p.seg).cloned().ok_or_else(|| {
                            corrupt(&self.shared.dir, 0, format!("segment {} missing", p.seg))
                        })?;
                        spans.push((seg, vec![p]));
                    }
                }
            }
            spans
        };
        let mut out = Vec::new();
        for (seg, ps) in spans {
            let from = ps[0].offset;
            let last = ps[ps.len() - 1];
            let to = last.offset + u64::from(last.len);
            let mut buf = vec![0u8; (to - from) as usize];
            seg.file
                .read_exact_at(&mut buf, from)
                .map_err(|e| io_err(&seg.path, e))?;
            let buf = Bytes::from(buf);
            for p in ps {
                let o = (p.offset - from) as usize;
                let len = p.len as usize - RECORD_OVERHEAD as usize;
                let body = &buf[o + 4..o + 5 + len];
                let sum = u64::from_le_bytes(buf[o + 5 + len..o + 13 + len].try_into().expect("8"));
                if xxh3_64(body) != sum || body[0] != KIND_ENTRY {
                    return Err(corrupt(
                        &seg.path,
                        p.offset,
                        "record checksum mismatch on read",
                    ));
                }
                let payload = buf.slice(o + 5..o + 5 + len);
                let mut r = Reader::new("log entry", &payload);
                let e = codec::entry(&mut r, &payload)
                    .map_err(|e| corrupt(&seg.path, p.offset, e.to_string()))?;
                out.push(e);
            }
        }
        Ok(out)
    }

    fn append_entries(&self, entries: Vec<Entry<TypeConfig>>) -> Result<(), LogError> {
        let sh = &self.shared;
        // openraft truncates conflicting entries before appending; an append over existing
        // indexes (as openraft's storage suite does) replaces them the same way.
        if let Some(first) = entries.first() {
            let (last, n) = {
                let st = sh.state.lock();
                (st.last_log_id, st.positions.len())
            };
            if n > 0 && last.is_some_and(|l| first.log_id.index <= l.index) {
                self.truncate_from(first.log_id.index)?;
            }
        }
        let mut st = sh.state.lock();
        if let Some(f) = &st.failed {
            return Err(corrupt(&sh.dir, 0, format!("log failed earlier: {f}")));
        }
        let mut buf = Vec::new();
        let mut pending_pos: Vec<(u64, u32)> = Vec::new();
        let mut payload = Vec::new();
        for e in entries {
            if let Some(last) = st
                .last_log_id
                .filter(|_| !st.positions.is_empty() || !pending_pos.is_empty())
            {
                if e.log_id.index != last.index + 1 {
                    return Err(corrupt(
                        &sh.dir,
                        0,
                        format!("append of entry {} after {}", e.log_id.index, last.index),
                    ));
                }
            }
            payload.clear();
            codec::put_entry(&mut payload, &e);
            let rec_len = RECORD_OVERHEAD + payload.len() as u64;
            if st.active_len + buf.len() as u64 + rec_len > sh.opts.segment_bytes
                && st.active_len + buf.len() as u64 > HEADER_LEN
            {
                self.write_active(&mut st, &mut buf, &mut pending_pos)?;
                self.rotate(&mut st, e.log_id.index)?;
            }
            pending_pos.push((st.active_len + buf.len() as u64, rec_len as u32));
            record(KIND_ENTRY, &payload, &mut buf);
            if st.positions.is_empty() && pending_pos.len() == 1 {
                st.first_index = e.log_id.index;
            }
            st.last_log_id = Some(e.log_id);
        }
        self.write_active(&mut st, &mut buf, &mut pending_pos)
    }

    /// Writes `buf` at the end of the active segment and records the positions of its entries.
    fn write_active(
        &self,
        st: &mut State,
        buf: &mut Vec<u8>,
        pending: &mut Vec<(u64, u32)>,
    ) -> Result<(), LogError> {
        if buf.is_empty() {
            return Ok(());
        }
        let seg = st.segments[&st.active].clone();
        if let Err(e) = seg.file.write_all_at(buf, st.active_len) {
            st.failed = Some(e.to_string());
            return Err(io_err(&seg.path, e));
        }
        st.active_len += buf.len() as u64;
        for (offset, len) in pending.drain(..) {
            st.positions.push_back(Pos {
                seg: seg.first,
                offset,
                len,
            });
        }
        buf.clear();
        Ok(())
    }

    /// Syncs the full active segment and starts a new one whose first entry is `first`.
    fn rotate(&self, st: &mut State, first: u64) -> Result<(), LogError> {
        let old = st.segments[&st.active].clone();
        old.file.sync_data().map_err(|e| io_err(&old.path, e))?;
        let seg = new_segment(&self.shared.dir, first)?;
        st.segments.insert(first, Arc::new(seg));
        st.active = first;
        st.active_len = HEADER_LEN;
        if let Some(c) = st.committed {
            let mut payload = Vec::new();
            codec::put_opt_log_id(&mut payload, &Some(c));
            let mut buf = Vec::new();
            record(KIND_COMMITTED, &payload, &mut buf);
            self.write_active(st, &mut buf, &mut Vec::new())?;
        }
        Ok(())
    }

    /// Removes every entry at or after `index`.
    fn truncate_from(&self, index: u64) -> Result<(), LogError> {
        let sh = &self.shared;
        let (first_index, n) = {
            let st = sh.state.lock();
            (st.first_index, st.positions.len() as u64)
        };
        if index < first_index {
            return Err(corrupt(
                &sh.dir,
                0,
                format!("truncate at {index} below the first entry {first_index}"),
            ));
        }
        if index >= first_index + n {
            return Ok(());
        }
        // The new last entry, read before anything is removed.
        let new_last = if index > first_index {
            self.read_range(index - 1, index)?.first().map(|e| e.log_id)
        } else {
            None
        };
        crash_point("truncate");
        let mut st = sh.state.lock();
        let k = (index - st.first_index) as usize;
        let cut = st.positions[k];
        // Newest segments first, so that a crash midway leaves a prefix of the log.
        let later: Vec<u64> = st
            .segments
            .range(cut.seg + 1..)
            .map(|(k, _)| *k)
            .rev()
            .collect();
        for first in later {
            let seg = st.segments.remove(&first).expect("listed");
            fs::remove_file(&seg.path).map_err(|e| io_err(&seg.path, e))?;
            crash_point("truncate-between-segments");
        }
        let seg = st.segments[&cut.seg].clone();
        seg.file
            .set_len(cut.offset)
            .map_err(|e| io_err(&seg.path, e))?;
        seg.file.sync_all().map_err(|e| io_err(&seg.path, e))?;
        sync_dir(&sh.dir)?;
        st.active = cut.seg;
        st.active_len = cut.offset;
        st.positions.truncate(k);
        st.last_log_id = new_last.or(st.purged);
        Ok(())
    }

    /// Forgets entries up to and including `log_id`; deletes segments holding only those.
    fn purge_upto(&self, log_id: LogId<u64>) -> Result<(), LogError> {
        let sh = &self.shared;
        let mut payload = Vec::new();
        codec::put_opt_log_id(&mut payload, &Some(log_id));
        sealed::write(&sh.dir.join("purged"), PURGED_MAGIC, &payload)?;
        crash_point("purge-after-mark");
        let mut st = sh.state.lock();
        st.purged = Some(log_id);
        while st.first_index <= log_id.index && !st.positions.is_empty() {
            st.positions.pop_front();
            st.first_index += 1;
        }
        if st.positions.is_empty() {
            st.first_index = log_id.index + 1;
        }
        if st.last_log_id.is_none_or(|l| l.index <= log_id.index) {
            // Everything is purged: restart the log at the next index.
            st.last_log_id = Some(log_id);
            let first = log_id.index + 1;
            if st.active != first {
                self.rotate(&mut st, first)?;
            }
        }
        // A segment is fully purged when the next segment starts at or below purged + 1.
        let keys: Vec<u64> = st.segments.keys().copied().collect();
        for w in keys.windows(2) {
            if w[1] <= log_id.index + 1 && w[0] != st.active {
                let seg = st.segments.remove(&w[0]).expect("listed");
                fs::remove_file(&seg.path).map_err(|e| io_err(&seg.path, e))?;
            }
        }
        Ok(())
    }

    fn save_committed_record(&self, committed: Option<LogId<u64>>) -> Result<(), LogError> {
        let mut st = self.shared.state.lock();
        st.committed = committed;
        let mut payload = Vec::new();
        codec::put_opt_log_id(&mut payload, &committed);
        let mut buf = Vec::new();
        record(KIND_COMMITTED, &payload, &mut buf);
        self.write_active(&mut st, &mut buf, &mut Vec::new())
    }
}

/// The group-commit loop: one fdatasync for every callback queued since the last one.
fn flusher(sh: Arc<Shared>) {
    loop {
        let batch = {
            let mut f = sh.flush.lock();
            while f.pending.is_empty() && !f.shutdown {
                sh.flush_cv.wait(&mut f);
            }
            if f.pending.is_empty() && f.shutdown {
                return;
            }
            std::mem::take(&mut f.pending)
        };
        // Every byte these callbacks wait for is in the active segment or in an older one,
        // which was synced when it was closed.
        let seg = {
            let st = sh.state.lock();
            st.segments.get(&st.active).cloned()
        };
        let res = match seg {
            Some(seg) => seg.file.sync_data(),
            None => Ok(()),
        };
        sh.fsyncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for cb in batch {
            cb.log_io_completed(match &res {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            });
        }
    }
}

/// Test hook: when `O11Y_CRASH_AT` names this point, the process aborts here (used by restart
/// tests that crash a child process in the middle of an operation).
pub(crate) fn crash_point(name: &str) {
    if std::env::var("O11Y_CRASH_AT").is_ok_and(|v| v == name) {
        eprintln!("o11y: crash point {name} reached, aborting");
        std::process::abort();
    }
}

fn serr(e: LogError, write: bool) -> StorageError<u64> {
    let any = AnyError::new(&e);
    StorageError::IO {
        source: if write {
            StorageIOError::write_logs(any)
        } else {
            StorageIOError::read_logs(any)
        },
    }
}

fn range_to(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<u64>> {
        let (start, end) = range_to(&range);
        self.read_range(start, end).map_err(|e| serr(e, false))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let st = self.shared.state.lock();
        Ok(LogState {
            last_purged_log_id: st.purged,
            last_log_id: st.last_log_id.or(st.purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let mut payload = Vec::new();
        codec::put_vote(&mut payload, vote);
        sealed::write(&self.shared.dir.join("vote"), VOTE_MAGIC, &payload).map_err(|e| {
            StorageError::IO {
                source: StorageIOError::write_vote(AnyError::new(&e)),
            }
        })?;
        self.shared.state.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        Ok(self.shared.state.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        self.save_committed_record(committed)
            .map_err(|e| serr(e, true))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(self.shared.state.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        self.append_entries(entries.into_iter().collect())
            .map_err(|e| serr(e, true))?;
        self.shared.flush.lock().pending.push(callback);
        self.shared.flush_cv.notify_one();
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.truncate_from(log_id.index).map_err(|e| serr(e, true))
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let gate = self.shared.purge_gate.lock().clone();
        if let Some(mut gate) = gate {
            let wait = gate.wait_for(|d| *d >= log_id.index);
            match tokio::time::timeout(std::time::Duration::from_secs(60), wait).await {
                Ok(Ok(_)) => {}
                // The state machine is gone (shutdown) or stuck: keep the entries; a later
                // purge covers them.
                _ => {
                    tracing::warn!(
                        index = log_id.index,
                        "purge skipped: state machine not durable that far"
                    );
                    return Ok(());
                }
            }
        }
        self.purge_upto(log_id).map_err(|e| serr(e, true))
    }
}
