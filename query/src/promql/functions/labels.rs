//! Label functions: `label_replace`, `label_join`, `sort_by_label`, `sort_by_label_desc`.
//!
//! They rewrite or reorder samples of one step without touching values. `label_replace` and
//! `label_join` keep each sample's `drop_name` flag unless they write `__name__` itself, which
//! clears it (the new name is kept); they fail if two output samples end up with the same
//! label set (Prometheus merges such series only when their points never coincide, which per
//! step means: never both present). Regexes use Go RE2 syntax, anchored at both ends, and are
//! cached per thread.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use o11y_tsdb::labels::{Labels, METRIC_NAME};
use o11y_tsdb::matcher::{MatchOp, Matcher};
use regex::Regex;

use super::args;
use super::util::merge_sort_by;
use super::{FnCtx, StepArg};
use crate::promql::error::QueryError;
use crate::promql::value::{Sample, Vector};

const DUPLICATE: &str = "vector cannot contain metrics with the same labelset";

thread_local! {
    static REGEX_CACHE: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
}

/// `^(?s:<pattern>)$`, or `None` if `pattern` is not a valid Go regular expression.
fn anchored_regex(pattern: &str) -> Option<Regex> {
    REGEX_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(r) = cache.get(pattern) {
            return r.clone();
        }
        // The matcher checks Go RE2 syntax; the captures come from the Rust regex.
        let compiled = Matcher::new(MatchOp::Regex, "", pattern)
            .ok()
            .and_then(|_| Regex::new(&format!("^(?s:{})$", go_to_rust_regex(pattern))).ok());
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(pattern.to_string(), compiled.clone());
        compiled
    })
}

