//! Parsing of `promqltest` scripts into [`Command`]s.
//!
//! Owns the text format only: lines, `load`/`clear`/`eval` blocks, `expect` lines, durations,
//! Go number syntax and the expanding value sequences (`1+2x3`, `_x2`, `stale`, `{{...}}`).
//! Label sets are parsed by an injected [`MetricParser`] (normally PromQL's
//! [`parse_metric`](crate::promql::parser::parse_metric)), so that this module does not depend
//! on the state of the PromQL parser and its tests can run without it.
//!
//! ```text
//!   text ─► lines (trimmed; `#` comments become blank lines, a blank line ends a block)
//!        ─► Command::Load { series: labels + Vec<SeqValue> } | Command::Clear
//!         | Command::Eval { query, times, expectations, expected series }
//! ```
//!
//! Semantics follow Prometheus's `promql/promqltest/test.go`, including its quirks: a scalar
//! expectation line or a legacy `expected_fail_message`/`expected_fail_regexp` line ends the
//! eval block, `expect range vector` moves an instant query's evaluation time to its end, and
//! an instant query may only list one value per series unless `expect range vector` is given.

use o11y_tsdb::labels::Labels;
use regex::Regex;

use super::ScriptError;

/// Parses a series description (`name{label="value"}`, `{}`) into a label set.
pub type MetricParser = fn(&str) -> Result<Labels, String>;

/// One point of an expanded value sequence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SeqValue {
    Float(f64),
    /// `_`: no sample at this step.
    Omitted,
    /// A native histogram (`{{...}}`): not loaded and not compared by this runner.
    Histogram,
}

/// A series and its values, from a `load` block or an eval's expected output.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesDef {
    /// 1-based line in the script.
    pub line: usize,
    pub labels: Labels,
    pub values: Vec<SeqValue>,
}

impl SeriesDef {
    pub fn has_histogram(&self) -> bool {
        self.values.iter().any(|v| matches!(v, SeqValue::Histogram))
    }
}

/// `load <interval>` (or `load_with_nhcb <interval>`).
#[derive(Clone, Debug, PartialEq)]
pub struct Load {
    pub line: usize,
    pub interval_ms: i64,
    /// Classic histogram series are also converted to native histograms with custom buckets.
    pub with_nhcb: bool,
    pub series: Vec<SeriesDef>,
}

/// The `<type>` of an `expect <type>` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectKind {
    Ordered,
    Fail,
    Warn,
    NoWarn,
    Info,
    NoInfo,
}

/// How an `expect` line matches a message.
#[derive(Clone, Debug)]
pub enum MsgMatch {
    /// No `msg:`/`regex:` part: anything matches.
    Any,
    /// `msg: <text>`: the whole message, exactly.
    Exact(String),
    /// `regex: <pattern>`: unanchored search, as Go's `MatchString`.
    Regex(Regex),
}

impl MsgMatch {
    pub fn matches(&self, s: &str) -> bool {
        match self {
            MsgMatch::Any => true,
            MsgMatch::Exact(m) => m == s,
            MsgMatch::Regex(r) => r.is_match(s),
        }
    }
}

impl std::fmt::Display for MsgMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MsgMatch::Any => f.write_str("<any>"),
            MsgMatch::Exact(m) => write!(f, "message {m:?}"),
            MsgMatch::Regex(r) => write!(f, "pattern {:?}", r.as_str()),
        }
    }
}

