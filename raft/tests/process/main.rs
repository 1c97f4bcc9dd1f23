//! Multi-process tests: three `o11y-raft-node` processes on 127.0.0.x ports (or in network
//! namespaces), killed with SIGKILL, stopped with SIGSTOP, partitioned, and crashed at named
//! points inside snapshot install, log truncation and log compaction. After every scenario a
//! checker proves that every acknowledged write is readable from every node and that the
//! nodes' engine states are identical.

mod crash_points;
mod harness;
mod kill_leader;
mod partition;
