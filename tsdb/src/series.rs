//! Query results: series with lazily decoded chunks from the head and blocks.
//!
//! A [`Series`] holds its labels and a list of [`ChunkSource`]s gathered from every block and the
//! head that overlap the query range. Nothing is decoded until [`Series::iter`] runs: chunks
//! outside `[mint, maxt]` were already skipped by their metadata. When the sources are sorted and
//! do not overlap (the common case) the iterator streams them one after another; otherwise (out-of-
//! order data, overlapping blocks) it decodes them and merges by timestamp, the first source
//! winning on equal timestamps. Deleted intervals (tombstones) are filtered out.
//!
//! ```text
//!  block A chunks ──┐
//!  block B chunks ──┼─► Series { labels, sources } ──iter()──► (t, v) sorted, in [mint, maxt]
//!  head chunks ─────┘
//! ```

use std::sync::Arc;

use crate::chunk::{ChunkIter, Encoding};
use crate::error::{Error, Result};
use crate::block::ChunkFile;
use crate::headfile::Segment;
use crate::labels::Labels;

/// Where a chunk's bytes live.
#[derive(Clone)]
pub(crate) enum ChunkData {
    /// A record in a head chunk segment.
    Head { seg: Arc<Segment>, offset: u32 },
    /// A record in a block's mmap'd chunk file.
    Block { file: Arc<ChunkFile>, offset: u64 },
    /// Bytes copied from the head's open chunk.
    Owned { enc: Encoding, bytes: Arc<[u8]> },
    /// Plain sorted samples (out-of-order buffer).
    Samples(Arc<[(i64, f64)]>),
}

/// One chunk of a series with its time range.
#[derive(Clone)]
pub struct ChunkSource {
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
    pub(crate) data: ChunkData,
}

impl ChunkSource {
    /// The chunk's first and last timestamp.
    pub fn time_range(&self) -> (i64, i64) {
        (self.mint, self.maxt)
    }

    fn decode_into(&self, out: &mut Vec<(i64, f64)>) -> Result<()> {
        match &self.data {
            ChunkData::Samples(s) => out.extend_from_slice(s),
            _ => {
                let mut it = self.open()?;
                out.extend(&mut it);
                if let Some(e) = it.err() {
                    return Err(self.chunk_err(e.to_string()));
                }
            }
        }
        Ok(())
    }

    fn open(&self) -> Result<ChunkIter<'_>> {
        let (enc, bytes): (Encoding, &[u8]) = match &self.data {
            ChunkData::Head { seg, offset } => seg.chunk(*offset)?,
            ChunkData::Block { file, offset } => file.chunk(*offset)?,
            ChunkData::Owned { enc, bytes } => (*enc, bytes),
            ChunkData::Samples(_) => return Err(self.chunk_err("not an encoded chunk".into())),
        };
        ChunkIter::new(enc, bytes).map_err(|e| self.chunk_err(e.to_string()))
    }

    fn chunk_err(&self, reason: String) -> Error {
        Error::Corrupt { path: "<chunk>".into(), offset: 0, reason: format!("chunk [{}, {}]: {reason}", self.mint, self.maxt) }
    }
}

/// A series selected by a query: labels plus the chunks overlapping the query range.
#[derive(Clone)]
pub struct Series {
    pub(crate) labels: Labels,
    pub(crate) sources: Vec<ChunkSource>,
    /// Deleted intervals (inclusive), sorted.
    pub(crate) deleted: Vec<(i64, i64)>,
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
}

impl Series {
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The chunks that overlap the query range, in time order.
    pub fn chunks(&self) -> &[ChunkSource] {
        &self.sources
    }

    /// Iterates the samples in `[mint, maxt]` of the query, sorted by timestamp, unique.
    pub fn iter(&self) -> SeriesIter<'_> {
        let sequential = self.sources.windows(2).all(|w| w[0].maxt < w[1].mint)
            && !self.sources.iter().any(|s| matches!(s.data, ChunkData::Samples(_)));
        if sequential {
            SeriesIter { series: self, mode: Mode::Sequential { next: 0, cur: None }, err: None }
        } else {
            let mut all = Vec::new();
            let mut err = None;
            for s in &self.sources {
                if let Err(e) = s.decode_into(&mut all) {
                    err = Some(e);
                    break;
                }
            }
            // Stable sort keeps the source order on equal timestamps; dedup keeps the first.
            all.sort_by_key(|&(t, _)| t);
            all.dedup_by_key(|&mut (t, _)| t);
            SeriesIter { series: self, mode: Mode::Merged { samples: all, pos: 0 }, err }
        }
    }

    /// Decodes all samples in range into a vector.
    pub fn samples(&self) -> Result<Vec<(i64, f64)>> {
        let mut it = self.iter();
        let v: Vec<_> = (&mut it).collect();
        match it.err {
            Some(e) => Err(e),
            None => Ok(v),
        }
    }
}

