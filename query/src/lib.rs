//! Query engines: PromQL, LogQL and TraceQL (not built yet).
