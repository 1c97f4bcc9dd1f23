//! O11y's own metrics: a small registry of counters and histograms (a shared read lock to
//! find a label set's cell, atomics to update it), scrape-time collectors, and the Prometheus
//! text exposition format 0.0.4 served on `GET /metrics`.
//!
//! ```text
//!   handlers ──► Telemetry::samples_received / samples_written / samples_rejected,
//!                Telemetry::record_write (a proposal's results, by rejection reason)
//!                Telemetry::observe_query, track_http (axum middleware: every route)
//!                  └─ CounterVec / HistogramVec: label values → Arc<atomic cell>
//!   GET /metrics ─► Telemetry::render (blocking pool)
//!                     ├─ own families, in registration order
//!                     ├─ collectors registered by AppState (Raft status, tsdb head and
//!                     │  storage, data-dir usage), run at scrape time
//!                     └─ process metrics from /proc/self
//!                   ─► Encoder: # HELP / # TYPE, escaped labels, cumulative buckets
//! ```
//!
//! Why not the `prometheus-client` crate: the set of metrics is small and fixed, the format
//! is simple, and scrape-time collectors (Raft status, tsdb state read on demand) fit a
//! closure better than that crate's typed registry; a few hundred lines of our own, tested
//! against the format rules, cost less than its API in every handler.
//!
//! Label sets stay bounded: `protocol`, `reason`, `endpoint` and `code` come from small
//! fixed sets, and `handler` is the matched route (`unmatched` for anything else).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use o11y_raft::CommandResult;

use crate::app::WriteError;

/// `protocol` label of remote_write 1.0 ingest.
pub const REMOTE_WRITE_V1: &str = "remote_write_v1";
/// `protocol` label of remote_write 2.0 ingest.
pub const REMOTE_WRITE_V2: &str = "remote_write_v2";
/// `protocol` label of OTLP ingest.
pub const OTLP: &str = "otlp";

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket upper bounds (seconds) of HTTP request durations.
pub const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Bucket upper bounds (seconds) of PromQL query durations (the default timeout is 2m).
pub const QUERY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// How long a walk of the data directory is reused by later scrapes.
const DISK_WALK_TTL: Duration = Duration::from_secs(10);

/// The kind of a metric family, as written on its `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// Writes the text exposition format. Callers write one family at a time: [`Encoder::family`]
/// then its samples.
#[derive(Default)]
pub struct Encoder {
    out: String,
}

