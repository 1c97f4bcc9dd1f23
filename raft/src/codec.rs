//! The binary encoding of everything Raft persists or sends: openraft's types (log ids, votes,
//! memberships, entries, RPC messages) and the primitives the command encoding builds on.
//!
//! Encoders append to a `Vec<u8>`; decoders read from a [`Reader`] that checks every length
//! against the bytes left and reports the offset of the first bad byte. Integers are LEB128
//! varints (signed ones zigzag), strings and byte strings are length-prefixed.
//!
//! ```text
//! log id      term uvarint · leader node uvarint · index uvarint
//! vote        term uvarint · node uvarint · committed u8
//! membership  n configs · (n ids · id...)... · n nodes · (id · addr str)...
//! entry       log id · kind u8 (0 blank, 1 normal, 2 membership) · payload
//!             normal payload: bytes (a command::Request, see `command.rs`)
//! ```

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta,
    StoredMembership, Vote,
};

use crate::command::Request;
use crate::TypeConfig;

/// A malformed encoding: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what} at byte {offset}: {reason}")]
pub struct DecodeError {
    pub what: &'static str,
    pub offset: usize,
    pub reason: String,
}

pub fn put_u8(b: &mut Vec<u8>, v: u8) {
    b.push(v);
}

pub fn put_uvarint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

pub fn put_varint(b: &mut Vec<u8>, v: i64) {
    put_uvarint(b, ((v << 1) ^ (v >> 63)) as u64);
}

pub fn put_bytes(b: &mut Vec<u8>, v: &[u8]) {
    put_uvarint(b, v.len() as u64);
    b.extend_from_slice(v);
}

pub fn put_str(b: &mut Vec<u8>, v: &str) {
    put_bytes(b, v.as_bytes());
}

/// A bounds-checked reader over an encoded message.
pub struct Reader<'a> {
    what: &'static str,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(what: &'static str, data: &'a [u8]) -> Self {
        Reader { what, data, pos: 0 }
    }

    pub fn err(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            what: self.what,
            offset: self.pos,
            reason: reason.into(),
        }
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let v = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.err("unexpected end"))?;
        self.pos += 1;
        Ok(v)
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.err(format!("bad boolean {b}"))),
        }
    }

    pub fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    pub fn varint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A count of items that each take at least `min_item_bytes`, checked against what is left
    /// so that a corrupt count cannot make the caller allocate without bound.
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.uvarint()?;
        if n > (self.remaining() / min_item_bytes.max(1)) as u64 {
            return Err(self.err(format!("count {n} exceeds the bytes left")));
        }
        Ok(n as usize)
    }

    pub fn fixed(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.err(format!("{n} bytes wanted, {} left", self.remaining())));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u64_le(&mut self) -> Result<u64, DecodeError> {
        let s = self.fixed(8)?;
        Ok(u64::from_le_bytes(s.try_into().expect("8 bytes")))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.count(1)?;
        self.fixed(n)
    }

    pub fn str(&mut self) -> Result<&'a str, DecodeError> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| self.err("invalid UTF-8"))
    }

    pub fn expect_end(&self) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(self.err(format!("{} trailing bytes", self.remaining())));
        }
        Ok(())
    }
}

pub fn put_log_id(b: &mut Vec<u8>, id: &LogId<u64>) {
    put_uvarint(b, id.leader_id.term);
    put_uvarint(b, id.leader_id.node_id);
    put_uvarint(b, id.index);
}

pub fn log_id(r: &mut Reader<'_>) -> Result<LogId<u64>, DecodeError> {
    let term = r.uvarint()?;
    let node = r.uvarint()?;
    let index = r.uvarint()?;
    Ok(LogId::new(CommittedLeaderId::new(term, node), index))
}

pub fn put_opt_log_id(b: &mut Vec<u8>, id: &Option<LogId<u64>>) {
    match id {
        None => put_u8(b, 0),
        Some(id) => {
            put_u8(b, 1);
            put_log_id(b, id);
        }
    }
}

pub fn opt_log_id(r: &mut Reader<'_>) -> Result<Option<LogId<u64>>, DecodeError> {
    Ok(if r.bool()? { Some(log_id(r)?) } else { None })
}

pub fn put_vote(b: &mut Vec<u8>, v: &Vote<u64>) {
    put_uvarint(b, v.leader_id.term);
    put_uvarint(b, v.leader_id.node_id);
    put_u8(b, v.committed as u8);
}

pub fn vote(r: &mut Reader<'_>) -> Result<Vote<u64>, DecodeError> {
    let term = r.uvarint()?;
    let node = r.uvarint()?;
    Ok(if r.bool()? {
        Vote::new_committed(term, node)
    } else {
        Vote::new(term, node)
    })
}

pub fn put_membership(b: &mut Vec<u8>, m: &Membership<u64, BasicNode>) {
    let configs = m.get_joint_config();
    put_uvarint(b, configs.len() as u64);
    for c in configs {
        put_uvarint(b, c.len() as u64);
        for id in c {
            put_uvarint(b, *id);
        }
    }
    let nodes: Vec<_> = m.nodes().collect();
    put_uvarint(b, nodes.len() as u64);
    for (id, n) in nodes {
        put_uvarint(b, *id);
        put_str(b, &n.addr);
    }
}

