//! The head: one tenant's recent data, in memory and in head chunk files.
//!
//! Each active series is a [`MemSeries`]: its labels as interned symbol ids, one open Gorilla
//! chunk on the heap, references to its full chunks in the mmap'd head chunk files
//! ([`crate::headfile`]), and a small sorted buffer of out-of-order samples. An inverted index
//! (label name → value → roaring bitmap of series ids) resolves matchers.
//!
//! ```text
//!  apply(batch) ──► lookup by label hash ──► MemSeries ──► open chunk (heap, ≤120 samples)
//!                       (validate + create                   │ full
//!                        on a miss)                          ▼
//!                                                  head chunk files (mmap) ──cut──► blocks
//! ```
//!
//! Time bounds, all deterministic functions of the applied data (so every replica agrees on
//! which samples are accepted):
//! - `maxt`: the largest accepted timestamp;
//! - `min_valid`: in-order samples below it are rejected; it trails `maxt` by at least half a
//!   block range, aligned down to a block boundary, and never decreases;
//! - an out-of-order sample (older than its series' last sample) is accepted when it is no older
//!   than `maxt - ooo_window` and not below `min_valid`.
//!
//! `phys_min` is where the data already cut into blocks ends: the head hides anything below it.
//! Cutting ([`HeadData::truncate`]) happens in the background; it never changes what is accepted.

use std::collections::HashMap;
use std::sync::Arc;

use roaring::RoaringBitmap;
use xxhash_rust::xxh3::xxh3_64;

use crate::chunk::{decode_all, Encoding, XorAppender, MAX_SAMPLES_PER_CHUNK};
use crate::error::{Error, RejectReason, Rejection, Result};
use crate::format::{put_bytes, put_str, put_uvarint, put_varint, Decoder};
use crate::headfile::{unpack_ref, HeadFiles};
use crate::labels::{validate, Label, LabelLimits, Labels};
use crate::matcher::Matcher;
use crate::postings::{postings_for_matchers, PostingsSource};
use crate::series::{ChunkData, ChunkSource, Series};
use crate::SeriesSamples;

/// Interned strings: every label name and value in the head is stored once.
#[derive(Default)]
pub(crate) struct Symbols {
    strings: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl Symbols {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strings.len() as u32;
        let a: Arc<str> = Arc::from(s);
        self.strings.push(a.clone());
        self.ids.insert(a, id);
        id
    }

    fn get(&self, id: u32) -> &str {
        &self.strings[id as usize]
    }

    fn lookup(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
}

/// A full chunk stored in a head chunk file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadChunk {
    pub r: u64,
    pub mint: i64,
    pub maxt: i64,
}

/// One active series.
pub(crate) struct MemSeries {
    /// (name, value) symbol ids, sorted by name.
    labels: Box<[u32]>,
    chunks: Vec<HeadChunk>,
    open: XorAppender,
    last_t: i64,
    // Boxed: 8 bytes per series instead of 24 for the (rare) out-of-order buffer and deletions.
    #[allow(clippy::box_collection)]
    ooo: Option<Box<Vec<(i64, f64)>>>,
    #[allow(clippy::box_collection)]
    deleted: Option<Box<Vec<(i64, i64)>>>,
}