/// Escapes a `# HELP` text: backslash and newline.
fn escape_help(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label_value(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value as the format spells it (Go's `ParseFloat` reads it back).
fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: MetricType, help: &str) {
        debug_assert!(is_metric_name(name), "{name}");
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_help(help, &mut self.out);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
    }

    fn labels(&mut self, labels: &[(&str, &str)]) {
        if labels.is_empty() {
            return;
        }
        self.out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_label_value(v, &mut self.out);
            self.out.push('"');
        }
        self.out.push('}');
    }

    /// One sample line with a float value.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.out.push_str(name);
        self.labels(labels);
        self.out.push(' ');
        push_float(&mut self.out, v);
        self.out.push('\n');
    }

    /// One sample line with an integer value (exact beyond 2^53).
    pub fn sample_int(&mut self, name: &str, labels: &[(&str, &str)], v: u64) {
        self.out.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.out, " {v}");
    }

    /// A family of one unlabelled gauge.
    pub fn gauge(&mut self, name: &str, help: &str, v: f64) {
        self.family(name, MetricType::Gauge, help);
        self.sample(name, &[], v);
    }

    /// A family of one unlabelled counter (`name` ends in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, v: f64) {
        self.family(name, MetricType::Counter, help);
        self.sample(name, &[], v);
    }

    /// The histogram series of one label set: cumulative `_bucket{le}` lines (ending with
    /// `+Inf`), `_sum` and `_count`. `counts[i]` is the number of observations in bucket `i`
    /// alone (`counts.len() == bounds.len() + 1`, the last one above every bound).
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) {
        debug_assert_eq!(counts.len(), bounds.len() + 1);
        let bucket = format!("{name}_bucket");
        let les: Vec<String> = (0..counts.len())
            .map(|i| match bounds.get(i) {
                Some(b) => {
                    let mut s = String::new();
                    push_float(&mut s, *b);
                    s
                }
                None => "+Inf".to_string(),
            })
            .collect();
        let mut cumulative = 0u64;
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        for (c, le) in counts.iter().zip(&les) {
            cumulative += c;
            with_le.push(("le", le));
            self.out.push_str(&bucket);
            self.labels(&with_le);
            let _ = writeln!(self.out, " {cumulative}");
            with_le.pop();
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample_int(&format!("{name}_count"), labels, cumulative);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// Counters of one family, one per label-value tuple.
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
    cells: Cells<AtomicU64>,
}

/// Cells of a family: the unambiguous key of the label values (each length-prefixed) →
/// the values and the cell.
type Cells<T> = RwLock<BTreeMap<String, (Vec<String>, Arc<T>)>>;

fn key(values: &[&str]) -> String {
    let mut k = String::new();
    for v in values {
        let _ = write!(k, "{}:{v}", v.len());
    }
    k
}

fn cell<T>(map: &Cells<T>, values: &[&str], make: impl FnOnce() -> T) -> Arc<T> {
    let k = key(values);
    if let Some((_, c)) = map.read().unwrap_or_else(|e| e.into_inner()).get(&k) {
        return c.clone();
    }
    map.write()
        .unwrap_or_else(|e| e.into_inner())
        .entry(k)
        .or_insert_with(|| {
            (
                values.iter().map(|s| s.to_string()).collect(),
                Arc::new(make()),
            )
        })
        .1
        .clone()
}

fn lookup<T>(map: &Cells<T>, values: &[&str]) -> Option<Arc<T>> {
    map.read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key(values))
        .map(|(_, c)| c.clone())
}

impl CounterVec {
    pub fn new(
        name: &'static str,
        help: &'static str,
        label_names: &'static [&'static str],
    ) -> CounterVec {
        CounterVec {
            name,
            help,
            label_names,
            cells: RwLock::new(BTreeMap::new()),
        }
    }

    /// Adds `n` to the counter of `values` (one per label name, in order).
    pub fn add(&self, values: &[&str], n: u64) {
        debug_assert_eq!(values.len(), self.label_names.len());
        cell(&self.cells, values, || AtomicU64::new(0)).fetch_add(n, Ordering::Relaxed);
    }

    /// The current value for `values` (0 if never incremented).
    pub fn get(&self, values: &[&str]) -> u64 {
        lookup(&self.cells, values).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn encode(&self, enc: &mut Encoder) {
        enc.family(self.name, MetricType::Counter, self.help);
        let cells = self.cells.read().unwrap_or_else(|e| e.into_inner());
        for (values, c) in cells.values() {
            let labels: Vec<(&str, &str)> = self
                .label_names
                .iter()
                .copied()
                .zip(values.iter().map(String::as_str))
                .collect();
            enc.sample_int(self.name, &labels, c.load(Ordering::Relaxed));
        }
    }
}

/// One histogram: per-bucket counts and the sum of observations.
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last is above every bound.
    counts: Box<[AtomicU64]>,
    /// f64 bits.
    sum: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn observe(&self, v: f64) {
        // Bucket `i` holds bounds[i-1] < v <= bounds[i] (`le` is inclusive).
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }

    /// Per-bucket counts and the sum.
    pub fn snapshot(&self) -> (Vec<u64>, f64) {
        (
            self.counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            f64::from_bits(self.sum.load(Ordering::Relaxed)),
        )
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// Histograms of one family, one per label-value tuple.
pub struct HistogramVec {
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
    bounds: &'static [f64],
    cells: Cells<Histogram>,
}

impl HistogramVec {
    pub fn new(
        name: &'static str,
        help: &'static str,
        label_names: &'static [&'static str],
        bounds: &'static [f64],
    ) -> HistogramVec {
        HistogramVec {
            name,
            help,
            label_names,
            bounds,
            cells: RwLock::new(BTreeMap::new()),
        }
    }

    pub fn observe(&self, values: &[&str], v: f64) {
        debug_assert_eq!(values.len(), self.label_names.len());
        cell(&self.cells, values, || Histogram::new(self.bounds)).observe(v);
    }

    /// Observations so far for `values`.
    pub fn count(&self, values: &[&str]) -> u64 {
        lookup(&self.cells, values).map_or(0, |h| h.count())
    }

    fn encode(&self, enc: &mut Encoder) {
        enc.family(self.name, MetricType::Histogram, self.help);
        let cells = self.cells.read().unwrap_or_else(|e| e.into_inner());
        for (values, h) in cells.values() {
            let labels: Vec<(&str, &str)> = self
                .label_names
                .iter()
                .copied()
                .zip(values.iter().map(String::as_str))
                .collect();
            let (counts, sum) = h.snapshot();
            enc.histogram(self.name, &labels, self.bounds, &counts, sum);
        }
    }
}

