//! Label sets: the identity of a series in the Prometheus data model.
//!
//! A series is identified by a set of `name="value"` pairs, one of which is the metric name
//! stored under the reserved label [`METRIC_NAME`] (`__name__`). This module holds the types
//! for those sets and the single place where untrusted label sets are checked.
//!
//! ```text
//!  wire / scrape                     validate()                     storage, index, query
//!  Vec<Label> (any order) ──► check names, lengths, count ──► Labels (sorted, unique names,
//!                             sort in place, reject dups        no empty values, has __name__)
//!                             drop empty values
//! ```
//!
//! Invariants of a [`Labels`] produced by [`validate`]:
//! - sorted by name (byte order), names unique;
//! - no empty values — in Prometheus an empty value means "label absent";
//! - a non-empty `__name__` is present.
//!
//! [`Labels::from_sorted_unchecked`] and [`Labels::from_pairs`] skip validation and are meant
//! for trusted internal data and tests.
//!
//! The derived [`Ord`] of [`Labels`] is exactly Prometheus's `labels.Compare`: pairs are
//! compared name first then value (byte-wise), and if one set is a prefix of the other the
//! shorter set sorts first.
//!
//! ```
//! use o11y_tsdb::labels::{validate, Label, LabelLimits};
//!
//! let raw = vec![
//!     Label::new("job", "api"),
//!     Label::new("__name__", "http_requests_total"),
//!     Label::new("pod", ""), // empty value: dropped
//! ];
//! let labels = validate(raw, &LabelLimits::default()).unwrap();
//! assert_eq!(labels.to_string(), r#"http_requests_total{job="api"}"#);
//! ```

use std::fmt;

/// The reserved label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// Number of characters of user input echoed back in error messages.
const EXCERPT_CHARS: usize = 64;

/// One `name="value"` pair. Field order makes the derived [`Ord`] compare name, then value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    /// Label name.
    pub name: String,
    /// Label value. Empty means "absent" in Prometheus semantics.
    pub value: String,
}

impl Label {
    /// Builds a label from anything string-like.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Label {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A label set, sorted by name with unique names.
///
/// When produced by [`validate`] it also has no empty values and contains a non-empty
/// `__name__`. Ordering equals Prometheus's `labels.Compare`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Wraps labels that the caller guarantees are already sorted by name with unique
    /// names (for example, data read back from our own storage). Nothing is checked.
    pub fn from_sorted_unchecked(v: Vec<Label>) -> Labels {
        Labels(v)
    }

