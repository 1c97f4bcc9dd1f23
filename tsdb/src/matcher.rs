//! Label matchers (`name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`) with Prometheus 3
//! semantics.
//!
//! A matcher tests one label value; an absent label is tested as the empty string, so
//! `job=""` selects series without `job` and `job=~".*"` selects every series.
//!
//! Regular expressions follow Prometheus's `FastRegexMatcher`: the pattern uses Go RE2
//! syntax and is fully anchored with `.` matching newlines, i.e. it is evaluated as
//! `^(?s:<pattern>)$`. Construction runs in three steps:
//!
//! ```text
//!  Go pattern ──► go_syntax::translate ──► Rust pattern ──► regex-syntax Hir ──► Plan
//!                 (Go-only syntax, ASCII        │                 │ finite set?   Literal / Set
//!                  \d \w \s \b, Go errors)      │                 │ lit.* .*lit   Prefix / Suffix / …
//!                                               └──────────────────┴─ otherwise ─► Regex(^(?s:…)$)
//! ```
//!
//! The translation exists because the Rust `regex` crate differs from Go's `regexp` in a
//! few places that change results: Go's `\d \w \s \b` are ASCII-only (Rust's are Unicode),
//! Go's `\s` excludes `\v`, Go accepts `\Q…\E`, octal escapes, a literal `{` that does not
//! start a repetition, `[` and `&&` as plain characters inside classes and duplicate group
//! names; Go rejects the `x`, `u` and `R` flags, `\u` escapes, nested repetition (`a**`)
//! and repetition counts above 1000. Everything else (literals, `.`, `(?i)` Unicode simple
//! case folding, `\pL`) means the same in both engines and is passed through.
//!
//! The fast paths never change results: each is derived from the parsed expression only
//! when it is exactly equivalent, and a property test checks them against the plain
//! anchored regex.

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use regex_syntax::hir::{Class, Hir, HirKind};

use crate::labels::{excerpt, excerpt_n, is_valid_legacy_label_name, write_go_quoted, Labels};

/// Largest set of values extracted for [`Matcher::set_matches`] (Prometheus's
/// `maxSetMatches`).
const MAX_SET_MATCHES: usize = 256;

/// Maximum group nesting depth (Go's `maxHeight`).
const NEST_LIMIT: u32 = 1000;

/// Sets up to this size are scanned linearly; larger ones use a hash set.
const LINEAR_SET_MAX: usize = 16;

/// Hasher for set lookups: XXH3 over the string bytes. Deterministic; a crafted pattern
/// can at worst make its own lookups probe longer, and sets hold at most 256 values.
#[derive(Default)]
struct StrHasher(u64);

impl Hasher for StrHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u8(&mut self, i: u8) {
        // `str` hashing appends a 0xFF terminator; a cheap bijective mix is enough.
        self.0 = self.0.rotate_left(8) ^ u64::from(i);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// How a matcher compares a label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`: the value equals the string.
    Equal,
    /// `!=`: the value differs from the string.
    NotEqual,
    /// `=~`: the whole value matches the regular expression.
    Regex,
    /// `!~`: the whole value does not match the regular expression.
    NotRegex,
}

impl MatchOp {
    /// The PromQL spelling: `=`, `!=`, `=~` or `!~`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }

    /// True for `!=` and `!~`.
    pub fn is_negative(self) -> bool {
        matches!(self, MatchOp::NotEqual | MatchOp::NotRegex)
    }

    /// True for `=~` and `!~`.
    pub fn is_regex(self) -> bool {
        matches!(self, MatchOp::Regex | MatchOp::NotRegex)
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a matcher could not be built.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MatcherError {
    /// The regular expression does not parse (with Go RE2 syntax) or is too large.
    #[error("invalid regular expression {pattern:?}: {reason}")]
    InvalidRegex {
        /// Excerpt of the pattern (at most 64 characters, `…` when cut).
        pattern: String,
        /// What is wrong, in the words of Go's `regexp/syntax` where it has them.
        reason: String,
    },
}

/// How the positive form of a matcher is evaluated.
#[derive(Clone, Debug)]
enum Plan {
    /// `=` / `!=`: compare with [`Matcher::value`].
    Value,
    /// Exactly one value.
    Literal(String),
    /// A finite set of at most [`LINEAR_SET_MAX`] values, sorted and deduplicated;
    /// scanned linearly (string equality compares lengths first, so misses are cheap).
    Set(Box<[String]>),
    /// A larger finite set: sorted values for [`Matcher::set_matches`] and a hash set
    /// for lookups.
    HashSet(
        Box<[String]>,
        HashSet<String, BuildHasherDefault<StrHasher>>,
    ),
    /// `lit.*`
    Prefix(String),
    /// `.*lit`
    Suffix(String),
    /// `.*lit.*`
    Contains(String),
    /// `lit.*lit`
    PrefixSuffix(String, String),
    /// `.*`
    Any,
    /// `.+`
    NonEmpty,
    /// Anything else: the compiled `^(?s:…)$`.
    Regex(regex::Regex),
}

/// A label matcher.
///
/// The public fields describe the matcher; the compiled form is derived from them in
/// [`Matcher::new`], so treat them as read-only (build a new matcher to change one).
#[derive(Clone, Debug)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// String or pattern, as written (unescaped).
    pub value: String,
    plan: Plan,
    prefix: Option<String>,
    matches_empty: bool,
}

impl Matcher {
    /// Builds a matcher. For regex operators, `value` is a Go RE2 pattern; it is compiled
    /// here and an invalid pattern yields [`MatcherError::InvalidRegex`].
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Matcher, MatcherError> {
        let value = value.into();
        let (plan, prefix) = if op.is_regex() {
            compile(&value).map_err(|reason| MatcherError::InvalidRegex {
                pattern: excerpt(&value),
                reason,
            })?
        } else {
            let prefix = (!value.is_empty()).then(|| value.clone());
            (Plan::Value, prefix)
        };
        let mut m = Matcher {
            name: name.into(),
            op,
            value,
            plan,
            prefix,
            matches_empty: false,
        };
        m.matches_empty = m.matches("");
        Ok(m)
    }

    /// Whether `value` satisfies the matcher. For an absent label pass `""`.
    #[inline]
    pub fn matches(&self, value: &str) -> bool {
        let positive = match &self.plan {
            Plan::Value => value == self.value,
            Plan::Literal(s) => value == s,
            Plan::Set(set) => set.iter().any(|s| s == value),
            Plan::HashSet(_, set) => set.contains(value),
            Plan::Prefix(p) => value.starts_with(p.as_str()),
            Plan::Suffix(s) => value.ends_with(s.as_str()),
            Plan::Contains(s) => contains(value, s),
            Plan::PrefixSuffix(p, s) => {
                value.len() >= p.len() + s.len()
                    && value.starts_with(p.as_str())
                    && value.ends_with(s.as_str())
            }
            Plan::Any => true,
            Plan::NonEmpty => !value.is_empty(),
            Plan::Regex(re) => re.is_match(value),
        };
        positive != self.op.is_negative()
    }

    /// Whether the matcher selects series that lack the label (it matches `""`).
    pub fn matches_empty(&self) -> bool {
        self.matches_empty
    }

    /// For `=` and `=~`: the exact, finite set of values the matcher accepts, sorted, when
    /// it has one of at most 256 values (`=` gives its value; `=~"a|b"`, `=~"(?:a|b)"`,
    /// `=~"x(a|b)"`, `=~"[ab]"` give their expansions). May contain `""`, which stands for
    /// "label absent". `None` for negative operators and for open-ended patterns.
    pub fn set_matches(&self) -> Option<&[String]> {
        if self.op.is_negative() {
            return None;
        }
        self.literal_set()
    }

