//! (partition test below)
