//! Log storage engine: compressed log chunks with bloom filters and roaring indexes (not built yet).
