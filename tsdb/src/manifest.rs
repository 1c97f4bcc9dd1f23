//! The manifest: the one file that says which files make up the persisted state.
//!
//! Every change to the set of live files (a head checkpoint, a block cut from the head, a
//! compaction, a retention deletion, new tombstones) ends by atomically replacing `MANIFEST`
//! (write temporary, fsync, rename, fsync directory). Whatever a crash leaves behind that the
//! manifest does not name — half-written blocks, older checkpoints — is deleted at open.
//!
//! ```text
//! MANIFEST  sealed (magic O11YMANF, v1):
//!   applied_index u64    last log index whose effects the named files contain
//!   next_id u64          next block id to allocate
//!   checkpoint u64       sequence of head/checkpoint-<seq:016x>, 0 = none
//!   tombstones u64       sequence of tombstones-<seq:016x>, 0 = none
//!   #blocks uvarint, then per block: tenant str, id u64
//!   xxh3-64
//! ```

use std::path::Path;

use crate::error::Result;
use crate::format::{self, put_str, put_uvarint, Decoder};

const MAGIC: &[u8; 8] = b"O11YMANF";
const VERSION: u16 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub applied_index: u64,
    pub next_id: u64,
    pub checkpoint: u64,
    pub tombstones: u64,
    pub blocks: Vec<(String, u64)>,
}

impl Manifest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = format::header(MAGIC, VERSION);
        for v in [
            self.applied_index,
            self.next_id,
            self.checkpoint,
            self.tombstones,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        put_uvarint(&mut b, self.blocks.len() as u64);
        for (t, id) in &self.blocks {
            put_str(&mut b, t);
            b.extend_from_slice(&id.to_le_bytes());
        }
        format::seal(&mut b);
        b
    }

    pub(crate) fn decode(path: &Path, data: &[u8]) -> Result<Manifest> {
        let body = format::open_sealed(path, data, MAGIC, VERSION)?;
        let mut d = Decoder::new(path, body, format::HEADER_LEN as u64);
        let mut m = Manifest {
            applied_index: d.u64()?,
            next_id: d.u64()?,
            checkpoint: d.u64()?,
            tombstones: d.u64()?,
            blocks: Vec::new(),
        };
        let n = d.len(d.remaining())?;
        for _ in 0..n {
            let t = d.str()?.to_string();
            m.blocks.push((t, d.u64()?));
        }
        d.expect_end()?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed golden manifest: format version 1, frozen.
    #[test]
    fn golden_manifest_is_byte_exact() {
        let m = Manifest {
            applied_index: 42,
            next_id: 7,
            checkpoint: 3,
            tombstones: 0,
            blocks: vec![("default".into(), 5), ("team-a".into(), 6)],
        };
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden/manifest.bin");
        if std::env::var_os("O11Y_BLESS_GOLDEN").is_some() {
            std::fs::write(&path, m.encode()).unwrap();
        }
        let golden = &std::fs::read(&path).unwrap()[..];
        // magic "O11YMANF" | version 1 (LE u16) | applied 42 | next_id 7 | checkpoint 3 |
        // tombstones 0 (each LE u64) | 2 blocks: "default" id 5, "team-a" id 6 | xxh3-64
        assert_eq!(
            &m.encode()[..],
            golden,
            "manifest format changed: bump VERSION and add a new golden file"
        );
        assert_eq!(Manifest::decode(Path::new("golden"), golden).unwrap(), m);
        assert_eq!(golden.len(), 10 + 32 + 1 + (1 + 7 + 8) + (1 + 6 + 8) + 8);
    }
}
