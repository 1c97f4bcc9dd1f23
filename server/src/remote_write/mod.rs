//! Prometheus remote_write decoding (being built).
