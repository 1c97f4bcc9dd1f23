//! OTLP metrics to Prometheus series, as Prometheus 3's OTLP receiver translates them with its
//! default settings (suffixes added, names escaped to the legacy charset, no scope labels, no
//! promoted resource attributes, delta temporality refused, classic histograms).
//!
//! ```text
//!  ExportMetricsServiceRequest
//!   └ ResourceMetrics ── resource attrs: service.name (+ service.namespace) ─► job="ns/name"
//!      │                                 service.instance.id              ─► instance
//!      │                                 the others                       ─► target_info{…} = 1
//!      └ ScopeMetrics └ Metric ── names::metric_name(name, unit, kind)
//!          gauge                          ─► name{attrs}
//!          sum monotonic, cumulative      ─► name_total{attrs}     (counter)
//!          sum non-monotonic, cumulative  ─► name{attrs}           (gauge)
//!          histogram, cumulative          ─► name_bucket{le=…,"+Inf"}, name_count, name_sum
//!          summary                        ─► name{quantile=…}, name_count, name_sum
//!          delta / unspecified temporality, exponential histogram ─► every point rejected
//!  ─► Translation { batch: WriteBatch, origins (series, sample) ─► point, rejections, … }
//! ```
//!
//! Every data point of the request gets a number (request order). Samples remember the point
//! they came from so that rejections by the engine can be counted as rejected *points* in the
//! OTLP partial-success response. A point whose labels cannot be built is rejected whole
//! before any of its samples is emitted. Samples with equal label sets are merged into one
//! series, as Prometheus does. Timestamps go from nanoseconds to milliseconds by integer
//! division; the `FLAG_NO_RECORDED_VALUE` flag turns every sample of a point into the
//! staleness marker. Exemplars are dropped (counted).
//!
//! `target_info` is written per resource only when the resource has attributes besides the
//! three identifying ones and at least one of `job` / `instance` can be set; it gets a sample
//! of value 1 every half lookback delta from the earliest to the latest point timestamp of the
//! resource, plus one at the latest (at most [`MAX_TARGET_INFO_SAMPLES`], the most recent).

use std::collections::{BTreeMap, HashMap};

use o11y_tsdb::labels::Label;
use o11y_tsdb::{Sample, SeriesSamples, WriteBatch, STALE_NAN_BITS};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Metric};

use super::names::{self, MetricKind};

/// `AGGREGATION_TEMPORALITY_CUMULATIVE`.
const CUMULATIVE: i32 = 2;
/// `AGGREGATION_TEMPORALITY_DELTA`.
const DELTA: i32 = 1;
/// `DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK`.
const FLAG_NO_RECORDED_VALUE: u32 = 1;

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";

/// Most `target_info` samples written for one resource of one request.
pub const MAX_TARGET_INFO_SAMPLES: usize = 1000;

/// Translation settings.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The PromQL lookback delta: `target_info` gets a sample every half of it.
    pub lookback_delta_ms: i64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lookback_delta_ms: 5 * 60 * 1000,
        }
    }
}

/// A data point left out, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct PointRejection {
    /// The point's number in the request (request order, from 0).
    pub point: u32,
    /// What was wrong, naming the metric.
    pub reason: String,
}

/// The result of [`translate`].
#[derive(Clone, Debug, Default)]
pub struct Translation {
    pub batch: WriteBatch,
    /// Parallel to `batch.series[i].samples`: the point each sample came from (`None` for
    /// `target_info` samples).
    pub origins: Vec<Vec<Option<u32>>>,
    /// Points left out by the translation.
    pub rejections: Vec<PointRejection>,
    /// Problems that reject no point (a metric without data points, a resource whose
    /// `target_info` could not be built).
    pub warnings: Vec<String>,
    /// Data points in the request.
    pub points: u64,
    /// Exemplars dropped (the engine has no exemplar storage).
    pub exemplars_dropped: u64,
}

/// Builds series and samples while remembering where each sample came from.
#[derive(Default)]
struct Builder {
    out: Translation,
    index: HashMap<Vec<Label>, usize>,
}

