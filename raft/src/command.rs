//! What the replicated log carries: typed write commands, their compact binary encoding, the
//! validation that keeps bad input out of the log, and the per-command results.
//!
//! ```text
//! proposal ─► validate (drop invalid series/tenants, remember their rejections)
//!          ─► Command ─► coalesced with concurrent proposals into one Request (encoded once)
//!          ─► Raft log entry (bytes as encoded) ─► state machine decodes and applies
//!          ─► CommandResult per command, indexes mapped back to the caller's batch
//! ```
//!
//! Request encoding (version 1):
//!
//! ```text
//! version u8 = 1 · n commands uvarint · command...
//! command  kind u8 · body
//!   1 metrics write  tenant str · received_ms (u8 flag · varint) · n series ·
//!                    series: n labels · (name str · value str)... · n samples ·
//!                            first t varint · (Δt varint)... · values (f64 bits u64 LE)...
//!   2 delete series  tenant str · n matchers · (op u8 · name str · value str)... ·
//!                    mint varint · maxt varint
//!   3, 4             reserved for log lines and spans
//!   5 metadata       tenant str · n entries · (metric str · type str · help str · unit str)...
//! ```
//!
//! New command kinds get new numbers; the request version stays 1, so every entry written
//! before a kind existed still decodes. (A node older than a kind cannot apply entries that
//! carry it.)

use bytes::Bytes;
use o11y_tsdb::labels::{self, Label, LabelLimits};
use o11y_tsdb::matcher::{MatchOp, Matcher};
use o11y_tsdb::{Rejection, Sample, SeriesSamples, WriteBatch};

use crate::codec::{put_bytes, put_str, put_u8, put_uvarint, put_varint, DecodeError, Reader};
use crate::metadata::MetadataEntry;

const REQUEST_VERSION: u8 = 1;
const KIND_METRICS: u8 = 1;
const KIND_DELETE: u8 = 2;
const KIND_METADATA: u8 = 5;

/// One write command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Samples for a tenant.
    Metrics { tenant: String, batch: WriteBatch },
    /// Delete the series matching `matchers` (op, name, value) in `[mint, maxt]`.
    DeleteSeries {
        tenant: String,
        matchers: Vec<(MatchOp, String, String)>,
        mint: i64,
        maxt: i64,
    },
    /// Metric metadata for a tenant (last write wins per family name). Its result is
    /// [`CommandResult::Written`] with no samples.
    Metadata {
        tenant: String,
        entries: Vec<MetadataEntry>,
    },
}

/// The application data of one log entry: one or more commands, kept encoded (a `Bytes`
/// slice, cheap to clone, replicate and persist) until the state machine applies it.
#[derive(Clone, PartialEq, Eq)]
pub struct Request(Bytes);

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Request({} bytes)", self.0.len())
    }
}

impl Request {
    /// Encodes commands into one request.
    pub fn encode(commands: &[Command]) -> Request {
        let mut b = Vec::with_capacity(64 + commands.iter().map(Command::size_hint).sum::<usize>());
        put_u8(&mut b, REQUEST_VERSION);
        put_uvarint(&mut b, commands.len() as u64);
        for c in commands {
            c.encode(&mut b);
        }
        Request(Bytes::from(b))
    }

    /// Concatenates already encoded requests (coalescing) without re-encoding their commands.
    pub fn concat(parts: &[Request]) -> Result<Request, DecodeError> {
        if parts.len() == 1 {
            return Ok(parts[0].clone());
        }
        let mut n = 0u64;
        let mut bodies = Vec::with_capacity(parts.len());
        for p in parts {
            let mut r = Reader::new("request", &p.0);
            check_version(&mut r)?;
            n += r.uvarint()?;
            bodies.push(&p.0[p.0.len() - r.remaining()..]);
        }
        let mut b = Vec::with_capacity(16 + bodies.iter().map(|x| x.len()).sum::<usize>());
        put_u8(&mut b, REQUEST_VERSION);
        put_uvarint(&mut b, n);
        for body in bodies {
            b.extend_from_slice(body);
        }
        Ok(Request(Bytes::from(b)))
    }

