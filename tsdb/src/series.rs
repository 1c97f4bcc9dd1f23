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

use crate::block::ChunkFile;
use crate::chunk::{ChunkIter, Encoding};
use crate::error::{Error, Result};
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
        let (enc, bytes) = self.bytes()?;
        ChunkIter::new(enc, bytes).map_err(|e| self.chunk_err(e.to_string()))
    }

    /// Points `it` at this chunk, reusing its buffer.
    fn reopen<'a>(&'a self, it: &mut ChunkIter<'a>) -> Result<()> {
        let (enc, bytes) = self.bytes()?;
        it.reset(enc, bytes)
            .map_err(|e| self.chunk_err(e.to_string()))
    }

    fn bytes(&self) -> Result<(Encoding, &[u8])> {
        Ok(match &self.data {
            ChunkData::Head { seg, offset } => seg.chunk(*offset)?,
            ChunkData::Block { file, offset } => file.chunk(*offset)?,
            ChunkData::Owned { enc, bytes } => (*enc, bytes),
            ChunkData::Samples(_) => return Err(self.chunk_err("not an encoded chunk".into())),
        })
    }

    fn chunk_err(&self, reason: String) -> Error {
        Error::Corrupt {
            path: "<chunk>".into(),
            offset: 0,
            reason: format!("chunk [{}, {}]: {reason}", self.mint, self.maxt),
        }
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
            && !self
                .sources
                .iter()
                .any(|s| matches!(s.data, ChunkData::Samples(_)));
        if sequential {
            SeriesIter {
                series: self,
                mode: Mode::Sequential {
                    next: 0,
                    cur: None,
                    filter: false,
                },
                err: None,
            }
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
            SeriesIter {
                series: self,
                mode: Mode::Merged {
                    samples: all,
                    pos: 0,
                },
                err,
            }
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

// The chunk iterator's inline batch buffer makes `Sequential` large; it lives on the stack once
// per iteration, which is cheaper than boxing it.
#[allow(clippy::large_enum_variant)]
enum Mode<'a> {
    /// Chunks in time order, decoded one at a time (each [`ChunkIter`] decodes in batches).
    Sequential {
        next: usize,
        cur: Option<ChunkIter<'a>>,
        filter: bool,
    },
    Merged {
        samples: Vec<(i64, f64)>,
        pos: usize,
    },
}

/// Iterator over a series' samples. A corrupt chunk ends iteration; [`SeriesIter::err`] says why.
pub struct SeriesIter<'a> {
    series: &'a Series,
    mode: Mode<'a>,
    err: Option<Error>,
}

impl<'a> SeriesIter<'a> {
    /// The error that ended iteration early, if any.
    pub fn err(&self) -> Option<&Error> {
        self.err.as_ref()
    }

    /// Takes the error that ended iteration early, if any.
    pub fn take_err(&mut self) -> Option<Error> {
        self.err.take()
    }

    #[inline]
    fn keep(&self, t: i64) -> bool {
        t >= self.series.mint
            && t <= self.series.maxt
            && !self.series.deleted.iter().any(|&(a, b)| a <= t && t <= b)
    }

    /// Opens the next chunk; false at the end or on error.
    #[cold]
    fn open_next(&mut self) -> bool {
        let series: &'a Series = self.series;
        let Mode::Sequential { next, cur, filter } = &mut self.mode else {
            return false;
        };
        if let Some(e) = cur.as_ref().and_then(|it| it.err().cloned()) {
            self.err = Some(series.sources[*next - 1].chunk_err(e.to_string()));
            *next = usize::MAX;
            return false;
        }
        let Some(src) = series.sources.get(*next) else {
            return false;
        };
        *next += 1;
        if src.mint > series.maxt {
            *next = usize::MAX;
            return false;
        }
        let opened = match cur {
            Some(it) => src.reopen(it),
            None => src.open().map(|it| *cur = Some(it)),
        };
        if let Err(e) = opened {
            *cur = None;
            self.err = Some(e);
            *next = usize::MAX;
            return false;
        }
        // Only chunks that stick out of the range or touch a deleted interval need a check
        // per sample.
        *filter = src.mint < series.mint
            || src.maxt > series.maxt
            || series
                .deleted
                .iter()
                .any(|&(a, b)| a <= src.maxt && src.mint <= b);
        true
    }
}

impl Iterator for SeriesIter<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        loop {
            match &mut self.mode {
                Mode::Sequential { cur, filter, .. } => {
                    if let Some(s) = cur.as_mut().and_then(|it| it.next()) {
                        if !*filter {
                            return Some(s);
                        }
                        if s.0 > self.series.maxt {
                            *cur = None;
                            if let Mode::Sequential { next, .. } = &mut self.mode {
                                *next = usize::MAX;
                            }
                            return None;
                        }
                        if self.keep(s.0) {
                            return Some(s);
                        }
                        continue;
                    }
                    if !self.open_next() {
                        return None;
                    }
                }
                Mode::Merged { samples, pos } => {
                    let s = *samples.get(*pos)?;
                    *pos += 1;
                    if s.0 > self.series.maxt {
                        *pos = samples.len();
                        return None;
                    }
                    if self.keep(s.0) {
                        return Some(s);
                    }
                }
            }
        }
    }
}

/// Merges label-sorted lists of series (one list per block or head) into one sorted list;
/// series with equal labels are combined, their sources ordered by time.
pub(crate) fn merge_sorted(lists: Vec<Vec<Series>>) -> Vec<Series> {
    let mut lists: Vec<std::vec::IntoIter<Series>> = lists
        .into_iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.into_iter())
        .collect();
    if lists.len() == 1 {
        return lists.pop().map(|l| l.collect()).unwrap_or_default();
    }
    let mut out = Vec::new();
    loop {
        let mut min: Option<usize> = None;
        for i in 0..lists.len() {
            let Some(s) = lists[i].as_slice().first() else {
                continue;
            };
            let smaller = match min {
                None => true,
                Some(m) => lists[m]
                    .as_slice()
                    .first()
                    .is_some_and(|ms| s.labels < ms.labels),
            };
            if smaller {
                min = Some(i);
            }
        }
        let Some(mi) = min else { break };
        let mut merged = lists[mi].next().expect("peeked");
        let mut combined = false;
        for (j, l) in lists.iter_mut().enumerate() {
            if j != mi
                && l.as_slice()
                    .first()
                    .is_some_and(|s| s.labels == merged.labels)
            {
                let s = l.next().expect("peeked");
                merged.sources.extend(s.sources);
                merged.deleted.extend(s.deleted);
                combined = true;
            }
        }
        if combined {
            merged.sources.sort_by_key(|s| (s.mint, s.maxt));
            merged.deleted.sort_unstable();
            merged.deleted.dedup();
        }
        out.push(merged);
    }
    out
}