/// Writes families at scrape time (state that lives elsewhere: Raft, the engines, disk).
pub type Collector = Arc<dyn Fn(&mut Encoder) + Send + Sync>;

/// The server's metrics. One per server, shared through [`crate::app::AppState`].
pub struct Telemetry {
    samples_received: CounterVec,
    samples_written: CounterVec,
    samples_rejected: CounterVec,
    http_requests: CounterVec,
    http_duration: HistogramVec,
    query_duration: HistogramVec,
    leader_changes: AtomicU64,
    collectors: RwLock<Vec<(&'static str, Collector)>>,
    created: SystemTime,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            samples_received: CounterVec::new(
                "o11y_samples_received_total",
                "Samples received by ingest protocol, before validation.",
                &["protocol"],
            ),
            samples_written: CounterVec::new(
                "o11y_samples_written_total",
                "Samples committed through the Raft log and accepted by the engine.",
                &["protocol"],
            ),
            samples_rejected: CounterVec::new(
                "o11y_samples_rejected_total",
                "Samples not written, by ingest protocol and reason.",
                &["protocol", "reason"],
            ),
            http_requests: CounterVec::new(
                "o11y_http_requests_total",
                "HTTP requests answered, by matched route and status code.",
                &["handler", "code"],
            ),
            http_duration: HistogramVec::new(
                "o11y_http_request_duration_seconds",
                "Time until the response head, by matched route.",
                &["handler"],
                HTTP_BUCKETS,
            ),
            query_duration: HistogramVec::new(
                "o11y_query_duration_seconds",
                "PromQL evaluation time (parse, select, evaluate, encode), by API endpoint.",
                &["endpoint"],
                QUERY_BUCKETS,
            ),
            leader_changes: AtomicU64::new(0),
            collectors: RwLock::new(Vec::new()),
            created: SystemTime::now(),
        }
    }
}

/// The `reason` label of an engine or Raft-validation rejection, from its message (rejections
/// cross the Raft log as text; these are the `o11y_tsdb::RejectReason` messages).
pub fn rejection_reason(message: &str) -> &'static str {
    if message.starts_with("invalid series:") {
        "invalid_labels"
    } else if message.contains("is too old") {
        "too_old"
    } else if message.contains("too far in the future") {
        "too_far_in_future"
    } else if message.starts_with("duplicate sample for timestamp") {
        "duplicate_timestamp"
    } else {
        "other"
    }
}

impl Telemetry {
    /// Counts samples that arrived over `protocol` (before any validation).
    pub fn samples_received(&self, protocol: &str, n: u64) {
        self.samples_received.add(&[protocol], n);
    }

    /// Counts samples written (committed and accepted by the engine).
    pub fn samples_written(&self, protocol: &str, n: u64) {
        self.samples_written.add(&[protocol], n);
    }

    /// Counts samples not written, by `reason` (a short snake_case word from a fixed set, see
    /// [`rejection_reason`]).
    pub fn samples_rejected(&self, protocol: &str, reason: &str, n: u64) {
        if n > 0 {
            self.samples_rejected.add(&[protocol, reason], n);
        }
    }

