//! Prometheus remote read (`POST /api/v1/read`), the wire side (pure: no HTTP, no I/O):
//! parsing a `ReadRequest`, choosing the response type, and encoding both response forms.
//!
//! ```text
//!  body ─► snappy (size checked first) ─► prost ReadRequest ─► parse_request
//!          queries: [start_ms, end_ms] + matchers (EQ/NEQ/RE/NRE → tsdb Matcher)
//!          accepted_response_types ─► negotiate: first one supported, in the client's order;
//!                                     none given → SAMPLES
//!  per query, per series (the handler selects from the tsdb) ─►
//!    SAMPLES:             SamplesResponse ─► ReadResponse{results[query]{timeseries}} ─► snappy
//!                         (at most `sample_limit` samples per query, else an error)
//!    STREAMED_XOR_CHUNKS: series_frames ─► frames, each one ChunkedReadResponse holding one
//!                         series (or part of it) and its query index:
//!                           uvarint(len(msg)) · CRC-32C(msg) u32 big-endian · msg
//!                         chunks are Prometheus XOR chunks (xor.rs) of ≤ 120 samples; a frame
//!                         is cut once its chunks reach `max_bytes_in_frame`
//! ```
//!
//! Responses are encoded by hand (not through `proto`) so float values stay bit-exact.
//! Errors name what was wrong and where (query and matcher index); the HTTP layer answers
//! them with 400 (Prometheus does the same for undecodable requests, bad matchers and the
//! sample limit).

pub mod proto;
pub mod xor;

use o11y_tsdb::labels::Labels;
use o11y_tsdb::matcher::{MatchOp, Matcher};

use crate::remote_write::{self, DecodeError};

/// `Content-Type` of a SAMPLES response (with `Content-Encoding: snappy`).
pub const CONTENT_TYPE_SAMPLES: &str = "application/x-protobuf";
/// `Content-Type` of a STREAMED_XOR_CHUNKS response.
pub const CONTENT_TYPE_STREAMED: &str =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";
/// Prometheus's `--storage.remote.read-sample-limit` default: most samples one query of a
/// SAMPLES response may return.
pub const DEFAULT_SAMPLE_LIMIT: u64 = 50_000_000;
/// Prometheus's `--storage.remote.read-max-bytes-in-frame` default.
pub const DEFAULT_MAX_BYTES_IN_FRAME: usize = 1 << 20;
/// `Chunk.Encoding` number of XOR chunks.
pub const CHUNK_XOR: i32 = 1;

/// The response form of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    /// 0: one snappy-compressed `ReadResponse` with raw samples.
    Samples,
    /// 1: a stream of framed `ChunkedReadResponse`s with XOR chunks.
    StreamedXorChunks,
}

/// One query of a read request.
#[derive(Debug, Clone)]
pub struct ReadQuery {
    pub start_ms: i64,
    pub end_ms: i64,
    pub matchers: Vec<Matcher>,
}

/// A parsed read request.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    pub queries: Vec<ReadQuery>,
    pub response_type: ResponseType,
}

/// Why a read request could not be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Body(#[from] DecodeError),
    #[error("invalid protobuf in prometheus.ReadRequest: {0}")]
    Protobuf(String),
    #[error("query {query}, matcher {matcher}: unknown matcher type {kind}")]
    MatcherType {
        query: usize,
        matcher: usize,
        kind: i32,
    },
    #[error("query {query}, matcher {matcher}: {reason}")]
    Matcher {
        query: usize,
        matcher: usize,
        reason: String,
    },
    #[error("server does not support any of the requested response types: {0:?}")]
    NoSupportedResponseType(Vec<i32>),
    #[error("exceeded sample limit ({0})")]
    SampleLimit(u64),
}

/// Picks the response type: the first of the client's accepted types this server supports
/// (both are), SAMPLES when the list is empty.
pub fn negotiate(accepted: &[i32]) -> Result<ResponseType, ReadError> {
    if accepted.is_empty() {
        return Ok(ResponseType::Samples);
    }
    accepted
        .iter()
        .find_map(|t| match t {
            0 => Some(ResponseType::Samples),
            1 => Some(ResponseType::StreamedXorChunks),
            _ => None,
        })
        .ok_or_else(|| ReadError::NoSupportedResponseType(accepted.to_vec()))
}

