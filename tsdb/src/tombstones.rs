//! Tombstones: deleted time intervals of series stored in blocks.
//!
//! A delete request resolves its matchers against each overlapping block and records, per block
//! and series id, the deleted intervals (inclusive). Reads filter them out; compaction drops the
//! deleted samples for good, and `clean_tombstones` rewrites the affected blocks. (Series still in
//! the head carry their deleted intervals themselves.)
//!
//! ```text
//! tombstones-<seq:016x>  sealed (magic O11YTOMB, v1):
//!   #blocks uvarint, per block: id u64, #series uvarint,
//!     per series: id uvarint, #intervals uvarint, per interval: mint varint, maxt varint
//!   xxh3-64
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::Result;
use crate::format::{self, put_uvarint, put_varint, Decoder};

const MAGIC: &[u8; 8] = b"O11YTOMB";
const VERSION: u16 = 1;

/// Block id → series id → deleted intervals.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Tombstones(pub HashMap<u64, HashMap<u32, Vec<(i64, i64)>>>);

impl Tombstones {
    pub(crate) fn add(&mut self, block: u64, series: u32, mint: i64, maxt: i64) {
        let v = self.0.entry(block).or_default().entry(series).or_default();
        v.push((mint, maxt));
        v.sort_unstable();
        v.dedup();
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = format::header(MAGIC, VERSION);
        let sorted: BTreeMap<_, BTreeMap<_, _>> = self
            .0
            .iter()
            .map(|(k, v)| (*k, v.iter().collect()))
            .collect();
        put_uvarint(&mut b, sorted.len() as u64);
        for (block, series) in sorted {
            b.extend_from_slice(&block.to_le_bytes());
            put_uvarint(&mut b, series.len() as u64);
            for (id, ivs) in series {
                put_uvarint(&mut b, u64::from(*id));
                put_uvarint(&mut b, ivs.len() as u64);
                for &(a, z) in ivs {
                    put_varint(&mut b, a);
                    put_varint(&mut b, z);
                }
            }
        }
        format::seal(&mut b);
        b
    }

    pub(crate) fn decode(path: &Path, data: &[u8]) -> Result<Tombstones> {
        let body = format::open_sealed(path, data, MAGIC, VERSION)?;
        let mut d = Decoder::new(path, body, format::HEADER_LEN as u64);
        let mut t = Tombstones::default();
        for _ in 0..d.len(d.remaining())? {
            let block = d.u64()?;
            let mut m = HashMap::new();
            for _ in 0..d.len(d.remaining())? {
                let id = u32::try_from(d.uvarint()?).map_err(|_| d.err("series id too large"))?;
                let n = d.len(d.remaining())?;
                let ivs = (0..n)
                    .map(|_| Ok((d.varint()?, d.varint()?)))
                    .collect::<Result<Vec<_>>>()?;
                m.insert(id, ivs);
            }
            t.0.insert(block, m);
        }
        d.expect_end()?;
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let mut t = Tombstones::default();
        t.add(3, 1, -5, 10);
        t.add(3, 1, 20, 30);
        t.add(9, 0, i64::MIN, i64::MAX);
        let b = t.encode();
        assert_eq!(Tombstones::decode(Path::new("t"), &b).unwrap(), t);
        let mut bad = b.clone();
        bad[12] ^= 1;
        assert!(Tombstones::decode(Path::new("t"), &bad).is_err());
    }

    /// Tombstones format version 1, frozen.
    #[test]
    fn golden_tombstones_are_byte_exact() {
        let mut t = Tombstones::default();
        t.add(7, 2, 1_000, 2_000); // block 7, series 2, [1000, 2000]
        t.add(7, 2, 5_000, 6_000);
        t.add(9, 0, -10, 10);
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden/tombstones.bin");
        if std::env::var_os("O11Y_BLESS_GOLDEN").is_some() {
            std::fs::write(&path, t.encode()).unwrap();
        }
        // magic "O11YTOMB" | version 1 | 2 blocks | block 7: 1 series (id 2, 2 intervals, zigzag
        // varints) | block 9: 1 series (id 0, 1 interval) | xxh3-64
        let golden = std::fs::read(&path).unwrap();
        assert_eq!(
            t.encode(),
            golden,
            "tombstones format changed: bump VERSION and re-bless"
        );
        assert_eq!(Tombstones::decode(&path, &golden).unwrap(), t);
    }
}