    /// Counts the outcome of proposing one `Command::Metrics` batch received over `protocol`:
    /// samples written, engine and validation rejections by reason, and the whole batch when
    /// the command was refused or the write failed. `series_samples[i]` is the number of
    /// samples of series `i` of the proposed batch (rejections number series that way).
    pub fn record_write(
        &self,
        protocol: &str,
        outcome: &Result<Vec<CommandResult>, WriteError>,
        series_samples: &[u64],
    ) {
        let all: u64 = series_samples.iter().sum();
        let results = match outcome {
            Ok(r) => r,
            Err(e) => {
                let reason = if e.retriable {
                    "unavailable"
                } else {
                    "write_error"
                };
                self.samples_rejected(protocol, reason, all);
                return;
            }
        };
        for r in results {
            match r {
                CommandResult::Written {
                    samples_accepted,
                    rejections,
                    ..
                } => {
                    self.samples_written(protocol, *samples_accepted);
                    for x in rejections {
                        let n = match x.sample {
                            Some(_) => 1,
                            None => series_samples.get(x.series as usize).copied().unwrap_or(0),
                        };
                        self.samples_rejected(protocol, rejection_reason(&x.reason), n);
                    }
                }
                CommandResult::Refused { .. } => self.samples_rejected(protocol, "refused", all),
                CommandResult::Deleted { .. } => {}
            }
        }
    }

    /// Current value of a counter, for tests and callers that check their accounting.
    pub fn samples_received_count(&self, protocol: &str) -> u64 {
        self.samples_received.get(&[protocol])
    }

    pub fn samples_written_count(&self, protocol: &str) -> u64 {
        self.samples_written.get(&[protocol])
    }

    pub fn samples_rejected_count(&self, protocol: &str, reason: &str) -> u64 {
        self.samples_rejected.get(&[protocol, reason])
    }

    /// Records one answered HTTP request.
    pub fn http_request(&self, handler: &str, code: u16, took: Duration) {
        let code = code.to_string();
        self.http_requests.add(&[handler, &code], 1);
        self.http_duration.observe(&[handler], took.as_secs_f64());
    }

    /// Records the duration of one PromQL query served by `endpoint` (`query`,
    /// `query_range`).
    pub fn observe_query(&self, endpoint: &str, took: Duration) {
        self.query_duration.observe(&[endpoint], took.as_secs_f64());
    }

    /// Queries observed for `endpoint`.
    pub fn query_count(&self, endpoint: &str) -> u64 {
        self.query_duration.count(&[endpoint])
    }

