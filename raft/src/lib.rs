//! Raft replication: the replicated write log applied to the engines (not built yet).
