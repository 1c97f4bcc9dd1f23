//! Unit tests of the function families with numbers from Prometheus's test scripts.

use super::*;