    /// Registers a scrape-time collector under `key`; a later one with the same key replaces
    /// it (so rebuilding state for the same node does not duplicate families).
    pub fn register(&self, key: &'static str, c: Collector) {
        let mut v = self.collectors.write().unwrap_or_else(|e| e.into_inner());
        match v.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = c,
            None => v.push((key, c)),
        }
    }

    /// Leader changes seen so far (see [`Telemetry::watch_raft`]).
    pub fn leader_changes(&self) -> u64 {
        self.leader_changes.load(Ordering::Relaxed)
    }

    /// Counts leader changes of `node` (a leader, or a new term with a leader, that differs
    /// from the last one seen) from openraft's metrics channel. The task ends when the node
    /// shuts down (the channel closes).
    pub fn watch_raft(self: &Arc<Self>, node: &o11y_raft::RaftNode) -> tokio::task::JoinHandle<()> {
        let mut rx = node.raft().metrics();
        let me = self.clone();
        tokio::spawn(async move {
            let mut last: Option<(u64, u64)> = None;
            loop {
                let seen = {
                    let m = rx.borrow_and_update();
                    m.current_leader.map(|l| (l, m.current_term))
                };
                if let Some(s) = seen {
                    if last != Some(s) {
                        last = Some(s);
                        me.leader_changes.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
    }

    /// The whole exposition. Runs collectors and reads /proc: call it off the async workers.
    pub fn render(&self) -> String {
        let mut enc = Encoder::new();
        enc.family("o11y_build_info", MetricType::Gauge, "Build information.");
        enc.sample(
            "o11y_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        self.samples_received.encode(&mut enc);
        self.samples_written.encode(&mut enc);
        self.samples_rejected.encode(&mut enc);
        self.http_requests.encode(&mut enc);
        self.http_duration.encode(&mut enc);
        self.query_duration.encode(&mut enc);
        enc.counter(
            "o11y_raft_leader_changes_total",
            "Times this node saw a new leader (or a new term under a leader).",
            self.leader_changes() as f64,
        );
        let collectors: Vec<Collector> = self
            .collectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(_, c)| c.clone())
            .collect();
        for c in collectors {
            c(&mut enc);
        }
        process_metrics(&mut enc, self.created);
        enc.finish()
    }
}

/// `GET /metrics`.
pub async fn metrics_handler(State(t): State<Arc<Telemetry>>) -> Response {
    match tokio::task::spawn_blocking(move || t.render()).await {
        Ok(body) => {
            let mut r = body.into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            r
        }
        Err(e) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering metrics failed: {e}"),
        )
            .into_response(),
    }
}

/// Axum middleware: counts every request by matched route and status, and times it.
pub async fn track_http(State(t): State<Arc<Telemetry>>, req: Request, next: Next) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let resp = next.run(req).await;
    t.http_request(&handler, resp.status().as_u16(), started.elapsed());
    resp
}

/// Raft status of `node`: term, role, log and apply positions, membership size.
pub fn raft_collector(node: Arc<o11y_raft::RaftNode>) -> Collector {
    Arc::new(move |enc: &mut Encoder| {
        let s = node.status();
        enc.gauge("o11y_raft_term", "Current Raft term.", s.term as f64);
        enc.family(
            "o11y_raft_role",
            MetricType::Gauge,
            "1 for this node's current Raft role, 0 for the others.",
        );
        for role in ["leader", "follower", "candidate", "learner", "shutdown"] {
            let v = if s.role == role { 1.0 } else { 0.0 };
            enc.sample("o11y_raft_role", &[("role", role)], v);
        }
        enc.gauge(
            "o11y_raft_is_leader",
            "1 if this node is the Raft leader.",
            if s.role == "leader" { 1.0 } else { 0.0 },
        );
        enc.gauge(
            "o11y_raft_has_leader",
            "1 if this node knows a leader.",
            if s.leader.is_some() { 1.0 } else { 0.0 },
        );
        enc.gauge(
            "o11y_raft_last_log_index",
            "Index of the last entry appended to this node's Raft log.",
            s.last_log_index as f64,
        );
        enc.gauge(
            "o11y_raft_applied_index",
            "Index of the last entry applied to this node's engines.",
            s.applied_index as f64,
        );
        enc.gauge(
            "o11y_raft_apply_lag_entries",
            "Entries appended to the log but not applied yet (last log index - applied index).",
            s.last_log_index.saturating_sub(s.applied_index) as f64,
        );
        enc.gauge(
            "o11y_raft_voters",
            "Voting members in this node's view of the membership.",
            s.voters.len() as f64,
        );
        enc.gauge(
            "o11y_raft_learners",
            "Non-voting members in this node's view of the membership.",
            s.learners.len() as f64,
        );
        enc.counter(
            "o11y_raft_log_fsyncs_total",
            "Group-commit fsyncs of the Raft log.",
            node.log_store().fsyncs() as f64,
        );
        enc.gauge(
            "o11y_raft_log_segments",
            "Segment files of the Raft log.",
            node.log_store().segment_count() as f64,
        );
    })
}

/// The engine serving reads: head series and blocks per tenant, bytes of its files.
pub fn tsdb_collector(db: crate::app::DbSource) -> Collector {
    Arc::new(move |enc: &mut Encoder| {
        let db = db();
        let tenants = db.tenants();
        enc.family(
            "o11y_tsdb_head_series",
            MetricType::Gauge,
            "Series in the in-memory head, by tenant.",
        );
        for t in &tenants {
            enc.sample_int("o11y_tsdb_head_series", &[("tenant", t)], db.head_series(t));
        }
        enc.family(
            "o11y_tsdb_blocks_loaded",
            MetricType::Gauge,
            "Persisted blocks, by tenant.",
        );
        for t in &tenants {
            enc.sample_int(
                "o11y_tsdb_blocks_loaded",
                &[("tenant", t)],
                db.blocks(t).len() as u64,
            );
        }
        enc.gauge(
            "o11y_tsdb_storage_bytes",
            "Bytes of the engine's persisted files (blocks, head chunks, checkpoint).",
            db.disk_bytes() as f64,
        );
    })
}

/// When a data-dir walk was made, and its result.
type DiskWalk = (Instant, Vec<(String, u64)>);

/// Allocated bytes under `dir`, per top-level entry (`.` for files directly in it), from a
/// walk reused for [`DISK_WALK_TTL`]. Hard links (snapshots link engine files) count once.
pub fn disk_collector(dir: PathBuf) -> Collector {
    let cache: Mutex<Option<DiskWalk>> = Mutex::new(None);
    Arc::new(move |enc: &mut Encoder| {
        let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = matches!(&*c, Some((at, _)) if at.elapsed() < DISK_WALK_TTL);
        if !fresh {
            *c = Some((Instant::now(), disk_usage(&dir)));
        }
        let usage = c.as_ref().map(|(_, u)| u.clone()).unwrap_or_default();
        drop(c);
        enc.family(
            "o11y_disk_usage_bytes",
            MetricType::Gauge,
            "Bytes allocated on disk under the data directory, by top-level entry (refreshed every 10s).",
        );
        for (name, bytes) in &usage {
            enc.sample_int("o11y_disk_usage_bytes", &[("dir", name)], *bytes);
        }
    })
}

/// Walks `dir` (no symlinks followed), summing allocated bytes per top-level entry.
pub fn disk_usage(dir: &Path) -> Vec<(String, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    let Ok(top) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    for e in top.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(md) = e.path().symlink_metadata() else {
            continue;
        };
        let (key, mut stack) = if md.is_dir() {
            (name, vec![e.path()])
        } else {
            (".".to_string(), Vec::new())
        };
        let mut bytes = 0u64;
        if !md.is_dir() && seen.insert((md.dev(), md.ino())) {
            bytes += md.blocks() * 512;
        }
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for f in rd.flatten() {
                let Ok(md) = f.path().symlink_metadata() else {
                    continue;
                };
                if md.is_dir() {
                    stack.push(f.path());
                } else if seen.insert((md.dev(), md.ino())) {
                    bytes += md.blocks() * 512;
                }
            }
        }
        *out.entry(key).or_default() += bytes;
    }
    out.into_iter().collect()
}

