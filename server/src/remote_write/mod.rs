//! Prometheus remote_write 1.0 and 2.0 request decoding (pure: no HTTP, no I/O).
//!
//! This module owns the wire side of `POST /api/v1/write`: choosing the protocol version from
//! the request headers, undoing snappy, walking the protobuf and producing a [`WriteBatch`]
//! for the write command, plus what the HTTP layer needs to answer (metadata, per-series
//! problems, counts).
//!
//! ```text
//!  headers ──► negotiate() ──► Version (V1 | V2)          errors: 415 (unsupported_media_type)
//!  body ─────► decode(version, body, max)                  errors: 400 (everything else)
//!               1. snappy block format: declared length checked against `max` before allocating
//!               2. protobuf, walked in place (wire.rs), strings borrowed from the buffer
//!                  v1.rs: prometheus.WriteRequest   { timeseries{labels, samples, …}, metadata }
//!                  v2.rs: io.prometheus.write.v2.Request { symbols, timeseries{labels_refs, …} }
//!               3. per series: structural label checks ──► bad: ItemProblem, series left out
//!                                                       └► good: labels materialized once
//!  ──► Decoded { batch: WriteBatch (labels as sent), kept, metadata, rejections, counts }
//! ```
//!
//! What is checked here is structure only: UTF-8, empty or duplicate label names, v2 symbol
//! references. Everything else about labels (name syntax, lengths, sorting, `__name__`) and
//! about samples (age, order) is the engine's job, applied per series by
//! `o11y_raft::command::validate` and the tsdb. A malformed protobuf fails the whole request,
//! since nothing after the first bad byte can be trusted; a series with bad labels is left
//! out and reported while the rest of the request is kept. A valid series without float
//! samples has nothing to write and is left out silently (beyond its histogram problem, if
//! any). Float values, including NaN, ±Inf, `-0.0` and the staleness marker, are copied
//! bit-exactly.
//!
//! Allocation: decoding allocates what the batch holds (a `String` per label name and value,
//! an exact-size `Vec` per series) and nothing per label besides; rejected series allocate
//! nothing. 2.0 symbols are checked for UTF-8 once and borrowed.
//!
//! Not stored yet, only counted and reported: native histograms (each series carrying some
//! gets an [`ProblemReason::HistogramsUnsupported`] problem — the 2.0 spec requires a 400
//! for requests with samples the receiver does not accept), exemplars (counted, dropped
//! silently as Prometheus does with exemplar storage off) and 2.0 created timestamps
//! (ignored).
//!
//! [`encode_v1`] and [`encode_v2`] build request bodies (tests, the ingest benchmark, the fuzz
//! target's round trips).

mod encode;
pub mod proto;
mod v1;
mod v2;
mod wire;

#[cfg(test)]
mod tests;

use o11y_tsdb::labels::Label;
use o11y_tsdb::{Sample, SeriesSamples, WriteBatch};

pub use wire_error::DecodeError;

/// The `Content-Type` of a remote_write 1.0 request (`prometheus.WriteRequest`).
pub const CONTENT_TYPE_V1: &str = "application/x-protobuf";
/// The `Content-Type` of a remote_write 2.0 request (`io.prometheus.write.v2.Request`).
pub const CONTENT_TYPE_V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

/// Fully qualified name of the 1.0 message.
const PROTO_V1: &str = "prometheus.WriteRequest";
/// Fully qualified name of the 2.0 message.
const PROTO_V2: &str = "io.prometheus.write.v2.Request";

/// In 2.0 a label is a pair of small symbol references, so the label strings materialized
/// from a request can be much larger than the request itself. Their total is capped at this
/// many times the decoded body size (at least [`V2_LABEL_BYTES_FLOOR`]) so that a small
/// request referencing one huge symbol many times cannot exhaust memory.
pub const V2_LABEL_BYTES_FACTOR: usize = 32;
/// Minimum label-bytes budget for a 2.0 request, whatever its size.
pub const V2_LABEL_BYTES_FLOOR: usize = 16 << 20;