    /// Builds a label set from pairs in any order: sorts by name, keeps the last value
    /// given for a repeated name, then drops empty values. No name validation; meant for
    /// tests and internal construction.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Labels {
        let mut v: Vec<Label> = pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect();
        // Stable sort keeps input order among equal names, so "last wins" is well defined.
        v.sort_by(|a, b| a.name.cmp(&b.name));
        // `dedup_by` passes (later, earlier-kept); move the later value into the kept slot.
        v.dedup_by(|later, kept| {
            if later.name == kept.name {
                std::mem::swap(&mut later.value, &mut kept.value);
                true
            } else {
                false
            }
        });
        v.retain(|l| !l.value.is_empty());
        Labels(v)
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    }

    /// The metric name (value of `__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Iterates over the labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the set has no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The labels as a slice, in name order.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// Unwraps into the underlying sorted vector.
    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// A 64-bit hash of the label set that is stable across processes, machines and
    /// versions of this crate (it may be persisted).
    ///
    /// Definition (frozen): XXH3-64 with seed 0 and the default secret over the bytes
    /// `name₁ 0xFF value₁ 0xFF name₂ 0xFF value₂ 0xFF …` in label order. `0xFF` never occurs
    /// in UTF-8, so the encoding is unambiguous. This is the byte layout of Prometheus's
    /// `labels.Hash`, which uses XXH64 instead of XXH3, so the values differ from Prometheus.
    pub fn stable_hash(&self) -> u64 {
        const SEP: u8 = 0xFF;
        let mut buf = [0u8; 1024];
        let mut used = 0;
        for l in &self.0 {
            let n = l.name.len() + l.value.len() + 2;
            if used + n > buf.len() {
                return self.stable_hash_streaming();
            }
            buf[used..used + l.name.len()].copy_from_slice(l.name.as_bytes());
            used += l.name.len();
            buf[used] = SEP;
            used += 1;
            buf[used..used + l.value.len()].copy_from_slice(l.value.as_bytes());
            used += l.value.len();
            buf[used] = SEP;
            used += 1;
        }
        xxhash_rust::xxh3::xxh3_64(&buf[..used])
    }

    /// Same result as [`Labels::stable_hash`] for label sets too large for the stack buffer.
    fn stable_hash_streaming(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3Default::new();
        for l in &self.0 {
            h.update(l.name.as_bytes());
            h.update(&[0xFF]);
            h.update(l.value.as_bytes());
            h.update(&[0xFF]);
        }
        h.digest()
    }

    /// A copy without the `__name__` label (as PromQL functions and operators produce).
    pub fn without_metric_name(&self) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| l.name != METRIC_NAME)
                .cloned()
                .collect(),
        )
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Prometheus 3 text form of a series.
///
/// - `up{instance="a", job="b"}` — the metric name stands outside the braces when it is a
///   valid legacy metric name; a series with only a name prints as `up`.
/// - `{"my.metric", job="b"}` — other metric names are quoted as the first item in braces.
/// - label names that are not valid legacy label names are quoted: `{"my.label"="x"}`.
/// - values (and quoted names) use Go `strconv.Quote` escaping (`\\`, `\"`, `\n`, …).
/// - a set without a metric name prints as `{a="b"}`, an empty set as `{}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name().filter(|n| !n.is_empty());
        let mut first = true;
        match name {
            Some(n) if is_valid_legacy_metric_name(n) => {
                f.write_str(n)?;
                if self.0.iter().all(|l| l.name == METRIC_NAME) {
                    return Ok(());
                }
                f.write_str("{")?;
            }
            Some(n) => {
                f.write_str("{")?;
                write_go_quoted(f, n)?;
                first = false;
            }
            None => f.write_str("{")?,
        }
        for l in &self.0 {
            if name.is_some() && l.name == METRIC_NAME {
                continue;
            }
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            if is_valid_legacy_label_name(&l.name) {
                f.write_str(&l.name)?;
            } else {
                write_go_quoted(f, &l.name)?;
            }
            f.write_str("=")?;
            write_go_quoted(f, &l.value)?;
        }
        f.write_str("}")
    }
}

/// Which label and metric names are accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NameValidation {
    /// Prometheus 3 default: any non-empty UTF-8 string (Rust strings are always UTF-8).
    #[default]
    Utf8,
    /// Prometheus 2 rules: label names `[a-zA-Z_][a-zA-Z0-9_]*`, metric names
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    Legacy,
}

/// Limits applied by [`validate`]. A limit of `0` means "no limit", as in Prometheus's
/// `label_limit`, `label_name_length_limit` and `label_value_length_limit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelLimits {
    /// Maximum number of labels (including `__name__`) after empty values are dropped.
    pub max_label_count: usize,
    /// Maximum length of a label name, in bytes.
    pub max_name_len: usize,
    /// Maximum length of a label value (including the metric name), in bytes.
    pub max_value_len: usize,
    /// Name validation scheme.
    pub validation: NameValidation,
}

impl Default for LabelLimits {
    fn default() -> Self {
        LabelLimits {
            max_label_count: 64,
            max_name_len: 1024,
            max_value_len: 4096,
            validation: NameValidation::Utf8,
        }
    }
}