/// Clock ticks per second of /proc times: USER_HZ, fixed at 100 in Linux's user ABI.
const USER_HZ: f64 = 100.0;

/// `process_*` metrics from /proc/self (Linux); nothing where /proc is absent, except the
/// start time.
fn process_metrics(enc: &mut Encoder, created: SystemTime) {
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    // Fields after the command name (which may hold spaces and parentheses); field 3 of
    // proc(5) (`state`) is `rest[0]`.
    let rest: Vec<&str> = stat
        .as_deref()
        .and_then(|s| s.rfind(')').map(|i| &s[i + 1..]))
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        enc.counter(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            (utime + stime) / USER_HZ,
        );
    }
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    let start = match (boot, field(22)) {
        (Some(b), Some(ticks)) => b + ticks / USER_HZ,
        _ => created
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    };
    enc.gauge(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        start,
    );
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let kb = |key: &str| {
            status.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|v| v.trim().strip_suffix("kB"))
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
        };
        if let Some(rss) = kb("VmRSS:") {
            enc.gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                rss * 1024.0,
            );
        }
        if let Some(vm) = kb("VmSize:") {
            enc.gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                vm * 1024.0,
            );
        }
    }
    if let Some(threads) = field(20) {
        enc.gauge("process_threads", "Number of OS threads.", threads);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        enc.gauge(
            "process_open_fds",
            "Number of open file descriptors.",
            fds.count() as f64,
        );
    }
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        });
    if let Some(m) = max_fds {
        let v = if m == "unlimited" {
            f64::INFINITY
        } else {
            m.parse().unwrap_or(f64::NAN)
        };
        if !v.is_nan() {
            enc.gauge(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                v,
            );
        }
    }
}

#[cfg(test)]
mod tests;