/// Decodes a snappy-compressed `ReadRequest` (at most `max_decoded_bytes` once decompressed)
/// and compiles its matchers.
pub fn parse_request(body: &[u8], max_decoded_bytes: usize) -> Result<ReadRequest, ReadError> {
    let raw = remote_write::decompress(body, max_decoded_bytes)?;
    let req = <proto::ReadRequest as prost::Message>::decode(raw.as_slice())
        .map_err(|e| ReadError::Protobuf(e.to_string()))?;
    let response_type = negotiate(&req.accepted_response_types)?;
    let mut queries = Vec::with_capacity(req.queries.len());
    for (qi, q) in req.queries.into_iter().enumerate() {
        let mut matchers = Vec::with_capacity(q.matchers.len());
        for (mi, m) in q.matchers.into_iter().enumerate() {
            let op = match m.r#type {
                0 => MatchOp::Equal,
                1 => MatchOp::NotEqual,
                2 => MatchOp::Regex,
                3 => MatchOp::NotRegex,
                kind => {
                    return Err(ReadError::MatcherType {
                        query: qi,
                        matcher: mi,
                        kind,
                    })
                }
            };
            matchers.push(
                Matcher::new(op, m.name, m.value).map_err(|e| ReadError::Matcher {
                    query: qi,
                    matcher: mi,
                    reason: e.to_string(),
                })?,
            );
        }
        queries.push(ReadQuery {
            start_ms: q.start_timestamp_ms,
            end_ms: q.end_timestamp_ms,
            matchers,
        });
    }
    Ok(ReadRequest {
        queries,
        response_type,
    })
}

// --- hand-written protobuf -----------------------------------------------------------------

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

fn put_uvarint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn put_key(b: &mut Vec<u8>, field: u8, wire: u8) {
    // Field numbers here are below 16: one-byte keys.
    b.push((field << 3) | wire);
}

fn put_len(b: &mut Vec<u8>, field: u8, payload: &[u8]) {
    put_key(b, field, LEN);
    put_uvarint(b, payload.len() as u64);
    b.extend_from_slice(payload);
}

/// An int64 field, omitted when 0 (proto3 default).
fn put_int64(b: &mut Vec<u8>, field: u8, v: i64) {
    if v != 0 {
        put_key(b, field, VARINT);
        put_uvarint(b, v as u64);
    }
}

/// `prometheus.Label` entries, empty strings omitted, as field `field` of the enclosing message.
fn put_labels(b: &mut Vec<u8>, field: u8, labels: &Labels, scratch: &mut Vec<u8>) {
    for l in labels.iter() {
        scratch.clear();
        if !l.name.is_empty() {
            put_len(scratch, 1, l.name.as_bytes());
        }
        if !l.value.is_empty() {
            put_len(scratch, 2, l.value.as_bytes());
        }
        put_len(b, field, scratch);
    }
}

/// Builds a SAMPLES response: `ReadResponse { results: [QueryResult { timeseries }] }`.
pub struct SamplesResponse {
    out: Vec<u8>,
    query: Vec<u8>,
    series: Vec<u8>,
    scratch: Vec<u8>,
    samples_in_query: u64,
    limit: u64,
}

impl SamplesResponse {
    /// `limit`: most samples per query (0: no limit).
    pub fn new(limit: u64) -> SamplesResponse {
        SamplesResponse {
            out: Vec::new(),
            query: Vec::new(),
            series: Vec::new(),
            scratch: Vec::new(),
            samples_in_query: 0,
            limit,
        }
    }