    pub fn from_encoded(b: Bytes) -> Request {
        Request(b)
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Number of commands, read from the header.
    pub fn len(&self) -> Result<usize, DecodeError> {
        let mut r = Reader::new("request", &self.0);
        check_version(&mut r)?;
        Ok(r.uvarint()? as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len().is_ok_and(|n| n == 0)
    }

    /// Decodes every command.
    pub fn decode(&self) -> Result<Vec<Command>, DecodeError> {
        self.decode_reusing(&mut BatchPool::default())
    }

    /// Decodes every command, building metrics batches in the strings and vectors of batches
    /// taken from `pool` (see [`BatchPool::recycle`]): the state machine decodes every entry it
    /// applies, and reusing the previous entries' label strings saves an allocation and a free
    /// per label name and value.
    pub fn decode_reusing(&self, pool: &mut BatchPool) -> Result<Vec<Command>, DecodeError> {
        let mut r = Reader::new("request", &self.0);
        check_version(&mut r)?;
        let n = r.count(2)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(Command::decode(&mut r, pool)?);
        }
        r.expect_end()?;
        Ok(out)
    }
}

/// Spare write batches whose allocations (series, label strings, samples) decoding reuses.
#[derive(Default)]
pub struct BatchPool {
    spare: Vec<WriteBatch>,
}

impl BatchPool {
    /// At most this many batches are kept.
    const MAX: usize = 8;

    /// Keeps the metrics batches of `commands` for reuse.
    pub fn recycle(&mut self, commands: Vec<Command>) {
        for c in commands {
            if let Command::Metrics { batch, .. } = c {
                if self.spare.len() < Self::MAX {
                    self.spare.push(batch);
                }
            }
        }
    }

    fn take(&mut self) -> WriteBatch {
        self.spare.pop().unwrap_or_default()
    }
}

/// Overwrites `dst` with `src`, reusing its buffer.
fn set_str(dst: &mut String, src: &str) {
    dst.clear();
    dst.push_str(src);
}

fn check_version(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    match r.u8()? {
        REQUEST_VERSION => Ok(()),
        v => Err(r.err(format!("unsupported request version {v}"))),
    }
}

fn op_code(op: MatchOp) -> u8 {
    match op {
        MatchOp::Equal => 0,
        MatchOp::NotEqual => 1,
        MatchOp::Regex => 2,
        MatchOp::NotRegex => 3,
    }
}

impl Command {
    fn size_hint(&self) -> usize {
        match self {
            Command::Metrics { tenant, batch } => {
                tenant.len()
                    + 16
                    + batch
                        .series
                        .iter()
                        .map(|s| {
                            8 + s
                                .labels
                                .iter()
                                .map(|l| l.name.len() + l.value.len() + 2)
                                .sum::<usize>()
                                + s.samples.len() * 11
                        })
                        .sum::<usize>()
            }
            Command::DeleteSeries { matchers, .. } => 64 + matchers.len() * 32,
            Command::Metadata { tenant, entries } => {
                tenant.len()
                    + 8
                    + entries
                        .iter()
                        .map(|e| 8 + e.metric.len() + e.kind.len() + e.help.len() + e.unit.len())
                        .sum::<usize>()
            }
        }
    }

