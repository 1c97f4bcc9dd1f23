//! Comparison of a query's outcome with an eval's expectations.
//!
//! Owns the rules of Prometheus's `test.go`: float equality within a relative epsilon (NaN
//! equals NaN), label sets compared exactly and unordered unless `expect ordered`, matrices
//! compared point by point at the timestamps the expectation implies (`_` = no point), scalars
//! against a single expected number, strings exactly, annotations (rendered as the API renders
//! them) against `expect warn/info/no_warn/no_info`, and errors against `expect fail`.
//!
//! ```text
//!   (Eval, Value | error, Annotations) ─► Ok(()) | Err(Mismatch { reason })
//! ```
//!
//! The runner turns a [`Mismatch`] into a [`Failure`](super::Failure), adding the rendered
//! expectation ([`render_expected`]) and result ([`render_value`]).

use std::collections::{HashMap, HashSet};

use o11y_tsdb::labels::Labels;

use super::script::{Eval, EvalTime, ExpectKind, ExpectedSeries, SeqValue};
pub use crate::promql::functions::util::almost_equal;
use crate::promql::value::{format_float, Annotation, AnnotationKind, Annotations, Matrix, Value};

/// Relative error allowed between expected and actual values (Prometheus: `defaultEpsilon`).
pub const EPSILON: f64 = 0.000001;

/// Why an outcome does not meet the expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub reason: String,
}

fn mismatch<T>(reason: impl Into<String>) -> Result<T, Mismatch> {
    Err(Mismatch {
        reason: reason.into(),
    })
}

/// Value of an expected point as Go reads it (`_` and histograms read as 0).
fn float_of(v: &SeqValue) -> f64 {
    match v {
        SeqValue::Float(f) => *f,
        SeqValue::Omitted | SeqValue::Histogram => 0.0,
    }
}

/// Checks the annotations of a successful query.
pub fn check_annotations(ev: &Eval, query: &str, annos: &Annotations) -> Result<(), Mismatch> {
    let render = |kind: AnnotationKind| -> Vec<String> {
        annos
            .iter()
            .filter(|a| a.kind == kind)
            .map(|a: &Annotation| a.render(query))
            .collect()
    };
    let warnings = render(AnnotationKind::Warning);
    let infos = render(AnnotationKind::Info);
    if ev.legacy_warn && warnings.is_empty() {
        return mismatch("expected warnings but got none");
    }
    if ev.legacy_info && infos.is_empty() {
        return mismatch("expected info annotations but got none");
    }
    check_annotations_of(ev, ExpectKind::Warn, "warn", &warnings)?;
    check_annotations_of(ev, ExpectKind::Info, "info", &infos)?;
    if ev.has(ExpectKind::NoWarn) && !warnings.is_empty() {
        return mismatch(format!("unexpected warning annotations: {warnings:?}"));
    }
    if ev.has(ExpectKind::NoInfo) && !infos.is_empty() {
        return mismatch(format!("unexpected info annotations: {infos:?}"));
    }
    Ok(())
}

/// Every `expect <kind>` line must match an annotation, and (when there is any such line)
/// every annotation of that kind must match a line.
fn check_annotations_of(
    ev: &Eval,
    kind: ExpectKind,
    name: &str,
    actual: &[String],
) -> Result<(), Mismatch> {
    let expects: Vec<_> = ev.of(kind).collect();
    if expects.is_empty() {
        return Ok(());
    }
    if actual.is_empty() {
        return mismatch(format!("expected {name} annotations but none were found"));
    }
    for e in &expects {
        if !actual.iter().any(|a| e.matcher.matches(a)) {
            return mismatch(format!(
                "expected {name} annotation matching {} but no matching annotation was found, found: {actual:?}",
                e.matcher
            ));
        }
    }
    for a in actual {
        if !expects.iter().any(|e| e.matcher.matches(a)) {
            return mismatch(format!("unexpected {name} annotation {a:?}"));
        }
    }
    Ok(())
}

