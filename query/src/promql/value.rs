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

/// Formats a float the way Prometheus's API and test scripts do (Go's `strconv.FormatFloat(f,
/// 'f', -1, 64)` for the API; here the shortest round-trip form with `+Inf`, `-Inf`, `NaN`).
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