    fn encode(&self, b: &mut Vec<u8>) {
        match self {
            Command::Metrics { tenant, batch } => {
                put_u8(b, KIND_METRICS);
                put_str(b, tenant);
                match batch.received_ms {
                    None => put_u8(b, 0),
                    Some(t) => {
                        put_u8(b, 1);
                        put_varint(b, t);
                    }
                }
                put_uvarint(b, batch.series.len() as u64);
                for s in &batch.series {
                    put_uvarint(b, s.labels.len() as u64);
                    for l in &s.labels {
                        put_str(b, &l.name);
                        put_str(b, &l.value);
                    }
                    put_uvarint(b, s.samples.len() as u64);
                    let mut prev = 0i64;
                    for (i, x) in s.samples.iter().enumerate() {
                        put_varint(b, if i == 0 { x.t } else { x.t.wrapping_sub(prev) });
                        prev = x.t;
                    }
                    for x in &s.samples {
                        b.extend_from_slice(&x.v.to_bits().to_le_bytes());
                    }
                }
            }
            Command::DeleteSeries {
                tenant,
                matchers,
                mint,
                maxt,
            } => {
                put_u8(b, KIND_DELETE);
                put_str(b, tenant);
                put_uvarint(b, matchers.len() as u64);
                for (op, name, value) in matchers {
                    put_u8(b, op_code(*op));
                    put_bytes(b, name.as_bytes());
                    put_bytes(b, value.as_bytes());
                }
                put_varint(b, *mint);
                put_varint(b, *maxt);
            }
            Command::Metadata { tenant, entries } => {
                put_u8(b, KIND_METADATA);
                put_str(b, tenant);
                put_uvarint(b, entries.len() as u64);
                for e in entries {
                    put_str(b, &e.metric);
                    put_str(b, &e.kind);
                    put_str(b, &e.help);
                    put_str(b, &e.unit);
                }
            }
        }
    }

    fn decode(r: &mut Reader<'_>, pool: &mut BatchPool) -> Result<Command, DecodeError> {
        match r.u8()? {
            KIND_METRICS => {
                let tenant = r.str()?.to_string();
                let received_ms = if r.bool()? { Some(r.varint()?) } else { None };
                let n = r.count(2)?;
                let mut batch = pool.take();
                batch.received_ms = received_ms;
                batch.series.truncate(n);
                for i in 0..n {
                    if i == batch.series.len() {
                        batch.series.push(SeriesSamples::default());
                    }
                    let s = &mut batch.series[i];
                    let nl = r.count(2)?;
                    s.labels.truncate(nl);
                    for j in 0..nl {
                        let name = r.str()?;
                        let value = r.str()?;
                        match s.labels.get_mut(j) {
                            Some(l) => {
                                set_str(&mut l.name, name);
                                set_str(&mut l.value, value);
                            }
                            None => s.labels.push(Label::new(name, value)),
                        }
                    }
                    let ns = r.count(9)?;
                    s.samples.clear();
                    s.samples.reserve(ns);
                    let mut t = 0i64;
                    for k in 0..ns {
                        let d = r.varint()?;
                        t = if k == 0 { d } else { t.wrapping_add(d) };
                        s.samples.push(Sample { t, v: 0.0 });
                    }
                    for x in s.samples.iter_mut() {
                        x.v = f64::from_bits(r.u64_le()?);
                    }
                }
                Ok(Command::Metrics { tenant, batch })
            }
            KIND_DELETE => {
                let tenant = r.str()?.to_string();
                let n = r.count(3)?;
                let mut matchers = Vec::with_capacity(n);
                for _ in 0..n {
                    let op = match r.u8()? {
                        0 => MatchOp::Equal,
                        1 => MatchOp::NotEqual,
                        2 => MatchOp::Regex,
                        3 => MatchOp::NotRegex,
                        o => return Err(r.err(format!("unknown matcher op {o}"))),
                    };
                    let name = r.str()?.to_string();
                    let value = r.str()?.to_string();
                    matchers.push((op, name, value));
                }
                let mint = r.varint()?;
                let maxt = r.varint()?;
                Ok(Command::DeleteSeries {
                    tenant,
                    matchers,
                    mint,
                    maxt,
                })
            }
            KIND_METADATA => {
                let tenant = r.str()?.to_string();
                let n = r.count(4)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(MetadataEntry {
                        metric: r.str()?.to_string(),
                        kind: r.str()?.to_string(),
                        help: r.str()?.to_string(),
                        unit: r.str()?.to_string(),
                    });
                }
                Ok(Command::Metadata { tenant, entries })
            }
            k => Err(r.err(format!("unknown command kind {k}"))),
        }
    }
}