/// Checks the error of a query that was expected to fail.
pub fn check_expected_failure(ev: &Eval, err: &str) -> Result<(), Mismatch> {
    if let Some(m) = &ev.fail_message {
        if m != err {
            return mismatch(format!("expected error {m:?}, but got: {err}"));
        }
    }
    if let Some(r) = &ev.fail_regexp {
        if !r.is_match(err) {
            return mismatch(format!(
                "expected error matching pattern {:?}, but got: {err}",
                r.as_str()
            ));
        }
    }
    if let Some(e) = ev.of(ExpectKind::Fail).next() {
        if !e.matcher.matches(err) {
            return mismatch(format!(
                "expected error matching {}, but got: {err}",
                e.matcher
            ));
        }
    }
    Ok(())
}

/// The timestamps an expected matrix row's values stand for: `start + i*step`, none after
/// `end`. Instant queries without `expect range vector` allow no matrix points at all.
fn matrix_grid(ev: &Eval) -> (i64, i64, i64) {
    match (ev.time, ev.range_vector) {
        (EvalTime::Range { start, end, step }, _) => (start, end, step),
        (EvalTime::Instant { .. }, Some(rv)) => rv,
        (EvalTime::Instant { at }, None) => (at, i64::MIN, 0),
    }
}

/// Compares a query result with the expected output.
pub fn compare_result(ev: &Eval, value: &Value) -> Result<(), Mismatch> {
    let expected: HashMap<&Labels, &ExpectedSeries> = ev
        .expected_series
        .iter()
        .map(|s| (&s.def.labels, s))
        .collect();
    let expect_scalar = ev.expected_scalar.is_some();
    match value {
        Value::Matrix(m) => {
            if ev.is_ordered() {
                return mismatch("expected ordered result, but query returned a matrix");
            }
            if expect_scalar {
                return mismatch("expected scalar result, but got a matrix");
            }
            check_sorted(m)?;
            let (start, end, step) = matrix_grid(ev);
            for s in m {
                let Some(exp) = expected.get(&s.metric) else {
                    return mismatch(format!("unexpected metric {} in result", s.metric));
                };
                let mut points = Vec::new();
                for (i, v) in exp.def.values.iter().enumerate() {
                    let t = start.saturating_add((i as i64).saturating_mul(step));
                    if t > end {
                        return mismatch(format!(
                            "expected {} points for {}, but query time range cannot return this many points",
                            exp.def.values.len(),
                            s.metric
                        ));
                    }
                    match v {
                        SeqValue::Float(f) => points.push((t, *f)),
                        SeqValue::Omitted => {}
                        SeqValue::Histogram => {
                            return mismatch(format!(
                            "expected a histogram point for {}, which this runner cannot compare",
                            s.metric
                        ))
                        }
                    }
                }
                if points.len() != s.floats.len() {
                    return mismatch(format!(
                        "expected {} float points for {}, but got {}",
                        points.len(),
                        s.metric,
                        s.floats.len()
                    ));
                }
                for (i, ((t, f), p)) in points.iter().zip(&s.floats).enumerate() {
                    if *t != p.t {
                        return mismatch(format!(
                            "expected float value at index {i} for {} to have timestamp {t}, but it had timestamp {}",
                            s.metric, p.t
                        ));
                    }
                    if !almost_equal(p.f, *f, EPSILON) {
                        return mismatch(format!(
                            "expected float value at index {i} (t={t}) for {} to be {}, but got {}",
                            s.metric,
                            format_float(*f),
                            format_float(p.f)
                        ));
                    }
                }
            }
            missing(ev, m.iter().map(|s| &s.metric))
        }
        Value::Vector(v) => {
            if expect_scalar {
                return mismatch("expected scalar result, but got a vector");
            }
            for (pos, s) in v.iter().enumerate() {
                let Some(exp) = expected.get(&s.metric) else {
                    return mismatch(format!(
                        "unexpected metric {} in result, has value {}",
                        s.metric,
                        format_float(s.f)
                    ));
                };
                if ev.is_ordered() && exp.pos != pos + 1 {
                    return mismatch(format!(
                        "expected metric {} at position {} but was at {}",
                        s.metric,
                        exp.pos,
                        pos + 1
                    ));
                }
                let want = exp.def.values.first().copied().unwrap_or(SeqValue::Omitted);
                if want == SeqValue::Histogram {
                    return mismatch(format!(
                        "expected a histogram for {} but got float value {}",
                        s.metric,
                        format_float(s.f)
                    ));
                }
                if !almost_equal(float_of(&want), s.f, EPSILON) {
                    return mismatch(format!(
                        "expected {} for {} but got {}",
                        format_float(float_of(&want)),
                        s.metric,
                        format_float(s.f)
                    ));
                }
            }
            missing(ev, v.iter().map(|s| &s.metric))
        }
        Value::Scalar { v, .. } => {
            let Some(want) = ev.expected_scalar else {
                return mismatch(format!(
                    "expected vector or matrix result, but got scalar {}",
                    format_float(*v)
                ));
            };
            if !almost_equal(float_of(&want), *v, EPSILON) {
                return mismatch(format!(
                    "expected scalar {} but got {}",
                    format_float(float_of(&want)),
                    format_float(*v)
                ));
            }
            Ok(())
        }
        Value::String { s, .. } => {
            let want = ev.expected_string.as_deref().unwrap_or("");
            if want != s {
                return mismatch(format!("expected string {want:?} but got {s:?}"));
            }
            Ok(())
        }
    }
}