/// Rewrites the Go RE2 constructs whose meaning differs in Rust's regex crate: Go's Perl
/// classes (`\d`, `\w`, `\s` and negations) and word boundaries are ASCII-only, and Go
/// supports `\Q...\E` literal quoting. Everything else is passed through.
fn go_to_rust_regex(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 16);
    let mut rest = p;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(c) = after.chars().next() else {
            out.push('\\');
            rest = after;
            break;
        };
        let tail = &after[c.len_utf8()..];
        match c {
            'd' => out.push_str("[0-9]"),
            'D' => out.push_str("[^0-9]"),
            'w' => out.push_str("[0-9A-Za-z_]"),
            'W' => out.push_str("[^0-9A-Za-z_]"),
            's' => out.push_str("[\\t\\n\\x0C\\r ]"),
            'S' => out.push_str("[^\\t\\n\\x0C\\r ]"),
            'b' => out.push_str("(?-u:\\b)"),
            'B' => out.push_str("(?-u:\\B)"),
            'Q' => {
                let (lit, next) = match tail.find("\\E") {
                    Some(e) => (&tail[..e], &tail[e + 2..]),
                    None => (tail, ""),
                };
                out.push_str(&regex::escape(lit));
                rest = next;
                continue;
            }
            _ => {
                out.push('\\');
                out.push(c);
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Prometheus 3 accepts any non-empty, valid UTF-8 label name. The parser turns invalid
/// UTF-8 from escapes like `"\xff"` into U+FFFD, so a name containing U+FFFD is taken to have
/// been invalid (a literally written `"\uFFFD"` is rejected too, unlike in Prometheus).
fn valid_label_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('\u{FFFD}')
}

/// `labels` with `name` set to `value` (removed when `value` is empty).
fn with_label(labels: &Labels, name: &str, value: &str) -> Labels {
    Labels::from_pairs(
        labels
            .iter()
            .filter(|l| l.name != name)
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .chain(std::iter::once((name, value))),
    )
}

fn check_unique(v: &Vector) -> Result<(), QueryError> {
    let mut seen = HashSet::with_capacity(v.len());
    for s in v {
        if !seen.insert(&s.metric) {
            return Err(QueryError::Execution(DUPLICATE.into()));
        }
    }
    Ok(())
}

/// `label_replace(v, dst, replacement, src, regex)`: where `regex` matches the whole value of
/// `src` (`""` if absent), sets `dst` to `replacement` with `$1`, `${name}` expanded.
pub(super) fn label_replace(
    mut args: Vec<StepArg>,
    _ctx: &mut FnCtx<'_>,
) -> Result<Vector, QueryError> {
    const NAME: &str = "label_replace";
    let dst = args::string(&args, 1, NAME)?.to_string();
    let repl = args::string(&args, 2, NAME)?.to_string();
    let src = args::string(&args, 3, NAME)?.to_string();
    let pattern = args::string(&args, 4, NAME)?.to_string();
    let Some(re) = anchored_regex(&pattern) else {
        return Err(QueryError::Execution(format!(
            "invalid regular expression in label_replace(): {pattern}"
        )));
    };
    if !valid_label_name(&dst) {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let mut v = args::take_vector(&mut args, 0, NAME)?;
    for s in &mut v {
        let src_val = s.metric.get(&src).unwrap_or("");
        let Some(caps) = re.captures(src_val) else {
            continue;
        };
        let mut res = String::new();
        caps.expand(&repl, &mut res);
        s.metric = with_label(&s.metric, &dst, &res);
        if dst == METRIC_NAME {
            s.drop_name = false;
        }
    }
    check_unique(&v)?;
    Ok(v)
}

/// `label_join(v, dst, separator, src...)`: sets `dst` to the values of the `src` labels
/// (`""` for absent ones) joined by `separator`.
pub(super) fn label_join(
    mut args: Vec<StepArg>,
    _ctx: &mut FnCtx<'_>,
) -> Result<Vector, QueryError> {
    const NAME: &str = "label_join";
    let dst = args::string(&args, 1, NAME)?.to_string();
    let sep = args::string(&args, 2, NAME)?.to_string();
    let mut srcs = Vec::new();
    for i in 3..args.len() {
        let src = args::string(&args, i, NAME)?;
        if !valid_label_name(src) {
            return Err(QueryError::Execution(format!(
                "invalid source label name in label_join(): {src}"
            )));
        }
        srcs.push(src.to_string());
    }
    if !valid_label_name(&dst) {
        return Err(QueryError::Execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    let mut v = args::take_vector(&mut args, 0, NAME)?;
    for s in &mut v {
        let joined = srcs
            .iter()
            .map(|l| s.metric.get(l).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(&sep);
        s.metric = with_label(&s.metric, &dst, &joined);
        if dst == METRIC_NAME {
            s.drop_name = false;
        }
    }
    check_unique(&v)?;
    Ok(v)
}

/// `sort_by_label[_desc](v, label...)`: by the labels' values in natural order (numbers in
/// values compare numerically), ties broken by the whole label set.
pub(super) fn sort_by_label(mut args: Vec<StepArg>, desc: bool) -> Result<Vector, QueryError> {
    let name = if desc {
        "sort_by_label_desc"
    } else {
        "sort_by_label"
    };
    let mut names = Vec::new();
    for i in 1..args.len() {
        names.push(args::string(&args, i, name)?.to_string());
    }
    let mut v = args::take_vector(&mut args, 0, name)?;
    let less = |a: &Sample, b: &Sample| -> bool {
        for l in &names {
            let (x, y) = (a.metric.get(l).unwrap_or(""), b.metric.get(l).unwrap_or(""));
            if x == y {
                continue;
            }
            // Prometheus: natsort.Compare(x, y) ? -1 : +1 (reversed for _desc).
            return natural_less(x, y) != desc;
        }
        if desc {
            a.metric > b.metric
        } else {
            a.metric < b.metric
        }
    };
    merge_sort_by(&mut v, &less);
    Ok(v)
}

/// Splits into maximal runs of ASCII digits and of other characters (`(\d+|\D+)`).
fn chunks(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut digit = None;
    for (i, c) in s.char_indices() {
        let d = c.is_ascii_digit();
        if digit.is_some_and(|prev| prev != d) {
            out.push(&s[start..i]);
            start = i;
        }
        digit = Some(d);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// The `natsort.Compare` Prometheus uses (github.com/facette/natsort): chunk by chunk, digit
/// runs that fit an int64 compare numerically, others as strings; `true` if `a` sorts first.
pub(super) fn natural_less(a: &str, b: &str) -> bool {
    let (ca, cb) = (chunks(a), chunks(b));
    for (i, x) in ca.iter().enumerate() {
        let Some(y) = cb.get(i) else {
            return false;
        };
        let last_a = i == ca.len() - 1;
        let last_b = i == cb.len() - 1;
        if let (Ok(xi), Ok(yi)) = (x.parse::<i64>(), y.parse::<i64>()) {
            if xi == yi {
                if last_a {
                    return true;
                } else if last_b {
                    return false;
                }
                continue;
            }
            return xi < yi;
        }
        if x == y {
            if last_a {
                return true;
            } else if last_b {
                return false;
            }
            continue;
        }
        return x < y;
    }
    false
}
