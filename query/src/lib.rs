//! Query engines. [`promql`] is PromQL over the metrics engine (`o11y-tsdb`); LogQL and
//! TraceQL join it here.

pub mod promql;
