//! Metric metadata (type, help and unit per metric family, per tenant), replicated through the
//! log so that every node answers `/api/v1/metadata` the same way.
//!
//! ```text
//! remote_write (1.0 MetricMetadata, 2.0 per-series Metadata)
//!   ─► server keeps entries that differ from this store ─► Command::Metadata ─► Raft log
//!   ─► StateMachine::apply ─► MetadataStore::apply (last write wins per family name)
//!   ─► persisted as <engine dir>/METADATA with each checkpoint (beside APPLIED) and carried
//!      in snapshots as the file `METADATA`
//! ```
//!
//! Applying is idempotent in the sense that matters for crash recovery: the file is written
//! just before `APPLIED`, so after a crash the log is replayed from an index at or before the
//! file's state, and replaying last-wins writes in log order ends in the same map.
//!
//! File payload (inside a sealed file, magic `O11YMETA`, see [`crate::sealed`]):
//!
//! ```text
//! format u8 = 1 · n tenants uvarint · (tenant str · n entries uvarint ·
//!                                      (metric str · type str · help str · unit str)...)...
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use parking_lot::RwLock;

use crate::codec::{put_str, put_u8, put_uvarint, DecodeError, Reader};
use crate::sealed::{self, SealedError};

/// Magic of the sealed `METADATA` file.
pub const METADATA_MAGIC: &[u8; 8] = b"O11YMETA";
const FORMAT: u8 = 1;

/// Longest help text kept (longer ones are cut at a character boundary).
pub const MAX_HELP_BYTES: usize = 16 << 10;
/// Longest metric family name, type or unit accepted.
pub const MAX_NAME_BYTES: usize = 1 << 10;

/// The metadata of one metric family.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataEntry {
    /// The metric family name (`node_cpu_seconds_total`).
    pub metric: String,
    /// Prometheus's type name: `counter`, `gauge`, `histogram`, `gaugehistogram`,
    /// `summary`, `info`, `stateset` or `unknown`.
    pub kind: String,
    pub help: String,
    pub unit: String,
}