/// Characters of header or label text echoed back in messages.
const EXCERPT_CHARS: usize = 64;

/// The remote_write protocol version of a request, chosen by [`negotiate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// Remote-Write 1.0: `prometheus.WriteRequest`.
    V1,
    /// Remote-Write 2.0: `io.prometheus.write.v2.Request`.
    V2,
}

/// The metric type carried by metadata. Wire numbers are the same in 1.0 and 2.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    /// 0, or a number this version does not know.
    #[default]
    Unknown,
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
}

impl MetricType {
    /// From the protobuf enum number; unknown numbers map to [`MetricType::Unknown`].
    pub fn from_wire(n: i32) -> MetricType {
        match n {
            1 => MetricType::Counter,
            2 => MetricType::Gauge,
            3 => MetricType::Histogram,
            4 => MetricType::GaugeHistogram,
            5 => MetricType::Summary,
            6 => MetricType::Info,
            7 => MetricType::StateSet,
            _ => MetricType::Unknown,
        }
    }

    /// The protobuf enum number.
    pub fn to_wire(self) -> i32 {
        match self {
            MetricType::Unknown => 0,
            MetricType::Counter => 1,
            MetricType::Gauge => 2,
            MetricType::Histogram => 3,
            MetricType::GaugeHistogram => 4,
            MetricType::Summary => 5,
            MetricType::Info => 6,
            MetricType::StateSet => 7,
        }
    }

    /// The name Prometheus's metadata API uses (`counter`, `gaugehistogram`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Unknown => "unknown",
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
        }
    }
}

/// Metadata of one metric family. In 1.0 it comes from `WriteRequest.metadata`; in 2.0 from
/// the per-series `Metadata` (family = the series' `__name__`, first occurrence kept).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricMetadata {
    pub metric_family: String,
    pub metric_type: MetricType,
    pub help: String,
    pub unit: String,
}

/// Why a series of the request was (partly) not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemReason {
    #[error("series has no labels")]
    NoLabels,
    #[error("label name or value is not valid UTF-8")]
    InvalidUtf8,
    #[error("empty label name")]
    EmptyLabelName,
    #[error("duplicate label name {0:?}")]
    DuplicateLabelName(String),
    #[error("labels_refs has an odd number of entries")]
    OddLabelRefs,
    #[error("symbol reference {reference} out of range (the request has {symbols} symbols)")]
    SymbolOutOfRange { reference: u64, symbols: usize },
    #[error("{count} native histogram sample(s) not supported yet; dropped")]
    HistogramsUnsupported { count: u64 },
}

impl ProblemReason {
    /// True when the whole series was left out of the batch; false when only part of it
    /// (its native histograms) was dropped and its float samples were kept.
    pub fn series_dropped(&self) -> bool {
        !matches!(self, ProblemReason::HistogramsUnsupported { .. })
    }
}

/// A problem with one series of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemProblem {
    /// Index of the series in the request (`timeseries` field order, from 0).
    pub index: u32,
    pub reason: ProblemReason,
    /// Float samples of that series that will not be written because of this problem.
    pub samples: u64,
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// The series to write, labels as sent, in request order. `received_ms` is `None`.
    pub batch: WriteBatch,
    /// For each `batch.series[i]`, its index in the request (to number engine rejections
    /// the way the sender numbers its series).
    pub kept: Vec<u32>,
    /// Metric metadata carried by the request.
    pub metadata: Vec<MetricMetadata>,
    /// Per-series problems, in request order. See [`ProblemReason::series_dropped`].
    pub rejections: Vec<ItemProblem>,
    /// Float samples in `batch`.
    pub samples: u64,
    /// Native histogram samples received and dropped (not supported yet).
    pub histograms_dropped: u64,
    /// Exemplars received (not stored).
    pub exemplars: u64,
}

mod wire_error {
    use super::wire::WireError;