    /// Like [`Matcher::set_matches`] but ignoring the operator's negation: for `!=` and
    /// `!~` it is the set of values the matcher rejects. Lets postings lookups subtract.
    pub fn literal_set(&self) -> Option<&[String]> {
        match &self.plan {
            Plan::Value => Some(std::slice::from_ref(&self.value)),
            Plan::Literal(s) => Some(std::slice::from_ref(s)),
            Plan::Set(set) | Plan::HashSet(set, _) => Some(set),
            _ => None,
        }
    }

    /// For `=` and `=~`: a non-empty string every matching value starts with (`"foo.*"` →
    /// `"foo"`, `"foo(bar|baz)"` → `"fooba"`), for range scans over sorted values. `None`
    /// for negative operators or when no such prefix exists.
    pub fn prefix(&self) -> Option<&str> {
        if self.op.is_negative() {
            return None;
        }
        self.prefix.as_deref()
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl std::hash::Hash for Matcher {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.op.hash(state);
        self.value.hash(state);
    }
}

/// Prints the matcher as Prometheus does: `name="value"`, `name!="value"`, `name=~"value"`,
/// `name!~"value"`, the value quoted with Go `strconv.Quote` rules and the name quoted too
/// when it is not a legacy label name (`"my.label"="x"`).
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_valid_legacy_label_name(&self.name) {
            f.write_str(&self.name)?;
        } else {
            write_go_quoted(f, &self.name)?;
        }
        f.write_str(self.op.as_str())?;
        write_go_quoted(f, &self.value)
    }
}

/// Substring search tuned for short label values: a byte scan for one-byte needles and a
/// naive window compare for short haystacks, where `str::contains`'s searcher setup
/// dominates. Byte-level matches of UTF-8 needles are always on character boundaries.
#[inline]
fn contains(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    match n {
        [] => true,
        [b] => h.contains(b),
        _ if h.len() <= 64 => h.windows(n.len()).any(|w| w == n),
        _ => haystack.contains(needle),
    }
}

/// True if every matcher matches `labels`; a label a matcher names but the set lacks is
/// matched as `""`.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

/// Compiles a Go pattern into a strategy and a required prefix. Errors are reasons.
fn compile(pattern: &str) -> Result<(Plan, Option<String>), String> {
    let translated = go_syntax::translate(pattern)?;
    let hir = regex_syntax::ParserBuilder::new()
        .nest_limit(NEST_LIMIT)
        .dot_matches_new_line(true)
        .build()
        .parse(&translated)
        .map_err(|e| syntax_reason(&e))?;
    let prefix = required_prefix(&hir);
    let strategy = match fast_strategy(&hir) {
        Some(s) => s,
        None => Plan::Regex(compile_anchored(&translated)?),
    };
    Ok((strategy, prefix))
}

/// Compiles an already translated pattern as `^(?s:…)$`.
fn compile_anchored(translated: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&format!("^(?s:{translated})$"))
        .nest_limit(NEST_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => {
                format!("expression too large (compiled form exceeds {limit} bytes)")
            }
            _ => "invalid or unsupported regular expression".to_string(),
        })
}

/// A short description of a regex-syntax error without the pattern echo.
fn syntax_reason(e: &regex_syntax::Error) -> String {
    match e {
        regex_syntax::Error::Parse(e) => e.kind().to_string(),
        regex_syntax::Error::Translate(e) => e.kind().to_string(),
        _ => "invalid regular expression".to_string(),
    }
}

/// Strips capture groups, which do not affect whole-string matching.
fn uncapture(mut h: &Hir) -> &Hir {
    while let HirKind::Capture(c) = h.kind() {
        h = &c.sub;
    }
    h
}

/// A class matching every Unicode scalar value (`.` under `(?s)`).
fn is_any_char(h: &Hir) -> bool {
    match uncapture(h).kind() {
        HirKind::Class(Class::Unicode(c)) => {
            c.ranges().len() == 1
                && c.ranges()[0].start() == '\0'
                && c.ranges()[0].end() == char::MAX
        }
        _ => false,
    }
}

/// `.*` (`min` = 0) or `.+` (`min` = 1) with `.` matching everything.
fn is_any_repeat(h: &Hir, min: u32) -> bool {
    match uncapture(h).kind() {
        HirKind::Repetition(r) => r.min == min && r.max.is_none() && is_any_char(&r.sub),
        _ => false,
    }
}

fn as_literal(h: &Hir) -> Option<String> {
    match uncapture(h).kind() {
        HirKind::Literal(l) => String::from_utf8(l.0.to_vec()).ok(),
        _ => None,
    }
}

/// An equivalent non-regex strategy for `hir`, if there is one.
fn fast_strategy(hir: &Hir) -> Option<Plan> {
    if let Some(mut set) = finite_set(hir) {
        set.sort_unstable();
        set.dedup();
        return Some(match set.len() {
            1 => Plan::Literal(set.swap_remove(0)),
            n if n <= LINEAR_SET_MAX => Plan::Set(set.into_boxed_slice()),
            _ => {
                let lookup = set.iter().cloned().collect();
                Plan::HashSet(set.into_boxed_slice(), lookup)
            }
        });
    }
    if is_any_repeat(hir, 0) {
        return Some(Plan::Any);
    }
    if is_any_repeat(hir, 1) {
        return Some(Plan::NonEmpty);
    }
    let HirKind::Concat(subs) = uncapture(hir).kind() else {
        return None;
    };
    let star = |h: &Hir| is_any_repeat(h, 0);
    match subs.as_slice() {
        [a, b] if star(b) => as_literal(a).map(Plan::Prefix),
        [a, b] if star(a) => as_literal(b).map(Plan::Suffix),
        [a, b, c] if star(a) && star(c) => as_literal(b).map(Plan::Contains),
        [a, b, c] if star(b) => Some(Plan::PrefixSuffix(as_literal(a)?, as_literal(c)?)),
        _ => None,
    }
}

/// The finite language of `h` if it has at most [`MAX_SET_MATCHES`] strings.
fn finite_set(h: &Hir) -> Option<Vec<String>> {
    match h.kind() {
        HirKind::Empty => Some(vec![String::new()]),
        HirKind::Literal(l) => Some(vec![String::from_utf8(l.0.to_vec()).ok()?]),
        HirKind::Class(Class::Unicode(c)) => {
            let n: usize = c.ranges().iter().map(|r| r.len()).sum();
            if n > MAX_SET_MATCHES {
                return None;
            }
            Some(
                c.iter()
                    .flat_map(|r| (r.start() as u32..=r.end() as u32).filter_map(char::from_u32))
                    .map(String::from)
                    .collect(),
            )
        }
        HirKind::Class(Class::Bytes(c)) => {
            let n: usize = c.ranges().iter().map(|r| r.len()).sum();
            if n > MAX_SET_MATCHES || !c.is_ascii() {
                return None;
            }
            Some(
                c.iter()
                    .flat_map(|r| r.start()..=r.end())
                    .map(|b| char::from(b).to_string())
                    .collect(),
            )
        }
        HirKind::Look(_) => None,
        HirKind::Capture(c) => finite_set(&c.sub),
        HirKind::Concat(subs) => {
            let mut acc = vec![String::new()];
            for s in subs {
                acc = product(&acc, &finite_set(s)?)?;
            }
            Some(acc)
        }
        HirKind::Alternation(subs) => {
            let mut acc = Vec::new();
            for s in subs {
                acc.extend(finite_set(s)?);
                if acc.len() > MAX_SET_MATCHES {
                    return None;
                }
            }
            Some(acc)
        }
        HirKind::Repetition(r) => {
            let max = r.max?;
            if max as usize > MAX_SET_MATCHES {
                return None;
            }
            let sub = finite_set(&r.sub)?;
            let mut acc = Vec::new();
            let mut power = vec![String::new()];
            if r.min == 0 {
                acc.push(String::new());
            }
            for k in 1..=max {
                power = product(&power, &sub)?;
                if k >= r.min {
                    acc.extend(power.iter().cloned());
                    if acc.len() > MAX_SET_MATCHES {
                        return None;
                    }
                }
            }
            Some(acc)
        }
    }
}