impl std::fmt::Debug for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Series({}, {} chunks)", self.labels, self.sources.len())
    }
}

enum Mode<'a> {
    Sequential { next: usize, cur: Option<ChunkIter<'a>> },
    Merged { samples: Vec<(i64, f64)>, pos: usize },
}

/// Iterator over a series' samples. A corrupt chunk ends iteration; [`SeriesIter::err`] says why.
pub struct SeriesIter<'a> {
    series: &'a Series,
    mode: Mode<'a>,
    err: Option<Error>,
}

impl SeriesIter<'_> {
    /// The error that ended iteration early, if any.
    pub fn err(&self) -> Option<&Error> {
        self.err.as_ref()
    }

    /// Takes the error that ended iteration early, if any.
    pub fn take_err(&mut self) -> Option<Error> {
        self.err.take()
    }

    #[inline]
    fn deleted(&self, t: i64) -> bool {
        !self.series.deleted.is_empty() && self.series.deleted.iter().any(|&(a, b)| a <= t && t <= b)
    }
}

impl Iterator for SeriesIter<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        let (mint, maxt) = (self.series.mint, self.series.maxt);
        loop {
            let (t, v) = match &mut self.mode {
                Mode::Merged { samples, pos } => {
                    let s = *samples.get(*pos)?;
                    *pos += 1;
                    s
                }
                Mode::Sequential { next, cur } => {
                    if let Some(it) = cur {
                        if let Some(s) = it.next() {
                            s
                        } else {
                            if let Some(e) = it.err() {
                                let src = &self.series.sources[*next - 1];
                                self.err = Some(src.chunk_err(e.to_string()));
                                *next = usize::MAX;
                            }
                            *cur = None;
                            continue;
                        }
                    } else {
                        let src = self.series.sources.get(*next)?;
                        *next += 1;
                        match src.open() {
                            Ok(it) => *cur = Some(it),
                            Err(e) => {
                                self.err = Some(e);
                                *next = usize::MAX;
                                return None;
                            }
                        }
                        continue;
                    }
                }
            };
            if t < mint {
                continue;
            }
            if t > maxt {
                if let Mode::Sequential { next, cur } = &mut self.mode {
                    *cur = None;
                    *next = usize::MAX;
                }
                return None;
            }
            if self.deleted(t) {
                continue;
            }
            return Some((t, v));
        }
    }
}

/// Merges label-sorted lists of series (one list per block or head) into one sorted list;
/// series with equal labels are combined, their sources ordered by time.
pub(crate) fn merge_sorted(lists: Vec<Vec<Series>>) -> Vec<Series> {
    let mut lists: Vec<std::iter::Peekable<std::vec::IntoIter<Series>>> =
        lists.into_iter().filter(|l| !l.is_empty()).map(|l| l.into_iter().peekable()).collect();
    if lists.len() == 1 {
        return lists.pop().map(|l| l.collect()).unwrap_or_default();
    }
    let mut out = Vec::new();
    loop {
        let mut min: Option<&Labels> = None;
        for l in lists.iter_mut() {
            if let Some(s) = l.peek() {
                if min.is_none_or(|m| s.labels < *m) {
                    min = Some(&s.labels);
                }
            }
        }
        let Some(min) = min.cloned() else { break };
        let mut merged: Option<Series> = None;
        for l in lists.iter_mut() {
            if l.peek().is_some_and(|s| s.labels == min) {
                let s = l.next().expect("peeked");
                match &mut merged {
                    None => merged = Some(s),
                    Some(m) => {
                        m.sources.extend(s.sources);
                        m.deleted.extend(s.deleted);
                    }
                }
            }
        }
        if let Some(mut m) = merged {
            m.sources.sort_by_key(|s| (s.mint, s.maxt));
            m.deleted.sort_unstable();
            m.deleted.dedup();
            out.push(m);
        }
    }
    out
}