/// A rejected item, in the caller's numbering: `series` indexes the batch as proposed, `sample`
/// the sample within it (`None`: the whole series).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRejection {
    pub series: u32,
    pub sample: Option<u32>,
    pub reason: String,
}

/// The outcome of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandResult {
    Written {
        samples_accepted: u64,
        series_created: u64,
        rejections: Vec<ItemRejection>,
    },
    Deleted {
        series: u64,
    },
    /// The whole command was refused (invalid tenant, invalid matcher).
    Refused {
        reason: String,
    },
}

/// The state machine's response for one entry: one result per command, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub results: Vec<CommandResult>,
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        put_uvarint(&mut b, self.results.len() as u64);
        for r in &self.results {
            match r {
                CommandResult::Written {
                    samples_accepted,
                    series_created,
                    rejections,
                } => {
                    put_u8(&mut b, 1);
                    put_uvarint(&mut b, *samples_accepted);
                    put_uvarint(&mut b, *series_created);
                    put_uvarint(&mut b, rejections.len() as u64);
                    for x in rejections {
                        put_uvarint(&mut b, u64::from(x.series));
                        put_uvarint(&mut b, x.sample.map_or(0, |s| u64::from(s) + 1));
                        put_str(&mut b, &x.reason);
                    }
                }
                CommandResult::Deleted { series } => {
                    put_u8(&mut b, 2);
                    put_uvarint(&mut b, *series);
                }
                CommandResult::Refused { reason } => {
                    put_u8(&mut b, 3);
                    put_str(&mut b, reason);
                }
            }
        }
        b
    }

    pub fn decode(data: &[u8]) -> Result<Response, DecodeError> {
        let mut r = Reader::new("response", data);
        let n = r.count(2)?;
        let mut results = Vec::with_capacity(n);
        for _ in 0..n {
            results.push(match r.u8()? {
                1 => {
                    let samples_accepted = r.uvarint()?;
                    let series_created = r.uvarint()?;
                    let nr = r.count(3)?;
                    let mut rejections = Vec::with_capacity(nr);
                    for _ in 0..nr {
                        let series = r.uvarint()? as u32;
                        let sample = match r.uvarint()? {
                            0 => None,
                            s => Some((s - 1) as u32),
                        };
                        rejections.push(ItemRejection {
                            series,
                            sample,
                            reason: r.str()?.to_string(),
                        });
                    }
                    CommandResult::Written {
                        samples_accepted,
                        series_created,
                        rejections,
                    }
                }
                2 => CommandResult::Deleted {
                    series: r.uvarint()?,
                },
                3 => CommandResult::Refused {
                    reason: r.str()?.to_string(),
                },
                k => return Err(r.err(format!("unknown result kind {k}"))),
            });
        }
        r.expect_end()?;
        Ok(Response { results })
    }
}

/// A command checked before proposing, with what validation already rejected.
#[derive(Debug)]
pub struct Validated {
    /// The command to propose, or `None` when nothing in it is valid.
    pub command: Option<Command>,
    /// For a metrics write: the caller's index of each series kept in `command`.
    pub kept: Vec<u32>,
    /// Items rejected by validation, in the caller's numbering.
    pub rejections: Vec<ItemRejection>,
    /// Why the whole command was refused, if it was.
    pub refused: Option<String>,
}

