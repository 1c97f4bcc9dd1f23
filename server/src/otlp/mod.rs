//! OTLP metrics ingest: OpenTelemetry's protocol in, Prometheus series out, through the same
//! Raft write path as remote_write.
//!
//! ```text
//!  gRPC  MetricsService/Export (grpc.rs, own listener, default :4317) ─┐
//!  HTTP  POST /v1/metrics (http.rs, own listener :4318 + main port) ───┤ decode: protobuf
//!        Content-Type protobuf | JSON (json.rs), Content-Encoding gzip │ (prost) or JSON
//!                                                                      ▼
//!        ExportMetricsServiceRequest ─► translate.rs (names.rs) ─► WriteBatch + point origins
//!        ─► AppState::write(Command::Metrics{DEFAULT_TENANT, batch}) ─► Raft ─► engines
//!        ─► Outcome: points rejected by the translation or by the engine (counted once
//!           per OTLP data point) ─► partial_success{rejected_data_points, error_message}
//! ```
//!
//! Status mapping, shared by both transports: everything decodable is answered with success
//! (partial success listing what was rejected); an undecodable body is HTTP 400 /
//! `INVALID_ARGUMENT`; a write that may succeed later (no leader, no quorum) is HTTP 503 /
//! `UNAVAILABLE` so that exporters retry; any other failure of the write is HTTP 500 /
//! `INTERNAL`. Bodies are limited to [`MAX_BODY_BYTES`] before and after decompression.

pub mod grpc;
pub mod http;
pub mod json;
pub mod names;
pub mod translate;

use std::time::{SystemTime, UNIX_EPOCH};

use o11y_raft::{Command, CommandResult};
use o11y_tsdb::DEFAULT_TENANT;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};

use crate::app::AppState;
pub use translate::{translate, Options, Translation};

/// Largest request body, compressed or not, and largest body after decompression.
pub const MAX_BODY_BYTES: usize = 32 << 20;

/// Problems listed in a partial-success message at most.
const MAX_LISTED: usize = 10;

/// What became of a request whose body could be decoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Data points in the request.
    pub points: u64,
    /// Data points rejected (by the translation or by the engine).
    pub rejected_points: u64,
    /// Samples written.
    pub samples_written: u64,
    /// Exemplars dropped.
    pub exemplars_dropped: u64,
    /// Rejections and warnings, at most [`MAX_LISTED`], `; `-separated; empty if none.
    pub message: String,
}

impl Outcome {
    /// The OTLP response: `partial_success` set when a point was rejected or there is a
    /// warning.
    pub fn response(&self) -> ExportMetricsServiceResponse {
        ExportMetricsServiceResponse {
            partial_success: (self.rejected_points > 0 || !self.message.is_empty()).then(|| {
                ExportMetricsPartialSuccess {
                    rejected_data_points: i64::try_from(self.rejected_points).unwrap_or(i64::MAX),
                    error_message: self.message.clone(),
                }
            }),
        }
    }
}

/// Why nothing could be written.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// The cluster cannot accept writes now; the client should retry.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Renders a series for messages: `name{a="b", …}`, bounded.
fn series_ref(labels: &[o11y_tsdb::labels::Label]) -> String {
    let name = labels
        .iter()
        .find(|l| l.name == "__name__")
        .map(|l| l.value.as_str())
        .unwrap_or("");
    let mut s = String::from(name);
    s.push('{');
    let mut first = true;
    for l in labels.iter().filter(|l| l.name != "__name__") {
        if !first {
            s.push_str(", ");
        }
        first = false;
        s.push_str(&format!("{}={:?}", l.name, l.value));
        if s.len() > 160 {
            s.push('…');
            break;
        }
    }
    s.push('}');
    s
}

/// Translates `req` and writes it. Per-point problems end up in the [`Outcome`]; an error
/// means nothing was written.
pub async fn ingest(
    state: &AppState,
    req: ExportMetricsServiceRequest,
) -> Result<Outcome, IngestError> {
    let opts = Options {
        lookback_delta_ms: state.engine.opts.lookback_delta_ms,
    };
    let tr = tokio::task::spawn_blocking(move || translate(&req, &opts))
        .await
        .map_err(|e| IngestError::Internal(format!("translation failed: {e}")))?;
    write(state, tr).await
}

/// Writes a translation and accounts for what the engine rejected.
pub async fn write(state: &AppState, tr: Translation) -> Result<Outcome, IngestError> {
    let Translation {
        mut batch,
        origins,
        rejections,
        warnings,
        points,
        exemplars_dropped,
    } = tr;
    let mut problems: Vec<String> = rejections.iter().map(|r| r.reason.clone()).collect();
    let mut rejected: std::collections::BTreeSet<u32> = Default::default();
    let translation_rejected = rejections.len() as u64;
    let mut written = 0u64;
    if !batch.series.is_empty() {
        batch.received_ms = Some(now_ms());
        // Kept for messages: the engine names series by their index in the batch.
        let names: Vec<String> = batch.series.iter().map(|s| series_ref(&s.labels)).collect();
        let results = state
            .write(vec![Command::Metrics {
                tenant: DEFAULT_TENANT.to_string(),
                batch,
            }])
            .await
            .map_err(|e| {
                if e.retriable {
                    IngestError::Unavailable(e.message)
                } else {
                    IngestError::Internal(e.message)
                }
            })?;
        for r in results {
            match r {
                CommandResult::Written {
                    samples_accepted,
                    rejections,
                    ..
                } => {
                    written += samples_accepted;
                    for r in rejections {
                        let Some(series_origins) = origins.get(r.series as usize) else {
                            continue;
                        };
                        let name = names.get(r.series as usize).map_or("", |s| s.as_str());
                        match r.sample {
                            Some(s) => {
                                if let Some(Some(p)) = series_origins.get(s as usize) {
                                    rejected.insert(*p);
                                }
                                problems.push(format!("series {name} sample {s}: {}", r.reason));
                            }
                            None => {
                                rejected.extend(series_origins.iter().flatten().copied());
                                problems.push(format!("series {name}: {}", r.reason));
                            }
                        }
                    }
                }
                CommandResult::Refused { reason } => {
                    rejected.extend(origins.iter().flatten().flatten().copied());
                    problems.push(reason);
                }
                CommandResult::Deleted { .. } => {}
            }
        }
    }
    problems.extend(warnings);
    let more = problems.len().saturating_sub(MAX_LISTED);
    let mut message = problems[..problems.len().min(MAX_LISTED)].join("; ");
    if more > 0 {
        message.push_str(&format!("; and {more} more"));
    }
    tracing::debug!(
        points,
        rejected = translation_rejected + rejected.len() as u64,
        samples = written,
        exemplars_dropped,
        "OTLP metrics written"
    );
    Ok(Outcome {
        points,
        rejected_points: translation_rejected + rejected.len() as u64,
        samples_written: written,
        exemplars_dropped,
        message,
    })
}

#[cfg(test)]
mod tests;