impl PartialEq for MsgMatch {
    fn eq(&self, other: &MsgMatch) -> bool {
        match (self, other) {
            (MsgMatch::Any, MsgMatch::Any) => true,
            (MsgMatch::Exact(a), MsgMatch::Exact(b)) => a == b,
            (MsgMatch::Regex(a), MsgMatch::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// One `expect` line.
#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    pub kind: ExpectKind,
    pub matcher: MsgMatch,
}

/// When an eval runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalTime {
    /// `eval instant at <t>` (ms).
    Instant { at: i64 },
    /// `eval range from <start> to <end> step <step>` (ms).
    Range { start: i64, end: i64, step: i64 },
}

/// An expected series with its position among the eval's lines (for `expect ordered`).
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedSeries {
    /// 1-based position as Prometheus counts it: lines of the block other than `expect <type>`.
    pub pos: usize,
    pub def: SeriesDef,
}

/// An `eval` command.
#[derive(Clone, Debug)]
pub struct Eval {
    pub line: usize,
    pub query: String,
    pub time: EvalTime,
    /// `expect range vector from <a> to <b> step <s>` (ms): the instant query runs at `b` and
    /// its matrix result is compared at `a, a+s, ..., b`.
    pub range_vector: Option<(i64, i64, i64)>,
    /// `expect string "..."`.
    pub expected_string: Option<String>,
    /// A line holding only a number: the result is a scalar.
    pub expected_scalar: Option<SeqValue>,
    pub expected_series: Vec<ExpectedSeries>,
    pub expects: Vec<Expect>,
    /// Legacy `eval_fail`, `eval_warn`, `eval_info`, `eval_ordered`.
    pub legacy_fail: bool,
    pub legacy_warn: bool,
    pub legacy_info: bool,
    pub legacy_ordered: bool,
    /// Legacy `expected_fail_message <text>`.
    pub fail_message: Option<String>,
    /// Legacy `expected_fail_regexp <pattern>`.
    pub fail_regexp: Option<Regex>,
}

impl Eval {
    pub fn is_fail(&self) -> bool {
        self.legacy_fail || self.has(ExpectKind::Fail)
    }

    pub fn is_ordered(&self) -> bool {
        self.legacy_ordered || self.has(ExpectKind::Ordered)
    }

    pub fn has(&self, kind: ExpectKind) -> bool {
        self.expects.iter().any(|e| e.kind == kind)
    }

    /// Expectations of one kind.
    pub fn of(&self, kind: ExpectKind) -> impl Iterator<Item = &Expect> {
        self.expects.iter().filter(move |e| e.kind == kind)
    }

    /// Instant queries whose expected result is a range vector or a string are not re-run as
    /// range queries.
    /// Also, as in Prometheus's runner, queries that use `range()`, `step()`, `start()` or
    /// `end()`: those resolve to different values in range mode.
    pub fn exclude_from_range_check(&self) -> bool {
        self.range_vector.is_some()
            || self.expected_string.is_some()
            || uses_query_context_fn(&self.query)
    }

    /// The expected output mentions native histograms.
    pub fn expects_histograms(&self) -> bool {
        self.expected_scalar == Some(SeqValue::Histogram)
            || self.expected_series.iter().any(|s| s.def.has_histogram())
    }
}

/// Whether `query` calls `range()`, `step()`, `start()` or `end()` (spaces allowed before
/// the parentheses), the way Prometheus's runner detects them.
fn uses_query_context_fn(query: &str) -> bool {
    let b = query.as_bytes();
    ["range", "step", "start", "end"].iter().any(|name| {
        query.match_indices(name).any(|(i, _)| {
            let before_ok = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
            let rest = query[i + name.len()..].trim_start();
            before_ok && rest.starts_with('(') && rest[1..].trim_start().starts_with(')')
        })
    })
}

/// A script command.
#[derive(Clone, Debug)]
pub enum Command {
    Load(Load),
    Clear { line: usize },
    Eval(Box<Eval>),
}

/// A parsed script.
#[derive(Clone, Debug)]
pub struct Script {
    /// File name used in errors and failures.
    pub name: String,
    pub commands: Vec<Command>,
}

/// Parses a whole script. Every malformed line is an error naming `name:line`.
pub fn parse_script(name: &str, text: &str, metric: MetricParser) -> Result<Script, ScriptError> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                ""
            } else {
                l
            }
        })
        .collect();
    let err = |i: usize, msg: String| ScriptError::Syntax {
        file: name.to_string(),
        line: i + 1,
        msg,
    };
    let mut commands = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let (word, rest) = split_token(l);
        match word {
            "clear" if rest.is_empty() => {
                commands.push(Command::Clear { line: i + 1 });
                i += 1;
            }
            "load" | "load_with_nhcb" => {
                let interval_ms = parse_duration(rest)
                    .map_err(|e| err(i, format!("invalid load interval {rest:?}: {e}")))?;
                let mut load = Load {
                    line: i + 1,
                    interval_ms,
                    with_nhcb: word == "load_with_nhcb",
                    series: Vec::new(),
                };
                i += 1;
                while i < lines.len() && !lines[i].is_empty() {
                    let def = parse_series(lines[i], i + 1, metric).map_err(|e| err(i, e))?;
                    // As in Prometheus, a repeated series replaces the earlier definition.
                    match load.series.iter_mut().find(|s| s.labels == def.labels) {
                        Some(s) => *s = def,
                        None => load.series.push(def),
                    }
                    i += 1;
                }
                commands.push(Command::Load(load));
            }
            "eval" | "eval_fail" | "eval_warn" | "eval_info" | "eval_ordered" => {
                let (eval, next) = parse_eval(&lines, i, metric).map_err(|(j, e)| err(j, e))?;
                commands.push(Command::Eval(Box::new(eval)));
                i = next;
            }
            _ => return Err(err(i, format!("invalid command {l:?}"))),
        }
    }
    Ok(Script {
        name: name.to_string(),
        commands,
    })
}