/// Why a label set was rejected. Names carried in variants are excerpts: at most 64
/// characters of the input, followed by `…` when cut.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LabelError {
    /// No `__name__` label, or its value is empty.
    #[error("series has no metric name (label \"__name__\" is missing or empty)")]
    MissingMetricName,
    /// A label has an empty name.
    #[error("label name is empty")]
    EmptyLabelName,
    /// A label name is not valid under [`NameValidation::Legacy`].
    #[error("invalid label name {name:?}: legacy validation requires [a-zA-Z_][a-zA-Z0-9_]*")]
    InvalidLabelName {
        /// Excerpt of the offending name.
        name: String,
    },
    /// The metric name is not valid under [`NameValidation::Legacy`].
    #[error("invalid metric name {name:?}: legacy validation requires [a-zA-Z_:][a-zA-Z0-9_:]*")]
    InvalidMetricName {
        /// Excerpt of the offending metric name.
        name: String,
    },
    /// The same label name occurs twice.
    #[error("duplicate label name {name:?}")]
    DuplicateLabelName {
        /// Excerpt of the repeated name.
        name: String,
    },
    /// More labels than [`LabelLimits::max_label_count`].
    #[error("too many labels: {count} (limit {limit})")]
    TooManyLabels {
        /// Number of labels with a non-empty value.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A label name longer than [`LabelLimits::max_name_len`].
    #[error("label name {name:?} is too long: {len} bytes (limit {limit})")]
    NameTooLong {
        /// Excerpt of the name.
        name: String,
        /// Length of the full name, in bytes.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A label value longer than [`LabelLimits::max_value_len`].
    #[error("value of label {name:?} is too long: {len} bytes (limit {limit})")]
    ValueTooLong {
        /// Excerpt of the label's name.
        name: String,
        /// Length of the full value, in bytes.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
}

/// Validates a label set received from outside (remote write, OTLP, scrape).
///
/// Accepts labels in any order. Checks, in this order: every name (non-empty, length,
/// legacy charset when configured) and value length in input order; the label count
/// (labels with empty values are not counted); duplicate names (a name given twice is
/// rejected even if one of the values is empty); the metric name. Labels with empty values
/// are then dropped. Names beginning with `__` are allowed.
///
/// Allocation-free apart from what the input already owns: sorts in place and compacts
/// in place.
pub fn validate(mut raw: Vec<Label>, limits: &LabelLimits) -> Result<Labels, LabelError> {
    let legacy = limits.validation == NameValidation::Legacy;
    let mut non_empty = 0usize;
    for l in &raw {
        if l.name.is_empty() {
            return Err(LabelError::EmptyLabelName);
        }
        if limits.max_name_len != 0 && l.name.len() > limits.max_name_len {
            return Err(LabelError::NameTooLong {
                name: excerpt(&l.name),
                len: l.name.len(),
                limit: limits.max_name_len,
            });
        }
        if legacy && !is_valid_legacy_label_name(&l.name) {
            return Err(LabelError::InvalidLabelName {
                name: excerpt(&l.name),
            });
        }
        if !l.value.is_empty() {
            non_empty += 1;
            if limits.max_value_len != 0 && l.value.len() > limits.max_value_len {
                return Err(LabelError::ValueTooLong {
                    name: excerpt(&l.name),
                    len: l.value.len(),
                    limit: limits.max_value_len,
                });
            }
        }
    }
    if limits.max_label_count != 0 && non_empty > limits.max_label_count {
        return Err(LabelError::TooManyLabels {
            count: non_empty,
            limit: limits.max_label_count,
        });
    }

    raw.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = raw.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(LabelError::DuplicateLabelName {
            name: excerpt(&w[0].name),
        });
    }
    if non_empty != raw.len() {
        raw.retain(|l| !l.value.is_empty());
    }

    let name = match raw.binary_search_by(|l| l.name.as_str().cmp(METRIC_NAME)) {
        Ok(i) => &raw[i].value,
        Err(_) => return Err(LabelError::MissingMetricName),
    };
    if legacy && !is_valid_legacy_metric_name(name) {
        return Err(LabelError::InvalidMetricName {
            name: excerpt(name),
        });
    }
    Ok(Labels(raw))
}

/// True if `name` matches `[a-zA-Z_][a-zA-Z0-9_]*` (a Prometheus 2 label name).
pub fn is_valid_legacy_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
        _ => return false,
    }
    b[1..]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// True if `name` matches `[a-zA-Z_:][a-zA-Z0-9_:]*` (a Prometheus 2 metric name).
pub fn is_valid_legacy_metric_name(name: &str) -> bool {
    let b = name.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b':' => {}
        _ => return false,
    }
    b[1..]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

