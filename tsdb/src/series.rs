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
use crate::chunk::{BatchDecoder, ChunkIter, Encoding};
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
            return SeriesIter {
                buf: Vec::with_capacity(BUF_SAMPLES),
                pos: 0,
                series: self,
                mode: Mode::Sequential {
                    next: 0,
                    dec: None,
                    filter: false,
                },
                err: None,
            };
        }
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
        all.retain(|&(t, _)| self.keep(t));
        SeriesIter {
            pos: 0,
            buf: all,
            series: self,
            mode: Mode::Done,
            err,
        }
    }

    /// Whether a sample at `t` is in the query range and not deleted.
    #[inline]
    fn keep(&self, t: i64) -> bool {
        t >= self.mint && t <= self.maxt && !self.deleted.iter().any(|&(a, b)| a <= t && t <= b)
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

/// Samples the sequential iterator decodes per call into a chunk decoder: a whole head chunk
/// ([`crate::chunk::MAX_SAMPLES_PER_CHUNK`]); a 240-sample block chunk takes two calls. A buffer
/// of a whole block chunk ran 13% more instructions over a full scan (callgrind, 10,000 series).
const BUF_SAMPLES: usize = 128;

// The chunk decoder is inline (no allocation per chunk); it lives once per iteration.
#[allow(clippy::large_enum_variant)]
enum Mode<'a> {
    /// Chunks in time order, decoded one at a time into the iterator's buffer.
    Sequential {
        /// Index of the next source to open.
        next: usize,
        /// Decoder of the current chunk.
        dec: Option<BatchDecoder<'a>>,
        /// Whether the current chunk's samples need checking against the range and
        /// tombstones.
        filter: bool,
    },
    /// Nothing more to decode: the rest is in the buffer (all of it for merged sources).
    Done,
}

/// Iterator over a series' samples. A corrupt chunk ends iteration; [`SeriesIter::err`] says why.
///
/// Samples are decoded a chunk at a time into a buffer and filtered there, so that
/// [`next`](Iterator::next) only copies one out.
pub struct SeriesIter<'a> {
    /// `buf[pos..]` are the samples still to return, already filtered.
    buf: Vec<(i64, f64)>,
    pos: usize,
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

    /// Refills the buffer from the current chunk, opening the next chunks as needed; false at
    /// the end or on error.
    #[inline(never)]
    fn refill(&mut self) -> bool {
        let series: &'a Series = self.series;
        self.pos = 0;
        loop {
            let Mode::Sequential { next, dec, filter } = &mut self.mode else {
                self.buf.clear();
                return false;
            };
            if let Some(d) = dec {
                // Only the decoder's writes are read back. The buffer still holds the last
                // batch (usually a whole chunk), so this writes just the few slots past it.
                self.buf.resize(BUF_SAMPLES, (0, 0.0));
                let (decoded, res) = d.fill(&mut self.buf);
                if decoded == 0 && res.is_ok() {
                    // The chunk ended cleanly (the decoder checked its end).
                    *dec = None;
                    self.buf.clear();
                    continue;
                }
                let mut n = decoded;
                let mut past_end = false;
                if *filter {
                    let mut kept = 0;
                    for i in 0..n {
                        let s = self.buf[i];
                        if s.0 > series.maxt {
                            past_end = true;
                            break;
                        }
                        if series.keep(s.0) {
                            self.buf[kept] = s;
                            kept += 1;
                        }
                    }
                    n = kept;
                }
                if let Err(e) = res {
                    self.err = Some(series.sources[*next - 1].chunk_err(e.to_string()));
                    past_end = true;
                }
                if past_end {
                    self.mode = Mode::Done;
                }
                self.buf.truncate(n);
                if n > 0 {
                    return true;
                }
                continue;
            }
            let Some(src) = series.sources.get(*next) else {
                self.mode = Mode::Done;
                self.buf.clear();
                return false;
            };
            *next += 1;
            if src.mint > series.maxt {
                self.mode = Mode::Done;
                self.buf.clear();
                return false;
            }
            let opened = src.bytes().and_then(|(enc, bytes)| {
                BatchDecoder::new(enc, bytes).map_err(|e| src.chunk_err(e.to_string()))
            });
            match opened {
                Ok(d) => *dec = Some(d),
                Err(e) => {
                    self.err = Some(e);
                    self.mode = Mode::Done;
                    self.buf.clear();
                    return false;
                }
            }
            // Only chunks that stick out of the range or touch a deleted interval need a check
            // per sample.
            *filter = src.mint < series.mint
                || src.maxt > series.maxt
                || series
                    .deleted
                    .iter()
                    .any(|&(a, b)| a <= src.maxt && src.mint <= b);
        }
    }
}

impl Iterator for SeriesIter<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        if let Some(&s) = self.buf.get(self.pos) {
            self.pos += 1;
            return Some(s);
        }
        if !self.refill() {
            return None;
        }
        self.pos = 1;
        Some(self.buf[0])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.buf.len() - self.pos, None)
    }
}