/// All concatenations `a + b`, or `None` beyond [`MAX_SET_MATCHES`].
fn product(a: &[String], b: &[String]) -> Option<Vec<String>> {
    if a.len().saturating_mul(b.len()) > MAX_SET_MATCHES {
        return None;
    }
    Some(
        a.iter()
            .flat_map(|x| b.iter().map(move |y| format!("{x}{y}")))
            .collect(),
    )
}

/// A non-empty prefix that every string matched by `h` starts with.
fn required_prefix(h: &Hir) -> Option<String> {
    let (mut p, _) = prefix_of(h);
    while std::str::from_utf8(&p).is_err() {
        p.pop();
    }
    String::from_utf8(p).ok().filter(|p| !p.is_empty())
}

/// `(prefix, complete)`: every match of `h` starts with `prefix`; when `complete`, every
/// match of `h` is exactly `prefix` (zero-width assertions count as complete and empty).
fn prefix_of(h: &Hir) -> (Vec<u8>, bool) {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => (Vec::new(), true),
        HirKind::Literal(l) => (l.0.to_vec(), true),
        HirKind::Class(_) => (Vec::new(), false),
        HirKind::Capture(c) => prefix_of(&c.sub),
        HirKind::Repetition(r) => {
            if r.min == 0 {
                return (Vec::new(), false);
            }
            let (p, complete) = prefix_of(&r.sub);
            (p, complete && r.min == 1 && r.max == Some(1))
        }
        HirKind::Concat(subs) => {
            let mut acc = Vec::new();
            for s in subs {
                let (p, complete) = prefix_of(s);
                acc.extend_from_slice(&p);
                if !complete {
                    return (acc, false);
                }
            }
            (acc, true)
        }
        HirKind::Alternation(subs) => {
            let mut iter = subs.iter().map(prefix_of);
            let Some((mut acc, mut complete)) = iter.next() else {
                return (Vec::new(), false);
            };
            for (p, c) in iter {
                let common = acc.iter().zip(&p).take_while(|(a, b)| a == b).count();
                complete = complete && c && common == acc.len() && common == p.len();
                acc.truncate(common);
            }
            (acc, complete)
        }
    }
}

/// Translation of Go `regexp/syntax` patterns (flags `Perl | DotNL`, as Prometheus parses
/// them) into equivalent patterns for the Rust `regex` crate.
///
/// The translator is a single left-to-right scan mirroring Go's parser. It emits
/// every literal in escaped form and every class explicitly, so the Rust parser only ever
/// sees unambiguous syntax; structure (groups, alternation, repetition) is passed through
/// after Go's checks. Remaining syntax errors (unknown Unicode class names, …) are left to
/// regex-syntax.
mod go_syntax {
    use super::excerpt_n;

    /// Go's limit on repetition counts, also applied to nested repetitions' product.
    const MAX_REPEAT: u64 = 1000;
    /// Characters of the pattern quoted in an error reason.
    const TOKEN_CHARS: usize = 32;

    /// Go's Perl classes, written as Rust class items. Go's `\s` is `[\t\n\f\r ]`.
    const DIGIT: &str = r"0-9";
    const SPACE: &str = r"\t\n\x0C\r\x20";
    const WORD: &str = r"0-9A-Za-z_";

    const POSIX_CLASSES: [&str; 14] = [
        "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
        "space", "upper", "word", "xdigit",
    ];

    /// A class no character matches, and one every character matches.
    const NOTHING: &str = r"[^\x{0}-\x{10FFFF}]";
    const EVERYTHING: &str = r"[\x{0}-\x{10FFFF}]";

    /// Translates `src`; errors are reasons phrased like Go's.
    pub(super) fn translate(src: &str) -> Result<String, String> {
        let mut t = Translator {
            src,
            pos: 0,
            out: String::with_capacity(src.len() + 16),
            frames: vec![1],
            last: None,
            repeat_start: None,
        };
        t.run()?;
        Ok(t.out)
    }