    /// Why a request could not be decoded at all. Messages are bounded: header values are
    /// truncated and no body bytes are echoed.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum DecodeError {
        #[error(
            "unsupported Content-Type {0:?}: expected application/x-protobuf, optionally with \
             proto=prometheus.WriteRequest or proto=io.prometheus.write.v2.Request"
        )]
        UnsupportedContentType(String),
        #[error("unsupported Content-Encoding {0:?}: only snappy is supported")]
        UnsupportedContentEncoding(String),
        #[error("snappy: {0}")]
        Snappy(String),
        #[error("decoded request of {declared} bytes exceeds the limit of {limit} bytes")]
        TooLarge { declared: u64, limit: usize },
        #[error("labels of the request expand to more than {limit} bytes")]
        LabelsTooLarge { limit: usize },
        #[error("too many series in one request")]
        TooManySeries,
        #[error("invalid protobuf in {message}: {what}")]
        Protobuf {
            message: &'static str,
            what: &'static str,
        },
    }

    impl From<WireError> for DecodeError {
        fn from(e: WireError) -> Self {
            DecodeError::Protobuf {
                message: e.message,
                what: e.what,
            }
        }
    }

    impl DecodeError {
        /// True for errors the spec answers with 415 Unsupported Media Type (the others are
        /// 400 Bad Request).
        pub fn is_unsupported_media_type(&self) -> bool {
            matches!(
                self,
                DecodeError::UnsupportedContentType(_) | DecodeError::UnsupportedContentEncoding(_)
            )
        }
    }
}

/// At most [`EXCERPT_CHARS`] characters of `s`, marked when cut.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_CHARS) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// Chooses the protocol version from the request headers, following the 2.0 spec's content
/// negotiation.
///
/// - `Content-Type`: `application/x-protobuf` without a `proto` parameter or with
///   `proto=prometheus.WriteRequest` is 1.0; `proto=io.prometheus.write.v2.Request` is 2.0;
///   any other media type or message is an error (415). A missing or empty header is taken
///   as 1.0, as Prometheus does for old senders. Media type and parameter names are
///   case-insensitive and may be surrounded by spaces (RFC 9110); the message name is exact
///   and may be quoted.
/// - `Content-Encoding`: `snappy` (case-insensitive). Absent means snappy, as in Prometheus
///   (1.x senders did not always send it); anything else is an error (415).
/// - `X-Prometheus-Remote-Write-Version` is informational: the spec makes `Content-Type`
///   authoritative, so it is accepted whatever its value.
pub fn negotiate(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    version_header: Option<&str>,
) -> Result<Version, DecodeError> {
    let _ = version_header;
    if let Some(enc) = content_encoding {
        if !enc.trim().eq_ignore_ascii_case("snappy") {
            return Err(DecodeError::UnsupportedContentEncoding(excerpt(enc)));
        }
    }
    let Some(ct) = content_type.filter(|c| !c.trim().is_empty()) else {
        return Ok(Version::V1);
    };
    let unsupported = || DecodeError::UnsupportedContentType(excerpt(ct));
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case(CONTENT_TYPE_V1) {
        return Err(unsupported());
    }
    let mut version = Version::V1;
    for param in parts {
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        let (name, value) = param.split_once('=').ok_or_else(unsupported)?;
        if !name.trim().eq_ignore_ascii_case("proto") {
            continue;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        version = match value {
            PROTO_V1 => Version::V1,
            PROTO_V2 => Version::V2,
            _ => return Err(unsupported()),
        };
    }
    Ok(version)
}

/// Undoes snappy's block format, refusing before any allocation a declared decoded length
/// above `max_decoded_bytes`.
pub fn decompress(body: &[u8], max_decoded_bytes: usize) -> Result<Vec<u8>, DecodeError> {
    let len = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if len > max_decoded_bytes {
        return Err(DecodeError::TooLarge {
            declared: len as u64,
            limit: max_decoded_bytes,
        });
    }
    let mut out = vec![0u8; len];
    let n = snap::raw::Decoder::new()
        .decompress(body, &mut out)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    out.truncate(n);
    Ok(out)
}

/// Decodes a snappy-compressed request body of the given version.
pub fn decode(
    version: Version,
    body: &[u8],
    max_decoded_bytes: usize,
) -> Result<Decoded, DecodeError> {
    let raw = decompress(body, max_decoded_bytes)?;
    decode_uncompressed(version, &raw)
}

/// Decodes an already decompressed protobuf request (benchmarks and fuzzing use this to
/// skip snappy).
pub fn decode_uncompressed(version: Version, buf: &[u8]) -> Result<Decoded, DecodeError> {
    let mut out = Decoded::default();
    match version {
        Version::V1 => v1::decode(buf, &mut out)?,
        Version::V2 => v2::decode(buf, &mut out)?,
    }
    Ok(out)
}

/// Per-request scratch space, reused across series so that decoding a series allocates only
/// what ends up in the batch.
#[derive(Default)]
struct Scratch<'a> {
    pairs: Vec<(&'a str, &'a str)>,
    names: Vec<&'a str>,
    samples: Vec<Sample>,
    refs: Vec<u64>,
}