/// A matrix must be sorted by labels (Prometheus's `assertMatrixSorted`).
pub fn check_sorted(m: &Matrix) -> Result<(), Mismatch> {
    for (i, w) in m.windows(2).enumerate() {
        if w[0].metric > w[1].metric {
            return mismatch(format!(
                "matrix results should always be sorted by labels, but series at index {} ({}) \
                 sorts before series at index {i} ({})",
                i + 1,
                w[1].metric,
                w[0].metric
            ));
        }
    }
    Ok(())
}

/// Fails when an expected series is absent from the result.
fn missing<'a>(ev: &Eval, got: impl Iterator<Item = &'a Labels>) -> Result<(), Mismatch> {
    let got: HashSet<&Labels> = got.collect();
    match ev
        .expected_series
        .iter()
        .find(|e| !got.contains(&e.def.labels))
    {
        Some(e) => mismatch(format!("expected metric {} not found", e.def.labels)),
        None => Ok(()),
    }
}

fn render_seq(v: &SeqValue) -> String {
    match v {
        SeqValue::Float(f) => format_float(*f),
        SeqValue::Omitted => "_".into(),
        SeqValue::Histogram => "{{histogram}}".into(),
    }
}

/// The expected output, one line per item, as written in the script (values expanded).
pub fn render_expected(ev: &Eval) -> String {
    let mut lines = Vec::new();
    if ev.is_fail() {
        let how = ev
            .of(ExpectKind::Fail)
            .next()
            .map(|e| e.matcher.to_string())
            .or_else(|| ev.fail_message.as_ref().map(|m| format!("message {m:?}")))
            .or_else(|| {
                ev.fail_regexp
                    .as_ref()
                    .map(|r| format!("pattern {:?}", r.as_str()))
            })
            .unwrap_or_else(|| "<any>".into());
        lines.push(format!("error matching {how}"));
    }
    if let Some(s) = &ev.expected_string {
        lines.push(format!("string {s:?}"));
    }
    if let Some(v) = &ev.expected_scalar {
        lines.push(format!("scalar {}", render_seq(v)));
    }
    for s in &ev.expected_series {
        let vals: Vec<String> = s.def.values.iter().map(render_seq).collect();
        lines.push(format!("{} {}", s.def.labels, vals.join(" ")));
    }
    if lines.is_empty() {
        lines.push("empty result".into());
    }
    lines.join("\n")
}

/// A query result, one line per series (`labels value` or `labels value@t ...`).
pub fn render_value(v: &Value) -> String {
    let lines: Vec<String> = match v {
        Value::Scalar { v, .. } => vec![format!("scalar {}", format_float(*v))],
        Value::String { s, .. } => vec![format!("string {s:?}")],
        Value::Vector(v) => v
            .iter()
            .map(|s| format!("{} {}", s.metric, format_float(s.f)))
            .collect(),
        Value::Matrix(m) => m
            .iter()
            .map(|s| {
                let pts: Vec<String> = s
                    .floats
                    .iter()
                    .map(|p| format!("{}@{}", format_float(p.f), p.t))
                    .collect();
                format!("{} {}", s.metric, pts.join(" "))
            })
            .collect(),
    };
    if lines.is_empty() {
        "empty result".into()
    } else {
        lines.join("\n")
    }
}

/// Annotations as rendered for `query`, one per line.
pub fn render_annotations(query: &str, annos: &Annotations) -> String {
    annos
        .iter()
        .map(|a| a.render(query))
        .collect::<Vec<_>>()
        .join("\n")
}
