//! OTLP/gRPC: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`, served by
//! tonic on its own listener (`--otlp-grpc-listen`, default `0.0.0.0:4317`).
//!
//! ```text
//!  Export(ExportMetricsServiceRequest) ─ tonic decodes: gzip accepted; MAX_BODY_BYTES per
//!  message, OUT_OF_RANGE beyond it (RESOURCE_EXHAUSTED when reached while decompressing);
//!  malformed protobuf is INTERNAL, tonic's mapping of parse errors (gRPC status-code guide)
//!    ─► super::ingest ─► OK + partial_success when points were rejected
//!                        UNAVAILABLE when the write is retriable (exporters retry)
//!                        INTERNAL otherwise
//! ```

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::{IngestError, MAX_BODY_BYTES};
use crate::app::AppState;

/// The gRPC metrics service over the server's write path.
#[derive(Clone)]
pub struct OtlpMetrics {
    state: AppState,
}

#[tonic::async_trait]
impl MetricsService for OtlpMetrics {
    async fn export(
        &self,
        req: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        match super::ingest(&self.state, req.into_inner()).await {
            Ok(outcome) => Ok(Response::new(outcome.response())),
            Err(IngestError::Unavailable(m)) => Err(Status::unavailable(m)),
            Err(IngestError::Internal(m)) => Err(Status::internal(m)),
        }
    }
}

/// The tonic service, with the body limit and gzip accepted.
pub fn service(state: AppState) -> MetricsServiceServer<OtlpMetrics> {
    MetricsServiceServer::new(OtlpMetrics { state })
        .max_decoding_message_size(MAX_BODY_BYTES)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
}

/// Serves OTLP/gRPC on `listener` until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(service(state))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await
}
