//! Shared data generators for the O11y benchmarks.
//!
//! [`node::NodeExporterGen`] produces metrics shaped like a fleet of hosts scraped by
//! Prometheus every 15 s: about a thousand series per host from node_exporter's collectors, with
//! a fixed seed so every run sees the same data.

pub mod node;
pub mod rss;
pub mod scan;
