//! `POST /api/v1/read`: Prometheus remote read over this node's copy of the data.
//!
//! ```text
//!  body (≤ 32 MiB) ─► remote_read::parse_request (spawn_blocking) ── error ─► 400 text
//!   ├─ SAMPLES: per query Db::select(DEFAULT_TENANT, matchers, start, end) ─► SamplesResponse
//!   │           (sample limit per query ─► 400 "exceeded sample limit (N)") ─► 200,
//!   │           Content-Type application/x-protobuf, Content-Encoding snappy
//!   └─ STREAMED_XOR_CHUNKS: a blocking task selects query by query and sends frames through
//!               a small channel into the response body as they are made (memory stays
//!               bounded by a few frames); 200, Content-Type application/x-streamed-protobuf;
//!               proto=prometheus.ChunkedReadResponse. A storage error mid-stream aborts the
//!               body, which the client sees as a broken stream.
//! ```
//!
//! Series come sorted by labels (`Db::select`), samples sorted by time within `[start, end]`.
//! Read hints are ignored (they are advisory). There are no external labels to add or strip.

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use o11y_tsdb::DEFAULT_TENANT;

use crate::app::AppState;
use crate::remote_read::{
    self, parse_request, series_frames, ReadError, ResponseType, SamplesResponse,
};

/// Largest accepted (compressed) request body, and its largest decoded size.
pub const MAX_BODY_BYTES: usize = 32 << 20;
pub const MAX_DECODED_BYTES: usize = 128 << 20;

/// Limits of the read endpoint (Prometheus's `--storage.remote.read-*` flags).
#[derive(Clone, Copy, Debug)]
pub struct ReadOptions {
    /// Most samples per query in a SAMPLES response (0: unlimited).
    pub sample_limit: u64,
    /// Frame size at which a streamed response cuts a frame.
    pub max_bytes_in_frame: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            sample_limit: remote_read::DEFAULT_SAMPLE_LIMIT,
            max_bytes_in_frame: remote_read::DEFAULT_MAX_BYTES_IN_FRAME,
        }
    }
}

#[derive(Clone)]
struct ReadState {
    app: AppState,
    opts: ReadOptions,
}

/// The remote read route with `opts`.
pub fn router(app: AppState, opts: ReadOptions) -> Router {
    Router::new()
        .route(
            "/api/v1/read",
            post(read).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(ReadState { app, opts })
}

fn text(status: StatusCode, msg: String) -> Response {
    (status, msg).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn read(State(st): State<ReadState>, body: Bytes) -> Response {
    let req =
        match tokio::task::spawn_blocking(move || parse_request(&body, MAX_DECODED_BYTES)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return text(StatusCode::BAD_REQUEST, e.to_string()),
            Err(e) => return internal(format!("request decoder failed: {e}")),
        };
    let db = (st.app.db)();
    match req.response_type {
        ResponseType::Samples => {
            let limit = st.opts.sample_limit;
            let built = tokio::task::spawn_blocking(move || {
                let mut resp = SamplesResponse::new(limit);
                for q in &req.queries {
                    let series = db
                        .select(DEFAULT_TENANT, &q.matchers, q.start_ms, q.end_ms)
                        .map_err(|e| Err(e.to_string()))?;
                    for s in &series {
                        let samples = s.samples().map_err(|e| Err(e.to_string()))?;
                        resp.add_series(s.labels(), &samples).map_err(Ok)?;
                    }
                    resp.end_query();
                }
                Ok::<_, Result<ReadError, String>>(resp.finish())
            })
            .await;
            match built {
                Ok(Ok(body)) => {
                    let mut r = Response::new(Body::from(body));
                    let h = r.headers_mut();
                    h.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(remote_read::CONTENT_TYPE_SAMPLES),
                    );
                    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
                    r
                }
                Ok(Err(Ok(e))) => text(StatusCode::BAD_REQUEST, e.to_string()),
                Ok(Err(Err(e))) => internal(e),
                Err(e) => internal(format!("read task failed: {e}")),
            }
        }
        ResponseType::StreamedXorChunks => {
            let max_frame = st.opts.max_bytes_in_frame;
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
            tokio::task::spawn_blocking(move || {
                for (qi, q) in req.queries.iter().enumerate() {
                    let series = match db.select(DEFAULT_TENANT, &q.matchers, q.start_ms, q.end_ms)
                    {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
                            return;
                        }
                    };
                    for s in &series {
                        let samples = match s.samples() {
                            Ok(x) => x,
                            Err(e) => {
                                let _ = tx.blocking_send(Err(std::io::Error::other(e)));
                                return;
                            }
                        };
                        let mut closed = false;
                        series_frames(qi as i64, s.labels(), &samples, max_frame, |f| {
                            closed |= tx.blocking_send(Ok(Bytes::from(f))).is_err();
                        });
                        if closed {
                            // The client went away.
                            return;
                        }
                    }
                }
            });
            let mut r = Response::new(Body::from_stream(
                tokio_stream::wrappers::ReceiverStream::new(rx),
            ));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(remote_read::CONTENT_TYPE_STREAMED),
            );
            r
        }
    }
}
