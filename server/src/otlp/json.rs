//! OTLP/JSON: decoding `ExportMetricsServiceRequest` from JSON into the protobuf structs, and
//! encoding the response.
//!
//! ```text
//!  body ─► serde_json::Value (nesting bounded by serde_json) ─► walk, field by field
//!        ─► ExportMetricsServiceRequest (the same prost structs the protobuf path fills)
//! ```
//!
//! The OTLP/JSON rules on top of the proto3 JSON mapping, all followed here:
//! field names in lowerCamelCase (the original snake_case names are accepted too);
//! `traceId` / `spanId` as hex strings (not base64); other `bytes` as base64; 64-bit integers
//! as JSON numbers or decimal strings; enums as numbers or their names; doubles as numbers or
//! `"NaN"` / `"Infinity"` / `"-Infinity"`; `null` as the default; unknown fields ignored.
//! A value of the wrong JSON type is an error naming its path in the document
//! (`resourceMetrics[0].scopeMetrics[0].metrics[2].sum.dataPoints[1].asInt`).

use std::fmt;

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point, metric, number_data_point, summary_data_point,
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Map, Value};

/// Why a JSON body could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JsonError {
    #[error("invalid JSON: {0}")]
    Syntax(String),
    #[error("invalid OTLP/JSON at {path}: {message}")]
    Field { path: String, message: String },
}

/// A location in the document, built on the stack and rendered only for errors.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("$"),
            Path::Field(p, name) => match p {
                Path::Root => f.write_str(name),
                _ => write!(f, "{p}.{name}"),
            },
            Path::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

fn err<T>(path: &Path, message: impl Into<String>) -> Result<T, JsonError> {
    Err(JsonError::Field {
        path: path.to_string(),
        message: message.into(),
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One JSON object with its location.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: &'a Path<'a>,
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, path: &'a Path<'a>) -> Result<Obj<'a>, JsonError> {
        match v {
            Value::Object(map) => Ok(Obj { map, path }),
            other => err(path, format!("expected an object, found {}", kind(other))),
        }
    }

    /// The field by its lowerCamelCase or its proto name; `null` counts as absent.
    fn get(&self, camel: &'static str, snake: &'static str) -> Option<(&'a Value, &'static str)> {
        self.map
            .get(camel)
            .map(|v| (v, camel))
            .or_else(|| self.map.get(snake).map(|v| (v, snake)))
            .filter(|(v, _)| !v.is_null())
    }
}

macro_rules! field {
    ($obj:expr, $camel:expr, $snake:expr, |$v:ident, $p:ident| $body:expr) => {
        match $obj.get($camel, $snake) {
            Some(($v, name)) => {
                let $p = Path::Field($obj.path, name);
                let $p = &$p;
                Some($body?)
            }
            None => None,
        }
    };
}

fn array<'a, T>(
    v: &'a Value,
    path: &Path,
    mut each: impl FnMut(&'a Value, &Path) -> Result<T, JsonError>,
) -> Result<Vec<T>, JsonError> {
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| each(x, &Path::Index(path, i)))
            .collect(),
        other => err(path, format!("expected an array, found {}", kind(other))),
    }
}

fn string(v: &Value, path: &Path) -> Result<String, JsonError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => err(path, format!("expected a string, found {}", kind(other))),
    }
}

fn boolean(v: &Value, path: &Path) -> Result<bool, JsonError> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => err(path, format!("expected a boolean, found {}", kind(other))),
    }
}

/// An integer given as a JSON number or a decimal string, within `[min, max]`.
fn integer(v: &Value, path: &Path, min: i128, max: i128) -> Result<i128, JsonError> {
    let n: Option<i128> = match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1.8e19)
                    .map(|f| f as i128)
            }),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        other => return err(path, format!("expected an integer, found {}", kind(other))),
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        Some(n) => err(path, format!("integer {n} out of range")),
        None => err(path, format!("expected an integer, found {v}")),
    }
}

fn u64_(v: &Value, path: &Path) -> Result<u64, JsonError> {
    integer(v, path, 0, u64::MAX as i128).map(|n| n as u64)
}