/// Checks a command so that nothing invalid enters the log: the tenant name, each series'
/// labels (Prometheus's rules and `limits`), matchers. Invalid series are dropped from the
/// command and reported; samples are checked by the engine when applied, because whether a
/// sample is too old depends on the state at that point of the log.
pub fn validate(command: Command, limits: &LabelLimits) -> Validated {
    match command {
        Command::Metrics { tenant, batch } => {
            if let Err(e) = o11y_tsdb::validate_tenant(&tenant) {
                return refused(e.to_string());
            }
            let mut kept = Vec::with_capacity(batch.series.len());
            let mut rejections = Vec::new();
            let mut series = Vec::with_capacity(batch.series.len());
            for (i, s) in batch.series.into_iter().enumerate() {
                // The validated form (sorted, empty values dropped) is what the engine would
                // derive anyway; keeping it avoids copying every label to validate it.
                match labels::validate(s.labels, limits) {
                    Ok(l) => {
                        kept.push(i as u32);
                        series.push(SeriesSamples {
                            labels: l.into_vec(),
                            samples: s.samples,
                        });
                    }
                    Err(e) => rejections.push(ItemRejection {
                        series: i as u32,
                        sample: None,
                        reason: o11y_tsdb::RejectReason::InvalidLabels(e).to_string(),
                    }),
                }
            }
            Validated {
                command: (!series.is_empty()).then_some(Command::Metrics {
                    tenant,
                    batch: WriteBatch {
                        series,
                        received_ms: batch.received_ms,
                    },
                }),
                kept,
                rejections,
                refused: None,
            }
        }
        Command::DeleteSeries {
            tenant,
            matchers,
            mint,
            maxt,
        } => {
            if let Err(e) = o11y_tsdb::validate_tenant(&tenant) {
                return refused(e.to_string());
            }
            if matchers.is_empty() {
                return refused("a delete needs at least one matcher".into());
            }
            for (op, name, value) in &matchers {
                if let Err(e) = Matcher::new(*op, name.as_str(), value.as_str()) {
                    return refused(e.to_string());
                }
            }
            if mint > maxt {
                return refused(format!("start {mint} is after end {maxt}"));
            }
            Validated {
                command: Some(Command::DeleteSeries {
                    tenant,
                    matchers,
                    mint,
                    maxt,
                }),
                kept: Vec::new(),
                rejections: Vec::new(),
                refused: None,
            }
        }
        Command::Metadata { tenant, entries } => {
            if let Err(e) = o11y_tsdb::validate_tenant(&tenant) {
                return refused(e.to_string());
            }
            let mut kept = Vec::with_capacity(entries.len());
            let mut rejections = Vec::new();
            let mut valid = Vec::with_capacity(entries.len());
            for (i, e) in entries.into_iter().enumerate() {
                match e.validated() {
                    Ok(e) => {
                        kept.push(i as u32);
                        valid.push(e);
                    }
                    Err(reason) => rejections.push(ItemRejection {
                        series: i as u32,
                        sample: None,
                        reason,
                    }),
                }
            }
            Validated {
                command: (!valid.is_empty()).then_some(Command::Metadata {
                    tenant,
                    entries: valid,
                }),
                kept,
                rejections,
                refused: None,
            }
        }
    }
}

fn refused(reason: String) -> Validated {
    Validated {
        command: None,
        kept: Vec::new(),
        rejections: Vec::new(),
        refused: Some(reason),
    }
}