impl Builder {
    fn add(&mut self, labels: Vec<Label>, sample: Sample, origin: Option<u32>) {
        let i = match self.index.get(&labels) {
            Some(&i) => i,
            None => {
                let i = self.out.batch.series.len();
                self.index.insert(labels.clone(), i);
                self.out.batch.series.push(SeriesSamples {
                    labels,
                    samples: Vec::new(),
                });
                self.out.origins.push(Vec::new());
                i
            }
        };
        self.out.batch.series[i].samples.push(sample);
        self.out.origins[i].push(origin);
    }

    fn reject(&mut self, point: u32, reason: String) {
        self.out.rejections.push(PointRejection { point, reason });
    }
}

/// The resource-level part of every label set.
struct ResourceLabels<'a> {
    attrs: &'a [KeyValue],
    job: Option<String>,
    instance: Option<String>,
}

impl<'a> ResourceLabels<'a> {
    fn new(attrs: &'a [KeyValue]) -> Self {
        let get = |k: &str| {
            attrs
                .iter()
                .find(|kv| kv.key == k)
                .map(|kv| as_string(&kv.value))
        };
        let job = get(SERVICE_NAME).map(|name| match get(SERVICE_NAMESPACE) {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        });
        ResourceLabels {
            attrs,
            job,
            instance: get(SERVICE_INSTANCE_ID),
        }
    }

    /// Labels from `attrs` (sanitized; keys colliding after sanitizing are joined with `;` in
    /// key order), then `job` / `instance`, then `extras` (which win).
    fn labels(
        &self,
        attrs: &[KeyValue],
        ignore: &[&str],
        extras: &[(&str, &str)],
    ) -> Result<Vec<Label>, names::NameError> {
        let mut pairs: Vec<(&str, String)> = attrs
            .iter()
            .filter(|kv| !ignore.contains(&kv.key.as_str()))
            .map(|kv| (kv.key.as_str(), as_string(&kv.value)))
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in pairs {
            let name = names::label_name(k)?;
            match map.get_mut(&name) {
                Some(existing) => {
                    existing.push(';');
                    existing.push_str(&v);
                }
                None => {
                    map.insert(name, v);
                }
            }
        }
        if let Some(job) = &self.job {
            map.insert("job".into(), job.clone());
        }
        if let Some(instance) = &self.instance {
            map.insert("instance".into(), instance.clone());
        }
        for (k, v) in extras {
            map.insert((*k).to_string(), (*v).to_string());
        }
        Ok(map.into_iter().map(|(n, v)| Label::new(n, v)).collect())
    }
}

/// Translates a request. Never fails: what cannot be translated is listed in
/// [`Translation::rejections`] and [`Translation::warnings`].
pub fn translate(req: &ExportMetricsServiceRequest, opts: &Options) -> Translation {
    let mut b = Builder::default();
    let mut point: u32 = 0;
    for rm in &req.resource_metrics {
        let attrs: &[KeyValue] = rm
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        let res = ResourceLabels::new(attrs);
        let mut earliest = u64::MAX;
        let mut latest = 0u64;
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                for t in point_times(m) {
                    earliest = earliest.min(t);
                    latest = latest.max(t);
                }
                let n = point_count(m);
                let first = point;
                point = point.saturating_add(n);
                translate_metric(&mut b, &res, m, first, n);
            }
        }
        if earliest != u64::MAX {
            target_info(&mut b, &res, earliest, latest, opts);
        }
    }
    b.out.points = u64::from(point);
    b.out
}