pub fn membership(r: &mut Reader<'_>) -> Result<Membership<u64, BasicNode>, DecodeError> {
    let mut configs = Vec::new();
    for _ in 0..r.count(1)? {
        let mut c = BTreeSet::new();
        for _ in 0..r.count(1)? {
            c.insert(r.uvarint()?);
        }
        configs.push(c);
    }
    let mut nodes = BTreeMap::new();
    for _ in 0..r.count(2)? {
        let id = r.uvarint()?;
        nodes.insert(id, BasicNode::new(r.str()?));
    }
    for c in &configs {
        if let Some(id) = c.iter().find(|id| !nodes.contains_key(id)) {
            return Err(r.err(format!("voter {id} has no node address")));
        }
    }
    Ok(Membership::new(configs, nodes))
}

pub fn put_stored_membership(b: &mut Vec<u8>, m: &StoredMembership<u64, BasicNode>) {
    put_opt_log_id(b, m.log_id());
    put_membership(b, m.membership());
}

pub fn stored_membership(
    r: &mut Reader<'_>,
) -> Result<StoredMembership<u64, BasicNode>, DecodeError> {
    let id = opt_log_id(r)?;
    Ok(StoredMembership::new(id, membership(r)?))
}

pub fn put_snapshot_meta(b: &mut Vec<u8>, m: &SnapshotMeta<u64, BasicNode>) {
    put_opt_log_id(b, &m.last_log_id);
    put_stored_membership(b, &m.last_membership);
    put_str(b, &m.snapshot_id);
}

pub fn snapshot_meta(r: &mut Reader<'_>) -> Result<SnapshotMeta<u64, BasicNode>, DecodeError> {
    Ok(SnapshotMeta {
        last_log_id: opt_log_id(r)?,
        last_membership: stored_membership(r)?,
        snapshot_id: r.str()?.to_string(),
    })
}

pub fn put_entry(b: &mut Vec<u8>, e: &Entry<TypeConfig>) {
    put_log_id(b, &e.log_id);
    match &e.payload {
        EntryPayload::Blank => put_u8(b, 0),
        EntryPayload::Normal(req) => {
            put_u8(b, 1);
            put_bytes(b, req.as_bytes());
        }
        EntryPayload::Membership(m) => {
            put_u8(b, 2);
            put_membership(b, m);
        }
    }
}

/// Decodes an entry. `Normal` payloads stay encoded (a cheap slice of `whole`, which must be
/// the buffer `r` reads) until the state machine applies them.
pub fn entry(r: &mut Reader<'_>, whole: &Bytes) -> Result<Entry<TypeConfig>, DecodeError> {
    let log_id = log_id(r)?;
    let payload = match r.u8()? {
        0 => EntryPayload::Blank,
        1 => {
            let n = r.count(1)?;
            let start = r.pos;
            r.fixed(n)?;
            EntryPayload::Normal(Request::from_encoded(whole.slice(start..start + n)))
        }
        2 => EntryPayload::Membership(membership(r)?),
        k => return Err(r.err(format!("unknown entry kind {k}"))),
    };
    Ok(Entry { log_id, payload })
}

pub fn encode_append_entries(req: &AppendEntriesRequest<TypeConfig>) -> Vec<u8> {
    let mut b = Vec::with_capacity(
        64 + req
            .entries
            .iter()
            .map(|e| match &e.payload {
                EntryPayload::Normal(r) => r.as_bytes().len() + 32,
                _ => 64,
            })
            .sum::<usize>(),
    );
    put_vote(&mut b, &req.vote);
    put_opt_log_id(&mut b, &req.prev_log_id);
    put_opt_log_id(&mut b, &req.leader_commit);
    put_uvarint(&mut b, req.entries.len() as u64);
    for e in &req.entries {
        put_entry(&mut b, e);
    }
    b
}

pub fn decode_append_entries(data: Bytes) -> Result<AppendEntriesRequest<TypeConfig>, DecodeError> {
    let mut r = Reader::new("append-entries request", &data);
    let vote = vote(&mut r)?;
    let prev_log_id = opt_log_id(&mut r)?;
    let leader_commit = opt_log_id(&mut r)?;
    let n = r.count(4)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        entries.push(entry(&mut r, &data)?);
    }
    r.expect_end()?;
    Ok(AppendEntriesRequest {
        vote,
        prev_log_id,
        entries,
        leader_commit,
    })
}

pub fn encode_append_response(resp: &AppendEntriesResponse<u64>) -> Vec<u8> {
    let mut b = Vec::with_capacity(32);
    match resp {
        AppendEntriesResponse::Success => put_u8(&mut b, 0),
        AppendEntriesResponse::PartialSuccess(id) => {
            put_u8(&mut b, 1);
            put_opt_log_id(&mut b, id);
        }
        AppendEntriesResponse::Conflict => put_u8(&mut b, 2),
        AppendEntriesResponse::HigherVote(v) => {
            put_u8(&mut b, 3);
            put_vote(&mut b, v);
        }
    }
    b
}

