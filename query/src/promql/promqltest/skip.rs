//! Which evals are skipped rather than run, and why.
//!
//! Owns the skip rules. An eval is skipped (counted as skipped, never as passed) when:
//!
//! 1. its expected output contains a native histogram (`{{...}}`): we store floats only;
//! 2. its query reads a series that was loaded with native-histogram samples (including the
//!    series `load_with_nhcb` derives): decided while running, by the storage wrapper;
//! 3. its query uses an experimental Prometheus feature this engine does not implement,
//!    found by [`experimental_feature`] on the query text (outside string literals and label
//!    matchers `{...}`):
//!    - the functions `min_of()`, `max_of()` (duration expressions, any case) and `info()`
//!      (`step()`, `range()`, `start()`, `end()` are implemented);
//!    - a duration expression: a `[...]` range or subquery part that is not a plain duration
//!      or number (`[5m+1m]`, `[2m*15]`, `[step()]`), an `offset` followed (after an
//!      optional sign) by `(` or a name (`offset (1m+2m)`, `offset -step()`), or `@ (...)`;
//!    - binary-operator fill modifiers `fill(...)`, `fill_left(...)`, `fill_right(...)`;
//!    - the selector modifiers `anchored` and `smoothed` (the words right after a selector,
//!      `]`, `}`, or a duration/number, where they cannot be a metric name).
//!
//! Rule 3 is lexical because the runner must not depend on the parser accepting these forms.

/// The experimental feature `query` uses, if any, as a reason to print.
pub fn experimental_feature(query: &str) -> Option<String> {
    let b = query.as_bytes();
    let mut i = 0;
    // What the previous significant token was: ']' / '}' / ')' / 'n' (number or duration) /
    // 'i' (a name that is not a keyword) / 'o' (anything else).
    let mut prev = b'o';
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => {
                i = skip_string(b, i);
                prev = b'o';
            }
            b'{' => {
                // Label matchers: only names, operators and strings.
                i += 1;
                while i < b.len() && b[i] != b'}' {
                    if matches!(b[i], b'"' | b'\'' | b'`') {
                        i = skip_string(b, i);
                    } else {
                        i += 1;
                    }
                }
                i += 1;
                prev = b'}';
            }
            b'[' => {
                let end = find_close_bracket(b, i + 1);
                let inner = &query[i + 1..end.min(b.len())];
                for part in inner.splitn(2, ':') {
                    let p = part.trim();
                    if !p.is_empty() && !is_plain_duration(p) {
                        return Some(format!("duration expression [{inner}]"));
                    }
                }
                i = end + 1;
                prev = b']';
            }
            b'@' => {
                let j = skip_ws(b, i + 1);
                if b.get(j) == Some(&b'(') {
                    return Some("duration expression after @".into());
                }
                i += 1;
                prev = b'o';
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let s = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &query[s..i];
                let lower = word.to_ascii_lowercase();
                let j = skip_ws(b, i);
                let call = b.get(j) == Some(&b'(');
                if call {
                    match lower.as_str() {
                        "min_of" | "max_of" => {
                            return Some(format!("duration expression function {word}()"))
                        }
                        "fill" | "fill_left" | "fill_right" => {
                            return Some(format!("{lower} modifier"))
                        }
                        _ if word == "info" => return Some("experimental function info()".into()),
                        _ => {}
                    }
                }
                if matches!(lower.as_str(), "anchored" | "smoothed")
                    && matches!(prev, b']' | b'}' | b'n' | b'i')
                {
                    return Some(format!("{lower} modifier"));
                }
                if lower == "offset" {
                    let mut k = j;
                    if matches!(b.get(k), Some(b'-') | Some(b'+')) {
                        k = skip_ws(b, k + 1);
                    }
                    // `offset (...)`, `offset step()`, `offset -min_of(...)`; a label named
                    // `offset` (`by (offset)`) is followed by `)` or `,`.
                    if matches!(b.get(k), Some(c) if *c == b'(' || c.is_ascii_alphabetic() || *c == b'_')
                    {
                        return Some("duration expression in offset".into());
                    }
                    i = scan_literal(b, k).max(i);
                    prev = b'n';
                    continue;
                }
                prev = if KEYWORDS.contains(&lower.as_str()) {
                    b'o'
                } else {
                    b'i'
                };
            }
            _ if c.is_ascii_digit() || c == b'.' => {
                i = scan_literal(b, i);
                prev = b'n';
            }
            b')' => {
                i += 1;
                prev = b')';
            }
            _ if c.is_ascii_whitespace() => i += 1,
            _ => {
                i += 1;
                prev = b'o';
            }
        }
    }
    None
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Words after which a metric name may follow.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "by",
    "without",
    "atan2",
];

/// Index just past the string literal starting at `b[i]`.
fn skip_string(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'\\' && q != b'`' {
            j += 2;
            continue;
        }
        if b[j] == q {
            return j + 1;
        }
        j += 1;
    }
    b.len()
}

/// Index of the `]` closing a bracket opened before `i` (or `b.len()`).
fn find_close_bracket(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] != b']' {
        if matches!(b[i], b'"' | b'\'' | b'`') {
            i = skip_string(b, i);
        } else {
            i += 1;
        }
    }
    i
}

/// End of a run of number/duration characters (digits, letters, `.`) starting at `i`.
fn scan_literal(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
        i += 1;
    }
    i
}

/// A duration (`5m`, `1h30m`, `10s53ms`) or a plain number (`300`, `1.5`, `1e3`, `0x10`).
fn is_plain_duration(s: &str) -> bool {
    let s = s.trim();
    if s.is_empty() || !s.as_bytes()[0].is_ascii_digit() && !s.starts_with('.') {
        return false;
    }
    if s.parse::<f64>().is_ok() {
        return true;
    }
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return !h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit());
    }
    // Digits followed by units.
    let mut rest = s;
    while !rest.is_empty() {
        let d = rest.bytes().take_while(u8::is_ascii_digit).count();
        if d == 0 {
            return false;
        }
        rest = &rest[d..];
        let u = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        if !matches!(&rest[..u], "ms" | "s" | "m" | "h" | "d" | "w" | "y") {
            return false;
        }
        rest = &rest[u..];
    }
    true
}