/// Parses the eval block starting at `lines[start]`; returns it and the index of the first line
/// after it. Errors carry the 0-based line index.
fn parse_eval(
    lines: &[&str],
    start: usize,
    metric: MetricParser,
) -> Result<(Eval, usize), (usize, String)> {
    let head = lines[start];
    let (word, rest) = split_token(head);
    let modifier = word.strip_prefix("eval_").unwrap_or("");
    let (mode, rest) = split_token(rest);
    let (time, query) = match mode {
        "instant" => {
            let (at, rest) = split_token(rest);
            if at != "at" {
                return Err((start, "expected `eval instant at <time> <query>`".into()));
            }
            let (t, query) = split_token(rest);
            let at = parse_duration(t)
                .map_err(|e| (start, format!("invalid timestamp definition {t:?}: {e}")))?;
            (EvalTime::Instant { at }, query)
        }
        "range" => {
            let mut rest = rest;
            let mut vals = [0i64; 3];
            for (k, kw) in ["from", "to", "step"].iter().enumerate() {
                let (w, r) = split_token(rest);
                let (v, r) = split_token(r);
                if w != *kw {
                    return Err((
                        start,
                        "expected `eval range from <start> to <end> step <step> <query>`".into(),
                    ));
                }
                vals[k] = parse_duration(v)
                    .map_err(|e| (start, format!("invalid {kw} definition {v:?}: {e}")))?;
                rest = r;
            }
            let [s, e, st] = vals;
            if e < s {
                return Err((
                    start,
                    "invalid test definition, end timestamp is before start timestamp".into(),
                ));
            }
            if modifier == "ordered" {
                return Err((
                    start,
                    "eval_ordered is not allowed for range queries".into(),
                ));
            }
            (
                EvalTime::Range {
                    start: s,
                    end: e,
                    step: st,
                },
                rest,
            )
        }
        _ => return Err((
            start,
            "invalid evaluation command: expected `eval instant at ...` or `eval range from ...`"
                .into(),
        )),
    };
    if query.is_empty() {
        return Err((start, "missing query".into()));
    }
    let mut ev = Eval {
        line: start + 1,
        query: query.to_string(),
        time,
        range_vector: None,
        expected_string: None,
        expected_scalar: None,
        expected_series: Vec::new(),
        expects: Vec::new(),
        legacy_fail: modifier == "fail",
        legacy_warn: modifier == "warn",
        legacy_info: modifier == "info",
        legacy_ordered: modifier == "ordered",
        fail_message: None,
        fail_regexp: None,
    };
    let is_instant = matches!(time, EvalTime::Instant { .. });
    let mut i = start + 1;
    let mut pos = 1;
    while i < lines.len() && !lines[i].is_empty() {
        let l = lines[i];
        if ev.legacy_fail {
            if let Some(m) = l.strip_prefix("expected_fail_message") {
                ev.fail_message = Some(m.trim().to_string());
                return Ok((ev, i + 1));
            }
            if let Some(p) = l.strip_prefix("expected_fail_regexp") {
                let p = p.trim();
                let re = Regex::new(p)
                    .map_err(|e| (i, format!("invalid expected_fail_regexp {p:?}: {e}")))?;
                ev.fail_regexp = Some(re);
                return Ok((ev, i + 1));
            }
        }
        if let Some(r) = l.strip_prefix("expect range vector") {
            if !is_instant {
                return Err((
                    i,
                    "expect range vector is only allowed for instant queries".into(),
                ));
            }
            let (a, b, s) = parse_range_vector(r).map_err(|e| (i, e))?;
            ev.range_vector = Some((a, b, s));
            ev.time = EvalTime::Instant { at: b };
        } else if let Some(r) = l.strip_prefix("expect string") {
            ev.expected_string = Some(parse_string_literal(r).map_err(|e| (i, e))?);
        } else if l.split(' ').next() == Some("expect") {
            let e = parse_expect(l).map_err(|e| (i, e))?;
            ev.expects.push(e);
            validate_expects(&ev).map_err(|e| (i, e))?;
            pos -= 1;
        } else if let Ok(f) = parse_go_number(l) {
            ev.expected_scalar = Some(SeqValue::Float(f));
            return Ok((ev, i + 1));
        } else {
            let def = parse_series(l, i + 1, metric).map_err(|e| (i, e))?;
            if def.values.len() > 1 && is_instant && ev.range_vector.is_none() {
                return Err((
                    i,
                    "expecting multiple values in instant evaluation not allowed; use \
                     'expect range vector' for a range vector result"
                        .into(),
                ));
            }
            let entry = ExpectedSeries { pos, def };
            match ev
                .expected_series
                .iter_mut()
                .find(|s| s.def.labels == entry.def.labels)
            {
                Some(s) => *s = entry,
                None => ev.expected_series.push(entry),
            }
        }
        pos += 1;
        i += 1;
    }
    Ok((ev, i))
}