pub fn decode_append_response(data: &[u8]) -> Result<AppendEntriesResponse<u64>, DecodeError> {
    let mut r = Reader::new("append-entries response", data);
    let resp = match r.u8()? {
        0 => AppendEntriesResponse::Success,
        1 => AppendEntriesResponse::PartialSuccess(opt_log_id(&mut r)?),
        2 => AppendEntriesResponse::Conflict,
        3 => AppendEntriesResponse::HigherVote(vote(&mut r)?),
        k => return Err(r.err(format!("unknown response kind {k}"))),
    };
    r.expect_end()?;
    Ok(resp)
}

pub fn encode_vote_request(req: &VoteRequest<u64>) -> Vec<u8> {
    let mut b = Vec::with_capacity(32);
    put_vote(&mut b, &req.vote);
    put_opt_log_id(&mut b, &req.last_log_id);
    b
}

pub fn decode_vote_request(data: &[u8]) -> Result<VoteRequest<u64>, DecodeError> {
    let mut r = Reader::new("vote request", data);
    let v = vote(&mut r)?;
    let last = opt_log_id(&mut r)?;
    r.expect_end()?;
    Ok(VoteRequest::new(v, last))
}

pub fn encode_vote_response(resp: &VoteResponse<u64>) -> Vec<u8> {
    let mut b = Vec::with_capacity(32);
    put_vote(&mut b, &resp.vote);
    put_u8(&mut b, resp.vote_granted as u8);
    put_opt_log_id(&mut b, &resp.last_log_id);
    b
}

pub fn decode_vote_response(data: &[u8]) -> Result<VoteResponse<u64>, DecodeError> {
    let mut r = Reader::new("vote response", data);
    let v = vote(&mut r)?;
    let granted = r.bool()?;
    let last = opt_log_id(&mut r)?;
    r.expect_end()?;
    Ok(VoteResponse::new(v, last, granted))
}

pub fn encode_snapshot_response(resp: &SnapshotResponse<u64>) -> Vec<u8> {
    let mut b = Vec::with_capacity(16);
    put_vote(&mut b, &resp.vote);
    b
}

pub fn decode_snapshot_response(data: &[u8]) -> Result<SnapshotResponse<u64>, DecodeError> {
    let mut r = Reader::new("snapshot response", data);
    let v = vote(&mut r)?;
    r.expect_end()?;
    Ok(SnapshotResponse::new(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_log_id() -> impl Strategy<Value = LogId<u64>> {
        (any::<u64>(), any::<u64>(), any::<u64>())
            .prop_map(|(t, n, i)| LogId::new(CommittedLeaderId::new(t, n), i))
    }

    fn arb_membership() -> impl Strategy<Value = Membership<u64, BasicNode>> {
        (
            proptest::collection::vec(proptest::collection::btree_set(0u64..8, 1..4), 1..3),
            proptest::collection::btree_set(0u64..12, 0..4),
        )
            .prop_map(|(configs, learners)| {
                let mut nodes = BTreeMap::new();
                for id in configs.iter().flatten().chain(learners.iter()) {
                    nodes.insert(*id, BasicNode::new(format!("127.0.0.{id}:7000")));
                }
                Membership::new(configs, nodes)
            })
    }

    proptest! {
        #[test]
        fn entries_round_trip(
            id in arb_log_id(),
            kind in 0u8..3,
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            m in arb_membership(),
        ) {
            let e: Entry<TypeConfig> = Entry {
                log_id: id,
                payload: match kind {
                    0 => EntryPayload::Blank,
                    1 => EntryPayload::Normal(Request::from_encoded(Bytes::from(payload))),
                    _ => EntryPayload::Membership(m),
                },
            };
            let mut b = Vec::new();
            put_entry(&mut b, &e);
            let whole = Bytes::from(b);
            let mut r = Reader::new("entry", &whole);
            let back = entry(&mut r, &whole).unwrap();
            r.expect_end().unwrap();
            prop_assert_eq!(format!("{back:?}"), format!("{e:?}"));
        }

        #[test]
        fn votes_and_metas_round_trip(
            term in any::<u64>(), node in any::<u64>(), committed in any::<bool>(),
            last in proptest::option::of(arb_log_id()), m in arb_membership(), id in "[a-z0-9-]{0,20}",
        ) {
            let v = if committed { Vote::new_committed(term, node) } else { Vote::new(term, node) };
            let mut b = Vec::new();
            put_vote(&mut b, &v);
            prop_assert_eq!(vote(&mut Reader::new("vote", &b)).unwrap(), v);

            let meta = SnapshotMeta { last_log_id: last, last_membership: StoredMembership::new(last, m), snapshot_id: id };
            let mut b = Vec::new();
            put_snapshot_meta(&mut b, &meta);
            prop_assert_eq!(snapshot_meta(&mut Reader::new("meta", &b)).unwrap(), meta);
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_append_entries(Bytes::from(data.clone()));
            let _ = decode_append_response(&data);
            let _ = decode_vote_request(&data);
            let _ = decode_vote_response(&data);
            let _ = snapshot_meta(&mut Reader::new("meta", &data));
        }
    }
}