fn point_count(m: &Metric) -> u32 {
    let n = match &m.data {
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        None => 0,
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn point_times(m: &Metric) -> Vec<u64> {
    match &m.data {
        Some(metric::Data::Gauge(g)) => g.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Some(metric::Data::Sum(s)) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Some(metric::Data::Histogram(h)) => {
            h.data_points.iter().map(|p| p.time_unix_nano).collect()
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            h.data_points.iter().map(|p| p.time_unix_nano).collect()
        }
        Some(metric::Data::Summary(s)) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
        None => Vec::new(),
    }
}

fn temporality_name(t: i32) -> String {
    match t {
        0 => "UNSPECIFIED".into(),
        DELTA => "DELTA".into(),
        CUMULATIVE => "CUMULATIVE".into(),
        n => n.to_string(),
    }
}

/// OTLP nanoseconds to Prometheus milliseconds, as Prometheus converts them.
fn ms(ns: u64) -> i64 {
    (ns as i64) / 1_000_000
}

fn value(stale: bool, v: f64) -> f64 {
    if stale {
        f64::from_bits(STALE_NAN_BITS)
    } else {
        v
    }
}

/// Names a metric in messages (bounded).
fn metric_ref(m: &Metric) -> String {
    let name: String = m.name.chars().take(64).collect();
    format!("metric {name:?}")
}

fn translate_metric(b: &mut Builder, res: &ResourceLabels, m: &Metric, first: u32, n: u32) {
    let Some(data) = &m.data else {
        b.out
            .warnings
            .push(format!("{} has no data and is dropped", metric_ref(m)));
        return;
    };
    let (kind, temporality) = match data {
        metric::Data::Gauge(_) => (MetricKind::Gauge, None),
        metric::Data::Sum(s) if s.is_monotonic => (
            MetricKind::MonotonicCounter,
            Some(s.aggregation_temporality),
        ),
        metric::Data::Sum(s) => (
            MetricKind::NonMonotonicCounter,
            Some(s.aggregation_temporality),
        ),
        metric::Data::Histogram(h) => (MetricKind::Histogram, Some(h.aggregation_temporality)),
        metric::Data::ExponentialHistogram(h) => (
            MetricKind::ExponentialHistogram,
            Some(h.aggregation_temporality),
        ),
        metric::Data::Summary(_) => (MetricKind::Summary, None),
    };
    if n == 0 {
        b.out.warnings.push(format!(
            "{}: empty data points, the metric is dropped",
            metric_ref(m)
        ));
        return;
    }
    let reject_all = |b: &mut Builder, reason: String| {
        for i in 0..n {
            b.reject(first + i, format!("{} point {i}: {reason}", metric_ref(m)));
        }
    };
    if let Some(t) = temporality {
        if t != CUMULATIVE {
            reject_all(
                b,
                format!(
                    "aggregation temporality {} is not supported, only CUMULATIVE \
                     (convert deltas to cumulative before sending, e.g. with the \
                     collector's deltatocumulative processor)",
                    temporality_name(t)
                ),
            );
            return;
        }
    }
    let name = match names::metric_name(&m.name, &m.unit, kind) {
        Ok(n) => n,
        Err(e) => return reject_all(b, e.to_string()),
    };
    match data {
        metric::Data::Gauge(g) => number_points(b, res, m, &name, &g.data_points, first),
        metric::Data::Sum(s) => number_points(b, res, m, &name, &s.data_points, first),
        metric::Data::Histogram(h) => {
            for (i, p) in h.data_points.iter().enumerate() {
                let id = first + i as u32;
                b.out.exemplars_dropped += p.exemplars.len() as u64;
                let base = match res.labels(&p.attributes, &[], &[]) {
                    Ok(l) => l,
                    Err(e) => {
                        b.reject(id, format!("{} point {i}: {e}", metric_ref(m)));
                        continue;
                    }
                };
                let t = ms(p.time_unix_nano);
                let stale = p.flags & FLAG_NO_RECORDED_VALUE != 0;
                let with = |suffix: &str, extra: Option<(&str, &str)>| {
                    let full = format!("{name}{suffix}");
                    with_labels(&base, &full, extra)
                };
                if let Some(sum) = p.sum {
                    b.add(with("_sum", None), sample(t, value(stale, sum)), Some(id));
                }
                let count = p.count as f64;
                b.add(
                    with("_count", None),
                    sample(t, value(stale, count)),
                    Some(id),
                );
                let mut cumulative = 0u64;
                for (bound, c) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
                    cumulative = cumulative.wrapping_add(*c);
                    let le = format_float(*bound);
                    b.add(
                        with("_bucket", Some(("le", &le))),
                        sample(t, value(stale, cumulative as f64)),
                        Some(id),
                    );
                }
                b.add(
                    with("_bucket", Some(("le", "+Inf"))),
                    sample(t, value(stale, count)),
                    Some(id),
                );
            }
        }
        metric::Data::ExponentialHistogram(h) => {
            for (i, p) in h.data_points.iter().enumerate() {
                b.out.exemplars_dropped += p.exemplars.len() as u64;
                b.reject(
                    first + i as u32,
                    format!(
                        "{} point {i}: exponential histograms are not supported (the \
                         engine stores no native histograms); export explicit-bucket \
                         histograms instead",
                        metric_ref(m)
                    ),
                );
            }
        }
        metric::Data::Summary(s) => {
            for (i, p) in s.data_points.iter().enumerate() {
                let id = first + i as u32;
                let base = match res.labels(&p.attributes, &[], &[]) {
                    Ok(l) => l,
                    Err(e) => {
                        b.reject(id, format!("{} point {i}: {e}", metric_ref(m)));
                        continue;
                    }
                };
                let t = ms(p.time_unix_nano);
                let stale = p.flags & FLAG_NO_RECORDED_VALUE != 0;
                b.add(
                    with_labels(&base, &format!("{name}_sum"), None),
                    sample(t, value(stale, p.sum)),
                    Some(id),
                );
                b.add(
                    with_labels(&base, &format!("{name}_count"), None),
                    sample(t, value(stale, p.count as f64)),
                    Some(id),
                );
                for q in &p.quantile_values {
                    let quantile = format_float(q.quantile);
                    b.add(
                        with_labels(&base, &name, Some(("quantile", &quantile))),
                        sample(t, value(stale, q.value)),
                        Some(id),
                    );
                }
            }
        }
    }
}

fn sample(t: i64, v: f64) -> Sample {
    Sample { t, v }
}

/// `base` plus `__name__` and one extra label, both replacing labels of the same name.
fn with_labels(base: &[Label], name: &str, extra: Option<(&str, &str)>) -> Vec<Label> {
    let mut out: Vec<Label> = base
        .iter()
        .filter(|l| l.name != "__name__" && extra.is_none_or(|(k, _)| l.name != k))
        .cloned()
        .collect();
    out.push(Label::new("__name__", name));
    if let Some((k, v)) = extra {
        out.push(Label::new(k, v));
    }
    out.sort();
    out
}

fn number_points(
    b: &mut Builder,
    res: &ResourceLabels,
    m: &Metric,
    name: &str,
    points: &[opentelemetry_proto::tonic::metrics::v1::NumberDataPoint],
    first: u32,
) {
    for (i, p) in points.iter().enumerate() {
        let id = first + i as u32;
        b.out.exemplars_dropped += p.exemplars.len() as u64;
        let labels = match res.labels(&p.attributes, &[], &[("__name__", name)]) {
            Ok(l) => l,
            Err(e) => {
                b.reject(id, format!("{} point {i}: {e}", metric_ref(m)));
                continue;
            }
        };
        let v = match p.value {
            Some(number_data_point::Value::AsDouble(v)) => v,
            Some(number_data_point::Value::AsInt(v)) => v as f64,
            None => 0.0,
        };
        let stale = p.flags & FLAG_NO_RECORDED_VALUE != 0;
        b.add(
            labels,
            sample(ms(p.time_unix_nano), value(stale, v)),
            Some(id),
        );
    }
}

fn target_info(b: &mut Builder, res: &ResourceLabels, earliest: u64, latest: u64, opts: &Options) {
    let identifying = [SERVICE_NAMESPACE, SERVICE_NAME, SERVICE_INSTANCE_ID];
    let others = res
        .attrs
        .iter()
        .filter(|kv| !identifying.contains(&kv.key.as_str()))
        .count();
    if others == 0 || (res.job.is_none() && res.instance.is_none()) {
        return;
    }
    let labels = match res.labels(res.attrs, &identifying, &[("__name__", "target_info")]) {
        Ok(l) => l,
        Err(e) => {
            b.out
                .warnings
                .push(format!("resource attributes: {e}; no target_info written"));
            return;
        }
    };
    let interval_ns = (opts.lookback_delta_ms.max(2) as u64 / 2).saturating_mul(1_000_000);
    let span = latest.saturating_sub(earliest);
    let steps = span.div_ceil(interval_ns);
    // The first timestamp of the series, moved forward when the span would need more than
    // MAX_TARGET_INFO_SAMPLES samples (the most recent ones are kept).
    let skip = steps.saturating_sub(MAX_TARGET_INFO_SAMPLES as u64 - 1);
    if skip > 0 {
        b.out.warnings.push(format!(
            "resource points span {} s: target_info written for the last {} samples only",
            span / 1_000_000_000,
            MAX_TARGET_INFO_SAMPLES
        ));
    }
    let mut t = earliest + skip * interval_ns;
    let mut last = None;
    while t < latest {
        b.add(labels.clone(), sample(ms(t), 1.0), None);
        last = Some(ms(t));
        t = t.saturating_add(interval_ns);
    }
    if last.is_none_or(|l| l < ms(latest)) {
        b.add(labels, sample(ms(latest), 1.0), None);
    }
}

/// An attribute value as a label value, spelled as the OpenTelemetry collector's pdata
/// `Value.AsString` spells it (which Prometheus uses).
pub fn as_string(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(other) => {
            let mut out = String::new();
            write_value(&mut out, other, false);
            out
        }
    }
}