/// An engine rejection, still numbered within the proposed (validated) batch; the proposer
/// maps `series` back through [`Validated::kept`].
impl From<&Rejection> for ItemRejection {
    fn from(r: &Rejection) -> Self {
        ItemRejection {
            series: r.series as u32,
            sample: r.sample.map(|s| s as u32),
            reason: r.reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::from_bits(o11y_tsdb::STALE_NAN_BITS)),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
        ]
    }

    fn arb_command() -> impl Strategy<Value = Command> {
        let series = (
            proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,12}"), 0..4),
            proptest::collection::vec((any::<i64>(), arb_f64()), 0..20),
        )
            .prop_map(|(labels, samples)| SeriesSamples {
                labels: labels.into_iter().map(|(n, v)| Label::new(n, v)).collect(),
                samples: samples.into_iter().map(|(t, v)| Sample { t, v }).collect(),
            });
        prop_oneof![
            (
                "[a-z]{0,6}",
                proptest::option::of(any::<i64>()),
                proptest::collection::vec(series, 0..5)
            )
                .prop_map(|(tenant, received_ms, series)| Command::Metrics {
                    tenant,
                    batch: WriteBatch {
                        series,
                        received_ms
                    },
                }),
            (
                "[a-z]{0,6}",
                proptest::collection::vec((0u8..4, "[a-z]{1,5}", "\\PC{0,8}"), 0..3),
                any::<i64>(),
                any::<i64>()
            )
                .prop_map(|(tenant, m, mint, maxt)| Command::DeleteSeries {
                    tenant,
                    matchers: m
                        .into_iter()
                        .map(|(o, n, v)| {
                            let op = [
                                MatchOp::Equal,
                                MatchOp::NotEqual,
                                MatchOp::Regex,
                                MatchOp::NotRegex,
                            ][o as usize];
                            (op, n, v)
                        })
                        .collect(),
                    mint,
                    maxt,
                }),
            (
                "[a-z]{0,6}",
                proptest::collection::vec(
                    ("[a-z_]{0,8}", "[a-z]{0,8}", "\\PC{0,12}", "[a-z]{0,4}"),
                    0..4
                )
            )
                .prop_map(|(tenant, es)| Command::Metadata {
                    tenant,
                    entries: es
                        .into_iter()
                        .map(|(metric, kind, help, unit)| MetadataEntry {
                            metric,
                            kind,
                            help,
                            unit
                        })
                        .collect(),
                }),
        ]
    }

    /// Bit-exact comparison (NaN payloads included).
    fn bits(c: &[Command]) -> String {
        format!("{c:?}")
            + &c.iter()
                .filter_map(|c| match c {
                    Command::Metrics { batch, .. } => Some(
                        batch
                            .series
                            .iter()
                            .flat_map(|s| s.samples.iter().map(|x| format!("{:x},", x.v.to_bits())))
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect::<String>()
    }

    proptest! {
        #[test]
        fn requests_round_trip(cmds in proptest::collection::vec(arb_command(), 0..4)) {
            let r = Request::encode(&cmds);
            prop_assert_eq!(r.len().unwrap(), cmds.len());
            prop_assert_eq!(bits(&r.decode().unwrap()), bits(&cmds));
        }

        #[test]
        fn concatenated_requests_hold_every_command(
            a in proptest::collection::vec(arb_command(), 0..3),
            b in proptest::collection::vec(arb_command(), 0..3),
        ) {
            let joined = Request::concat(&[Request::encode(&a), Request::encode(&b)]).unwrap();
            let all: Vec<Command> = a.iter().chain(b.iter()).cloned().collect();
            prop_assert_eq!(bits(&joined.decode().unwrap()), bits(&all));
        }

        #[test]
        fn decoding_into_recycled_batches_gives_the_same_commands(
            reqs in proptest::collection::vec(proptest::collection::vec(arb_command(), 0..4), 1..6),
        ) {
            // One pool across requests of different shapes: recycled batches with more series,
            // labels or samples than the next command must not leak into it.
            let mut pool = BatchPool::default();
            for cmds in &reqs {
                let decoded = Request::encode(cmds).decode_reusing(&mut pool).unwrap();
                prop_assert_eq!(bits(&decoded), bits(cmds));
                pool.recycle(decoded);
            }
        }

        #[test]
        fn garbage_requests_are_errors_not_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Request::from_encoded(Bytes::from(data.clone())).decode();
            let _ = Response::decode(&data);
        }
    }

    /// Entries written before the metadata kind existed decode unchanged (the request version
    /// stays 1; new kinds only add numbers), and a metadata command's bytes are frozen too.
    #[test]
    fn encodings_are_frozen() {
        let old: &[u8] = &[
            1, 2, // version 1, two commands
            1, 1, b't', 0, // metrics: tenant "t", no received_ms
            1, 1, 1, b'a', 1, b'b', // one series, labels {a="b"}
            1, 10, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // one sample: t=5 (zig-zag), v=1.0 LE
            2, 1, b't', 1, 0, 1, b'a', 1, b'b', 0, 20, // delete: t, a="b", [0, 10]
        ];
        let cmds = Request::from_encoded(Bytes::from_static(old))
            .decode()
            .unwrap();
        assert_eq!(
            cmds,
            vec![
                Command::Metrics {
                    tenant: "t".into(),
                    batch: WriteBatch {
                        series: vec![SeriesSamples {
                            labels: vec![Label::new("a", "b")],
                            samples: vec![Sample { t: 5, v: 1.0 }],
                        }],
                        received_ms: None,
                    },
                },
                Command::DeleteSeries {
                    tenant: "t".into(),
                    matchers: vec![(MatchOp::Equal, "a".into(), "b".into())],
                    mint: 0,
                    maxt: 10,
                },
            ]
        );
        assert_eq!(Request::encode(&cmds).as_bytes().as_ref(), old);
        let meta = Command::Metadata {
            tenant: "t".into(),
            entries: vec![MetadataEntry {
                metric: "up".into(),
                kind: "gauge".into(),
                help: "h".into(),
                unit: String::new(),
            }],
        };
        assert_eq!(
            Request::encode(&[meta]).as_bytes().as_ref(),
            &[1, 1, 5, 1, b't', 1, 2, b'u', b'p', 5, b'g', b'a', b'u', b'g', b'e', 1, b'h', 0]
        );
    }

    #[test]
    fn responses_round_trip() {
        let r = Response {
            results: vec![
                CommandResult::Written {
                    samples_accepted: 10,
                    series_created: 2,
                    rejections: vec![ItemRejection {
                        series: 3,
                        sample: Some(0),
                        reason: "too old".into(),
                    }],
                },
                CommandResult::Deleted { series: 4 },
                CommandResult::Refused {
                    reason: "bad tenant".into(),
                },
            ],
        };
        assert_eq!(Response::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn validation_drops_bad_series_and_keeps_numbering() {
        let good = SeriesSamples {
            labels: vec![Label::new("__name__", "up")],
            samples: vec![Sample { t: 1, v: 1.0 }],
        };
        let bad = SeriesSamples {
            labels: vec![Label::new("a", "no metric name")],
            samples: vec![Sample { t: 1, v: 1.0 }],
        };
        let v = validate(
            Command::Metrics {
                tenant: "t".into(),
                batch: WriteBatch {
                    series: vec![bad.clone(), good.clone(), bad],
                    received_ms: None,
                },
            },
            &LabelLimits::default(),
        );
        assert_eq!(v.kept, vec![1]);
        assert_eq!(
            v.rejections.iter().map(|r| r.series).collect::<Vec<_>>(),
            vec![0, 2]
        );
        assert!(v.rejections[0].reason.contains("invalid series"));
        match v.command {
            Some(Command::Metrics { batch, .. }) => assert_eq!(batch.series, vec![good]),
            other => panic!("unexpected {other:?}"),
        }

        let v = validate(
            Command::Metrics {
                tenant: "../etc".into(),
                batch: WriteBatch::default(),
            },
            &LabelLimits::default(),
        );
        assert!(v.command.is_none() && v.refused.is_some());

        let v = validate(
            Command::DeleteSeries {
                tenant: "t".into(),
                matchers: vec![(MatchOp::Regex, "a".into(), "(".into())],
                mint: 0,
                maxt: 1,
            },
            &LabelLimits::default(),
        );
        assert!(v.refused.unwrap().contains("invalid regular expression"));
    }
}
