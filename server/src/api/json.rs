//! Response envelopes and value encoding, byte-compatible with Prometheus's API.
//!
//! ```text
//!   success: {"status":"success","data":<data>,"warnings":[..],"infos":[..]}
//!            (warnings/infos omitted when empty)
//!   error:   {"status":"error","errorType":"bad_data","error":"<msg>"}  + HTTP status
//! ```
//!
//! Results are written by hand into one `String` rather than through `serde_json`: the field
//! order matches Prometheus's, large matrices cost no intermediate tree, and strings are
//! escaped as Go's `encoding/json` does (`<`, `>`, `&`, U+2028, U+2029 as `\u` escapes).
//! Sample values are strings formatted as Prometheus's `MarshalFloat` does (Go's
//! `strconv.FormatFloat(v, 'f', -1, 64)`, switching to `'e'` below 1e-6 and from 1e21;
//! `"+Inf"`, `"-Inf"`, `"NaN"`); timestamps are seconds with three decimals when not whole.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use o11y_query::promql::value::{format_float, AnnotationKind, Annotations, Value};
use o11y_query::promql::QueryError;
use o11y_tsdb::labels::Labels;

/// Most warnings (and, separately, infos) returned; the rest are summarised in one line, as
/// Prometheus's `AsStrings(query, 10, 10)`.
const MAX_ANNOTATIONS: usize = 10;

/// Prometheus's `errorType`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    /// Invalid request (HTTP 400).
    BadData,
    /// The query failed while running (HTTP 422).
    Execution,
    /// The query ran out of time (HTTP 503).
    Timeout,
    /// The server cannot serve the request now, e.g. disabled admin API (HTTP 503).
    Unavailable,
    /// Anything else (HTTP 500).
    Internal,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Unavailable => "unavailable",
            ErrorType::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Timeout | ErrorType::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An API error: its type and message, plus annotations gathered before the failure.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub typ: ErrorType,
    pub msg: String,
    pub warnings: Vec<String>,
}

impl ApiError {
    pub fn new(typ: ErrorType, msg: impl Into<String>) -> ApiError {
        ApiError {
            typ,
            msg: msg.into(),
            warnings: Vec::new(),
        }
    }