fn i64_(v: &Value, path: &Path) -> Result<i64, JsonError> {
    integer(v, path, i64::MIN as i128, i64::MAX as i128).map(|n| n as i64)
}

fn u32_(v: &Value, path: &Path) -> Result<u32, JsonError> {
    integer(v, path, 0, u32::MAX as i128).map(|n| n as u32)
}

fn i32_(v: &Value, path: &Path) -> Result<i32, JsonError> {
    integer(v, path, i32::MIN as i128, i32::MAX as i128).map(|n| n as i32)
}

fn double(v: &Value, path: &Path) -> Result<f64, JsonError> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| err(path, "number out of range"), Ok),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .parse::<f64>()
                .or_else(|_| err(path, format!("expected a number, found {other:?}"))),
        },
        other => err(path, format!("expected a number, found {}", kind(other))),
    }
}

fn hex(v: &Value, path: &Path) -> Result<Vec<u8>, JsonError> {
    let s = string(v, path)?;
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return err(path, "expected a hex string of even length");
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    b.chunks(2)
        .map(|p| match (digit(p[0]), digit(p[1])) {
            (Some(h), Some(l)) => Ok(h << 4 | l),
            _ => err(path, "expected a hex string"),
        })
        .collect()
}

fn base64(v: &Value, path: &Path) -> Result<Vec<u8>, JsonError> {
    let s = string(v, path)?;
    base64_decode(&s).map_or_else(|| err(path, "expected base64"), Ok)
}

/// An enum given as its number or its name (`names[i]` is the name of `i`).
fn enumeration(v: &Value, path: &Path, names: &[&str]) -> Result<i32, JsonError> {
    match v {
        Value::String(s) if s.parse::<i64>().is_err() => match names.iter().position(|n| n == s) {
            Some(i) => Ok(i as i32),
            None => err(path, format!("unknown enum value {s:?}")),
        },
        _ => i32_(v, path),
    }
}

