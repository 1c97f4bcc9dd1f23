//! Trace storage engine: span blocks with a trace-id index and attribute indexes (not built yet).