impl MetadataEntry {
    /// Checks an entry before it is proposed: a family name, bounded sizes. Help text that is
    /// too long is cut rather than refused (it is descriptive only).
    pub fn validated(mut self) -> Result<MetadataEntry, String> {
        if self.metric.is_empty() {
            return Err("metadata without a metric family name".into());
        }
        for (what, s) in [
            ("metric family name", &self.metric),
            ("type", &self.kind),
            ("unit", &self.unit),
        ] {
            if s.len() > MAX_NAME_BYTES {
                return Err(format!(
                    "metadata {what} longer than {MAX_NAME_BYTES} bytes"
                ));
            }
        }
        if self.help.len() > MAX_HELP_BYTES {
            let mut cut = MAX_HELP_BYTES;
            while !self.help.is_char_boundary(cut) {
                cut -= 1;
            }
            self.help.truncate(cut);
        }
        Ok(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta {
    kind: String,
    help: String,
    unit: String,
}

#[derive(Default)]
struct Inner {
    tenants: BTreeMap<String, BTreeMap<String, Meta>>,
    /// Bumped on every change; lets checkpoints skip rewriting an unchanged file.
    generation: u64,
    saved_generation: Option<u64>,
}

/// Per-tenant metric metadata, last write wins per family name. Shared (`Arc`) between the
/// state machine, which writes it, and the API, which reads it; a snapshot install replaces
/// its contents in place.
#[derive(Default)]
pub struct MetadataStore {
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for MetadataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.inner.read();
        write!(f, "MetadataStore({} tenants)", i.tenants.len())
    }
}

impl MetadataStore {
    pub fn new() -> MetadataStore {
        MetadataStore::default()
    }

    /// Records `entries` for `tenant` (later entries of the same family win); returns how many
    /// changed something.
    pub fn apply(&self, tenant: &str, entries: &[MetadataEntry]) -> u64 {
        let mut i = self.inner.write();
        let map = i.tenants.entry(tenant.to_string()).or_default();
        let mut changed = 0;
        for e in entries {
            let m = Meta {
                kind: e.kind.clone(),
                help: e.help.clone(),
                unit: e.unit.clone(),
            };
            if map.get(&e.metric) != Some(&m) {
                map.insert(e.metric.clone(), m);
                changed += 1;
            }
        }
        if changed > 0 {
            i.generation += 1;
        }
        changed
    }

    /// The entries of `entries` that would change the store (what is worth proposing), the
    /// last one per family name.
    pub fn changes(&self, tenant: &str, entries: Vec<MetadataEntry>) -> Vec<MetadataEntry> {
        let mut last: BTreeMap<String, MetadataEntry> = BTreeMap::new();
        for e in entries {
            last.insert(e.metric.clone(), e);
        }
        let i = self.inner.read();
        let map = i.tenants.get(tenant);
        last.into_values()
            .filter(|e| {
                map.and_then(|m| m.get(&e.metric))
                    .is_none_or(|m| m.kind != e.kind || m.help != e.help || m.unit != e.unit)
            })
            .collect()
    }

    /// Every entry of `tenant`, sorted by family name.
    pub fn list(&self, tenant: &str) -> Vec<MetadataEntry> {
        let i = self.inner.read();
        i.tenants
            .get(tenant)
            .map(|m| {
                m.iter()
                    .map(|(name, m)| MetadataEntry {
                        metric: name.clone(),
                        kind: m.kind.clone(),
                        help: m.help.clone(),
                        unit: m.unit.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The entry of one family, if known.
    pub fn get(&self, tenant: &str, metric: &str) -> Option<MetadataEntry> {
        let i = self.inner.read();
        let m = i.tenants.get(tenant)?.get(metric)?;
        Some(MetadataEntry {
            metric: metric.to_string(),
            kind: m.kind.clone(),
            help: m.help.clone(),
            unit: m.unit.clone(),
        })
    }

    /// The whole store, encoded (the file payload).
    pub fn encode(&self) -> Vec<u8> {
        encode_inner(&self.inner.read())
    }

    /// Replaces the contents with a decoded payload.
    pub fn replace_with(&self, payload: Option<&[u8]>) -> Result<(), DecodeError> {
        let tenants = match payload {
            Some(p) => decode(p)?,
            None => BTreeMap::new(),
        };
        let mut i = self.inner.write();
        i.tenants = tenants;
        i.generation += 1;
        i.saved_generation = None;
        Ok(())
    }

    /// Writes the store to `path` (sealed) unless nothing changed since the last save to the
    /// same place. `force` writes anyway (a new directory: snapshot, installed engine).
    pub fn save(&self, path: &Path, force: bool) -> Result<(), SealedError> {
        let (payload, generation) = {
            let i = self.inner.read();
            if !force && i.saved_generation == Some(i.generation) {
                return Ok(());
            }
            (encode_inner(&i), i.generation)
        };
        sealed::write(path, METADATA_MAGIC, &payload)?;
        if !force {
            self.inner.write().saved_generation = Some(generation);
        }
        Ok(())
    }

    /// Loads the store from `path` (empty when the file does not exist: data written before
    /// metadata was kept).
    pub fn load(&self, path: &Path) -> Result<(), SealedError> {
        let payload = sealed::read(path, METADATA_MAGIC)?;
        self.replace_with(payload.as_deref())
            .map_err(|e| SealedError::Corrupt {
                path: path.to_path_buf(),
                offset: 0,
                reason: e.to_string(),
            })?;
        let mut i = self.inner.write();
        i.saved_generation = Some(i.generation);
        Ok(())
    }
}

fn encode_inner(i: &Inner) -> Vec<u8> {
    let mut b = Vec::new();
    put_u8(&mut b, FORMAT);
    put_uvarint(&mut b, i.tenants.len() as u64);
    for (tenant, map) in &i.tenants {
        put_str(&mut b, tenant);
        put_uvarint(&mut b, map.len() as u64);
        for (name, m) in map {
            put_str(&mut b, name);
            put_str(&mut b, &m.kind);
            put_str(&mut b, &m.help);
            put_str(&mut b, &m.unit);
        }
    }
    b
}

fn decode(data: &[u8]) -> Result<BTreeMap<String, BTreeMap<String, Meta>>, DecodeError> {
    let mut r = Reader::new("metadata", data);
    match r.u8()? {
        FORMAT => {}
        v => return Err(r.err(format!("unsupported metadata format {v}"))),
    }
    let nt = r.count(2)?;
    let mut tenants = BTreeMap::new();
    for _ in 0..nt {
        let tenant = r.str()?.to_string();
        let n = r.count(4)?;
        let mut map = BTreeMap::new();
        for _ in 0..n {
            let name = r.str()?.to_string();
            let kind = r.str()?.to_string();
            let help = r.str()?.to_string();
            let unit = r.str()?.to_string();
            map.insert(name, Meta { kind, help, unit });
        }
        tenants.insert(tenant, map);
    }
    r.expect_end()?;
    Ok(tenants)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(metric: &str, kind: &str, help: &str) -> MetadataEntry {
        MetadataEntry {
            metric: metric.into(),
            kind: kind.into(),
            help: help.into(),
            unit: String::new(),
        }
    }

    #[test]
    fn last_write_wins_and_changes_skip_known_entries() {
        let s = MetadataStore::new();
        assert_eq!(
            s.apply("t", &[e("a", "counter", "x"), e("a", "gauge", "y")]),
            2
        );
        assert_eq!(s.get("t", "a").unwrap().kind, "gauge");
        assert_eq!(s.apply("t", &[e("a", "gauge", "y")]), 0);
        assert!(s.get("other", "a").is_none());
        let ch = s.changes(
            "t",
            vec![
                e("a", "gauge", "y"),
                e("b", "counter", "1"),
                e("b", "counter", "2"),
            ],
        );
        assert_eq!(ch, vec![e("b", "counter", "2")]);
    }

    #[test]
    fn file_round_trip_and_corruption_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("METADATA");
        let s = MetadataStore::new();
        s.apply("t", &[e("a", "counter", "ä help"), e("b", "gauge", "")]);
        s.apply("u", &[e("c", "summary", "")]);
        s.save(&p, false).unwrap();
        let t = MetadataStore::new();
        t.load(&p).unwrap();
        assert_eq!(t.list("t"), s.list("t"));
        assert_eq!(t.list("u"), s.list("u"));
        let missing = MetadataStore::new();
        missing.load(&dir.path().join("none")).unwrap();
        assert!(missing.list("t").is_empty());
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[12] ^= 0x40;
        std::fs::write(&p, &bytes).unwrap();
        assert!(MetadataStore::new().load(&p).is_err());
    }

    #[test]
    fn garbage_payloads_are_errors() {
        for data in [&b""[..], &[1, 5], &[2, 0], &[1, 1, 1, b'a', 1]] {
            assert!(MetadataStore::new().replace_with(Some(data)).is_err());
        }
    }

    #[test]
    fn validation() {
        assert!(e("", "counter", "").validated().is_err());
        assert!(e(&"x".repeat(MAX_NAME_BYTES + 1), "counter", "")
            .validated()
            .is_err());
        let long = e("a", "gauge", &"é".repeat(MAX_HELP_BYTES))
            .validated()
            .unwrap();
        assert!(long.help.len() <= MAX_HELP_BYTES);
    }
}