fn validate_expects(ev: &Eval) -> Result<(), String> {
    use ExpectKind::*;
    if ev.has(Info) && ev.has(NoInfo) {
        return Err("invalid expect lines, info and no_info cannot be used together".into());
    }
    if ev.has(Warn) && ev.has(NoWarn) {
        return Err("invalid expect lines, warn and no_warn cannot be used together".into());
    }
    if ev.of(Fail).count() > 1 {
        return Err("invalid expect lines, multiple expect fail lines are not allowed".into());
    }
    Ok(())
}

/// Parses `expect <type> [msg|regex: <text>]`.
pub fn parse_expect(line: &str) -> Result<Expect, String> {
    let bad = || {
        format!(
            "invalid expect statement {line:?}, must match `expect <type> <match_type>: <string>`"
        )
    };
    let rest = line.trim().strip_prefix("expect").ok_or_else(bad)?;
    if !rest.starts_with([' ', '\t']) {
        return Err(bad());
    }
    let (ty, rest) = split_token(rest.trim_start());
    let kind = match ty {
        "ordered" => ExpectKind::Ordered,
        "fail" => ExpectKind::Fail,
        "warn" => ExpectKind::Warn,
        "no_warn" => ExpectKind::NoWarn,
        "info" => ExpectKind::Info,
        "no_info" => ExpectKind::NoInfo,
        _ => return Err(format!("invalid expected error/annotation type {ty:?}")),
    };
    if rest.is_empty() {
        return Ok(Expect {
            kind,
            matcher: MsgMatch::Any,
        });
    }
    let (mt, text) = rest.split_once(':').ok_or_else(bad)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    let matcher = match mt {
        "msg" => MsgMatch::Exact(text.to_string()),
        "regex" => MsgMatch::Regex(
            Regex::new(text).map_err(|e| format!("invalid regex {text:?} for {ty}: {e}"))?,
        ),
        _ => return Err(format!("invalid token {mt:?} after {ty}")),
    };
    Ok(Expect { kind, matcher })
}

