//! Prometheus HTTP API handlers (being built).
