//! Values produced by PromQL evaluation and the annotations (warnings and infos) that travel
//! with them.
//!
//! Vectors and matrices carry a `drop_name` flag per series: Prometheus 3 removes `__name__`
//! lazily ("delayed name removal"), so that `label_replace` and `sum by (__name__)` can still see
//! a name an earlier function is going to drop. The engine strips flagged names at the very end.

use std::fmt;

use o11y_tsdb::labels::Labels;

use super::ast::PosRange;

/// A float point at a millisecond timestamp.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FPoint {
    pub t: i64,
    pub f: f64,
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub metric: Labels,
    pub t: i64,
    pub f: f64,
    /// `__name__` is to be removed at the end of evaluation.
    pub drop_name: bool,
}

/// An instant vector.
pub type Vector = Vec<Sample>;

/// One series of a range vector or of a range query's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub metric: Labels,
    pub floats: Vec<FPoint>,
    pub drop_name: bool,
}

/// A range vector, or a range query's result.
pub type Matrix = Vec<Series>;

/// A query result.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    String { t: i64, s: String },
    Vector(Vector),
    Matrix(Matrix),
}

/// Severity of an annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnnotationKind {
    Warning,
    Info,
}

/// A warning or info about a query's result, tied to the expression it is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Annotation {
    pub kind: AnnotationKind,
    /// The message without prefix or position, e.g. `metric might not be a counter, name does
    /// not end in _total/_sum/_count/_bucket: "foo"`.
    pub msg: String,
    pub pos: PosRange,
}

impl Annotation {
    pub fn warning(msg: impl Into<String>, pos: PosRange) -> Annotation {
        Annotation {
            kind: AnnotationKind::Warning,
            msg: msg.into(),
            pos,
        }
    }

    pub fn info(msg: impl Into<String>, pos: PosRange) -> Annotation {
        Annotation {
            kind: AnnotationKind::Info,
            msg: msg.into(),
            pos,
        }
    }

    /// The message as Prometheus's API renders it: `PromQL warning: <msg> (line:col)`.
    pub fn render(&self, query: &str) -> String {
        let (line, col) = self.pos.line_col(query);
        let prefix = match self.kind {
            AnnotationKind::Warning => "PromQL warning",
            AnnotationKind::Info => "PromQL info",
        };
        format!("{prefix}: {} ({line}:{col})", self.msg)
    }
}

/// A de-duplicated set of annotations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Annotations(pub std::collections::BTreeSet<Annotation>);

impl Annotations {
    pub fn add(&mut self, a: Annotation) {
        self.0.insert(a);
    }

    pub fn merge(&mut self, other: Annotations) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Annotation> {
        self.0.iter()
    }
}

/// Go's spelling of a non-finite float (`NaN`, `+Inf`, `-Inf`); `None` for finite ones.
fn go_non_finite(f: f64) -> Option<String> {
    if f.is_nan() {
        Some("NaN".into())
    } else if f == f64::INFINITY {
        Some("+Inf".into())
    } else if f == f64::NEG_INFINITY {
        Some("-Inf".into())
    } else {
        None
    }
}

/// Formats a float the way Prometheus's API and test scripts do: Go's
/// `strconv.FormatFloat(f, 'f', -1, 64)` (shortest round-trip digits, never an exponent), with
/// `+Inf`, `-Inf`, `NaN`. Also the `count_values` label value.
pub fn format_float(f: f64) -> String {
    go_non_finite(f).unwrap_or_else(|| format!("{f}"))
}

/// Go's `%f` (six decimals), with Go's spellings of NaN and infinities (error texts).
pub(crate) fn go_format_f6(f: f64) -> String {
    go_non_finite(f).unwrap_or_else(|| format!("{f:.6}"))
}

/// Shortest decimal digits and decimal exponent of a finite, non-zero `f`: `f = 0.d1d2... ×
/// 10^(exp+1)`, i.e. `exp` is the exponent of the first digit.
fn shortest_digits(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` (also what `%g` prints): shortest digits,
/// exponent form (`1e+06`, `1.5e-05`) when the decimal exponent is < −4 or ≥ 6.
pub fn go_format_g(f: f64) -> String {
    if let Some(s) = go_non_finite(f) {
        return s;
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (digits, exp) = shortest_digits(f);
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} =>", self.metric)?;
        for p in &self.floats {
            write!(f, " {} @{}", format_float(p.f), p.t)?;
        }
        Ok(())
    }
}

/// A label set as Go's `labels.Labels.String()` prints it in error messages:
/// `{__name__="up", job="node"}`.
pub fn labels_string(l: &Labels) -> String {
    let mut s = String::from("{");
    for (i, lab) in l.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&lab.name);
        s.push('=');
        // Writing into a String cannot fail.
        let _ = o11y_tsdb::labels::write_go_quoted(&mut s, &lab.value);
    }
    s.push('}');
    s
}