/// At most [`EXCERPT_CHARS`] characters of `s`, followed by `…` when cut. Used so error
/// messages never echo unbounded user input.
pub(crate) fn excerpt(s: &str) -> String {
    excerpt_n(s, EXCERPT_CHARS)
}

/// At most `max_chars` characters of `s`, followed by `…` when cut.
pub(crate) fn excerpt_n(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        None => s.to_string(),
        Some((cut, _)) => {
            let mut out = String::with_capacity(cut + 3);
            out.push_str(&s[..cut]);
            out.push('…');
            out
        }
    }
}

/// Writes `s` as a double-quoted Go string literal, as Go's `strconv.Quote` does:
/// `\a \b \f \n \r \t \v \\ \"` escapes, `\xNN` for other ASCII control bytes,
/// `\uNNNN` / `\UNNNNNNNN` for other non-printable characters, printable characters as is.
///
/// "Printable" follows Go's `unicode.IsPrint` for controls, separators other than the ASCII
/// space, format characters and private-use characters; unassigned code points are kept
/// as is (Go would escape them).
pub fn write_go_quoted(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '\x07' => Some("\\a"),
            '\x08' => Some("\\b"),
            '\x0C' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\x0B' => Some("\\v"),
            '\\' => Some("\\\\"),
            '"' => Some("\\\""),
            _ => None,
        };
        if esc.is_none() && is_go_printable(c) {
            continue;
        }
        w.write_str(&s[start..i])?;
        start = i + c.len_utf8();
        match esc {
            Some(e) => w.write_str(e)?,
            None => {
                let cp = c as u32;
                if cp < 0x20 || cp == 0x7F {
                    write!(w, "\\x{cp:02x}")?;
                } else if cp < 0x10000 {
                    write!(w, "\\u{cp:04x}")?;
                } else {
                    write!(w, "\\U{cp:08x}")?;
                }
            }
        }
    }
    w.write_str(&s[start..])?;
    w.write_char('"')
}