    pub fn bad_data(msg: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::BadData, msg)
    }

    pub fn internal(msg: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::Internal, msg)
    }

    pub fn unavailable(msg: impl Into<String>) -> ApiError {
        ApiError::new(ErrorType::Unavailable, msg)
    }

    /// Prometheus's `invalidParamError`: `invalid parameter "<name>": <msg>` (bad_data).
    pub fn invalid_param(name: &str, msg: String) -> ApiError {
        ApiError::bad_data(format!("invalid parameter {}: {msg}", go_quote(name)))
    }

    /// An error returned by running a query. As Prometheus's `returnAPIError`, everything is
    /// `execution` except timeouts and storage failures; parse and type errors are reported
    /// before evaluation (see `prom.rs`) as invalid `query` parameters.
    pub fn from_exec(e: QueryError) -> ApiError {
        let typ = match e {
            QueryError::Timeout(_) => ErrorType::Timeout,
            QueryError::Storage(_) => ErrorType::Internal,
            QueryError::Parse(_) | QueryError::TooManyPoints { .. } => ErrorType::BadData,
            QueryError::BadData(_) | QueryError::Execution(_) | QueryError::TooManySamples(_) => {
                ErrorType::Execution
            }
        };
        ApiError::new(typ, e.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.typ.as_str(), self.msg)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut s = String::from(r#"{"status":"error","errorType":"#);
        push_str(&mut s, self.typ.as_str());
        s.push_str(r#","error":"#);
        push_str(&mut s, &self.msg);
        push_str_list(&mut s, "warnings", &self.warnings);
        s.push('}');
        json_response(self.typ.status(), s)
    }
}

/// A successful response: `data` is already-encoded JSON.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Success {
    pub data: String,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl Success {
    pub fn new(data: String) -> Success {
        Success {
            data,
            ..Success::default()
        }
    }

    /// `data` serialized with serde (for small fixed-shape payloads).
    pub fn serialize<T: serde::Serialize>(data: &T) -> Result<Success, ApiError> {
        serde_json::to_string(data)
            .map(Success::new)
            .map_err(|e| ApiError::internal(format!("error encoding response: {e}")))
    }
}

impl IntoResponse for Success {
    fn into_response(self) -> Response {
        let mut s = String::with_capacity(self.data.len() + 64);
        s.push_str(r#"{"status":"success","data":"#);
        s.push_str(&self.data);
        push_str_list(&mut s, "warnings", &self.warnings);
        push_str_list(&mut s, "infos", &self.infos);
        s.push('}');
        json_response(StatusCode::OK, s)
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Appends `,"<key>":[...]` unless `list` is empty.
fn push_str_list(s: &mut String, key: &str, list: &[String]) {
    if list.is_empty() {
        return;
    }
    s.push(',');
    push_str(s, key);
    s.push_str(":[");
    for (i, w) in list.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_str(s, w);
    }
    s.push(']');
}

/// Splits annotations into rendered warnings and infos (at most ten of each, then a
/// `"N more warning annotations omitted"` line), as Prometheus's API does.
pub fn render_annotations(a: &Annotations, query: &str) -> (Vec<String>, Vec<String>) {
    let (mut warnings, mut infos) = (Vec::new(), Vec::new());
    let (mut wskip, mut iskip) = (0, 0);
    for an in a.iter() {
        let (list, skip) = match an.kind {
            AnnotationKind::Warning => (&mut warnings, &mut wskip),
            AnnotationKind::Info => (&mut infos, &mut iskip),
        };
        if list.len() < MAX_ANNOTATIONS {
            list.push(an.render(query));
        } else {
            *skip += 1;
        }
    }
    if wskip > 0 {
        warnings.push(format!("{wskip} more warning annotations omitted"));
    }
    if iskip > 0 {
        infos.push(format!("{iskip} more info annotations omitted"));
    }
    (warnings, infos)
}

/// A string as Go quotes it with `%q` (for error messages).
pub fn go_quote(s: &str) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = o11y_tsdb::labels::write_go_quoted(&mut out, s);
    out
}

/// Appends `s` as a JSON string, escaped as Go's `encoding/json` does.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a millisecond timestamp as seconds (`1700000000`, `1700000000.5` written as
/// `1700000000.500`), as Prometheus's `MarshalTimestamp` does.
pub fn push_ts(out: &mut String, ms: i64) {
    if ms < 0 {
        out.push('-');
    }
    let a = ms.unsigned_abs();
    out.push_str(&(a / 1000).to_string());
    let frac = a % 1000;
    if frac != 0 {
        out.push_str(&format!(".{frac:03}"));
    }
}

/// Formats a sample value as Prometheus's `MarshalFloat`: Go's shortest `'f'` form, but the
/// `'e'` form (`1e+21`, `1e-07`) when `|f| < 1e-6` or `|f| >= 1e21`; `+Inf`, `-Inf`, `NaN`.
pub fn api_float(f: f64) -> String {
    let a = f.abs();
    if !f.is_finite() || a == 0.0 || (1e-6..1e21).contains(&a) {
        return format_float(f);
    }
    // Rust's `{:e}` is the shortest round-trip mantissa too; Go writes the exponent with a
    // sign and at least two digits.
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mant, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mant}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// Appends `[<ts>,"<value>"]`.
fn push_point(out: &mut String, t: i64, f: f64) {
    out.push('[');
    push_ts(out, t);
    out.push_str(",\"");
    out.push_str(&api_float(f));
    out.push_str("\"]");
}

/// Appends a label set as a JSON object (`{"__name__":"up","job":"node"}`).
pub fn push_labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, lab) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, &lab.name);
        out.push(':');
        push_str(out, &lab.value);
    }
    out.push('}');
}

/// Appends a JSON array of strings.
pub fn push_str_array<S: AsRef<str>>(out: &mut String, items: &[S]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, s.as_ref());
    }
    out.push(']');
}

/// Encodes a query result as Prometheus's `QueryData`: `{"resultType":..,"result":..}`.
pub fn query_data(v: &Value) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(r#"{"resultType":"#);
    match v {
        Value::Scalar { t, v } => {
            out.push_str(r#""scalar","result":"#);
            push_point(&mut out, *t, *v);
        }
        Value::String { t, s } => {
            out.push_str(r#""string","result":["#);
            push_ts(&mut out, *t);
            out.push(',');
            push_str(&mut out, s);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push_str(r#""vector","result":["#);
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                push_labels(&mut out, &s.metric);
                out.push_str(r#","value":"#);
                push_point(&mut out, s.t, s.f);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str(r#""matrix","result":["#);
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                push_labels(&mut out, &s.metric);
                out.push_str(r#","values":["#);
                for (j, p) in s.floats.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    push_point(&mut out, p.t, p.f);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}
