//! Feeds arbitrary bytes to the block index reader: it must verify or reject them without
//! panicking, and decoding every series of an accepted index must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    o11y_tsdb::block::fuzz_index(data);
});
