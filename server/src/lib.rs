//! The o11y server: ingest and query HTTP/gRPC APIs (not built yet).