impl std::iter::FusedIterator for SeriesIter<'_> {}

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
    let mut out = Vec::with_capacity(lists.iter().map(|l| l.len()).max().unwrap_or(0));
    // Lists holding the smallest labels among the heads, first one first.
    let mut min: Vec<usize> = Vec::with_capacity(lists.len());
    loop {
        min.clear();
        for i in 0..lists.len() {
            let Some(s) = lists[i].as_slice().first() else {
                continue;
            };
            let ord = match min.first() {
                None => std::cmp::Ordering::Less,
                Some(&m) => s.labels.cmp(&lists[m].as_slice()[0].labels),
            };
            match ord {
                std::cmp::Ordering::Less => {
                    min.clear();
                    min.push(i);
                }
                std::cmp::Ordering::Equal => min.push(i),
                std::cmp::Ordering::Greater => {}
            }
        }
        let Some((&first, rest)) = min.split_first() else {
            break;
        };
        let mut merged = lists[first].next().expect("peeked");
        for &j in rest {
            let s = lists[j].next().expect("peeked");
            merged.sources.extend(s.sources);
            merged.deleted.extend(s.deleted);
        }
        if !rest.is_empty() {
            if !merged.sources.is_sorted_by_key(|s| (s.mint, s.maxt)) {
                merged.sources.sort_by_key(|s| (s.mint, s.maxt));
            }
            merged.deleted.sort_unstable();
            merged.deleted.dedup();
        }
        out.push(merged);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::encode;

    fn owned(enc: Encoding, samples: &[(i64, f64)]) -> ChunkSource {
        ChunkSource {
            mint: samples[0].0,
            maxt: samples[samples.len() - 1].0,
            data: ChunkData::Owned {
                enc,
                bytes: encode(enc, samples).expect("encodable").into(),
            },
        }
    }

    fn series(sources: Vec<ChunkSource>, deleted: Vec<(i64, i64)>, mint: i64, maxt: i64) -> Series {
        Series {
            labels: Labels::from_pairs([("__name__", "x")]),
            sources,
            deleted,
            mint,
            maxt,
        }
    }

    /// Samples at t = 10·i with integer values, cut into chunks of `sizes` samples, alternating
    /// Xor and Decimal.
    fn chunked(sizes: &[usize]) -> (Vec<(i64, f64)>, Vec<ChunkSource>) {
        let total: usize = sizes.iter().sum();
        let all: Vec<(i64, f64)> = (0..total as i64)
            .map(|i| (i * 10, (i % 7) as f64))
            .collect();
        let mut sources = Vec::new();
        let mut at = 0;
        for (k, &n) in sizes.iter().enumerate() {
            let enc = if k % 2 == 0 {
                Encoding::Xor
            } else {
                Encoding::Decimal
            };
            sources.push(owned(enc, &all[at..at + n]));
            at += n;
        }
        (all, sources)
    }

    #[test]
    fn sequential_iteration_filters_range_and_tombstones() {
        // Chunks larger and smaller than the iterator's buffer.
        let (all, sources) = chunked(&[120, 300, 1, 129, 50]);
        // (mint, maxt, deleted intervals)
        type Case = (i64, i64, Vec<(i64, i64)>);
        let cases: Vec<Case> = vec![
            (i64::MIN, i64::MAX, vec![]),
            (55, 5_005, vec![]),
            (0, 1_190, vec![]),
            (1_200, 1_200, vec![]),
            (i64::MIN, i64::MAX, vec![(100, 2_000), (4_000, 4_010)]),
            (35, 5_000, vec![(0, 40), (5_000, 9_000)]),
            (10_000, 20_000, vec![]),
        ];
        for (mint, maxt, deleted) in cases {
            let s = series(sources.clone(), deleted.clone(), mint, maxt);
            let want: Vec<_> = all
                .iter()
                .copied()
                .filter(|&(t, _)| {
                    t >= mint && t <= maxt && !deleted.iter().any(|&(a, b)| a <= t && t <= b)
                })
                .collect();
            let mut it = s.iter();
            let got: Vec<_> = (&mut it).collect();
            assert!(it.err().is_none());
            assert_eq!(got, want, "range [{mint}, {maxt}], deleted {deleted:?}");
            // Fused.
            assert_eq!(it.next(), None);
        }
    }

    #[test]
    fn overlapping_sources_merge_first_wins() {
        let a: Vec<(i64, f64)> = (0..200).map(|i| (i * 10, 1.0)).collect();
        let b: Vec<(i64, f64)> = (0..200).map(|i| (i * 15, 2.0)).collect();
        let s = series(
            vec![owned(Encoding::Xor, &a), owned(Encoding::Decimal, &b)],
            vec![(300, 330)],
            5,
            2_000,
        );
        let mut want: std::collections::BTreeMap<i64, f64> = Default::default();
        for &(t, v) in b.iter().chain(a.iter()) {
            want.insert(t, v);
        }
        let want: Vec<_> = want
            .into_iter()
            .filter(|&(t, _)| (5..=2_000).contains(&t) && !(300..=330).contains(&t))
            .collect();
        assert_eq!(s.samples().unwrap(), want);
    }

    #[test]
    fn corrupt_chunk_ends_iteration_with_an_error_after_good_samples() {
        let (all, mut sources) = chunked(&[120, 120, 120]);
        let ChunkData::Owned { bytes, .. } = &mut sources[1].data else {
            unreachable!("owned chunk");
        };
        *bytes = bytes[..bytes.len() / 2].into();
        let s = series(sources, vec![], i64::MIN, i64::MAX);
        let mut it = s.iter();
        let got: Vec<_> = (&mut it).collect();
        assert!(got.len() >= 120 && got.len() < 240, "{}", got.len());
        assert_eq!(got[..], all[..got.len()]);
        assert!(it.err().is_some());
        assert!(s.samples().is_err());
    }
}
