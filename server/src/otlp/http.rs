//! OTLP/HTTP: `POST /v1/metrics`, served on its own listener (`--otlp-http-listen`) and on the
//! main HTTP port.
//!
//! ```text
//!  headers ─► Format (Content-Type: application/x-protobuf | application/json; else 415)
//!          ─► Encoding (Content-Encoding: gzip | identity | none; else 415)
//!  body ───► decode_body: gunzip (bounded: MAX_BODY_BYTES after decompression, 413 beyond)
//!            ─► prost decode | json::decode_request                       (400 + reason)
//!        ─► super::ingest ─► 200 + ExportMetricsServiceResponse (partial success if any)
//!                           503 (+ Retry-After) when retriable, 500 otherwise
//! ```
//!
//! Responses are encoded like the request: protobuf answers get
//! `Content-Type: application/x-protobuf`, JSON answers `application/json`; errors carry a
//! `google.rpc.Status` in the same encoding, as the OTLP/HTTP specification asks.

use std::io::Read;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;

use super::{json, IngestError, MAX_BODY_BYTES};
use crate::app::AppState;

/// The path OTLP exporters post metrics to.
pub const PATH: &str = "/v1/metrics";

/// How the body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// How the body is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("request body exceeds {limit} bytes after decompression")]
    TooLarge { limit: usize },
    #[error("invalid gzip body: {0}")]
    Gzip(String),
    #[error("invalid protobuf ExportMetricsServiceRequest: {0}")]
    Protobuf(String),
    #[error(transparent)]
    Json(#[from] json::JsonError),
}

/// Chooses the format from `Content-Type` (parameters such as `charset` are ignored).
pub fn format(content_type: Option<&str>) -> Result<Format, String> {
    let Some(ct) = content_type else {
        return Err("missing Content-Type: use application/x-protobuf or application/json".into());
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        "application/json" => Ok(Format::Json),
        _ => Err(format!(
            "unsupported Content-Type {:?}: use application/x-protobuf or application/json",
            ct.chars().take(64).collect::<String>()
        )),
    }
}

/// Chooses the decompression from `Content-Encoding`.
pub fn encoding(content_encoding: Option<&str>) -> Result<Encoding, String> {
    match content_encoding.map(|s| s.trim().to_ascii_lowercase()) {
        None => Ok(Encoding::Identity),
        Some(e) if e.is_empty() || e == "identity" => Ok(Encoding::Identity),
        Some(e) if e == "gzip" || e == "x-gzip" => Ok(Encoding::Gzip),
        Some(e) => Err(format!(
            "unsupported Content-Encoding {:?}: use gzip or none",
            e.chars().take(64).collect::<String>()
        )),
    }
}

/// Decompresses (at most `max` bytes out) and decodes a request body.
pub fn decode_body(
    format: Format,
    encoding: Encoding,
    body: &[u8],
    max: usize,
) -> Result<ExportMetricsServiceRequest, DecodeError> {
    let inflated;
    let raw: &[u8] = match encoding {
        Encoding::Identity => {
            if body.len() > max {
                return Err(DecodeError::TooLarge { limit: max });
            }
            body
        }
        Encoding::Gzip => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(body)
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| DecodeError::Gzip(e.to_string()))?;
            if out.len() > max {
                return Err(DecodeError::TooLarge { limit: max });
            }
            inflated = out;
            &inflated
        }
    };
    match format {
        Format::Protobuf => ExportMetricsServiceRequest::decode(raw)
            .map_err(|e| DecodeError::Protobuf(e.to_string())),
        Format::Json => Ok(json::decode_request(raw)?),
    }
}

/// `google.rpc.Status`, the body of OTLP/HTTP error responses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// gRPC code numbers used in [`RpcStatus`].
const CODE_INVALID_ARGUMENT: i32 = 3;
const CODE_INTERNAL: i32 = 13;
const CODE_UNAVAILABLE: i32 = 14;

fn status(http: StatusCode, format: Format, code: i32, message: String) -> Response {
    let body = match format {
        Format::Protobuf => RpcStatus { code, message }.encode_to_vec(),
        Format::Json => json::encode_status(code, &message),
    };
    let mut resp = (http, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    resp
}

fn header(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The `POST /v1/metrics` handler.
pub async fn export(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let fmt = match format(header(&headers, header::CONTENT_TYPE)) {
        Ok(f) => f,
        Err(m) => return (StatusCode::UNSUPPORTED_MEDIA_TYPE, m).into_response(),
    };
    let enc = match encoding(header(&headers, header::CONTENT_ENCODING)) {
        Ok(e) => e,
        Err(m) => return (StatusCode::UNSUPPORTED_MEDIA_TYPE, m).into_response(),
    };
    let decoded =
        tokio::task::spawn_blocking(move || decode_body(fmt, enc, &body, MAX_BODY_BYTES)).await;
    let req = match decoded {
        Ok(Ok(r)) => r,
        Ok(Err(e @ DecodeError::TooLarge { .. })) => {
            return status(
                StatusCode::PAYLOAD_TOO_LARGE,
                fmt,
                CODE_INVALID_ARGUMENT,
                e.to_string(),
            )
        }
        Ok(Err(e)) => {
            return status(
                StatusCode::BAD_REQUEST,
                fmt,
                CODE_INVALID_ARGUMENT,
                e.to_string(),
            )
        }
        Err(e) => {
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                fmt,
                CODE_INTERNAL,
                format!("decoder failed: {e}"),
            )
        }
    };
    match super::ingest(&state, req).await {
        Ok(outcome) => {
            let resp = outcome.response();
            let body = match fmt {
                Format::Protobuf => resp.encode_to_vec(),
                Format::Json => json::encode_response(&resp),
            };
            let mut r = (StatusCode::OK, body).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(fmt.content_type()),
            );
            r
        }
        Err(IngestError::Unavailable(m)) => {
            let mut r = status(StatusCode::SERVICE_UNAVAILABLE, fmt, CODE_UNAVAILABLE, m);
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Err(IngestError::Internal(m)) => {
            status(StatusCode::INTERNAL_SERVER_ERROR, fmt, CODE_INTERNAL, m)
        }
    }
}

/// A router with `POST /v1/metrics` only (merged into [`crate::app::router`] and served alone
/// on the OTLP HTTP listener).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            PATH,
            post(export).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(state)
}

#[cfg(test)]
mod tests;
