//! In-process cluster tests over the simulated network: replication, forwarding, leader
//! crashes, partitions, lossy links and snapshot catch-up. Every wait has a deadline and polls
//! a condition; nothing sleeps to wait.

mod common;
mod faults;
mod replication;