/// Structural label checks shared by both versions: at least one label, no empty name, no
/// name twice. Sorted input (what the spec asks senders for) is checked in one pass;
/// otherwise a scratch copy of the names is sorted, so the cost stays O(n log n).
fn check_labels<'a>(
    pairs: &[(&'a str, &'a str)],
    names: &mut Vec<&'a str>,
) -> Result<(), ProblemReason> {
    if pairs.is_empty() {
        return Err(ProblemReason::NoLabels);
    }
    if pairs.iter().any(|(n, _)| n.is_empty()) {
        return Err(ProblemReason::EmptyLabelName);
    }
    if pairs.windows(2).all(|w| w[0].0 < w[1].0) {
        return Ok(());
    }
    names.clear();
    names.extend(pairs.iter().map(|p| p.0));
    names.sort_unstable();
    match names.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(ProblemReason::DuplicateLabelName(excerpt(w[0]))),
        None => Ok(()),
    }
}

/// Records one decoded series: left out with a problem when its labels are bad, otherwise
/// added to the batch (when it has float samples) with its labels materialized from `pairs`.
fn finish_series(
    out: &mut Decoded,
    index: u32,
    labels: Result<&[(&str, &str)], ProblemReason>,
    samples: &[Sample],
    histograms: u64,
    exemplars: u64,
) {
    out.exemplars += exemplars;
    out.histograms_dropped += histograms;
    let pairs = match labels {
        Ok(p) => p,
        Err(reason) => {
            out.rejections.push(ItemProblem {
                index,
                reason,
                samples: samples.len() as u64,
            });
            return;
        }
    };
    if histograms > 0 {
        out.rejections.push(ItemProblem {
            index,
            reason: ProblemReason::HistogramsUnsupported { count: histograms },
            samples: 0,
        });
    }
    if samples.is_empty() {
        return;
    }
    out.samples += samples.len() as u64;
    out.kept.push(index);
    out.batch.series.push(SeriesSamples {
        labels: pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
        samples: samples.to_vec(),
    });
}

/// Encodes a batch as a snappy-compressed remote_write 1.0 request body. Float values are
/// kept bit-exact (including `-0.0`, see `encode`).
pub fn encode_v1(batch: &WriteBatch) -> Vec<u8> {
    compress(&encode::write_request_v1(batch))
}

/// Encodes a batch as a snappy-compressed remote_write 2.0 request body, with a
/// de-duplicated symbol table starting with the empty string as the spec requires.
pub fn encode_v2(batch: &WriteBatch) -> Vec<u8> {
    compress(&encode::request_v2(batch))
}

/// Snappy block-format compression. `compress_vec` only fails for inputs above ~4 GiB,
/// which no batch this server builds reaches; such an input yields an empty body, which
/// the decoder rejects.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .unwrap_or_default()
}
