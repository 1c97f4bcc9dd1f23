//! Printing PromQL expressions: `impl Display for Expr`, matching Prometheus's `String()`
//! (`promql/parser/printer.go`).
//!
//! ```text
//!   ast::Expr ─► Display ─► canonical query text (parses back to an equivalent Expr)
//! ```
//!
//! The format is Prometheus's: one space around binary operators, `by (a, b) ` before the
//! aggregation's arguments, `on (..)`/`group_left (..)` with a space, matchers sorted and
//! joined by `,` without spaces, the metric name before the braces only when it was written
//! there, durations in Prometheus's `model.Duration` form (`1h30m`, `90d`), `@` timestamps with
//! three decimals, numbers in the shortest decimal form (`+Inf`, `NaN`), strings Go-quoted.
//! Label and matcher names that are not legacy identifiers are quoted (`"a.b"`).
//!
//! Differences: the syntax tree does not record that a number was written as a duration, so
//! `5m` used as a scalar prints as `300`; and a signed number literal left of `^` is printed so
//! that it parses back to the same tree (`Inf ^ x`, `(-2) ^ x`) where Prometheus prints
//! `+Inf ^ x`, which reads back as `+(Inf ^ x)`.

use std::fmt::{self, Write as _};

use o11y_tsdb::labels::{is_valid_legacy_label_name, write_go_quoted};
use o11y_tsdb::matcher::MatchOp;

use super::ast::{AggregateExpr, AtModifier, BinOp, BinaryExpr, Cardinality, Expr, VectorSelector};

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::NumberLiteral { val, .. } => write_number(f, *val),
            Expr::StringLiteral { val, .. } => write_go_quoted(f, val),
            Expr::VectorSelector(vs) => {
                write_selector(f, vs)?;
                write_at_offset(f, vs.at, vs.offset_ms)
            }
            Expr::MatrixSelector(m) => {
                write_selector(f, &m.vs)?;
                f.write_char('[')?;
                write_duration(f, m.range_ms)?;
                f.write_char(']')?;
                write_at_offset(f, m.vs.at, m.vs.offset_ms)
            }
            Expr::Subquery(s) => {
                write!(f, "{}[", s.expr)?;
                write_duration(f, s.range_ms)?;
                f.write_char(':')?;
                if let Some(step) = s.step_ms.filter(|&s| s != 0) {
                    write_duration(f, step)?;
                }
                f.write_char(']')?;
                write_at_offset(f, s.at, s.offset_ms)
            }
            Expr::Paren { expr, .. } => write!(f, "({expr})"),
            Expr::Unary { op, expr, .. } => write!(f, "{op}{expr}"),
            Expr::Binary(b) => write_binary(f, b),
            Expr::Aggregate(a) => write_aggregate(f, a),
            Expr::Call(c) => {
                write!(f, "{}(", c.func.name)?;
                for (i, arg) in c.args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{arg}")?;
                }
                f.write_char(')')
            }
        }
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
fn write_number(f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
    if v.is_nan() {
        f.write_str("NaN")
    } else if v == f64::INFINITY {
        f.write_str("+Inf")
    } else if v == f64::NEG_INFINITY {
        f.write_str("-Inf")
    } else {
        // Rust's shortest round-trip decimal form, never in exponent notation, as Go's 'f'/-1.
        write!(f, "{v}")
    }
}