    struct Translator<'a> {
        src: &'a str,
        /// Byte offset of the next unread character.
        pos: usize,
        out: String,
        /// Per open group (index 0: top level), the largest product of nested `{n,m}`
        /// counts among its finished items, for Go's "repeat count ≤ 1000" rule.
        frames: Vec<u64>,
        /// The item a following repetition operator applies to, with its repeat product;
        /// `None` at the start of a group or alternative.
        last: Option<u64>,
        /// Start of the previous token if it was a repetition operator.
        repeat_start: Option<usize>,
    }

    fn token(s: &str) -> String {
        excerpt_n(s, TOKEN_CHARS)
    }

    impl<'a> Translator<'a> {
        fn peek(&self) -> Option<char> {
            self.src[self.pos..].chars().next()
        }

        fn rest(&self) -> &'a str {
            &self.src[self.pos..]
        }

        /// Folds the pending item into the enclosing group's product.
        fn commit(&mut self) {
            if let Some(p) = self.last.take() {
                if let Some(top) = self.frames.last_mut() {
                    *top = (*top).max(p);
                }
            }
        }

        /// Starts a new item that repetition operators may apply to.
        fn item(&mut self) {
            self.commit();
            self.last = Some(1);
        }

        fn run(&mut self) -> Result<(), String> {
            while let Some(c) = self.peek() {
                let prev_repeat = self.repeat_start.take();
                match c {
                    '(' => self.open_group()?,
                    ')' => self.close_group()?,
                    '|' => {
                        self.commit();
                        self.pos += 1;
                        self.out.push('|');
                    }
                    '*' | '+' | '?' => {
                        let start = self.pos;
                        self.pos += 1;
                        self.repeat(start, prev_repeat, None)?;
                    }
                    '{' => match parse_repeat(self.rest()) {
                        None => {
                            // Not a valid repetition: a literal '{', as in Go.
                            self.pos += 1;
                            self.out.push_str(r"\{");
                            self.item();
                        }
                        Some((min, max, len)) => {
                            let start = self.pos;
                            self.pos += len;
                            let bad =
                                min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || min > m);
                            if bad {
                                return Err(format!(
                                    "invalid repeat count: `{}`",
                                    token(&self.src[start..self.pos])
                                ));
                            }
                            self.repeat(start, prev_repeat, Some((min, max)))?;
                        }
                    },
                    '[' => {
                        self.class()?;
                        self.item();
                    }
                    '.' | '^' | '$' => {
                        self.pos += 1;
                        self.out.push(c);
                        self.item();
                    }
                    '\\' => self.escape()?,
                    _ => {
                        self.pos += c.len_utf8();
                        push_char(&mut self.out, c);
                        self.item();
                    }
                }
            }
            if self.frames.len() > 1 {
                return Err("missing closing )".to_string());
            }
            Ok(())
        }

        /// A repetition operator spanning `start..self.pos` (before a non-greedy `?`).
        fn repeat(
            &mut self,
            start: usize,
            prev_repeat: Option<usize>,
            counts: Option<(u64, Option<u64>)>,
        ) -> Result<(), String> {
            if self.peek() == Some('?') {
                self.pos += 1;
            }
            let text = &self.src[start..self.pos];
            if let Some(prev) = prev_repeat {
                return Err(format!(
                    "invalid nested repetition operator: `{}`",
                    token(&self.src[prev..self.pos])
                ));
            }
            let Some(inner) = self.last else {
                return Err(format!(
                    "missing argument to repetition operator: `{}`",
                    token(text)
                ));
            };
            if let Some((min, max)) = counts {
                // Go's repeatIsValid: the product of nested counts (max, or min when
                // unbounded) must stay within 1000; a zero count ends the chain.
                let m = max.unwrap_or(min);
                if m == 0 {
                    self.last = Some(1);
                } else {
                    let p = inner.saturating_mul(m);
                    if (min >= 2 || max.is_some_and(|m| m >= 2)) && p > MAX_REPEAT {
                        return Err(format!("invalid repeat count: `{}`", token(text)));
                    }
                    self.last = Some(p);
                }
            }
            self.out.push_str(text);
            self.repeat_start = Some(start);
            Ok(())
        }

        fn open_group(&mut self) -> Result<(), String> {
            let start = self.pos;
            let rest = self.rest();
            if !rest.starts_with("(?") {
                self.pos += 1;
                self.push_group();
                return Ok(());
            }
            // Named capture: (?P<name>re) or (?<name>re). Names do not affect matching and
            // Go allows duplicates, so the group is emitted unnamed.
            let name_start = if rest.len() > 4 && rest.starts_with("(?P<") {
                Some(4)
            } else if rest.len() > 3 && rest.starts_with("(?<") {
                Some(3)
            } else {
                None
            };
            if let Some(name_start) = name_start {
                let Some(end) = rest.find('>') else {
                    return Err(format!("invalid named capture: `{}`", token(rest)));
                };
                let name = &rest[name_start..end];
                if name.is_empty() || !name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()) {
                    return Err(format!("invalid named capture: `{}`", token(&rest[..=end])));
                }
                self.pos += end + 1;
                self.push_group();
                return Ok(());
            }
            // Flags: (?flags) or (?flags:re), flags from "imsU", at most one '-'.
            let mut on = String::new();
            let mut off = String::new();
            let mut negated = false;
            let mut saw_flag = false;
            for (i, c) in rest[2..].char_indices() {
                match c {
                    'i' | 'm' | 's' | 'U' => {
                        // Later settings override earlier ones, as in Go.
                        on.retain(|x| x != c);
                        off.retain(|x| x != c);
                        if negated {
                            off.push(c);
                        } else {
                            on.push(c);
                        }
                        saw_flag = true;
                    }
                    '-' if !negated => {
                        negated = true;
                        saw_flag = false;
                    }
                    ':' | ')' if !negated || saw_flag => {
                        self.pos = start + 2 + i + 1;
                        let mut flags = on;
                        if !off.is_empty() {
                            flags.push('-');
                            flags.push_str(&off);
                        }
                        if c == ':' {
                            self.commit();
                            self.frames.push(1);
                            self.out.push_str("(?");
                            self.out.push_str(&flags);
                            self.out.push(':');
                        } else {
                            // A flag group is not an item: Go does not allow repeating it.
                            self.commit();
                            if !flags.is_empty() {
                                self.out.push_str("(?");
                                self.out.push_str(&flags);
                                self.out.push(')');
                            }
                        }
                        return Ok(());
                    }
                    _ => {
                        let end = start + 2 + i + c.len_utf8();
                        return Err(format!(
                            "invalid or unsupported Perl syntax: `{}`",
                            token(&self.src[start..end])
                        ));
                    }
                }
            }
            Err(format!(
                "invalid or unsupported Perl syntax: `{}`",
                token(&self.src[start..])
            ))
        }

        fn push_group(&mut self) {
            self.commit();
            self.frames.push(1);
            self.out.push('(');
        }

        fn close_group(&mut self) -> Result<(), String> {
            if self.frames.len() < 2 {
                return Err("unexpected )".to_string());
            }
            self.commit();
            let product = self.frames.pop().unwrap_or(1);
            self.pos += 1;
            self.out.push(')');
            self.last = Some(product);
            Ok(())
        }

        /// A backslash outside a class.
        fn escape(&mut self) -> Result<(), String> {
            let next = self.rest()[1..].chars().next();
            let emit: &str = match next {
                Some('A') => r"\A",
                Some('z') => r"\z",
                // Go's word boundaries are ASCII.
                Some('b') => r"(?-u:\b)",
                Some('B') => r"(?-u:\B)",
                Some('C') => return Err(r"invalid escape sequence: `\C`".to_string()),
                Some('Q') => {
                    // \Q...\E: literal text up to \E or the end.
                    self.pos += 2;
                    let rest = self.rest();
                    let (lit, skip) = match rest.find(r"\E") {
                        Some(i) => (&rest[..i], i + 2),
                        None => (rest, rest.len()),
                    };
                    for c in lit.chars() {
                        push_char(&mut self.out, c);
                        self.item();
                    }
                    self.pos += skip;
                    return Ok(());
                }
                Some('p' | 'P') => {
                    let class = self.unicode_class()?;
                    self.out.push_str(&class);
                    self.item();
                    return Ok(());
                }
                Some(c) => match perl_class(c) {
                    Some((items, negated)) => {
                        self.pos += 2;
                        self.out.push_str(if negated { "[^" } else { "[" });
                        self.out.push_str(items);
                        self.out.push(']');
                        self.item();
                        return Ok(());
                    }
                    None => {
                        let r = self.parse_escape()?;
                        match char::from_u32(r) {
                            Some(c) => push_char(&mut self.out, c),
                            // A surrogate code point: never matches valid UTF-8 in Go.
                            None => self.out.push_str(NOTHING),
                        }
                        self.item();
                        return Ok(());
                    }
                },
                None => return Err("trailing backslash at end of expression".to_string()),
            };
            self.pos += 2;
            self.out.push_str(emit);
            self.item();
            Ok(())
        }

        /// Go's `parseEscape`: a single-character escape, returning the code point.
        fn parse_escape(&mut self) -> Result<u32, String> {
            let start = self.pos;
            self.pos += 1;
            let Some(c) = self.peek() else {
                return Err("trailing backslash at end of expression".to_string());
            };
            self.pos += c.len_utf8();
            let is_octal = |c: Option<char>| c.is_some_and(|c| ('0'..='7').contains(&c));
            let r = match c {
                '1'..='7' if !is_octal(self.peek()) => None,
                '0'..='7' => {
                    let mut r = c as u32 - '0' as u32;
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d @ '0'..='7') => {
                                r = r * 8 + (d as u32 - '0' as u32);
                                self.pos += 1;
                            }
                            _ => break,
                        }
                    }
                    Some(r)
                }
                'x' => self.parse_hex(),
                'a' => Some(0x07),
                'f' => Some(0x0C),
                'n' => Some(0x0A),
                'r' => Some(0x0D),
                't' => Some(0x09),
                'v' => Some(0x0B),
                c if c.is_ascii() && !c.is_ascii_alphanumeric() => Some(c as u32),
                _ => None,
            };
            r.ok_or_else(|| {
                format!(
                    "invalid escape sequence: `{}`",
                    token(&self.src[start..self.pos])
                )
            })
        }

        /// After `\x`: two hex digits or `{hex digits}` up to U+10FFFF.
        fn parse_hex(&mut self) -> Option<u32> {
            if self.peek() == Some('{') {
                self.pos += 1;
                let rest = self.rest();
                let end = rest.find('}')?;
                let digits = &rest[..end];
                self.pos += end + 1;
                if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                let digits = digits.trim_start_matches('0');
                if digits.len() > 6 {
                    return None;
                }
                let r =
                    u32::from_str_radix(if digits.is_empty() { "0" } else { digits }, 16).ok()?;
                return (r <= 0x10FFFF).then_some(r);
            }
            let mut r = 0;
            for _ in 0..2 {
                let c = self.peek()?;
                self.pos += c.len_utf8();
                r = r * 16 + c.to_digit(16)?;
            }
            Some(r)
        }

        /// `\pX`, `\p{Name}`, `\PX`, `\P{Name}`, `\p{^Name}` → Rust `\p{Name}` / `\P{Name}`.
        fn unicode_class(&mut self) -> Result<String, String> {
            let start = self.pos;
            let mut negated = self.rest()[1..].starts_with('P');
            self.pos += 2;
            let name = match self.peek() {
                Some('{') => {
                    let Some(end) = self.rest().find('}') else {
                        return Err(format!(
                            "invalid character class range: `{}`",
                            token(&self.src[start..])
                        ));
                    };
                    let name = &self.rest()[1..end];
                    self.pos += end + 1;
                    name
                }
                Some(c) => {
                    let name = &self.rest()[..c.len_utf8()];
                    self.pos += c.len_utf8();
                    name
                }
                None => "",
            };
            let name = match name.strip_prefix('^') {
                Some(n) => {
                    negated = !negated;
                    n
                }
                None => name,
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "invalid character class range: `{}`",
                    token(&self.src[start..self.pos])
                ));
            }
            Ok(format!(r"\{}{{{name}}}", if negated { 'P' } else { 'p' }))
        }

        /// A bracketed class, Go's `parseClass`.
        fn class(&mut self) -> Result<(), String> {
            let start = self.pos;
            self.pos += 1;
            let mut out = String::from("[");
            let negated = self.peek() == Some('^');
            if negated {
                self.pos += 1;
                out.push('^');
            }
            let mut items = 0usize;
            let mut first = true;
            loop {
                let rest = self.rest();
                if rest.is_empty() {
                    return Err(format!(
                        "missing closing ]: `{}`",
                        token(&self.src[start..])
                    ));
                }
                if rest.starts_with(']') && !first {
                    self.pos += 1;
                    break;
                }
                first = false;
                // POSIX class [:name:] or [:^name:]; Go takes the next ":]" in the pattern.
                if rest.len() > 2 && rest.starts_with("[:") {
                    if let Some(i) = rest[2..].find(":]") {
                        let whole = &rest[..i + 4];
                        let name = &rest[2..i + 2];
                        let base = name.strip_prefix('^').unwrap_or(name);
                        if !POSIX_CLASSES.contains(&base) {
                            return Err(format!(
                                "invalid character class range: `{}`",
                                token(whole)
                            ));
                        }
                        out.push_str(whole);
                        items += 1;
                        self.pos += whole.len();
                        continue;
                    }
                }
                if rest.starts_with(r"\p") || rest.starts_with(r"\P") {
                    out.push_str(&self.unicode_class()?);
                    items += 1;
                    continue;
                }
                if let Some((class, neg)) = rest
                    .strip_prefix('\\')
                    .and_then(|r| r.chars().next())
                    .and_then(perl_class)
                {
                    self.pos += 2;
                    if neg {
                        out.push_str("[^");
                        out.push_str(class);
                        out.push(']');
                    } else {
                        out.push_str(class);
                    }
                    items += 1;
                    continue;
                }
                let range_start = self.pos;
                let lo = self.class_char(start)?;
                let mut hi = lo;
                let rest = self.rest();
                if rest.len() >= 2 && rest.starts_with('-') && !rest[1..].starts_with(']') {
                    self.pos += 1;
                    hi = self.class_char(start)?;
                    if hi < lo {
                        return Err(format!(
                            "invalid character class range: `{}`",
                            token(&self.src[range_start..self.pos])
                        ));
                    }
                }
                items += push_range(&mut out, lo, hi);
            }
            if items == 0 {
                // Only surrogates were listed: match nothing (or, negated, everything).
                self.out
                    .push_str(if negated { EVERYTHING } else { NOTHING });
            } else {
                out.push(']');
                self.out.push_str(&out);
            }
            Ok(())
        }

        /// One class character (possibly escaped), Go's `parseClassChar`.
        fn class_char(&mut self, class_start: usize) -> Result<u32, String> {
            match self.peek() {
                None => Err(format!(
                    "missing closing ]: `{}`",
                    token(&self.src[class_start..])
                )),
                Some('\\') => self.parse_escape(),
                Some(c) => {
                    self.pos += c.len_utf8();
                    Ok(c as u32)
                }
            }
        }
    }

    /// Go's Perl class for `\c`: (Rust class items, negated).
    fn perl_class(c: char) -> Option<(&'static str, bool)> {
        Some(match c {
            'd' => (DIGIT, false),
            'D' => (DIGIT, true),
            's' => (SPACE, false),
            'S' => (SPACE, true),
            'w' => (WORD, false),
            'W' => (WORD, true),
            _ => return None,
        })
    }

    /// `{n}`, `{n,}` or `{n,m}` at the start of `s`: (min, max, byte length). `None` when
    /// it is not a repetition, in which case Go treats `{` as a literal.
    fn parse_repeat(s: &str) -> Option<(u64, Option<u64>, usize)> {
        let b = s.as_bytes();
        let mut i = 1;
        let min = parse_int(b, &mut i)?;
        let max = match b.get(i)? {
            b'}' => Some(min),
            b',' => {
                i += 1;
                if *b.get(i)? == b'}' {
                    None
                } else {
                    Some(parse_int(b, &mut i)?)
                }
            }
            _ => return None,
        };
        if *b.get(i)? != b'}' {
            return None;
        }
        Some((min, max, i + 1))
    }

    /// Decimal digits without a leading zero (Go rejects `{01}` as a repetition).
    fn parse_int(b: &[u8], i: &mut usize) -> Option<u64> {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        let digits = &b[start..*i];
        if digits.is_empty() || (digits.len() >= 2 && digits[0] == b'0') {
            return None;
        }
        Some(digits.iter().fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        }))
    }

    /// Emits `c` so that Rust reads it as that literal character, inside or outside a
    /// class.
    pub(super) fn push_char(out: &mut String, c: char) {
        if regex_syntax::is_meta_character(c) {
            out.push('\\');
            out.push(c);
        } else if c.is_control() || c.is_whitespace() {
            out.push_str(&format!(r"\x{{{:X}}}", c as u32));
        } else {
            out.push(c);
        }
    }

    /// Emits the class range `lo..=hi` minus surrogates; returns the number of items.
    fn push_range(out: &mut String, lo: u32, hi: u32) -> usize {
        let mut n = 0;
        for (a, b) in [(lo, hi.min(0xD7FF)), (lo.max(0xE000), hi)] {
            if a > b {
                continue;
            }
            let (Some(a), Some(b)) = (char::from_u32(a), char::from_u32(b)) else {
                continue;
            };
            push_char(out, a);
            if b != a {
                out.push('-');
                push_char(out, b);
            }
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use MatchOp::*;

    fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
        match Matcher::new(op, name, value) {
            Ok(m) => m,
            Err(e) => panic!("{op} {value:?}: {e}"),
        }
    }

    /// The reference: the translated pattern compiled as `^(?s:…)$`, no fast paths.
    fn reference(pattern: &str) -> Option<regex::Regex> {
        let t = go_syntax::translate(pattern).ok()?;
        compile_anchored(&t).ok()
    }

    /// (op, pattern, value, expected). Behaviour documented for Prometheus 3 / Go RE2.
    const CASES: &[(MatchOp, &str, &str, bool)] = &[
        // Equality is plain string comparison.
        (Equal, "foo", "foo", true),
        (Equal, "foo", "foobar", false),
        (Equal, "a.b", "axb", false),
        (Equal, "", "", true),
        (Equal, "", "x", false),
        (NotEqual, "", "", false),
        (NotEqual, "", "x", true),
        (NotEqual, "foo", "foo", false),
        // Anchoring.
        (Regex, "foo", "foo", true),
        (Regex, "foo", "foobar", false),
        (Regex, "foo", "barfoo", false),
        (Regex, "foo|bar", "foobar", false),
        (Regex, "foo.*", "foo", true),
        (Regex, "foo.*", "foobar", true),
        (Regex, "foo.*", "fo", false),
        (Regex, ".*foo", "barfoo", true),
        (Regex, ".*foo", "foobar", false),
        (Regex, ".*foo.*", "xfoox", true),
        (Regex, ".*foo.*", "fo", false),
        (Regex, "a.*z", "az", true),
        (Regex, "a.*z", "a", false),
        (Regex, "a.*z", "abcz", true),
        (Regex, "a.*a", "a", false),
        (Regex, "^foo$", "foo", true),
        (Regex, "(?m)^foo$", "foo", true),
        (Regex, "(?m)foo$", "foo\n", false),
        // Empty pattern and absent labels.
        (Regex, "", "", true),
        (Regex, "", "a", false),
        (NotRegex, "", "", false),
        (NotRegex, "", "a", true),
        (Regex, ".*", "", true),
        (Regex, ".*", "anything\nat all", true),
        (NotRegex, ".*", "", false),
        (Regex, ".+", "", false),
        (Regex, ".+", "\n", true),
        (NotRegex, ".+", "", true),
        (Regex, "|foo", "", true),
        (Regex, "|foo", "foo", true),
        (NotRegex, "|foo", "", false),
        (NotRegex, "|foo", "foo", false),
        (NotRegex, "|foo", "bar", true),
        (NotRegex, "foo|bar", "", true),
        // `.` matches any character, newline included (Prometheus 3).
        (Regex, ".", "\n", true),
        (Regex, ".", "é", true),
        (Regex, ".", "😀", true),
        (Regex, ".", "ab", false),
        (Regex, "a.b", "a\nb", true),
        (Regex, "(?-s:.)", "\n", false),
        (Regex, "(?-s:a.b)", "a\nb", false),
        // Go's Perl classes are ASCII-only; Unicode classes are explicit.
        (Regex, r"\d", "5", true),
        (Regex, r"\d", "٣", false),
        (Regex, r"\D", "٣", true),
        (Regex, r"\d+", "٣٣", false),
        (Regex, r"\pN", "٣", true),
        (Regex, r"\p{Nd}", "٣", true),
        (Regex, r"\p{^Nd}", "٣", false),
        (Regex, r"\P{^Nd}", "٣", true),
        (Regex, r"\p{Greek}+", "αβγ", true),
        (Regex, r"\w", "é", false),
        (Regex, r"\W", "é", true),
        (Regex, r"\w+", "foo_123", true),
        (Regex, r"\s", " ", true),
        (Regex, r"\s", "\u{a0}", false),
        (Regex, r"\s", "\x0b", false),
        (Regex, r"[[:space:]]", "\x0b", true),
        (Regex, r"[\d]", "٣", false),
        (Regex, r"[^\d]", "٣", true),
        (Regex, r"[\D]", "٣", true),
        (Regex, r"[^\D]", "5", true),
        (Regex, r"[^\D]", "٣", false),
        (Regex, r"[\w.]+", "a.b_c", true),
        (Regex, r"a\bé", "aé", true),
        (Regex, r"é\bé", "éé", false),
        (Regex, r"a\Bb", "ab", true),
        (Regex, r"[[:alpha:]]", "é", false),
        (Regex, r"[[:^alpha:]]", "é", true),
        // Case folding is Unicode simple folding.
        (Regex, "(?i)foo", "FOO", true),
        (Regex, "(?i)foo", "fOo", true),
        (Regex, "(?i)k", "\u{212A}", true),
        (Regex, "(?i)σ", "ς", true),
        (Regex, "(?i)σ", "Σ", true),
        (Regex, "(?i)straße", "STRASSE", false),
        (Regex, r"(?i)\w", "\u{212A}", true),
        (Regex, r"(?i)\W", "\u{212A}", false),
        (Regex, "(?i:a)b", "Ab", true),
        (Regex, "(?i:a)b", "AB", false),
        (Regex, "(?i)a(?-i)b", "Ab", true),
        (Regex, "(?i)a(?-i)b", "AB", false),
        (Regex, "(?i-i)a", "A", false),
        (Regex, "(?ii)a", "A", true),
        (Regex, "(?i)foo|bar", "BAR", true),
        // Alternation and sets.
        (Regex, "foo|bar|baz", "bar", true),
        (Regex, "foo|bar|baz", "ba", false),
        (Regex, "(?:foo|bar)", "foo", true),
        (Regex, "(foo|bar)", "bar", true),
        (Regex, "x(a|b)y", "xby", true),
        (Regex, "x(a|b)y", "xy", false),
        (Regex, "a?", "", true),
        (Regex, "a{2,3}", "aaa", true),
        (Regex, "a{2,3}", "aaaa", false),
        (Regex, "a{2,}", "aaaaa", true),
        (Regex, "a{2}", "aa", true),
        // Go-only syntax.
        (Regex, r"\Qa.b\E", "a.b", true),
        (Regex, r"\Qa.b\E", "axb", false),
        (Regex, r"\Qa.b", "a.b", true),
        (Regex, r"\Qab\E*", "abbb", true),
        (Regex, "a{", "a{", true),
        (Regex, "a{,5}", "a{,5}", true),
        (Regex, "a{01}", "a{01}", true),
        (Regex, "a{1", "a{1", true),
        (Regex, "a}", "a}", true),
        (Regex, "a]", "a]", true),
        (Regex, r"\x41", "A", true),
        (Regex, r"\x{1F600}", "😀", true),
        (Regex, r"\101", "A", true),
        (Regex, r"\0", "\0", true),
        (Regex, r"\08", "\u{0}8", true),
        (Regex, r"\<\>", "<>", true),
        (Regex, r"\_", "_", true),
        (Regex, r"\#", "#", true),
        (Regex, "a#b", "a#b", true),
        (Regex, "a b", "a b", true),
        (Regex, "a&&b", "a&&b", true),
        (Regex, "a-b~c", "a-b~c", true),
        (Regex, "[a[]", "[", true),
        (Regex, "[a[]+", "a[a", true),
        (Regex, "[a&&b]", "&", true),
        (Regex, "[a~~b]", "~", true),
        (Regex, "[]a]", "]", true),
        (Regex, "[^]a]", "]", false),
        (Regex, "[^]a]", "b", true),
        (Regex, "[a-]", "-", true),
        (Regex, "[-a]", "-", true),
        (Regex, r"[\d-z]", "-", true),
        (Regex, r"[\x{D800}-\x{E000}]", "\u{E000}", true),
        (Regex, r"\x{D800}", "\u{FFFD}", false),
        (Regex, r"[^\x{D800}]", "a", true),
        (Regex, "(?P<n>a)(?P<n>b)", "ab", true),
        (Regex, "(?<n>a)", "a", true),
        (Regex, "(?)a", "a", true),
        (Regex, "(?:)", "", true),
        (Regex, "()", "", true),
        (Regex, "a*?", "aa", true),
        (Regex, "(?U)a+", "aa", true),
        (Regex, "(a{10}){100}", "a", false),
        // Negative regex.
        (NotRegex, "foo", "foo", false),
        (NotRegex, "foo", "foobar", true),
        (NotRegex, "foo.*", "foobar", false),
        (NotRegex, "a|b", "c", true),
    ];

    #[test]
    fn prometheus_semantics_table() {
        for &(op, pattern, value, want) in CASES {
            let matcher = m(op, "l", pattern);
            assert_eq!(
                matcher.matches(value),
                want,
                "{matcher} on {value:?} (plan {:?})",
                matcher.plan
            );
            assert_eq!(matcher.matches_empty(), matcher.matches(""), "{matcher}");
            if op.is_regex() {
                let re = reference(pattern).unwrap_or_else(|| panic!("reference for {pattern}"));
                assert_eq!(
                    re.is_match(value) != op.is_negative(),
                    want,
                    "reference {pattern}"
                );
            }
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        let bad = [
            "a**",
            "a*+",
            "a+*",
            "a??*",
            "a{2}{3}",
            "a{2}*",
            "*a",
            "(*a)",
            "a|*",
            "(?=x)",
            "(?!x)",
            "(?<=x)",
            "(?<!x)",
            r"\1",
            r"(a)\1",
            r"\8",
            "(?x)a",
            "(?u)a",
            "(?R)a",
            "(?#comment)",
            "(?P=n)",
            "(?P>n)",
            "(?i-)a",
            "(?-)a",
            "(?i",
            "(?<>a)",
            "(?<a.b>a)",
            "(?P<n",
            "a{1001}",
            "a{0,1001}",
            "a{2,1}",
            "(a{100}){11}",
            "((a{10}){10}){11}",
            r"\u0041",
            r"\U00000041",
            r"\e",
            r"\q",
            r"\C",
            r"\x",
            r"\xZZ",
            r"\x{}",
            r"\x{110000}",
            r"[\b]",
            "(",
            ")",
            "a)",
            "(a",
            "[a",
            "[]",
            "[^]",
            r"\",
            r"a\",
            r"\p{Foo}",
            r"\p{}",
            r"\pé",
            "[z-a]",
            "[[:foo:]]",
            "[[:a]b:]]",
            "[a--]",
        ];
        for p in bad {
            match Matcher::new(Regex, "l", p) {
                Ok(m) => panic!("{p:?} should be rejected, got {:?}", m.plan),
                Err(MatcherError::InvalidRegex { reason, .. }) => {
                    assert!(!reason.is_empty(), "{p:?}");
                }
            }
        }
        // Zero-count repetitions end Go's nesting-product chain.
        for p in [
            "(a{1000}){1}",
            "((a{100}){0}){11}",
            "(a{10}){100}",
            "a{0}",
            "a{1000}",
        ] {
            assert!(Matcher::new(Regex, "l", p).is_ok(), "{p:?}");
        }
    }

    #[test]
    fn error_messages_are_bounded() {
        let long = format!("({})", "x".repeat(10_000));
        let long_bad = format!("{long}**");
        let e = Matcher::new(Regex, "l", long_bad).unwrap_err();
        let msg = e.to_string();
        assert!(msg.len() < 250, "{msg}");
        assert!(msg.contains("invalid nested repetition operator"), "{msg}");
        let e = Matcher::new(Regex, "l", r"a\q").unwrap_err();
        assert_eq!(
            e,
            MatcherError::InvalidRegex {
                pattern: r"a\q".into(),
                reason: r"invalid escape sequence: `\q`".into()
            }
        );
        assert!(Matcher::new(Regex, "l", long).is_ok());
    }

    #[test]
    fn translation_examples() {
        let cases = [
            (r"\d", "[0-9]"),
            (r"\S", r"[^\t\n\x0C\r\x20]"),
            (r"[\w-]", r"[0-9A-Za-z_\-]"),
            (r"[^\W]", r"[^[^0-9A-Za-z_]]"),
            (r"\bx", r"(?-u:\b)x"),
            (r"\Qa.b\E", r"a\.b"),
            ("a{", r"a\{"),
            ("(?P<x>a)", "(a)"),
            ("(?i-s:a)", "(?i-s:a)"),
            ("(?ii-i)", "(?-i)"),
            ("(?)a", "a"),
            ("[a[]", r"[a\[]"),
            ("a b", r"a\x{20}b"),
            (r"\p{^Greek}", r"\P{Greek}"),
        ];
        for (go, rust) in cases {
            assert_eq!(go_syntax::translate(go).as_deref(), Ok(rust), "{go}");
        }
    }

    #[test]
    fn set_matches_and_prefix() {
        let s = |op, p: &str| m(op, "l", p).set_matches().map(<[String]>::to_vec);
        let v = |xs: &[&str]| Some(xs.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(s(Equal, "foo"), v(&["foo"]));
        assert_eq!(s(Equal, ""), v(&[""]));
        assert_eq!(s(NotEqual, "foo"), None);
        assert_eq!(s(Regex, "foo"), v(&["foo"]));
        assert_eq!(s(Regex, "a|b|c"), v(&["a", "b", "c"]));
        assert_eq!(s(Regex, "c|b|a|b"), v(&["a", "b", "c"]));
        assert_eq!(s(Regex, "(?:foo|bar)"), v(&["bar", "foo"]));
        assert_eq!(s(Regex, "(foo|bar)"), v(&["bar", "foo"]));
        assert_eq!(s(Regex, "foo|foobar"), v(&["foo", "foobar"]));
        assert_eq!(s(Regex, r"a\.b|c"), v(&["a.b", "c"]));
        assert_eq!(s(Regex, "|foo"), v(&["", "foo"]));
        assert_eq!(s(Regex, "x(a|b)"), v(&["xa", "xb"]));
        assert_eq!(s(Regex, "[ab]c"), v(&["ac", "bc"]));
        assert_eq!(s(Regex, "(?i)k"), v(&["K", "k", "\u{212A}"]));
        assert_eq!(s(Regex, ""), v(&[""]));
        assert_eq!(s(Regex, "foo.*"), None);
        assert_eq!(s(Regex, "a+"), None);
        assert_eq!(s(Regex, r"\d{3}"), None); // 1000 values > 256
        assert_eq!(s(Regex, "^foo$"), None); // assertions are left to the regex
        assert_eq!(s(NotRegex, "a|b"), None);
        assert_eq!(
            m(NotRegex, "l", "a|b")
                .literal_set()
                .map(<[String]>::to_vec),
            v(&["a", "b"])
        );

        let p = |op, pat: &str| m(op, "l", pat).prefix().map(str::to_string);
        assert_eq!(p(Regex, "foo.*"), Some("foo".into()));
        assert_eq!(p(Regex, "foo.+"), Some("foo".into()));
        assert_eq!(p(Regex, "foo"), Some("foo".into()));
        assert_eq!(p(Regex, "foo(bar|baz)"), Some("fooba".into()));
        assert_eq!(p(Regex, "foo(bar|baz).*x"), Some("fooba".into()));
        assert_eq!(p(Regex, "(foo)+"), Some("foo".into()));
        assert_eq!(p(Regex, "foo|foobar"), Some("foo".into()));
        assert_eq!(p(Regex, "éa|éb"), Some("é".into()));
        assert_eq!(p(Regex, "é|è"), None); // common first byte only
        assert_eq!(p(Regex, ".*foo"), None);
        assert_eq!(p(Regex, "(?i)foo.*"), None);
        assert_eq!(p(Regex, "foo|bar"), None);
        assert_eq!(p(Regex, "(foo)?bar"), None);
        assert_eq!(p(Regex, ""), None);
        assert_eq!(p(Equal, "foo"), Some("foo".into()));
        assert_eq!(p(Equal, ""), None);
        assert_eq!(p(NotRegex, "foo.*"), None);
        assert_eq!(p(NotEqual, "foo"), None);
    }

    #[test]
    fn fast_paths_are_chosen() {
        let kind = |p: &str| format!("{:?}", m(Regex, "l", p).plan);
        assert!(kind("foo").starts_with("Literal"));
        assert!(kind("a|b|c").starts_with("Set"));
        let big = (0..100)
            .map(|i| format!("v{i}"))
            .collect::<Vec<_>>()
            .join("|");
        assert!(kind(&big).starts_with("HashSet"));
        assert!(kind("foo.*").starts_with("Prefix"));
        assert!(kind("(foo).*").starts_with("Prefix"));
        assert!(kind(".*foo").starts_with("Suffix"));
        assert!(kind(".*foo.*").starts_with("Contains"));
        assert!(kind("foo.*bar").starts_with("PrefixSuffix"));
        assert_eq!(kind(".*"), "Any");
        assert_eq!(kind("(.*)"), "Any");
        assert_eq!(kind(".+"), "NonEmpty");
        assert!(kind("(?-s:.*)").starts_with("Regex"));
        assert!(kind("(?i)foo.*").starts_with("Regex"));
    }

    #[test]
    fn display_like_prometheus() {
        let cases = [
            (Equal, "job", "api", r#"job="api""#),
            (NotEqual, "job", "", r#"job!="""#),
            (Regex, "job", r"a\.b", r#"job=~"a\\.b""#),
            (NotRegex, "job", "a|b", r#"job!~"a|b""#),
            (Equal, "job", "say \"hi\"\n\t", r#"job="say \"hi\"\n\t""#),
            (Equal, "job", "\u{1}é😀", r#"job="\x01é😀""#),
            (Equal, "my.label", "x", r#""my.label"="x""#),
            (Equal, "1a", "x", r#""1a"="x""#),
            (Equal, "", "x", r#"""="x""#),
            (Equal, "__name__", "up", r#"__name__="up""#),
            (Equal, "ünï", "x", r#""ünï"="x""#),
        ];
        for (op, name, value, want) in cases {
            assert_eq!(m(op, name, value).to_string(), want);
        }
    }

    #[test]
    fn equality_ignores_compiled_state() {
        assert_eq!(m(Regex, "a", "x|y"), m(Regex, "a", "x|y"));
        assert_ne!(m(Regex, "a", "x|y"), m(Regex, "a", "y|x"));
        assert_ne!(m(Regex, "a", "x"), m(Equal, "a", "x"));
        assert_ne!(m(Regex, "a", "x"), m(Regex, "b", "x"));
    }

    #[test]
    fn matches_all_treats_absent_as_empty() {
        let ls = Labels::from_pairs([("__name__", "up"), ("job", "api")]);
        let ok = |ms: &[Matcher]| matches_all(ms, &ls);
        assert!(ok(&[]));
        assert!(ok(&[m(Equal, "__name__", "up"), m(Regex, "job", "a.*")]));
        assert!(ok(&[m(Equal, "zone", "")]));
        assert!(ok(&[m(Regex, "zone", ".*")]));
        assert!(ok(&[m(NotRegex, "zone", ".+")]));
        assert!(!ok(&[m(Regex, "zone", ".+")]));
        assert!(!ok(&[m(NotEqual, "zone", "")]));
        assert!(!ok(&[m(Equal, "__name__", "up"), m(Equal, "job", "db")]));
        assert!(ok(&[m(NotRegex, "job", "|db")]));
    }

    /// Pattern pieces: valid and invalid combinations are both fine (invalid ones are skipped).
    const FRAGMENTS: &[&str] = &[
        "a",
        "b",
        "ab",
        "foo",
        "é",
        "K",
        ".",
        ".*",
        ".+",
        "|",
        "(",
        ")",
        "(?:",
        "[ab]",
        "[^a]",
        r"\d",
        r"\w",
        r"\s",
        r"\b",
        "?",
        "*",
        "+",
        "{2}",
        "{0,2}",
        "(?i)",
        "(?-s)",
        r"\.",
        r"\n",
        "^",
        "$",
        "[[:alpha:]]",
        r"\pL",
    ];
    const ALPHABET: &[char] = &[
        'a', 'b', 'f', 'o', '.', '\n', 'é', 'K', 'k', '\u{212A}', '1', '٣', ' ',
    ];

    fn value_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(ALPHABET), 0..7)
            .prop_map(|cs| cs.into_iter().collect())
    }

    fn literal_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(ALPHABET), 0..3)
            .prop_map(|cs| regex_syntax::escape(&cs.into_iter().collect::<String>()))
    }

    /// Patterns shaped like the fast paths, so each of them is exercised.
    fn shaped_pattern() -> impl proptest::strategy::Strategy<Value = String> {
        (
            0..8usize,
            literal_strategy(),
            literal_strategy(),
            literal_strategy(),
        )
            .prop_map(|(shape, a, b, c)| match shape {
                0 => a,
                1 => format!("{a}|{b}|{c}"),
                2 => format!("{a}.*"),
                3 => format!(".*{a}"),
                4 => format!(".*{a}.*"),
                5 => format!("{a}.*{b}"),
                6 => format!("(?:{a}|{b}){c}"),
                _ => format!("({a}|{b}).+"),
            })
    }

    fn check_against_reference(pattern: &str, values: &[String]) -> Result<(), TestCaseError> {
        let Ok(matcher) = Matcher::new(Regex, "l", pattern) else {
            return Ok(());
        };
        let re = reference(pattern).ok_or_else(|| TestCaseError::fail("reference failed"))?;
        let neg = m(NotRegex, "l", pattern);
        for v in values.iter().map(String::as_str).chain([""]) {
            let want = re.is_match(v);
            prop_assert_eq!(
                matcher.matches(v),
                want,
                "{} on {:?} ({:?})",
                pattern,
                v,
                matcher.plan
            );
            prop_assert_eq!(neg.matches(v), !want);
            if let Some(set) = matcher.set_matches() {
                prop_assert_eq!(set.iter().any(|s| s == v), want, "set {:?}", set);
            }
            if let (Some(p), true) = (matcher.prefix(), want) {
                prop_assert!(v.starts_with(p), "prefix {:?} of {:?}", p, v);
            }
        }
        if let Some(set) = matcher.set_matches() {
            for s in set {
                prop_assert!(re.is_match(s), "set member {:?} of {}", s, pattern);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn fast_paths_agree_with_regex(
            pattern in shaped_pattern(),
            values in proptest::collection::vec(value_strategy(), 1..8),
        ) {
            check_against_reference(&pattern, &values)?;
        }

        #[test]
        fn random_patterns_agree_with_regex(
            parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..7),
            values in proptest::collection::vec(value_strategy(), 1..8),
        ) {
            check_against_reference(&parts.concat(), &values)?;
        }

        #[test]
        fn never_panics_on_arbitrary_patterns(pattern in "\\PC{0,12}", value in "\\PC{0,6}") {
            if let Ok(matcher) = Matcher::new(Regex, "l", pattern) {
                let _ = matcher.matches(&value);
                let _ = matcher.to_string();
            }
        }

        #[test]
        fn never_panics_on_regex_syntax_soup(
            parts in proptest::collection::vec(proptest::sample::select(&[
                "(", ")", "[", "]", "{", "}", ",", "1", "0", "\\", "?", "*", "+", "|", "^", "-",
                ":", "P", "<", ">", "Q", "E", "x", "p", "a", "é", "[:", ":]", "i",
            ][..]), 0..12),
        ) {
            let p = parts.concat();
            if let Ok(matcher) = Matcher::new(Regex, "l", &p) {
                prop_assert!(reference(&p).is_some(), "{}", p);
                let _ = matcher.matches("a");
            }
        }
    }
}