impl MemSeries {
    fn new(labels: Box<[u32]>) -> Self {
        MemSeries {
            labels,
            chunks: Vec::new(),
            open: XorAppender::new(),
            last_t: i64::MIN,
            ooo: None,
            deleted: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.chunks.is_empty()
            && self.open.num_samples() == 0
            && self.ooo.as_ref().is_none_or(|o| o.is_empty())
    }

    /// Looks up the in-order value at `t`, decoding at most the chunk that covers it.
    fn in_order_value(&self, files: &HeadFiles, t: i64) -> Result<Option<f64>> {
        let find = |samples: Vec<(i64, f64)>| {
            samples
                .binary_search_by_key(&t, |s| s.0)
                .ok()
                .map(|i| samples[i].1)
        };
        if self.open.first_t().is_some_and(|f| f <= t) {
            return Ok(find(
                decode_all(Encoding::Xor, self.open.bytes()).map_err(chunk_err)?,
            ));
        }
        for c in self.chunks.iter().rev() {
            if c.mint <= t && t <= c.maxt {
                let (seq, off) = unpack_ref(c.r);
                let seg = files.segment(seq).ok_or_else(|| missing_segment(seq))?;
                let (enc, bytes) = seg.chunk(off)?;
                return Ok(find(decode_all(enc, bytes).map_err(chunk_err)?));
            }
        }
        Ok(None)
    }
}

fn chunk_err(e: crate::chunk::ChunkError) -> Error {
    Error::Corrupt {
        path: "<head chunk>".into(),
        offset: 0,
        reason: e.to_string(),
    }
}

fn missing_segment(seq: u32) -> Error {
    Error::Corrupt {
        path: format!("head chunk segment {seq:08}").into(),
        offset: 0,
        reason: "segment missing".into(),
    }
}

/// Rounds `t` down to a multiple of `range`.
pub(crate) fn align_down(t: i64, range: i64) -> i64 {
    t.div_euclid(range).saturating_mul(range)
}

/// Knobs of the head, copied from the database options.
#[derive(Clone, Debug)]
pub(crate) struct HeadConfig {
    pub block_range: i64,
    pub ooo_window: i64,
    pub limits: LabelLimits,
}

/// Counters of one append call.
#[derive(Default, Debug)]
pub(crate) struct AppendStats {
    pub samples: u64,
    pub series_created: u64,
}

/// One tenant's head. Callers hold it behind a `RwLock`: a batch is applied under the write
/// lock, so a reader sees whole batches only.
pub(crate) struct HeadData {
    symbols: Symbols,
    series: Vec<Option<MemSeries>>,
    free: Vec<u32>,
    by_hash: HashMap<u64, u32, IdHash>,
    collisions: HashMap<u64, Vec<u32>, IdHash>,
    postings: HashMap<u32, HashMap<u32, RoaringBitmap, IdHash>, IdHash>,
    all: RoaringBitmap,
    pub(crate) maxt: i64,
    pub(crate) mint: i64,
    pub(crate) min_valid: i64,
    pub(crate) phys_min: i64,
    scratch: Vec<u8>,
    ids_scratch: Vec<u32>,
    hash_scratch: Vec<Option<u64>>,
}

/// Hasher for keys that are already well mixed (xxh3 label hashes) or small dense ids:
/// a multiply-shift mix instead of SipHash on the append path.
#[derive(Clone, Copy, Default)]
pub(crate) struct IdHash;

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (u64::from(n) ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u64(&mut self, n: u64) {
        // Label hashes are xxh3 output already; ids get mixed by the multiply.
        self.0 = (n ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Hints the CPU to load `p`'s cache line; a no-op where unsupported.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

fn hash_pairs<'a>(scratch: &mut Vec<u8>, pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    scratch.clear();
    for (n, v) in pairs {
        scratch.extend_from_slice(n.as_bytes());
        scratch.push(0xff);
        scratch.extend_from_slice(v.as_bytes());
        scratch.push(0xff);
    }
    xxh3_64(scratch)
}

/// True when `raw` is already in canonical form: sorted by name, unique, no empty values.
fn canonical(raw: &[Label]) -> bool {
    raw.windows(2).all(|w| w[0].name < w[1].name) && raw.iter().all(|l| !l.value.is_empty())
}

impl HeadData {
    pub(crate) fn new() -> Self {
        HeadData {
            symbols: Symbols::default(),
            series: Vec::new(),
            free: Vec::new(),
            by_hash: HashMap::default(),
            collisions: HashMap::default(),
            postings: HashMap::default(),
            all: RoaringBitmap::new(),
            maxt: i64::MIN,
            mint: i64::MAX,
            min_valid: i64::MIN,
            phys_min: i64::MIN,
            scratch: Vec::new(),
            ids_scratch: Vec::new(),
            hash_scratch: Vec::new(),
        }
    }

    pub(crate) fn num_series(&self) -> u64 {
        self.all.len()
    }

    fn same_labels(&self, id: u32, raw: &[Label]) -> bool {
        let Some(s) = &self.series[id as usize] else {
            return false;
        };
        s.labels.len() == raw.len() * 2
            && raw.iter().enumerate().all(|(i, l)| {
                self.symbols.get(s.labels[2 * i]) == l.name
                    && self.symbols.get(s.labels[2 * i + 1]) == l.value
            })
    }

    fn find(&self, hash: u64, canonical: &[Label]) -> Option<u32> {
        if let Some(&id) = self.by_hash.get(&hash) {
            if self.same_labels(id, canonical) {
                return Some(id);
            }
            return self
                .collisions
                .get(&hash)?
                .iter()
                .copied()
                .find(|&id| self.same_labels(id, canonical));
        }
        None
    }

    /// Finds or creates the series for wire labels; an invalid label set is an error for the
    /// whole series.
    fn get_or_create(
        &mut self,
        raw: &[Label],
        limits: &LabelLimits,
        stats: &mut AppendStats,
    ) -> Result<u32, RejectReason> {
        if canonical(raw) {
            let mut scratch = std::mem::take(&mut self.scratch);
            let h = hash_pairs(
                &mut scratch,
                raw.iter().map(|l| (l.name.as_str(), l.value.as_str())),
            );
            self.scratch = scratch;
            if let Some(id) = self.find(h, raw) {
                return Ok(id);
            }
        }
        let labels = validate(raw.to_vec(), limits)?;
        let mut scratch = std::mem::take(&mut self.scratch);
        let h = hash_pairs(
            &mut scratch,
            labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
        );
        self.scratch = scratch;
        if let Some(id) = self.find(h, labels.as_slice()) {
            return Ok(id);
        }
        stats.series_created += 1;
        Ok(self.create(h, &labels))
    }

    fn create(&mut self, hash: u64, labels: &Labels) -> u32 {
        let mut syms = Vec::with_capacity(labels.len() * 2);
        for l in labels.iter() {
            syms.push(self.symbols.intern(&l.name));
            syms.push(self.symbols.intern(&l.value));
        }
        let s = MemSeries::new(syms.into_boxed_slice());
        let id = match self.free.pop() {
            Some(id) => {
                self.series[id as usize] = Some(s);
                id
            }
            None => {
                self.series.push(Some(s));
                (self.series.len() - 1) as u32
            }
        };
        if let Some(&other) = self.by_hash.get(&hash) {
            if other != id {
                self.collisions.entry(hash).or_default().push(id);
            }
        } else {
            self.by_hash.insert(hash, id);
        }
        let syms = self.series[id as usize]
            .as_ref()
            .map(|s| s.labels.clone())
            .unwrap_or_default();
        for p in syms.chunks(2) {
            self.postings
                .entry(p[0])
                .or_default()
                .entry(p[1])
                .or_default()
                .insert(id);
        }
        self.all.insert(id);
        id
    }

    fn remove(&mut self, id: u32) {
        let Some(s) = self.series[id as usize].take() else {
            return;
        };
        for p in s.labels.chunks(2) {
            if let Some(vals) = self.postings.get_mut(&p[0]) {
                if let Some(bm) = vals.get_mut(&p[1]) {
                    bm.remove(id);
                    if bm.is_empty() {
                        vals.remove(&p[1]);
                    }
                }
                if vals.is_empty() {
                    self.postings.remove(&p[0]);
                }
            }
        }
        let pairs: Vec<(&str, &str)> = s
            .labels
            .chunks(2)
            .map(|p| (self.symbols.get(p[0]), self.symbols.get(p[1])))
            .collect();
        let mut scratch = Vec::new();
        let h = hash_pairs(&mut scratch, pairs.into_iter());
        if self.by_hash.get(&h) == Some(&id) {
            self.by_hash.remove(&h);
            if let Some(mut c) = self.collisions.remove(&h) {
                if let Some(first) = c.pop() {
                    self.by_hash.insert(h, first);
                    if !c.is_empty() {
                        self.collisions.insert(h, c);
                    }
                }
            }
        } else if let Some(c) = self.collisions.get_mut(&h) {
            c.retain(|&x| x != id);
            if c.is_empty() {
                self.collisions.remove(&h);
            }
        }
        self.all.remove(id);
        self.free.push(id);
    }

    pub(crate) fn labels_of(&self, id: u32) -> Labels {
        let s = self.series[id as usize].as_ref().expect("live series");
        Labels::from_sorted_unchecked(
            s.labels
                .chunks(2)
                .map(|p| Label {
                    name: self.symbols.get(p[0]).to_string(),
                    value: self.symbols.get(p[1]).to_string(),
                })
                .collect(),
        )
    }

    /// Applies one batch's worth of series. Rejections are appended to `rejections`.
    pub(crate) fn append(
        &mut self,
        files: &HeadFiles,
        cfg: &HeadConfig,
        batch: &[SeriesSamples],
        max_t: i64,
        rejections: &mut Vec<Rejection>,
    ) -> Result<AppendStats> {
        let mut stats = AppendStats::default();
        // Appending is bound by cache misses (hash table, series, label ids, open chunk), so
        // series are resolved in stages over the whole batch, each stage prefetching what the
        // next one reads, so that the misses overlap:
        //   1. hash the labels (batch memory only); look the hashes up in a loop of lookups
        //      only, prefetching the series array slot of each candidate;
        //   2. prefetch the candidate's label ids and open chunk;
        //   3. check the candidate's labels; anything else (new series, collisions, labels
        //      not in canonical form) takes the general path;
        //   4. append the samples.
        let mut ids = std::mem::take(&mut self.ids_scratch);
        ids.clear();
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut hashes = std::mem::take(&mut self.hash_scratch);
        hashes.clear();
        // Labels are hashed as given: a candidate whose stored labels equal them exactly proves
        // them canonical (stored labels are); anything else takes the general path.
        hashes.extend(batch.iter().map(|s| {
            if s.samples.is_empty() {
                None
            } else {
                Some(hash_pairs(
                    &mut scratch,
                    s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
                ))
            }
        }));
        self.scratch = scratch;
        // A loop of lookups only, so that the CPU overlaps their misses.
        for h in &hashes {
            let cand = h
                .and_then(|h| self.by_hash.get(&h).copied())
                .unwrap_or(u32::MAX);
            if let Some(slot) = self.series.get(cand as usize) {
                prefetch((slot as *const Option<MemSeries>).cast());
            }
            ids.push(cand);
        }
        self.hash_scratch = hashes;
        for &cand in &ids {
            if let Some(Some(ms)) = self.series.get(cand as usize) {
                prefetch(ms.labels.as_ptr().cast());
                prefetch(ms.open.bytes().as_ptr());
            }
        }
        for (si, s) in batch.iter().enumerate() {
            let cand = ids[si];
            if s.samples.is_empty() {
                ids[si] = u32::MAX;
                continue;
            }
            if cand != u32::MAX && self.same_labels(cand, &s.labels) {
                continue;
            }
            match self.get_or_create(&s.labels, &cfg.limits, &mut stats) {
                Ok(id) => {
                    if let Some(ms) = &self.series[id as usize] {
                        prefetch(ms.open.bytes().as_ptr());
                    }
                    ids[si] = id;
                }
                Err(reason) => {
                    rejections.push(Rejection {
                        series: si,
                        sample: None,
                        reason,
                    });
                    ids[si] = u32::MAX;
                }
            }
        }
        let mut result = Ok(());
        'outer: for (si, (s, &id)) in batch.iter().zip(ids.iter()).enumerate() {
            if id == u32::MAX {
                continue;
            }
            for (i, smp) in s.samples.iter().enumerate() {
                if smp.t > max_t {
                    rejections.push(Rejection {
                        series: si,
                        sample: Some(i),
                        reason: RejectReason::TooFarInFuture {
                            t: smp.t,
                            max_valid: max_t,
                        },
                    });
                    continue;
                }
                match self.append_sample(files, cfg, id, smp.t, smp.v) {
                    Ok(Ok(())) => stats.samples += 1,
                    Ok(Err(reason)) => rejections.push(Rejection {
                        series: si,
                        sample: Some(i),
                        reason,
                    }),
                    Err(e) => {
                        result = Err(e);
                        break 'outer;
                    }
                }
            }
        }
        self.ids_scratch = ids;
        result?;
        if self.maxt != i64::MIN {
            let b = align_down(
                self.maxt.saturating_sub(cfg.block_range / 2),
                cfg.block_range,
            );
            self.min_valid = self.min_valid.max(b);
        }
        Ok(stats)
    }

    fn append_sample(
        &mut self,
        files: &HeadFiles,
        cfg: &HeadConfig,
        id: u32,
        t: i64,
        v: f64,
    ) -> Result<Result<(), RejectReason>> {
        let min_valid = self.min_valid;
        let ooo_floor = self.maxt.saturating_sub(cfg.ooo_window).max(min_valid);
        if t < min_valid {
            // Data below `min_valid` may already be in blocks: nothing there can be changed.
            return Ok(Err(RejectReason::TooOld { t, min_valid }));
        }
        let s = self.series[id as usize].as_mut().expect("live series");
        if t > s.last_t {
            if s.open.num_samples() >= MAX_SAMPLES_PER_CHUNK {
                let (mint, maxt) = (s.open.first_t().unwrap_or(t), s.open.last_t().unwrap_or(t));
                let r = files.append(Encoding::Xor, s.open.bytes())?;
                s.chunks.push(HeadChunk { r, mint, maxt });
                s.open = XorAppender::new();
            }
            s.open.append(t, v);
            s.last_t = t;
        } else if t == s.last_t {
            let last = s.open.last_v().map(f64::to_bits);
            let same = match last {
                Some(b) => b == v.to_bits(),
                None => s.in_order_value(files, t)?.map(f64::to_bits) == Some(v.to_bits()),
            };
            if !same {
                return Ok(Err(RejectReason::DuplicateTimestamp { t }));
            }
            return Ok(Ok(()));
        } else {
            if t < ooo_floor {
                return Ok(Err(RejectReason::TooOld {
                    t,
                    min_valid: ooo_floor,
                }));
            }
            if let Some(existing) = s.in_order_value(files, t)? {
                if existing.to_bits() == v.to_bits() {
                    return Ok(Ok(()));
                }
                return Ok(Err(RejectReason::DuplicateTimestamp { t }));
            }
            let ooo = s.ooo.get_or_insert_with(Default::default);
            match ooo.binary_search_by_key(&t, |x| x.0) {
                Ok(i) if ooo[i].1.to_bits() == v.to_bits() => return Ok(Ok(())),
                Ok(_) => return Ok(Err(RejectReason::DuplicateTimestamp { t })),
                Err(i) => ooo.insert(i, (t, v)),
            }
        }
        self.maxt = self.maxt.max(t);
        self.mint = self.mint.min(t);
        Ok(Ok(()))
    }

    /// Marks `[mint, maxt]` of the matching series deleted. Returns how many series matched.
    pub(crate) fn delete(&mut self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<u64> {
        let ids = postings_for_matchers(self, matchers)?;
        for id in &ids {
            if let Some(s) = self.series[id as usize].as_mut() {
                let d = s.deleted.get_or_insert_with(Default::default);
                d.push((mint, maxt));
                d.sort_unstable();
                d.dedup();
            }
        }
        Ok(ids.len())
    }

    /// Series matching `matchers` with data in `[mint, maxt]`, sorted by labels.
    pub(crate) fn select(
        &self,
        files: &HeadFiles,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Series>> {
        let lo = mint.max(self.phys_min);
        if lo > maxt || self.all.is_empty() || self.maxt < lo || self.mint > maxt {
            return Ok(Vec::new());
        }
        let ids = postings_for_matchers(self, matchers)?;
        let mut out = Vec::with_capacity(ids.len() as usize);
        for id in ids {
            let Some(s) = self.series[id as usize].as_ref() else {
                continue;
            };
            let mut sources = Vec::new();
            for c in &s.chunks {
                if c.maxt >= lo && c.mint <= maxt {
                    let (seq, offset) = unpack_ref(c.r);
                    let seg = files.segment(seq).ok_or_else(|| missing_segment(seq))?;
                    sources.push(ChunkSource {
                        mint: c.mint,
                        maxt: c.maxt,
                        data: ChunkData::Head { seg, offset },
                    });
                }
            }
            if let (Some(a), Some(b)) = (s.open.first_t(), s.open.last_t()) {
                if b >= lo && a <= maxt {
                    let bytes: Arc<[u8]> = Arc::from(s.open.bytes());
                    sources.push(ChunkSource {
                        mint: a,
                        maxt: b,
                        data: ChunkData::Owned {
                            enc: Encoding::Xor,
                            bytes,
                        },
                    });
                }
            }
            if let Some(ooo) = &s.ooo {
                let part: Vec<(i64, f64)> = ooo
                    .iter()
                    .copied()
                    .filter(|&(t, _)| t >= lo && t <= maxt)
                    .collect();
                if !part.is_empty() {
                    let (a, b) = (part[0].0, part[part.len() - 1].0);
                    sources.push(ChunkSource {
                        mint: a,
                        maxt: b,
                        data: ChunkData::Samples(part.into()),
                    });
                }
            }
            if sources.is_empty() {
                continue;
            }
            sources.sort_by_key(|c| (c.mint, c.maxt));
            let deleted = s.deleted.as_deref().cloned().unwrap_or_default();
            out.push(Series {
                labels: self.labels_of(id),
                sources,
                deleted,
                mint: lo,
                maxt,
            });
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// Forgets everything below `upto`, which has been written to blocks: drops full chunks that
    /// end below it and out-of-order samples below it, and removes series left with no data.
    /// Returns the oldest head chunk segment still referenced.
    pub(crate) fn truncate(&mut self, upto: i64) -> u32 {
        self.phys_min = self.phys_min.max(upto);
        let mut dead = Vec::new();
        let mut min_seg = u32::MAX;
        let mut new_mint = i64::MAX;
        for id in self.all.iter() {
            let Some(s) = self.series[id as usize].as_mut() else {
                continue;
            };
            s.chunks.retain(|c| c.maxt >= upto);
            if s.open.last_t().is_some_and(|t| t < upto) {
                s.open = XorAppender::new();
            }
            if let Some(o) = &mut s.ooo {
                o.retain(|x| x.0 >= upto);
                if o.is_empty() {
                    s.ooo = None;
                }
            }
            if let Some(d) = &mut s.deleted {
                d.retain(|x| x.1 >= upto);
                if d.is_empty() {
                    s.deleted = None;
                }
            }
            if s.is_empty() {
                dead.push(id);
                continue;
            }
            for c in &s.chunks {
                min_seg = min_seg.min(unpack_ref(c.r).0);
                new_mint = new_mint.min(c.mint);
            }
            if let Some(t) = s.open.first_t() {
                new_mint = new_mint.min(t);
            }
            if let Some(o) = &s.ooo {
                new_mint = new_mint.min(o[0].0);
            }
        }
        let removed = !dead.is_empty();
        for id in dead {
            self.remove(id);
        }
        if removed {
            self.compact_symbols();
        }
        self.mint = new_mint.max(upto);
        if self.all.is_empty() {
            self.mint = i64::MAX;
        }
        min_seg
    }

    /// Rebuilds the symbol table with only the strings live series use, so that series churn
    /// (short-lived pods, say) does not grow it forever. Runs after a head cut removed series.
    fn compact_symbols(&mut self) {
        let old = std::mem::take(&mut self.symbols);
        let mut map: HashMap<u32, u32> = HashMap::new();
        let mut remap = |syms: &mut Symbols, id: u32| {
            *map.entry(id).or_insert_with(|| syms.intern(old.get(id)))
        };
        let mut fresh = Symbols::default();
        for s in self.series.iter_mut().flatten() {
            for x in s.labels.iter_mut() {
                *x = remap(&mut fresh, *x);
            }
        }
        let postings = std::mem::take(&mut self.postings);
        for (n, vals) in postings {
            let n = remap(&mut fresh, n);
            let e = self.postings.entry(n).or_default();
            for (v, bm) in vals {
                e.insert(remap(&mut fresh, v), bm);
            }
        }
        self.symbols = fresh;
    }

    /// Number of interned strings.
    #[cfg(test)]
    pub(crate) fn num_symbols(&self) -> usize {
        self.symbols.strings.len()
    }

    /// Label names, sorted.
    pub(crate) fn label_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .postings
            .keys()
            .map(|&n| self.symbols.get(n).to_string())
            .collect();
        v.sort();
        v
    }

    /// Values of label `name` (with their postings).
    pub(crate) fn label_values(&self, name: &str) -> Vec<(String, &RoaringBitmap)> {
        let Some(n) = self.symbols.lookup(name) else {
            return Vec::new();
        };
        let Some(vals) = self.postings.get(&n) else {
            return Vec::new();
        };
        let mut v: Vec<(String, &RoaringBitmap)> = vals
            .iter()
            .map(|(&v, bm)| (self.symbols.get(v).to_string(), bm))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub(crate) fn postings_of(&self, matchers: &[Matcher]) -> Result<RoaringBitmap> {
        postings_for_matchers(self, matchers)
    }

    /// Number of chunks (full and open) in the head.
    pub(crate) fn num_chunks(&self) -> u64 {
        self.series
            .iter()
            .flatten()
            .map(|s| s.chunks.len() as u64 + u64::from(s.open.num_samples() > 0))
            .sum()
    }

    /// Approximate heap bytes per label name (name and value strings of all series).
    pub(crate) fn label_stats(&self) -> (HashMap<String, u64>, HashMap<String, u64>) {
        let mut mem = HashMap::new();
        let mut values = HashMap::new();
        for (&n, vals) in &self.postings {
            let name = self.symbols.get(n).to_string();
            let bytes: u64 = vals
                .iter()
                .map(|(&v, bm)| self.symbols.get(v).len() as u64 * bm.len())
                .sum();
            mem.insert(name.clone(), bytes);
            values.insert(name, vals.len() as u64);
        }
        (mem, values)
    }

    /// Serializes the head for a checkpoint.
    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        for v in [self.maxt, self.mint, self.min_valid, self.phys_min] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        put_uvarint(buf, self.all.len());
        for id in self.all.iter() {
            let Some(s) = self.series[id as usize].as_ref() else {
                continue;
            };
            put_uvarint(buf, s.labels.len() as u64 / 2);
            for p in s.labels.chunks(2) {
                put_str(buf, self.symbols.get(p[0]));
                put_str(buf, self.symbols.get(p[1]));
            }
            put_varint(buf, s.last_t);
            put_uvarint(buf, s.chunks.len() as u64);
            for c in &s.chunks {
                buf.extend_from_slice(&c.r.to_le_bytes());
                put_varint(buf, c.mint);
                put_varint(buf, c.maxt);
            }
            put_bytes(buf, s.open.bytes());
            let ooo = s.ooo.as_deref().map_or(&[][..], |o| &o[..]);
            put_uvarint(buf, ooo.len() as u64);
            for &(t, v) in ooo {
                put_varint(buf, t);
                buf.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            let del = s.deleted.as_deref().map_or(&[][..], |d| &d[..]);
            put_uvarint(buf, del.len() as u64);
            for &(a, b) in del {
                put_varint(buf, a);
                put_varint(buf, b);
            }
        }
    }

    /// Rebuilds a head from a checkpoint.
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<HeadData> {
        let mut h = HeadData::new();
        h.maxt = d.u64()? as i64;
        h.mint = d.u64()? as i64;
        h.min_valid = d.u64()? as i64;
        h.phys_min = d.u64()? as i64;
        let n = d.len(d.remaining())?;
        for _ in 0..n {
            let nl = d.len(d.remaining())?;
            let mut labels = Vec::with_capacity(nl);
            for _ in 0..nl {
                let (name, value) = (d.str()?.to_string(), d.str()?.to_string());
                labels.push(Label { name, value });
            }
            let labels = Labels::from_sorted_unchecked(labels);
            let mut scratch = Vec::new();
            let hsh = hash_pairs(
                &mut scratch,
                labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
            );
            let id = h.create(hsh, &labels);
            let last_t = d.varint()?;
            let nc = d.len(d.remaining())?;
            let mut chunks = Vec::with_capacity(nc);
            for _ in 0..nc {
                let r = d.u64()?;
                chunks.push(HeadChunk {
                    r,
                    mint: d.varint()?,
                    maxt: d.varint()?,
                });
            }
            let at = d.offset();
            let open = d.byte_str()?.to_vec();
            let open = if open.is_empty() {
                XorAppender::new()
            } else {
                XorAppender::from_bytes(open)
                    .map_err(|e| d.err(format!("open chunk at {at}: {e}")))?
            };
            let no = d.len(d.remaining())?;
            let mut ooo = Vec::with_capacity(no);
            for _ in 0..no {
                ooo.push((d.varint()?, f64::from_bits(d.u64()?)));
            }
            let nd = d.len(d.remaining())?;
            let mut del = Vec::with_capacity(nd);
            for _ in 0..nd {
                del.push((d.varint()?, d.varint()?));
            }
            let s = h.series[id as usize].as_mut().expect("just created");
            s.last_t = last_t;
            s.chunks = chunks;
            s.open = open;
            s.ooo = (!ooo.is_empty()).then(|| Box::new(ooo));
            s.deleted = (!del.is_empty()).then(|| Box::new(del));
        }
        Ok(h)
    }

    /// Segments referenced by any series (for checks).
    pub(crate) fn referenced_segments(&self) -> impl Iterator<Item = u32> + '_ {
        self.series
            .iter()
            .flatten()
            .flat_map(|s| s.chunks.iter().map(|c| unpack_ref(c.r).0))
    }
}

impl PostingsSource for HeadData {
    fn all_postings(&self) -> Result<RoaringBitmap> {
        Ok(self.all.clone())
    }

    fn postings(&self, name: &str, value: &str) -> Result<RoaringBitmap> {
        let (Some(n), Some(v)) = (self.symbols.lookup(name), self.symbols.lookup(value)) else {
            return Ok(RoaringBitmap::new());
        };
        Ok(self
            .postings
            .get(&n)
            .and_then(|vals| vals.get(&v))
            .cloned()
            .unwrap_or_default())
    }

    fn postings_where(
        &self,
        name: &str,
        pred: &mut dyn FnMut(&str) -> bool,
    ) -> Result<RoaringBitmap> {
        let mut out = RoaringBitmap::new();
        if let Some(vals) = self
            .symbols
            .lookup(name)
            .and_then(|n| self.postings.get(&n))
        {
            for (&v, bm) in vals {
                if pred(self.symbols.get(v)) {
                    out |= bm;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Label;
    use crate::Sample;

    fn cfg() -> HeadConfig {
        HeadConfig {
            block_range: 60_000,
            ooo_window: 10_000,
            limits: LabelLimits::default(),
        }
    }

    fn one(name: &str, pod: &str, t: i64) -> SeriesSamples {
        SeriesSamples {
            labels: vec![Label::new("__name__", name), Label::new("pod", pod)],
            samples: vec![Sample { t, v: 1.0 }],
        }
    }

    #[test]
    fn churned_series_and_their_symbols_are_freed_by_a_cut() {
        let dir = tempfile::tempdir().unwrap();
        let files = HeadFiles::open(dir.path(), &[]).unwrap();
        let mut h = HeadData::new();
        let mut rej = Vec::new();
        // 100 short-lived pods in the first minute, then one long-lived series.
        let batch: Vec<SeriesSamples> = (0..100)
            .map(|i| one("m", &format!("pod-{i}"), 1_000))
            .collect();
        h.append(&files, &cfg(), &batch, i64::MAX, &mut rej)
            .unwrap();
        h.append(
            &files,
            &cfg(),
            &[one("m", "stays", 200_000)],
            i64::MAX,
            &mut rej,
        )
        .unwrap();
        assert!(rej.is_empty());
        assert!(h.num_symbols() >= 103);
        h.truncate(120_000);
        assert_eq!(h.num_series(), 1);
        assert_eq!(h.num_symbols(), 4, "__name__, m, pod, stays");
        // Lookups, postings and label values still work after the rebuild.
        h.append(
            &files,
            &cfg(),
            &[one("m", "stays", 201_000)],
            i64::MAX,
            &mut rej,
        )
        .unwrap();
        assert!(rej.is_empty());
        assert_eq!(h.num_series(), 1);
        assert_eq!(
            h.label_values("pod")
                .iter()
                .map(|(v, _)| v.as_str())
                .collect::<Vec<_>>(),
            vec!["stays"]
        );
        let m = Matcher::new(crate::matcher::MatchOp::Equal, "pod", "stays").unwrap();
        let s = h.select(&files, &[m], 0, i64::MAX).unwrap();
        assert_eq!(
            s[0].samples().unwrap(),
            vec![(200_000, 1.0), (201_000, 1.0)]
        );
    }

    #[test]
    fn a_batch_resolves_repeated_and_non_canonical_label_sets_to_one_series() {
        let dir = tempfile::tempdir().unwrap();
        let files = HeadFiles::open(dir.path(), &[]).unwrap();
        let mut h = HeadData::new();
        let mut rej = Vec::new();
        let reordered = |t: i64| SeriesSamples {
            // Unsorted, with an empty value (absent label): same series as one("m", "b", _).
            labels: vec![
                Label::new("pod", "b"),
                Label::new("zone", ""),
                Label::new("__name__", "m"),
            ],
            samples: vec![Sample { t, v: 1.0 }],
        };
        let empty = SeriesSamples {
            labels: vec![Label::new("__name__", "m"), Label::new("pod", "c")],
            samples: vec![],
        };
        let invalid = SeriesSamples {
            labels: vec![Label::new("pod", "d")],
            samples: vec![Sample { t: 1_000, v: 1.0 }],
        };
        // Series seen for the first time twice in one batch, in both forms.
        let batch = vec![
            one("m", "a", 1_000),
            reordered(1_000),
            empty.clone(),
            one("m", "a", 2_000),
            one("m", "b", 2_000),
            invalid.clone(),
            reordered(3_000),
        ];
        let stats = h
            .append(&files, &cfg(), &batch, i64::MAX, &mut rej)
            .unwrap();
        assert_eq!(stats.series_created, 2);
        assert_eq!(stats.samples, 5);
        assert_eq!(rej.len(), 1);
        assert_eq!((rej[0].series, rej[0].sample), (5, None));
        // Known series in a later batch, again in both forms.
        rej.clear();
        let batch = vec![reordered(4_000), one("m", "a", 4_000), empty, invalid];
        let stats = h
            .append(&files, &cfg(), &batch, i64::MAX, &mut rej)
            .unwrap();
        assert_eq!((stats.series_created, stats.samples), (0, 2));
        assert_eq!(rej.len(), 1);
        assert_eq!(h.num_series(), 2);
        let s = h.select(&files, &[], 0, i64::MAX).unwrap();
        let got: Vec<_> = s
            .iter()
            .map(|s| (s.labels().to_string(), s.samples().unwrap().len()))
            .collect();
        assert_eq!(
            got,
            vec![
                (r#"m{pod="a"}"#.to_string(), 3),
                (r#"m{pod="b"}"#.to_string(), 4)
            ]
        );
    }
}