/// Writes a value; nested values (`json`) are JSON, top-level strings are raw.
fn write_value(out: &mut String, v: &any_value::Value, json: bool) {
    use any_value::Value::*;
    match v {
        StringValue(s) if json => out.push_str(&serde_json::Value::from(s.as_str()).to_string()),
        StringValue(s) => out.push_str(s),
        BoolValue(b) => out.push_str(if *b { "true" } else { "false" }),
        IntValue(i) => out.push_str(&i.to_string()),
        DoubleValue(d) => {
            let s = json_float(*d);
            if json && !d.is_finite() {
                out.push_str(&serde_json::Value::from(s).to_string());
            } else {
                out.push_str(&s);
            }
        }
        BytesValue(bytes) => {
            let s = super::json::base64_encode(bytes);
            if json {
                out.push('"');
                out.push_str(&s);
                out.push('"');
            } else {
                out.push_str(&s);
            }
        }
        ArrayValue(a) => {
            out.push('[');
            for (i, x) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match &x.value {
                    Some(x) => write_value(out, x, true),
                    None => out.push_str("null"),
                }
            }
            out.push(']');
        }
        KvlistValue(kv) => {
            // Go's JSON encoder writes map keys sorted; a repeated key keeps its last value.
            let mut m: BTreeMap<&str, Option<&any_value::Value>> = BTreeMap::new();
            for e in &kv.values {
                m.insert(&e.key, e.value.as_ref().and_then(|v| v.value.as_ref()));
            }
            out.push('{');
            for (i, (k, x)) in m.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::from(k).to_string());
                out.push(':');
                match x {
                    Some(x) => write_value(out, x, true),
                    None => out.push_str("null"),
                }
            }
            out.push('}');
        }
        StringValueStrindex(i) => out.push_str(&i.to_string()),
    }
}

/// A float as ECMAScript (and Go's pdata) print it: shortest round-trip digits, exponent form
/// below 1e-6 and from 1e21 (`1e-7`, `1e+21`). Non-finite values read as pdata writes them.
fn json_float(f: f64) -> String {
    if !f.is_finite() {
        let g = if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "+Inf"
        } else {
            "-Inf"
        };
        return format!("json: unsupported value: {g}");
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    } else {
        format!("{f}")
    }
}

/// A float as a label value (`le`, `quantile`): shortest round-trip digits, never an exponent,
/// `+Inf` / `-Inf` / `NaN` for the non-finite values.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests;
