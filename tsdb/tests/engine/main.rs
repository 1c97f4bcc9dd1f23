//! Integration tests of the metrics engine, one binary for the whole area.

mod common;
mod compaction;
mod concurrency;
mod corruption;
mod crash_recovery;
mod matchers;
mod snapshot;
mod writes;