/// Parses the rest of `expect range vector from <a> to <b> step <s>`.
fn parse_range_vector(rest: &str) -> Result<(i64, i64, i64), String> {
    let bad = || {
        "invalid range vector definition: expected `expect range vector from <start> to <end> step <step>`".to_string()
    };
    if !rest.starts_with([' ', '\t']) {
        return Err(bad());
    }
    let mut rest = rest.trim_start();
    let mut vals = [0i64; 3];
    for (k, kw) in ["from", "to", "step"].iter().enumerate() {
        let (w, r) = split_token(rest);
        let (v, r) = split_token(r);
        if w != *kw || v.is_empty() {
            return Err(bad());
        }
        vals[k] = parse_duration(v).map_err(|e| format!("invalid {kw} definition {v:?}: {e}"))?;
        rest = r;
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    if vals[1] < vals[0] {
        return Err("invalid range vector definition, end is before start".into());
    }
    Ok((vals[0], vals[1], vals[2]))
}

/// Parses the rest of `expect string "<text>"` (double or back quotes, Go escapes).
fn parse_string_literal(rest: &str) -> Result<String, String> {
    let s = rest.strip_prefix(' ').unwrap_or("");
    if s.is_empty() {
        return Err(
            "expected string literal not valid - a quoted string literal is required".into(),
        );
    }
    go_unquote(s).ok_or_else(|| {
        "expected string literal not valid - check that the string is correctly quoted".into()
    })
}

/// Go's `strconv.Unquote` for `"..."` and `` `...` `` strings: the parser's unquoting, without
/// single-quoted strings (runes in Go), and with `\r` dropped from raw strings as Go does.
pub(crate) fn go_unquote(s: &str) -> Option<String> {
    if s.starts_with('\'') {
        return None;
    }
    let u = crate::promql::parser::unquote(s).ok()?;
    Some(if s.starts_with('`') {
        u.replace('\r', "")
    } else {
        u
    })
}

/// Splits off the first whitespace-delimited token; the rest is trimmed.
fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

/// Parses a series line: `<labels> <values...>` (values may be absent).
pub fn parse_series(line: &str, lineno: usize, metric: MetricParser) -> Result<SeriesDef, String> {
    let (lab, vals) = split_series_line(line)?;
    let labels = if lab.trim() == "{}" {
        Labels::default()
    } else {
        metric(lab).map_err(|e| format!("invalid series description {lab:?}: {e}"))?
    };
    Ok(SeriesDef {
        line: lineno,
        labels,
        values: parse_values(vals)?,
    })
}

/// Splits a series line into its label part (metric name and/or `{...}`, quotes respected) and
/// its values.
pub fn split_series_line(line: &str) -> Result<(&str, &str), String> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'{' {
        i += 1;
    }
    if i < b.len() && b[i] == b'{' {
        let mut quote: Option<u8> = None;
        i += 1;
        loop {
            let Some(&c) = b.get(i) else {
                return Err(format!("unterminated label set in {line:?}"));
            };
            match quote {
                Some(q) if c == b'\\' && q != b'`' => i += 1,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == b'"' || c == b'\'' || c == b'`' => quote = Some(c),
                None if c == b'}' => {
                    i += 1;
                    break;
                }
                None => {}
            }
            i += 1;
        }
    }
    if i == 0 {
        return Err(format!("missing series description in {line:?}"));
    }
    if i < b.len() && !b[i].is_ascii_whitespace() {
        return Err(format!(
            "expected whitespace after the series description in {line:?}"
        ));
    }
    Ok((&line[..i], line[i..].trim()))
}

/// Most points one value item may expand to (guards against `1x99999999999`).
const MAX_REPEAT: u64 = 10_000_000;

/// Expands a sequence of values: `1 2 3`, `1+2x3`, `1-2x3`, `1x3`, `_`, `_x3`, `stale`,
/// `Inf`, `-Inf`, `NaN`, decimal numbers with exponents, and native histograms `{{...}}` (optionally
/// `{{...}}x3` or `{{...}}+{{...}}x3`) as [`SeqValue::Histogram`].
pub fn parse_values(s: &str) -> Result<Vec<SeqValue>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let consumed = if rest.starts_with("{{") {
            parse_histogram_item(rest, &mut out)?
        } else {
            let end = rest
                .find(|c: char| c.is_ascii_whitespace())
                .unwrap_or(rest.len());
            parse_float_item(&rest[..end], &mut out)?;
            end
        };
        rest = rest[consumed..].trim_start();
        if out.len() as u64 > MAX_REPEAT {
            return Err(format!("too many values (more than {MAX_REPEAT})"));
        }
    }
    Ok(out)
}

/// Parses `{{...}}[(+|-){{...}}][xN]` at the start of `s`; returns the bytes consumed.
fn parse_histogram_item(s: &str, out: &mut Vec<SeqValue>) -> Result<usize, String> {
    let close = |from: usize| -> Result<usize, String> {
        s[from..]
            .find("}}")
            .map(|k| from + k + 2)
            .ok_or_else(|| format!("unterminated native histogram in {s:?}"))
    };
    let mut end = close(2)?;
    let after = &s[end..];
    if (after.starts_with("+{{") || after.starts_with("-{{")) && after.len() > 3 {
        end = close(end + 3)?;
    }
    let tok_end = s[end..]
        .find(|c: char| c.is_ascii_whitespace())
        .map_or(s.len(), |k| end + k);
    let suffix = &s[end..tok_end];
    let n = if suffix.is_empty() {
        1
    } else {
        let times = suffix
            .strip_prefix('x')
            .ok_or_else(|| format!("unexpected {suffix:?} after native histogram"))?;
        parse_times(times)? + 1
    };
    out.extend(std::iter::repeat_n(SeqValue::Histogram, n as usize));
    Ok(tok_end)
}