/// Prometheus's `model.Duration.String()` for milliseconds (callers handle the sign).
fn write_duration(f: &mut fmt::Formatter<'_>, ms: i64) -> fmt::Result {
    if ms < 0 {
        f.write_char('-')?;
    }
    let mut ms = ms.unsigned_abs();
    if ms == 0 {
        return f.write_str("0s");
    }
    const UNITS: [(&str, u64, bool); 7] = [
        ("y", 1000 * 60 * 60 * 24 * 365, true),
        ("w", 1000 * 60 * 60 * 24 * 7, true),
        ("d", 1000 * 60 * 60 * 24, false),
        ("h", 1000 * 60 * 60, false),
        ("m", 1000 * 60, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ];
    for (unit, mult, exact) in UNITS {
        // Years and weeks only when they divide exactly (`90d`, not `12w6d`).
        if exact && !ms.is_multiple_of(mult) {
            continue;
        }
        let v = ms / mult;
        if v > 0 {
            write!(f, "{v}{unit}")?;
            ms -= v * mult;
        }
    }
    Ok(())
}

fn write_at_offset(
    f: &mut fmt::Formatter<'_>,
    at: Option<AtModifier>,
    offset_ms: i64,
) -> fmt::Result {
    match at {
        Some(AtModifier::At(ts)) => write!(f, " @ {:.3}", ts as f64 / 1000.0)?,
        Some(AtModifier::Start) => f.write_str(" @ start()")?,
        Some(AtModifier::End) => f.write_str(" @ end()")?,
        None => {}
    }
    if offset_ms != 0 {
        f.write_str(" offset ")?;
        write_duration(f, offset_ms)?;
    }
    Ok(())
}

/// `name{matchers}` without modifiers; the matcher for the leading name is left out and the
/// others are sorted by their printed form, as Prometheus does.
fn write_selector(f: &mut fmt::Formatter<'_>, vs: &VectorSelector) -> fmt::Result {
    let name = vs.name.as_deref().unwrap_or("");
    let mut printed: Vec<String> = vs
        .matchers
        .iter()
        .filter(|m| {
            !(m.name == "__name__" && m.op == MatchOp::Equal && m.value == name && !name.is_empty())
        })
        .map(|m| m.to_string())
        .collect();
    f.write_str(name)?;
    if !printed.is_empty() {
        printed.sort();
        write!(f, "{{{}}}", printed.join(","))?;
    }
    Ok(())
}

fn write_labels(f: &mut fmt::Formatter<'_>, labels: &[String]) -> fmt::Result {
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        if is_valid_legacy_label_name(l) {
            f.write_str(l)?;
        } else {
            write_go_quoted(f, l)?;
        }
    }
    Ok(())
}

fn write_binary(f: &mut fmt::Formatter<'_>, b: &BinaryExpr) -> fmt::Result {
    match (&*b.lhs, b.op) {
        // A signed literal left of `^` would re-parse as a unary operator applied to the power
        // (`-2 ^ 2` is `-(2 ^ 2)`); Prometheus prints `+Inf ^ x` here, which is not faithful.
        (Expr::NumberLiteral { val, .. }, BinOp::Pow) if *val == f64::INFINITY => {
            f.write_str("Inf")?
        }
        (Expr::NumberLiteral { val, .. }, BinOp::Pow)
            if val.is_sign_negative() && !val.is_nan() =>
        {
            write!(f, "({})", b.lhs)?
        }
        _ => write!(f, "{}", b.lhs)?,
    }
    write!(f, " {}", b.op)?;
    if b.return_bool {
        f.write_str(" bool")?;
    }
    if let Some(m) = &b.matching {
        let grouped = matches!(m.card, Cardinality::ManyToOne | Cardinality::OneToMany);
        if !m.matching_labels.is_empty() || m.on || grouped {
            f.write_str(if m.on { " on (" } else { " ignoring (" })?;
            write_labels(f, &m.matching_labels)?;
            f.write_char(')')?;
        }
        if grouped {
            f.write_str(if m.card == Cardinality::ManyToOne {
                " group_left ("
            } else {
                " group_right ("
            })?;
            write_labels(f, &m.include)?;
            f.write_char(')')?;
        }
    }
    write!(f, " {}", b.rhs)
}