/// Approximation of Go's `unicode.IsPrint` (see [`write_go_quoted`]).
fn is_go_printable(c: char) -> bool {
    let cp = c as u32;
    if cp < 0x7F {
        return cp >= 0x20;
    }
    !matches!(cp,
        // C1 controls, NBSP, soft hyphen.
        0x7F..=0xA0 | 0xAD
        // Format characters (Cf).
        | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F
        // Space separators other than U+0020, line and paragraph separators.
        | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000
        // Private use, non-characters at the end of the BMP.
        | 0xE000..=0xF8FF | 0xFFFE | 0xFFFF | 0xF0000..=0x10FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn l(n: &str, v: &str) -> Label {
        Label::new(n, v)
    }

    fn ok(raw: Vec<Label>) -> Labels {
        match validate(raw, &LabelLimits::default()) {
            Ok(ls) => ls,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    fn err(raw: Vec<Label>, limits: &LabelLimits) -> LabelError {
        match validate(raw, limits) {
            Ok(ls) => panic!("expected an error, got {ls}"),
            Err(e) => e,
        }
    }

    #[test]
    fn validate_sorts_and_drops_empty_values() {
        let ls = ok(vec![
            l("zone", "eu"),
            l("job", ""),
            l("__name__", "up"),
            l("Instance", "a"),
        ]);
        let names: Vec<&str> = ls.iter().map(|l| l.name.as_str()).collect();
        // Byte order: uppercase < '_' < lowercase.
        assert_eq!(names, ["Instance", "__name__", "zone"]);
        assert_eq!(ls.metric_name(), Some("up"));
        assert_eq!(ls.get("job"), None);
        assert_eq!(ls.get("zone"), Some("eu"));
    }

    #[test]
    fn validate_rejects_missing_or_empty_metric_name() {
        let d = LabelLimits::default();
        assert_eq!(err(vec![l("job", "x")], &d), LabelError::MissingMetricName);
        assert_eq!(
            err(vec![l("__name__", ""), l("job", "x")], &d),
            LabelError::MissingMetricName
        );
        assert_eq!(err(vec![], &d), LabelError::MissingMetricName);
    }

    #[test]
    fn validate_rejects_duplicates_even_with_empty_value() {
        let d = LabelLimits::default();
        assert_eq!(
            err(vec![l("__name__", "up"), l("a", "1"), l("a", "2")], &d),
            LabelError::DuplicateLabelName { name: "a".into() }
        );
        assert_eq!(
            err(vec![l("a", ""), l("__name__", "up"), l("a", "2")], &d),
            LabelError::DuplicateLabelName { name: "a".into() }
        );
    }

    #[test]
    fn validate_name_rules() {
        let d = LabelLimits::default();
        assert_eq!(
            err(vec![l("__name__", "up"), l("", "x")], &d),
            LabelError::EmptyLabelName
        );
        // An empty name is malformed even when its value is empty.
        assert_eq!(
            err(vec![l("__name__", "up"), l("", "")], &d),
            LabelError::EmptyLabelName
        );
        // UTF-8 mode: anything non-empty.
        let ls = ok(vec![
            l("__name__", "my.metric/ü"),
            l("label.with.dots", "v"),
            l("1starts_with_digit", "v"),
            l("__meta_kubernetes_pod", "p"),
        ]);
        assert_eq!(ls.len(), 4);

        let legacy = LabelLimits {
            validation: NameValidation::Legacy,
            ..LabelLimits::default()
        };
        assert!(validate(
            vec![
                l("__name__", "ns:metric_total"),
                l("_a1", "v"),
                l("__meta_x", "v")
            ],
            &legacy
        )
        .is_ok());
        assert_eq!(
            err(vec![l("__name__", "up"), l("a.b", "v")], &legacy),
            LabelError::InvalidLabelName { name: "a.b".into() }
        );
        assert_eq!(
            err(vec![l("__name__", "up"), l("a:b", "v")], &legacy),
            LabelError::InvalidLabelName { name: "a:b".into() }
        );
        assert_eq!(
            err(vec![l("__name__", "up"), l("1a", "v")], &legacy),
            LabelError::InvalidLabelName { name: "1a".into() }
        );
        assert_eq!(
            err(vec![l("__name__", "my.metric")], &legacy),
            LabelError::InvalidMetricName {
                name: "my.metric".into()
            }
        );
        assert_eq!(
            err(vec![l("__name__", "1up")], &legacy),
            LabelError::InvalidMetricName { name: "1up".into() }
        );
        assert!(validate(vec![l("__name__", ":up")], &legacy).is_ok());
    }

    #[test]
    fn validate_limits() {
        let lim = LabelLimits {
            max_label_count: 3,
            max_name_len: 8,
            max_value_len: 5,
            validation: NameValidation::Utf8,
        };
        // Three non-empty labels plus two empty ones: fine, empties are not counted.
        let ls = validate(
            vec![
                l("__name__", "up"),
                l("a", "1"),
                l("b", "2"),
                l("c", ""),
                l("d", ""),
            ],
            &lim,
        )
        .unwrap();
        assert_eq!(ls.len(), 3);
        assert_eq!(
            err(
                vec![l("__name__", "up"), l("a", "1"), l("b", "2"), l("c", "3")],
                &lim
            ),
            LabelError::TooManyLabels { count: 4, limit: 3 }
        );
        assert_eq!(
            err(vec![l("__name__", "up"), l("abcdefghi", "1")], &lim),
            LabelError::NameTooLong {
                name: "abcdefghi".into(),
                len: 9,
                limit: 8
            }
        );
        // Boundary: exactly at the limit is fine.
        assert!(validate(vec![l("__name__", "up"), l("abcdefgh", "12345")], &lim).is_ok());
        assert_eq!(
            err(vec![l("__name__", "up"), l("a", "123456")], &lim),
            LabelError::ValueTooLong {
                name: "a".into(),
                len: 6,
                limit: 5
            }
        );
        // The metric name is a value.
        assert_eq!(
            err(vec![l("__name__", "toolong")], &lim),
            LabelError::ValueTooLong {
                name: "__name__".into(),
                len: 7,
                limit: 5
            }
        );
        // 0 means unlimited.
        let unlimited = LabelLimits {
            max_label_count: 0,
            max_name_len: 0,
            max_value_len: 0,
            validation: NameValidation::Utf8,
        };
        let many: Vec<Label> = (0..500)
            .map(|i| l(&format!("l{i:04}{}", "n".repeat(2000)), &"v".repeat(10_000)))
            .chain([l("__name__", "up")])
            .collect();
        assert_eq!(validate(many, &unlimited).unwrap().len(), 501);
    }

    #[test]
    fn errors_echo_bounded_input() {
        let long = "x".repeat(10_000);
        let e = err(
            vec![l("__name__", "up"), l(&long, "v")],
            &LabelLimits::default(),
        );
        let msg = e.to_string();
        assert!(msg.len() < 200, "{msg}");
        assert!(msg.contains(&format!("{}…", "x".repeat(64))), "{msg}");
        assert!(msg.contains("10000 bytes (limit 1024)"), "{msg}");
        // Cut on a character boundary.
        assert_eq!(excerpt_n("ééé", 2), "éé…");
        assert_eq!(excerpt_n("éé", 2), "éé");
    }

    /// Prometheus `labels.Compare`, transcribed from model/labels/labels_slicelabels.go.
    fn prom_compare(a: &[Label], b: &[Label]) -> std::cmp::Ordering {
        let n = a.len().min(b.len());
        for i in 0..n {
            if a[i].name != b[i].name {
                return a[i].name.as_bytes().cmp(b[i].name.as_bytes());
            }
            if a[i].value != b[i].value {
                return a[i].value.as_bytes().cmp(b[i].value.as_bytes());
            }
        }
        a.len().cmp(&b.len())
    }

    #[test]
    fn ord_matches_prometheus_compare_examples() {
        use std::cmp::Ordering::*;
        let cases = [
            (vec![("a", "1")], vec![("a", "1"), ("b", "2")], Less),
            (vec![("a", "2")], vec![("a", "1"), ("b", "2")], Greater),
            (
                vec![("a", "1"), ("c", "0")],
                vec![("a", "1"), ("b", "9")],
                Greater,
            ),
            (vec![("a", "1")], vec![("b", "0")], Less),
            (vec![("B", "1")], vec![("a", "0")], Less),
            (vec![("a", "é")], vec![("a", "z")], Greater),
            (vec![], vec![("a", "1")], Less),
            (vec![("a", "1")], vec![("a", "1")], Equal),
        ];
        for (a, b, want) in cases {
            let (a, b) = (Labels::from_pairs(a), Labels::from_pairs(b));
            assert_eq!(a.cmp(&b), want, "{a} vs {b}");
            assert_eq!(prom_compare(a.as_slice(), b.as_slice()), want);
        }
    }

    proptest! {
        #[test]
        fn ord_matches_prometheus_compare(
            a in proptest::collection::vec(("[ab_B]{0,2}", "[xyé]{0,2}"), 0..4),
            b in proptest::collection::vec(("[ab_B]{0,2}", "[xyé]{0,2}"), 0..4),
        ) {
            let (a, b) = (Labels::from_pairs(a), Labels::from_pairs(b));
            prop_assert_eq!(a.cmp(&b), prom_compare(a.as_slice(), b.as_slice()));
        }

        #[test]
        fn validate_agrees_with_from_pairs(
            raw in proptest::collection::vec(("[abc]|__name__", "[xy]{0,2}"), 0..6),
        ) {
            let labels: Vec<Label> = raw.iter().map(|(n, v)| l(n, v)).collect();
            let mut names: Vec<&str> = raw.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            let has_dup = names.windows(2).any(|w| w[0] == w[1]);
            match validate(labels, &LabelLimits::default()) {
                Ok(ls) => {
                    prop_assert!(!has_dup);
                    prop_assert_eq!(&ls, &Labels::from_pairs(raw.clone()));
                    prop_assert!(ls.metric_name().is_some_and(|n| !n.is_empty()));
                    prop_assert!(ls.as_slice().windows(2).all(|w| w[0].name < w[1].name));
                }
                Err(LabelError::DuplicateLabelName { .. }) => prop_assert!(has_dup),
                Err(LabelError::MissingMetricName) => {
                    prop_assert!(Labels::from_pairs(raw).metric_name().is_none());
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }

    #[test]
    fn from_pairs_last_duplicate_wins() {
        let ls = Labels::from_pairs([("b", "1"), ("a", "x"), ("b", "2"), ("c", "")]);
        assert_eq!(ls.as_slice(), &[l("a", "x"), l("b", "2")]);
        // The last value wins even when it is empty, which removes the label.
        let ls = Labels::from_pairs([("a", "x"), ("a", "")]);
        assert!(ls.is_empty());
    }

    #[test]
    fn display_prometheus_text_form() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("__name__", "up"), ("job", "api"), ("instance", "h:9090")],
                r#"up{instance="h:9090", job="api"}"#,
            ),
            (&[("__name__", "up")], "up"),
            (&[("__name__", "ns:rule:rate5m")], "ns:rule:rate5m"),
            (
                &[("__name__", "my.metric"), ("a", "b")],
                r#"{"my.metric", a="b"}"#,
            ),
            (&[("__name__", "my.metric")], r#"{"my.metric"}"#),
            (&[("__name__", "1up")], r#"{"1up"}"#),
            (&[("a", "b"), ("c", "d")], r#"{a="b", c="d"}"#),
            (&[], "{}"),
            (
                &[("__name__", "up"), ("my.label", "x"), ("a:b", "y")],
                r#"up{"a:b"="y", "my.label"="x"}"#,
            ),
            (
                &[
                    ("__name__", "up"),
                    ("v", "a\\b\"c\nd\te\u{1}f\u{a0}g\u{200b}h é😀"),
                ],
                r#"up{v="a\\b\"c\nd\te\x01f\u00a0g\u200bh é😀"}"#,
            ),
        ];
        for (pairs, want) in cases {
            assert_eq!(Labels::from_pairs(pairs.iter().copied()).to_string(), *want);
        }
    }

    #[test]
    fn stable_hash_is_frozen() {
        let ls = Labels::from_pairs([("__name__", "up"), ("instance", "h:9090"), ("job", "api")]);
        // Independent computation of the documented definition.
        let bytes = b"__name__\xffup\xffinstance\xffh:9090\xffjob\xffapi\xff";
        assert_eq!(ls.stable_hash(), xxhash_rust::xxh3::xxh3_64(bytes));
        // Frozen value: changing it breaks persisted data.
        assert_eq!(ls.stable_hash(), 0xe778_e738_ea22_8934);
        // XXH3-64 of the empty input, from the XXH3 reference: pins the algorithm itself.
        assert_eq!(Labels::default().stable_hash(), 0x2D06_8005_38D3_94C2);
    }

    #[test]
    fn stable_hash_streaming_path_agrees() {
        for len in [0usize, 1, 500, 1010, 1020, 1100, 5000] {
            let ls = Labels::from_pairs([("__name__", "up"), ("big", &"v".repeat(len))]);
            let mut bytes = Vec::new();
            for l in ls.iter() {
                bytes.extend_from_slice(l.name.as_bytes());
                bytes.push(0xFF);
                bytes.extend_from_slice(l.value.as_bytes());
                bytes.push(0xFF);
            }
            assert_eq!(
                ls.stable_hash(),
                xxhash_rust::xxh3::xxh3_64(&bytes),
                "len {len}"
            );
            assert_eq!(ls.stable_hash(), ls.stable_hash_streaming(), "len {len}");
        }
        // Separators make the encoding unambiguous.
        let a = Labels::from_pairs([("a", "bc")]);
        let b = Labels::from_pairs([("ab", "c")]);
        assert_ne!(a.stable_hash(), b.stable_hash());
    }

    #[test]
    fn without_metric_name() {
        let ls = Labels::from_pairs([("__name__", "up"), ("job", "api")]);
        assert_eq!(
            ls.without_metric_name(),
            Labels::from_pairs([("job", "api")])
        );
        assert_eq!(ls.without_metric_name().to_string(), r#"{job="api"}"#);
    }
}