    /// Adds a series to the current query's result; fails once the query's samples exceed
    /// the limit.
    pub fn add_series(&mut self, labels: &Labels, samples: &[(i64, f64)]) -> Result<(), ReadError> {
        self.samples_in_query += samples.len() as u64;
        if self.limit > 0 && self.samples_in_query > self.limit {
            return Err(ReadError::SampleLimit(self.limit));
        }
        self.series.clear();
        put_labels(&mut self.series, 1, labels, &mut self.scratch);
        for &(t, v) in samples {
            self.scratch.clear();
            if v.to_bits() != 0 {
                put_key(&mut self.scratch, 1, FIXED64);
                self.scratch.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            put_int64(&mut self.scratch, 2, t);
            put_len(&mut self.series, 2, &self.scratch);
        }
        put_len(&mut self.query, 1, &self.series);
        Ok(())
    }

    /// Closes the current query's result (every query gets one, even when empty).
    pub fn end_query(&mut self) {
        put_len(&mut self.out, 1, &self.query);
        self.query.clear();
        self.samples_in_query = 0;
    }

    /// The snappy-compressed response body.
    pub fn finish(self) -> Vec<u8> {
        remote_write::compress(&self.out)
    }
}

/// Encodes one series of query `query_index` as frames of a STREAMED_XOR_CHUNKS response,
/// handing each finished frame to `emit`. Chunks hold at most 120 samples; a frame is cut
/// once its labels and chunks reach `max_bytes_in_frame`, so a long series spans several
/// frames (each repeating its labels), as Prometheus does.
pub fn series_frames(
    query_index: i64,
    labels: &Labels,
    samples: &[(i64, f64)],
    max_bytes_in_frame: usize,
    mut emit: impl FnMut(Vec<u8>),
) {
    let mut scratch = Vec::new();
    let mut label_bytes = Vec::new();
    put_labels(&mut label_bytes, 1, labels, &mut scratch);
    let mut chunks: Vec<u8> = Vec::new();
    let flush = |chunks: &mut Vec<u8>, emit: &mut dyn FnMut(Vec<u8>)| {
        let mut series = Vec::with_capacity(label_bytes.len() + chunks.len());
        series.extend_from_slice(&label_bytes);
        series.extend_from_slice(chunks);
        let mut msg = Vec::with_capacity(series.len() + 16);
        put_len(&mut msg, 1, &series);
        put_int64(&mut msg, 2, query_index);
        emit(frame(&msg));
        chunks.clear();
    };
    for part in samples.chunks(xor::MAX_SAMPLES_PER_CHUNK) {
        let mut enc = xor::XorEncoder::new();
        for &(t, v) in part {
            enc.append(t, v);
        }
        scratch.clear();
        put_int64(&mut scratch, 1, part[0].0);
        put_int64(&mut scratch, 2, part[part.len() - 1].0);
        put_key(&mut scratch, 3, VARINT);
        put_uvarint(&mut scratch, CHUNK_XOR as u64);
        put_len(&mut scratch, 4, &enc.finish());
        put_len(&mut chunks, 2, &scratch);
        if label_bytes.len() + chunks.len() >= max_bytes_in_frame {
            flush(&mut chunks, &mut emit);
        }
    }
    if !chunks.is_empty() {
        flush(&mut chunks, &mut emit);
    }
}

/// One frame: `uvarint(len) · CRC-32C(msg) big-endian · msg`.
pub fn frame(msg: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(msg.len() + 14);
    put_uvarint(&mut f, msg.len() as u64);
    f.extend_from_slice(&crc32c(msg).to_be_bytes());
    f.extend_from_slice(msg);
    f
}

/// Why a streamed response could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame at byte {offset}: truncated")]
    Truncated { offset: usize },
    #[error("frame at byte {offset}: {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        offset: usize,
        len: u64,
        limit: usize,
    },
    #[error("frame at byte {offset}: CRC-32C mismatch")]
    Checksum { offset: usize },
    #[error("frame at byte {offset}: {reason}")]
    Protobuf { offset: usize, reason: String },
}

/// Reads a whole STREAMED_XOR_CHUNKS body back into its messages, checking each frame's
/// length (at most `max_frame` bytes) and checksum — what a remote read client does.
pub fn read_frames(
    mut body: &[u8],
    max_frame: usize,
) -> Result<Vec<proto::ChunkedReadResponse>, FrameError> {
    let mut out = Vec::new();
    let mut offset = 0;
    while !body.is_empty() {
        let mut len = 0u64;
        let mut n = 0;
        loop {
            let b = *body.get(n).ok_or(FrameError::Truncated { offset })?;
            if n == 9 && b > 1 {
                return Err(FrameError::Truncated { offset });
            }
            len |= u64::from(b & 0x7f) << (7 * n);
            n += 1;
            if b < 0x80 {
                break;
            }
        }
        if len > max_frame as u64 {
            return Err(FrameError::TooLarge {
                offset,
                len,
                limit: max_frame,
            });
        }
        let len = len as usize;
        if body.len() < n + 4 + len {
            return Err(FrameError::Truncated { offset });
        }
        let sum = u32::from_be_bytes(body[n..n + 4].try_into().expect("4 bytes"));
        let msg = &body[n + 4..n + 4 + len];
        if crc32c(msg) != sum {
            return Err(FrameError::Checksum { offset });
        }
        out.push(
            <proto::ChunkedReadResponse as prost::Message>::decode(msg).map_err(|e| {
                FrameError::Protobuf {
                    offset,
                    reason: e.to_string(),
                }
            })?,
        );
        body = &body[n + 4 + len..];
        offset += n + 4 + len;
    }
    Ok(out)
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.
pub fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests;