const TEMPORALITY: [&str; 3] = [
    "AGGREGATION_TEMPORALITY_UNSPECIFIED",
    "AGGREGATION_TEMPORALITY_DELTA",
    "AGGREGATION_TEMPORALITY_CUMULATIVE",
];

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest`.
pub fn decode_request(body: &[u8]) -> Result<ExportMetricsServiceRequest, JsonError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| JsonError::Syntax(e.to_string()))?;
    let root = Path::Root;
    let o = Obj::new(&v, &root)?;
    Ok(ExportMetricsServiceRequest {
        resource_metrics: field!(o, "resourceMetrics", "resource_metrics", |v, p| array(
            v,
            p,
            resource_metrics
        ))
        .unwrap_or_default(),
    })
}

fn resource_metrics(v: &Value, path: &Path) -> Result<ResourceMetrics, JsonError> {
    let o = Obj::new(v, path)?;
    Ok(ResourceMetrics {
        resource: field!(o, "resource", "resource", |v, p| resource(v, p)),
        scope_metrics: field!(o, "scopeMetrics", "scope_metrics", |v, p| array(
            v,
            p,
            scope_metrics
        ))
        .unwrap_or_default(),
        schema_url: field!(o, "schemaUrl", "schema_url", |v, p| string(v, p)).unwrap_or_default(),
    })
}

fn resource(v: &Value, path: &Path) -> Result<Resource, JsonError> {
    let o = Obj::new(v, path)?;
    Ok(Resource {
        attributes: attributes(&o, "attributes", "attributes")?,
        dropped_attributes_count: field!(
            o,
            "droppedAttributesCount",
            "dropped_attributes_count",
            |v, p| u32_(v, p)
        )
        .unwrap_or_default(),
        entity_refs: Vec::new(),
    })
}

fn scope_metrics(v: &Value, path: &Path) -> Result<ScopeMetrics, JsonError> {
    let o = Obj::new(v, path)?;
    Ok(ScopeMetrics {
        scope: field!(o, "scope", "scope", |v, p| scope(v, p)),
        metrics: field!(o, "metrics", "metrics", |v, p| array(v, p, metric_)).unwrap_or_default(),
        schema_url: field!(o, "schemaUrl", "schema_url", |v, p| string(v, p)).unwrap_or_default(),
    })
}

fn scope(v: &Value, path: &Path) -> Result<InstrumentationScope, JsonError> {
    let o = Obj::new(v, path)?;
    Ok(InstrumentationScope {
        name: field!(o, "name", "name", |v, p| string(v, p)).unwrap_or_default(),
        version: field!(o, "version", "version", |v, p| string(v, p)).unwrap_or_default(),
        attributes: attributes(&o, "attributes", "attributes")?,
        dropped_attributes_count: field!(
            o,
            "droppedAttributesCount",
            "dropped_attributes_count",
            |v, p| u32_(v, p)
        )
        .unwrap_or_default(),
    })
}

fn attributes(
    o: &Obj,
    camel: &'static str,
    snake: &'static str,
) -> Result<Vec<KeyValue>, JsonError> {
    Ok(field!(o, camel, snake, |v, p| array(v, p, key_value)).unwrap_or_default())
}

fn key_value(v: &Value, path: &Path) -> Result<KeyValue, JsonError> {
    let o = Obj::new(v, path)?;
    Ok(KeyValue {
        key: field!(o, "key", "key", |v, p| string(v, p)).unwrap_or_default(),
        value: field!(o, "value", "value", |v, p| any_value_(v, p)),
        key_strindex: 0,
    })
}

fn any_value_(v: &Value, path: &Path) -> Result<AnyValue, JsonError> {
    use any_value::Value as V;
    let o = Obj::new(v, path)?;
    let value = if let Some(s) = field!(o, "stringValue", "string_value", |v, p| string(v, p)) {
        Some(V::StringValue(s))
    } else if let Some(b) = field!(o, "boolValue", "bool_value", |v, p| boolean(v, p)) {
        Some(V::BoolValue(b))
    } else if let Some(i) = field!(o, "intValue", "int_value", |v, p| i64_(v, p)) {
        Some(V::IntValue(i))
    } else if let Some(d) = field!(o, "doubleValue", "double_value", |v, p| double(v, p)) {
        Some(V::DoubleValue(d))
    } else if let Some(a) = field!(o, "arrayValue", "array_value", |v, p| {
        let a = Obj::new(v, p)?;
        Ok::<_, JsonError>(ArrayValue {
            values: field!(a, "values", "values", |v, p| array(v, p, any_value_))
                .unwrap_or_default(),
        })
    }) {
        Some(V::ArrayValue(a))
    } else if let Some(kv) = field!(o, "kvlistValue", "kvlist_value", |v, p| {
        let a = Obj::new(v, p)?;
        Ok::<_, JsonError>(KeyValueList {
            values: field!(a, "values", "values", |v, p| array(v, p, key_value))
                .unwrap_or_default(),
        })
    }) {
        Some(V::KvlistValue(kv))
    } else {
        field!(o, "bytesValue", "bytes_value", |v, p| base64(v, p)).map(V::BytesValue)
    };
    Ok(AnyValue { value })
}

fn metric_(v: &Value, path: &Path) -> Result<Metric, JsonError> {
    let o = Obj::new(v, path)?;
    let data = if let Some(g) = field!(o, "gauge", "gauge", |v, p| {
        let g = Obj::new(v, p)?;
        Ok::<_, JsonError>(Gauge {
            data_points: field!(g, "dataPoints", "data_points", |v, p| array(
                v,
                p,
                number_point
            ))
            .unwrap_or_default(),
        })
    }) {
        Some(metric::Data::Gauge(g))
    } else if let Some(s) = field!(o, "sum", "sum", |v, p| {
        let s = Obj::new(v, p)?;
        Ok::<_, JsonError>(Sum {
            data_points: field!(s, "dataPoints", "data_points", |v, p| array(
                v,
                p,
                number_point
            ))
            .unwrap_or_default(),
            aggregation_temporality: temporality(&s)?,
            is_monotonic: field!(s, "isMonotonic", "is_monotonic", |v, p| boolean(v, p))
                .unwrap_or_default(),
        })
    }) {
        Some(metric::Data::Sum(s))
    } else if let Some(h) = field!(o, "histogram", "histogram", |v, p| {
        let h = Obj::new(v, p)?;
        Ok::<_, JsonError>(Histogram {
            data_points: field!(h, "dataPoints", "data_points", |v, p| array(
                v,
                p,
                histogram_point
            ))
            .unwrap_or_default(),
            aggregation_temporality: temporality(&h)?,
        })
    }) {
        Some(metric::Data::Histogram(h))
    } else if let Some(h) = field!(
        o,
        "exponentialHistogram",
        "exponential_histogram",
        |v, p| {
            let h = Obj::new(v, p)?;
            Ok::<_, JsonError>(ExponentialHistogram {
                data_points: field!(h, "dataPoints", "data_points", |v, p| array(
                    v,
                    p,
                    exponential_point
                ))
                .unwrap_or_default(),
                aggregation_temporality: temporality(&h)?,
            })
        }
    ) {
        Some(metric::Data::ExponentialHistogram(h))
    } else {
        field!(o, "summary", "summary", |v, p| {
            let s = Obj::new(v, p)?;
            Ok::<_, JsonError>(Summary {
                data_points: field!(s, "dataPoints", "data_points", |v, p| array(
                    v,
                    p,
                    summary_point
                ))
                .unwrap_or_default(),
            })
        })
        .map(metric::Data::Summary)
    };
    Ok(Metric {
        name: field!(o, "name", "name", |v, p| string(v, p)).unwrap_or_default(),
        description: field!(o, "description", "description", |v, p| string(v, p))
            .unwrap_or_default(),
        unit: field!(o, "unit", "unit", |v, p| string(v, p)).unwrap_or_default(),
        metadata: attributes(&o, "metadata", "metadata")?,
        data,
    })
}

fn temporality(o: &Obj) -> Result<i32, JsonError> {
    Ok(field!(
        o,
        "aggregationTemporality",
        "aggregation_temporality",
        |v, p| enumeration(v, p, &TEMPORALITY)
    )
    .unwrap_or_default())
}

/// The fields every data point has.
struct Common {
    attributes: Vec<KeyValue>,
    start: u64,
    time: u64,
    flags: u32,
    exemplars: Vec<Exemplar>,
}

fn common(o: &Obj) -> Result<Common, JsonError> {
    Ok(Common {
        attributes: attributes(o, "attributes", "attributes")?,
        start: field!(o, "startTimeUnixNano", "start_time_unix_nano", |v, p| u64_(
            v, p
        ))
        .unwrap_or_default(),
        time: field!(o, "timeUnixNano", "time_unix_nano", |v, p| u64_(v, p)).unwrap_or_default(),
        flags: field!(o, "flags", "flags", |v, p| u32_(v, p)).unwrap_or_default(),
        exemplars: field!(o, "exemplars", "exemplars", |v, p| array(v, p, exemplar_))
            .unwrap_or_default(),
    })
}

fn number_point(v: &Value, path: &Path) -> Result<NumberDataPoint, JsonError> {
    let o = Obj::new(v, path)?;
    let c = common(&o)?;
    let value = if let Some(d) = field!(o, "asDouble", "as_double", |v, p| double(v, p)) {
        Some(number_data_point::Value::AsDouble(d))
    } else {
        field!(o, "asInt", "as_int", |v, p| i64_(v, p)).map(number_data_point::Value::AsInt)
    };
    Ok(NumberDataPoint {
        attributes: c.attributes,
        start_time_unix_nano: c.start,
        time_unix_nano: c.time,
        exemplars: c.exemplars,
        flags: c.flags,
        value,
    })
}

fn histogram_point(v: &Value, path: &Path) -> Result<HistogramDataPoint, JsonError> {
    let o = Obj::new(v, path)?;
    let c = common(&o)?;
    Ok(HistogramDataPoint {
        attributes: c.attributes,
        start_time_unix_nano: c.start,
        time_unix_nano: c.time,
        count: field!(o, "count", "count", |v, p| u64_(v, p)).unwrap_or_default(),
        sum: field!(o, "sum", "sum", |v, p| double(v, p)),
        bucket_counts: field!(o, "bucketCounts", "bucket_counts", |v, p| array(v, p, u64_))
            .unwrap_or_default(),
        explicit_bounds: field!(o, "explicitBounds", "explicit_bounds", |v, p| array(
            v, p, double
        ))
        .unwrap_or_default(),
        exemplars: c.exemplars,
        flags: c.flags,
        min: field!(o, "min", "min", |v, p| double(v, p)),
        max: field!(o, "max", "max", |v, p| double(v, p)),
    })
}

fn buckets(v: &Value, path: &Path) -> Result<exponential_histogram_data_point::Buckets, JsonError> {
    let o = Obj::new(v, path)?;
    Ok(exponential_histogram_data_point::Buckets {
        offset: field!(o, "offset", "offset", |v, p| i32_(v, p)).unwrap_or_default(),
        bucket_counts: field!(o, "bucketCounts", "bucket_counts", |v, p| array(v, p, u64_))
            .unwrap_or_default(),
    })
}

fn exponential_point(v: &Value, path: &Path) -> Result<ExponentialHistogramDataPoint, JsonError> {
    let o = Obj::new(v, path)?;
    let c = common(&o)?;
    Ok(ExponentialHistogramDataPoint {
        attributes: c.attributes,
        start_time_unix_nano: c.start,
        time_unix_nano: c.time,
        count: field!(o, "count", "count", |v, p| u64_(v, p)).unwrap_or_default(),
        sum: field!(o, "sum", "sum", |v, p| double(v, p)),
        scale: field!(o, "scale", "scale", |v, p| i32_(v, p)).unwrap_or_default(),
        zero_count: field!(o, "zeroCount", "zero_count", |v, p| u64_(v, p)).unwrap_or_default(),
        positive: field!(o, "positive", "positive", |v, p| buckets(v, p)),
        negative: field!(o, "negative", "negative", |v, p| buckets(v, p)),
        flags: c.flags,
        exemplars: c.exemplars,
        min: field!(o, "min", "min", |v, p| double(v, p)),
        max: field!(o, "max", "max", |v, p| double(v, p)),
        zero_threshold: field!(o, "zeroThreshold", "zero_threshold", |v, p| double(v, p))
            .unwrap_or_default(),
    })
}

fn summary_point(v: &Value, path: &Path) -> Result<SummaryDataPoint, JsonError> {
    let o = Obj::new(v, path)?;
    let c = common(&o)?;
    Ok(SummaryDataPoint {
        attributes: c.attributes,
        start_time_unix_nano: c.start,
        time_unix_nano: c.time,
        count: field!(o, "count", "count", |v, p| u64_(v, p)).unwrap_or_default(),
        sum: field!(o, "sum", "sum", |v, p| double(v, p)).unwrap_or_default(),
        quantile_values: field!(o, "quantileValues", "quantile_values", |v, p| array(
            v,
            p,
            |v, p| {
                let q = Obj::new(v, p)?;
                Ok(summary_data_point::ValueAtQuantile {
                    quantile: field!(q, "quantile", "quantile", |v, p| double(v, p))
                        .unwrap_or_default(),
                    value: field!(q, "value", "value", |v, p| double(v, p)).unwrap_or_default(),
                })
            }
        ))
        .unwrap_or_default(),
        flags: c.flags,
    })
}

fn exemplar_(v: &Value, path: &Path) -> Result<Exemplar, JsonError> {
    let o = Obj::new(v, path)?;
    let value = if let Some(d) = field!(o, "asDouble", "as_double", |v, p| double(v, p)) {
        Some(exemplar::Value::AsDouble(d))
    } else {
        field!(o, "asInt", "as_int", |v, p| i64_(v, p)).map(exemplar::Value::AsInt)
    };
    Ok(Exemplar {
        filtered_attributes: attributes(&o, "filteredAttributes", "filtered_attributes")?,
        time_unix_nano: field!(o, "timeUnixNano", "time_unix_nano", |v, p| u64_(v, p))
            .unwrap_or_default(),
        span_id: field!(o, "spanId", "span_id", |v, p| hex(v, p)).unwrap_or_default(),
        trace_id: field!(o, "traceId", "trace_id", |v, p| hex(v, p)).unwrap_or_default(),
        value,
    })
}

/// Encodes a response as OTLP/JSON: `{}` when everything was accepted, otherwise
/// `{"partialSuccess":{"rejectedDataPoints":"N","errorMessage":"…"}}` (64-bit integers as
/// strings, as proto3 JSON writes them).
pub fn encode_response(resp: &ExportMetricsServiceResponse) -> Vec<u8> {
    let mut root = Map::new();
    if let Some(ps) = &resp.partial_success {
        let mut m = Map::new();
        if ps.rejected_data_points != 0 {
            m.insert(
                "rejectedDataPoints".into(),
                Value::String(ps.rejected_data_points.to_string()),
            );
        }
        if !ps.error_message.is_empty() {
            m.insert(
                "errorMessage".into(),
                Value::String(ps.error_message.clone()),
            );
        }
        root.insert("partialSuccess".into(), Value::Object(m));
    }
    Value::Object(root).to_string().into_bytes()
}

/// Encodes a `google.rpc.Status` as JSON (`{"code":3,"message":"…"}`).
pub fn encode_status(code: i32, message: &str) -> Vec<u8> {
    serde_json::json!({ "code": code, "message": message })
        .to_string()
        .into_bytes()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard or URL-safe base64, padded or not; `None` if malformed.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for n in 0..20u8 {
            let b: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let e = base64_encode(&b);
            assert_eq!(base64_decode(&e).unwrap(), b);
        }
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("a*==").is_none());
    }

    #[test]
    fn full_request_decodes() {
        let body = br#"{
          "resourceMetrics": [{
            "resource": {"attributes": [
              {"key": "service.name", "value": {"stringValue": "checkout"}},
              {"key": "pid", "value": {"intValue": "42"}},
              {"key": "ratio", "value": {"doubleValue": 0.5}},
              {"key": "ok", "value": {"boolValue": true}},
              {"key": "raw", "value": {"bytesValue": "aGVsbG8="}},
              {"key": "list", "value": {"arrayValue": {"values": [{"intValue": 1}]}}},
              {"key": "map", "value": {"kvlistValue": {"values": [{"key": "a", "value": {"stringValue": "b"}}]}}}
            ]},
            "scope_metrics": [{
              "scope": {"name": "lib", "version": "1.0"},
              "metrics": [
                {"name": "g", "unit": "1", "gauge": {"dataPoints": [
                  {"timeUnixNano": "1700000000000000000", "asDouble": "NaN", "flags": 1}
                ]}},
                {"name": "c", "sum": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                  "isMonotonic": true, "dataPoints": [
                  {"time_unix_nano": 1700000000000000000, "asInt": "9007199254740993",
                   "exemplars": [{"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174", "asDouble": 1.5}]}
                ]}},
                {"name": "h", "histogram": {"aggregationTemporality": 2, "dataPoints": [
                  {"timeUnixNano": "1", "count": "3", "sum": 1.5, "bucketCounts": ["1", 2], "explicitBounds": [0.5, "Infinity"]}
                ]}},
                {"name": "s", "summary": {"dataPoints": [
                  {"timeUnixNano": "1", "count": 2, "sum": 3, "quantileValues": [{"quantile": 0.5, "value": 1}]}
                ]}},
                {"name": "e", "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": [
                  {"scale": -2, "positive": {"offset": -1, "bucketCounts": [1]}}
                ]}},
                {"name": "unknown-fields-ignored", "somethingNew": {"x": 1}}
              ]
            }]
          }]
        }"#;
        let r = decode_request(body).unwrap();
        let rm = &r.resource_metrics[0];
        let attrs = &rm.resource.as_ref().unwrap().attributes;
        assert_eq!(attrs.len(), 7);
        assert_eq!(
            attrs[1].value.as_ref().unwrap().value,
            Some(any_value::Value::IntValue(42))
        );
        assert_eq!(
            attrs[4].value.as_ref().unwrap().value,
            Some(any_value::Value::BytesValue(b"hello".to_vec()))
        );
        let sm = &rm.scope_metrics[0];
        assert_eq!(sm.scope.as_ref().unwrap().version, "1.0");
        let Some(metric::Data::Gauge(g)) = &sm.metrics[0].data else {
            panic!("gauge expected")
        };
        assert_eq!(g.data_points[0].time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(g.data_points[0].flags, 1);
        assert!(matches!(
            g.data_points[0].value,
            Some(number_data_point::Value::AsDouble(v)) if v.is_nan()
        ));
        let Some(metric::Data::Sum(s)) = &sm.metrics[1].data else {
            panic!("sum expected")
        };
        assert_eq!(s.aggregation_temporality, 2);
        assert!(s.is_monotonic);
        // A 64-bit integer beyond f64 precision survives as a string.
        assert_eq!(
            s.data_points[0].value,
            Some(number_data_point::Value::AsInt(9_007_199_254_740_993))
        );
        let ex = &s.data_points[0].exemplars[0];
        assert_eq!(ex.trace_id.len(), 16);
        assert_eq!(ex.trace_id[0], 0x5b);
        assert_eq!(
            ex.span_id,
            vec![0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]
        );
        let Some(metric::Data::Histogram(h)) = &sm.metrics[2].data else {
            panic!("histogram expected")
        };
        assert_eq!(h.data_points[0].bucket_counts, vec![1, 2]);
        assert_eq!(h.data_points[0].explicit_bounds, vec![0.5, f64::INFINITY]);
        assert_eq!(h.data_points[0].sum, Some(1.5));
        let Some(metric::Data::Summary(su)) = &sm.metrics[3].data else {
            panic!("summary expected")
        };
        assert_eq!(su.data_points[0].quantile_values[0].quantile, 0.5);
        let Some(metric::Data::ExponentialHistogram(e)) = &sm.metrics[4].data else {
            panic!("exponential histogram expected")
        };
        assert_eq!(e.aggregation_temporality, 1);
        assert_eq!(e.data_points[0].scale, -2);
        assert_eq!(e.data_points[0].positive.as_ref().unwrap().offset, -1);
        assert!(sm.metrics[5].data.is_none());
    }

    #[test]
    fn errors_name_the_path() {
        let e = decode_request(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","sum":{"dataPoints":[{"asInt":"1.5"}]}}]}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid OTLP/JSON at resourceMetrics[0].scopeMetrics[0].metrics[0].sum.dataPoints[0].asInt: expected an integer, found \"1.5\""
        );
        let e = decode_request(br#"{"resourceMetrics":{}}"#).unwrap_err();
        assert!(
            e.to_string().contains("resourceMetrics: expected an array"),
            "{e}"
        );
        let e = decode_request(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"aggregationTemporality":"SIDEWAYS"}}]}]}]}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("unknown enum value \"SIDEWAYS\""),
            "{e}"
        );
        let e = decode_request(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"exemplars":[{"traceId":"zz"}]}]}}]}]}]}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("traceId: expected a hex string"),
            "{e}"
        );
        assert!(matches!(
            decode_request(b"{not json"),
            Err(JsonError::Syntax(_))
        ));
        assert!(decode_request(b"[]").is_err());
        // Nesting beyond serde_json's limit is an error, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(decode_request(deep.as_bytes()).is_err());
        // Out of range.
        let e = decode_request(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"flags":-1}]}}]}]}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
    }

    #[test]
    fn nulls_and_empty_documents_are_defaults() {
        assert_eq!(
            decode_request(b"{}").unwrap(),
            ExportMetricsServiceRequest::default()
        );
        assert_eq!(
            decode_request(br#"{"resourceMetrics":null}"#).unwrap(),
            ExportMetricsServiceRequest::default()
        );
    }

    #[test]
    fn responses_encode() {
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess;
        assert_eq!(
            encode_response(&ExportMetricsServiceResponse::default()),
            b"{}"
        );
        let r = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 3,
                error_message: "bad".into(),
            }),
        };
        let v: Value = serde_json::from_slice(&encode_response(&r)).unwrap();
        assert_eq!(v["partialSuccess"]["rejectedDataPoints"], "3");
        assert_eq!(v["partialSuccess"]["errorMessage"], "bad");
    }
}