fn write_aggregate(f: &mut fmt::Formatter<'_>, a: &AggregateExpr) -> fmt::Result {
    f.write_str(a.op.as_str())?;
    if a.without {
        f.write_str(" without (")?;
        write_labels(f, &a.grouping)?;
        f.write_str(") ")?;
    } else if !a.grouping.is_empty() {
        f.write_str(" by (")?;
        write_labels(f, &a.grouping)?;
        f.write_str(") ")?;
    }
    f.write_char('(')?;
    if let Some(p) = &a.param {
        write!(f, "{p}, ")?;
    }
    write!(f, "{})", a.expr)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::promql::parser::parse;

    fn print(q: &str) -> String {
        match parse(q) {
            Ok(e) => e.to_string(),
            Err(e) => panic!("{q:?} should parse: {e}"),
        }
    }

    #[test]
    fn prints_like_prometheus() {
        let cases: &[(&str, &str)] = &[
            ("1", "1"),
            ("-0755", "-493"),
            (".5", "0.5"),
            ("1e21", "1000000000000000000000"),
            ("-Inf", "-Inf"),
            ("nan", "NaN"),
            ("5m", "300"),
            ("'single'", "\"single\""),
            ("`a\"b`", "\"a\\\"b\""),
            (
                "sum by(code) (task:errors:rate10s{job=\"s\"})",
                "sum by (code) (task:errors:rate10s{job=\"s\"})",
            ),
            (
                "sum without(instance) (task:errors:rate10s{job=\"s\"})",
                "sum without (instance) (task:errors:rate10s{job=\"s\"})",
            ),
            ("sum without() (x)", "sum without () (x)"),
            ("sum(x) by ()", "sum(x)"),
            (
                "topk(5, task:errors:rate10s{job=\"s\"})",
                "topk(5, task:errors:rate10s{job=\"s\"})",
            ),
            (
                "count_values(\"value\", task:errors:rate10s{job=\"s\"})",
                "count_values(\"value\", task:errors:rate10s{job=\"s\"})",
            ),
            ("a - on(b) c", "a - on (b) c"),
            ("a - on(b) group_right(x) c", "a - on (b) group_right (x) c"),
            (
                "a - on(b) group_left(x, y) c",
                "a - on (b) group_left (x, y) c",
            ),
            ("a - on(b) group_left c", "a - on (b) group_left () c"),
            ("a - ignoring(b) c", "a - ignoring (b) c"),
            ("a - ignoring() c", "a - c"),
            ("a - on() c", "a - on () c"),
            (
                "a - ignoring() group_left c",
                "a - ignoring () group_left () c",
            ),
            ("up > bool 0", "up > bool 0"),
            ("a offset 1m", "a offset 1m"),
            ("a offset -7m", "a offset -7m"),
            ("a{c=\"d\"}[3m] offset 2m", "a{c=\"d\"}[3m] offset 2m"),
            ("a[3m] offset -2m", "a[3m] offset -2m"),
            ("a[3m:] offset 2m", "a[3m:] offset 2m"),
            ("a @ 10", "a @ 10.000"),
            ("a[1m] @ 10", "a[1m] @ 10.000"),
            ("a @ start()", "a @ start()"),
            ("a @ end()", "a @ end()"),
            ("a[1m] @ start()", "a[1m] @ start()"),
            ("a[1m] @ end()", "a[1m] @ end()"),
            ("a offset 1m @ 10", "a @ 10.000 offset 1m"),
            ("a @ -1.5", "a @ -1.500"),
            ("a[5m:1m] @ 3 offset 1h", "a[5m:1m] @ 3.000 offset 1h"),
            ("rate(a[5m])[1h:30s]", "rate(a[5m])[1h:30s]"),
            ("a[90d]", "a[90d]"),
            ("a[14d]", "a[2w]"),
            ("a[1y]", "a[1y]"),
            ("a[8d]", "a[8d]"),
            ("a[1500ms]", "a[1s500ms]"),
            ("a[120]", "a[2m]"),
            (
                "a{b!=\"c\",a=~\"x\", z!~'q'}",
                "a{a=~\"x\",b!=\"c\",z!~\"q\"}",
            ),
            ("{__name__=\"a\"}", "{__name__=\"a\"}"),
            (
                "{\"my.metric\", \"a.b\"=\"c\"}",
                "{\"a.b\"=\"c\",__name__=\"my.metric\"}",
            ),
            ("sum by (\"a.b\", c) (x)", "sum by (\"a.b\", c) (x)"),
            ("-a", "-a"),
            ("-(a + b)", "-(a + b)"),
            ("- - a", "--a"),
            ("(a + b) * c", "(a + b) * c"),
            ("a + b * c", "a + b * c"),
            (
                "label_join(x, \"a\", \",\", \"b\")",
                "label_join(x, \"a\", \",\", \"b\")",
            ),
            ("time()", "time()"),
            ("foo and bar", "foo and bar"),
            ("1 + 2", "1 + 2"),
            ("\"a\\nb\"", "\"a\\nb\""),
            ("Inf ^ foo", "Inf ^ foo"),
            ("foo + Inf", "foo + +Inf"),
            ("+Inf ^ foo", "+Inf ^ foo"),
        ];
        for (q, want) in cases {
            assert_eq!(print(q), *want, "{q}");
        }
    }

    fn vector_leaf() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("foo".to_string()),
            Just("bar{a=\"b\"}".to_string()),
            Just("{__name__=\"x\", c!~\"d.*\"}".to_string()),
            Just("{\"u.tf8\", \"l.n\"=\"v\"}".to_string()),
            Just("sum".to_string()),
            Just("foo offset 5m".to_string()),
            Just("foo offset -90s @ 100".to_string()),
            Just("foo @ start()".to_string()),
            Just("vector(1)".to_string()),
            Just("rate(foo[5m])".to_string()),
            Just("rate(foo{a=~\"b|c\"}[1h] @ end() offset 1d)".to_string()),
        ]
    }

    fn scalar_leaf() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("1".to_string()),
            Just("2.5".to_string()),
            Just("-3".to_string()),
            Just("0x1F".to_string()),
            Just("Inf".to_string()),
            Just("time()".to_string()),
            Just("5m".to_string()),
        ]
    }

    fn vector_expr() -> impl Strategy<Value = String> {
        vector_leaf().prop_recursive(4, 32, 3, |inner| {
            let op = prop_oneof![
                Just("+"),
                Just("-"),
                Just("*"),
                Just("/"),
                Just("%"),
                Just("^"),
                Just("atan2"),
                Just("=="),
                Just("!= bool"),
                Just(">"),
                Just("<="),
                Just("and"),
                Just("or"),
                Just("unless"),
            ];
            let matching = prop_oneof![
                Just(""),
                Just(" on(a)"),
                Just(" ignoring(b, c)"),
                Just(" on(a) group_left(x)"),
                Just(" ignoring(a) group_right"),
            ];
            prop_oneof![
                (inner.clone(), op.clone(), matching, inner.clone())
                    .prop_map(|(l, o, m, r)| format!("{l} {o}{m} {r}")),
                (inner.clone(), op, scalar_leaf()).prop_map(|(l, o, r)| format!("{l} {o} {r}")),
                inner.clone().prop_map(|e| format!("-({e})")),
                inner
                    .clone()
                    .prop_map(|e| format!("sum by (job, \"a.b\") ({e})")),
                inner
                    .clone()
                    .prop_map(|e| format!("topk(3, {e}) without (x)")),
                inner.clone().prop_map(|e| format!("abs({e})")),
                inner
                    .clone()
                    .prop_map(|e| format!("max_over_time(({e})[10m:1m] offset 1m)")),
                inner.prop_map(|e| format!("({e})")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Printing and parsing again gives the same text (and type): the printed form is
        /// faithful to the tree.
        #[test]
        fn print_parse_round_trip(q in vector_expr()) {
            let Ok(e) = parse(&q) else {
                // Random combinations may not type-check; those are not the subject here.
                return Ok(());
            };
            let printed = e.to_string();
            let again = match parse(&printed) {
                Ok(a) => a,
                Err(err) => return Err(TestCaseError::fail(format!("{q} printed as {printed}: {err}"))),
            };
            prop_assert_eq!(again.to_string(), printed);
            prop_assert_eq!(again.value_type(), e.value_type());
        }
    }
}