fn parse_times(s: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("invalid repetition count {s:?}"));
    }
    let n: u64 = s
        .parse()
        .map_err(|_| format!("invalid repetition count {s:?}"))?;
    if n > MAX_REPEAT {
        return Err(format!("repetition count {n} is too large"));
    }
    Ok(n)
}

/// Parses one whitespace-free float item.
fn parse_float_item(tok: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    if tok == "_" {
        out.push(SeqValue::Omitted);
        return Ok(());
    }
    if let Some(n) = tok.strip_prefix("_x") {
        let n = parse_times(n)?;
        out.extend(std::iter::repeat_n(SeqValue::Omitted, n as usize));
        return Ok(());
    }
    if tok == "stale" {
        out.push(SeqValue::Float(f64::from_bits(o11y_tsdb::STALE_NAN_BITS)));
        return Ok(());
    }
    let bad = || format!("invalid value {tok:?}");
    let (base, rest) = scan_number(tok).ok_or_else(bad)?;
    if rest.is_empty() {
        out.push(SeqValue::Float(base));
        return Ok(());
    }
    let (inc, times) = if let Some(times) = rest.strip_prefix('x') {
        (0.0, times)
    } else if rest.starts_with(['+', '-']) {
        let (inc, r) = scan_number(rest).ok_or_else(bad)?;
        (inc, r.strip_prefix('x').ok_or_else(bad)?)
    } else {
        return Err(bad());
    };
    let n = parse_times(times)?;
    // Prometheus accumulates the increment step by step (`v += inc`), with a value for step 0.
    let mut v = base;
    for _ in 0..=n {
        out.push(SeqValue::Float(v));
        v += inc;
    }
    Ok(())
}

/// Scans a number at the start of `s` as PromQL's series lexer does: an optional sign, then
/// `Inf`/`NaN` (any case) or a decimal with optional fraction and exponent. Returns the value
/// and the rest. There are no hex numbers here: `x` always means repetition (`0+0x10` is ten
/// more zeros).
fn scan_number(s: &str) -> Option<(f64, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    let neg = match b.first() {
        Some(b'+') => {
            i = 1;
            false
        }
        Some(b'-') => {
            i = 1;
            true
        }
        _ => false,
    };
    let sign = if neg { -1.0 } else { 1.0 };
    let word_end = |k: usize| {
        b.get(k)
            .is_none_or(|c| !c.is_ascii_alphanumeric() || *c == b'x')
    };
    let lower: String = s[i..]
        .chars()
        .take(3)
        .collect::<String>()
        .to_ascii_lowercase();
    if lower == "inf" && word_end(i + 3) {
        return Some((sign * f64::INFINITY, &s[i + 3..]));
    }
    if lower == "nan" && word_end(i + 3) {
        return Some((f64::NAN, &s[i + 3..]));
    }
    let start = i;
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] | 0x20) == b'e' {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    let v: f64 = s[start..i].parse().ok()?;
    Some((sign * v, &s[i..]))
}

pub use crate::promql::parser::parse_duration_ms as parse_duration;

/// Go's `parseNumber` of test.go: `strconv.ParseInt(s, 0, 64)`, else `strconv.ParseFloat`
/// (the parser's number parsing, with the runner's error text).
pub fn parse_go_number(s: &str) -> Result<f64, String> {
    crate::promql::parser::parse_go_number(s).map_err(|_| format!("error parsing number {s:?}"))
}

#[cfg(test)]
mod context_fn_tests {
    use super::uses_query_context_fn;

    #[test]
    fn query_context_functions_are_detected_as_calls_only() {
        for q in [
            "range()",
            "vector(step())",
            "end ( ) - start()",
            "x @ start()",
        ] {
            assert!(uses_query_context_fn(q), "{q}");
        }
        for q in [
            "rate(x[5m])",
            "my_range(x)",
            "sum(step_total)",
            "x{end=\"()\"} + startx()",
        ] {
            assert!(!uses_query_context_fn(q), "{q}");
        }
    }
}
