//! `POST /api/v1/write`: Prometheus remote_write 1.0 and 2.0 into the Raft log.
//!
//! ```text
//!   body ─► negotiate (Content-Type / Content-Encoding / version header; 415 if unknown)
//!        ─► remote_write::decode (snappy, protobuf; bad series set aside, the rest kept)
//!        ─► RaftNode::propose(Command::Metrics, and Command::Metadata for metadata this
//!           node does not hold yet) ─► committed on a quorum and applied
//!        ─► 204, or 400 naming the rejected items (the valid ones are written),
//!           or 503 when the cluster cannot accept writes now (senders retry)
//! ```
//!
//! Every decoded request is counted in [`crate::telemetry`]: samples received, written, and
//! rejected by reason (the decoder's problems, the engine's rejections, a refused or failed
//! proposal).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use o11y_raft::{Command, CommandResult, MetadataEntry};
use o11y_tsdb::DEFAULT_TENANT;

use crate::app::AppState;
use crate::remote_write::{self, ProblemReason, Version};
use crate::telemetry;

/// Largest accepted request body (snappy-compressed), and largest decoded size.
pub const MAX_BODY_BYTES: usize = 32 << 20;
pub const MAX_DECODED_BYTES: usize = 128 << 20;

/// Problems listed in a 400 response body at most.
const MAX_LISTED: usize = 10;

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, msg.into()).into_response()
}

/// The `reason` label of a decoder problem (its float samples are left out).
fn problem_reason(p: &ProblemReason) -> &'static str {
    match p {
        ProblemReason::NoLabels
        | ProblemReason::InvalidUtf8
        | ProblemReason::EmptyLabelName
        | ProblemReason::DuplicateLabelName(_) => "invalid_labels",
        ProblemReason::OddLabelRefs | ProblemReason::SymbolOutOfRange { .. } => "malformed_series",
        ProblemReason::HistogramsUnsupported { .. } => "native_histogram_unsupported",
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The remote_write handler.
pub async fn write(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let version = match remote_write::negotiate(
        header(&headers, "content-type"),
        header(&headers, "content-encoding"),
        header(&headers, "x-prometheus-remote-write-version"),
    ) {
        Ok(v) => v,
        Err(e) if e.is_unsupported_media_type() => {
            return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, e.to_string())
        }
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let decoded = match tokio::task::spawn_blocking(move || {
        remote_write::decode(version, &body, MAX_DECODED_BYTES)
    })
    .await
    {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return text(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("decoder failed: {e}"),
            )
        }
    };
    let tm = state.telemetry.clone();
    let protocol = match version {
        Version::V1 => telemetry::REMOTE_WRITE_V1,
        Version::V2 => telemetry::REMOTE_WRITE_V2,
    };
    let dropped: u64 = decoded.rejections.iter().map(|p| p.samples).sum();
    tm.samples_received(
        protocol,
        decoded.samples + dropped + decoded.histograms_dropped,
    );
    for p in &decoded.rejections {
        tm.samples_rejected(protocol, problem_reason(&p.reason), p.samples);
    }
    tm.samples_rejected(
        protocol,
        "native_histogram_unsupported",
        decoded.histograms_dropped,
    );
    let mut problems: Vec<String> = decoded
        .rejections
        .iter()
        .map(|p| format!("series {}: {}", p.index, p.reason))
        .collect();
    // Engine rejections number series within the batch; report them as the sender numbered
    // them in its request.
    let kept = decoded.kept;
    let request_index = move |i: u32| kept.get(i as usize).copied().unwrap_or(i);
    let mut batch = decoded.batch;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    batch.received_ms = Some(now_ms);
    // Metadata (1.0: its own field, sent every minute by Prometheus; 2.0: on each series) is
    // proposed only when it would change what the cluster holds, so steady traffic does not
    // repeat it in the log. Malformed entries are dropped: metadata is descriptive only.
    let metadata: Vec<MetadataEntry> = decoded
        .metadata
        .into_iter()
        .filter_map(|m| {
            MetadataEntry {
                metric: m.metric_family,
                kind: m.metric_type.as_str().to_string(),
                help: m.help,
                unit: m.unit,
            }
            .validated()
            .ok()
        })
        .collect();
    let metadata = state.metadata.changes(DEFAULT_TENANT, metadata);
    // Samples per series of the batch, to count a rejected series' samples.
    let series_samples: Vec<u64> = batch
        .series
        .iter()
        .map(|s| s.samples.len() as u64)
        .collect();
    let mut commands = Vec::with_capacity(2);
    let has_samples = !batch.series.is_empty();
    if has_samples {
        commands.push(Command::Metrics {
            tenant: DEFAULT_TENANT.to_string(),
            batch,
        });
    }
    if !metadata.is_empty() {
        commands.push(Command::Metadata {
            tenant: DEFAULT_TENANT.to_string(),
            entries: metadata,
        });
    }
    let mut written = 0u64;
    if !commands.is_empty() {
        let results = state.write(commands).await;
        tm.record_write(protocol, &results, &series_samples);
        match results {
            Ok(results) => {
                // The samples' result comes first; the metadata's (if any) has nothing to
                // report to the sender.
                for r in results.into_iter().take(usize::from(has_samples)) {
                    match r {
                        CommandResult::Written {
                            samples_accepted,
                            rejections,
                            ..
                        } => {
                            written += samples_accepted;
                            problems.extend(rejections.into_iter().map(|r| match r.sample {
                                Some(s) => format!(
                                    "series {} sample {}: {}",
                                    request_index(r.series),
                                    s,
                                    r.reason
                                ),
                                None => {
                                    format!("series {}: {}", request_index(r.series), r.reason)
                                }
                            }));
                        }
                        CommandResult::Refused { reason } => problems.push(reason),
                        CommandResult::Deleted { .. } => {}
                    }
                }
            }
            Err(e) if e.retriable => return text(StatusCode::SERVICE_UNAVAILABLE, e.message),
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.message),
        }
    }
    let mut resp = if problems.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        let more = problems.len().saturating_sub(MAX_LISTED);
        let mut msg = problems[..problems.len().min(MAX_LISTED)].join("; ");
        if more > 0 {
            msg.push_str(&format!("; and {more} more"));
        }
        text(
            StatusCode::BAD_REQUEST,
            format!("{written} samples written; rejected: {msg}"),
        )
    };
    if version == Version::V2 {
        let h = resp.headers_mut();
        h.insert(
            "x-prometheus-remote-write-samples-written",
            HeaderValue::from(written),
        );
        h.insert(
            "x-prometheus-remote-write-histograms-written",
            HeaderValue::from(0u64),
        );
        h.insert(
            "x-prometheus-remote-write-exemplars-written",
            HeaderValue::from(0u64),
        );
    }
    resp
}
