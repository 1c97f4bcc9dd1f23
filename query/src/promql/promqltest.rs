//! Runner for Prometheus's `promqltest` script format (CONTRACT STUB: being implemented).
