//! Tests of the PromQL parser: every construct, precedence, positions, the error messages, and
//! property tests that no input makes the parser panic.

use super::*;
use proptest::prelude::*;

fn ok(q: &str) -> Expr {
    match parse(q) {
        Ok(e) => e,
        Err(e) => panic!("{q:?} should parse, got: {e}"),
    }
}

fn fail(q: &str) -> String {
    match parse(q) {
        Ok(e) => panic!("{q:?} should fail, parsed as {e:?}"),
        Err(e) => e.to_string(),
    }
}

fn num(e: &Expr) -> (f64, PosRange) {
    match e {
        Expr::NumberLiteral { val, pos } => (*val, *pos),
        other => panic!("expected a number literal, got {other:?}"),
    }
}

fn vs(e: &Expr) -> &VectorSelector {
    match e {
        Expr::VectorSelector(v) => v,
        other => panic!("expected a vector selector, got {other:?}"),
    }
}

fn bin(e: &Expr) -> &BinaryExpr {
    match e {
        Expr::Binary(b) => b,
        other => panic!("expected a binary expression, got {other:?}"),
    }
}

fn agg(e: &Expr) -> &AggregateExpr {
    match e {
        Expr::Aggregate(a) => a,
        other => panic!("expected an aggregation, got {other:?}"),
    }
}

fn call(e: &Expr) -> &Call {
    match e {
        Expr::Call(c) => c,
        other => panic!("expected a call, got {other:?}"),
    }
}

fn matrix(e: &Expr) -> &MatrixSelector {
    match e {
        Expr::MatrixSelector(m) => m,
        other => panic!("expected a matrix selector, got {other:?}"),
    }
}

fn subquery(e: &Expr) -> &SubqueryExpr {
    match e {
        Expr::Subquery(s) => s,
        other => panic!("expected a subquery, got {other:?}"),
    }
}

/// Matchers as `(name, op, value)` triples, in order.
fn matchers(v: &VectorSelector) -> Vec<(String, MatchOp, String)> {
    v.matchers
        .iter()
        .map(|m| (m.name.clone(), m.op, m.value.clone()))
        .collect()
}

fn m(name: &str, op: MatchOp, value: &str) -> (String, MatchOp, String) {
    (name.to_string(), op, value.to_string())
}

fn p(start: usize, end: usize) -> PosRange {
    PosRange::new(start, end)
}

// ---- Literals -------------------------------------------------------------------------------

#[test]
fn number_literals() {
    let cases: &[(&str, f64, PosRange)] = &[
        ("1", 1.0, p(0, 1)),
        ("+Inf", f64::INFINITY, p(0, 4)),
        ("-Inf", f64::NEG_INFINITY, p(0, 4)),
        ("inF", f64::INFINITY, p(0, 3)),
        (".5", 0.5, p(0, 2)),
        ("5.", 5.0, p(0, 2)),
        ("123.4567", 123.4567, p(0, 8)),
        ("5e-3", 0.005, p(0, 4)),
        ("12.34e+6", 12_340_000.0, p(0, 8)),
        ("0xc", 12.0, p(0, 3)),
        ("0x1F", 31.0, p(0, 4)),
        ("0755", 493.0, p(0, 4)),
        ("08", 8.0, p(0, 2)),
        ("1_000", 1000.0, p(0, 5)),
        ("+5.5e-3", 0.0055, p(0, 7)),
        ("-0755", -493.0, p(0, 5)),
        (" - - 1", 1.0, p(1, 6)),
        ("99999999999999999999", 1e20, p(0, 20)),
    ];
    for (q, val, pos) in cases {
        let (v, got_pos) = num(&ok(q));
        assert_eq!(v, *val, "{q}");
        assert_eq!(got_pos, *pos, "{q}");
    }
    assert!(num(&ok("NaN")).0.is_nan());
    assert!(num(&ok("nan")).0.is_nan());
}

#[test]
fn durations_are_numbers_of_seconds() {
    assert_eq!(num(&ok("5m")), (300.0, p(0, 2)));
    assert_eq!(num(&ok("1h30m")).0, 5400.0);
    assert_eq!(num(&ok("1y")).0, 365.0 * 86400.0);
    assert_eq!(num(&ok("1500ms")).0, 1.5);
    assert_eq!(num(&ok("-1m")), (-60.0, p(0, 3)));
    assert_eq!(bin(&ok("5m + 1")).op, BinOp::Add);
}

#[test]
fn string_literals() {
    let cases: &[(&str, &str)] = &[
        (r#""foo""#, "foo"),
        (r#"'foo'"#, "foo"),
        ("`foo\\n`", "foo\\n"),
        (r#""a\nb\t\"c\\""#, "a\nb\t\"c\\"),
        (r#"'it\'s'"#, "it's"),
        (r#""\x41\101\u00e9\U0001F600""#, "AAé😀"),
        (r#""\xc3\xa9""#, "é"),
        (r#""é""#, "é"),
        (r#""""#, ""),
    ];
    for (q, want) in cases {
        match ok(q) {
            Expr::StringLiteral { val, pos } => {
                assert_eq!(val, *want, "{q}");
                assert_eq!(pos, p(0, q.len()), "{q}");
            }
            other => panic!("{q}: expected a string, got {other:?}"),
        }
    }
    // Escapes that are not valid UTF-8 are replaced.
    match ok(r#""a\xffz""#) {
        Expr::StringLiteral { val, .. } => assert_eq!(val, "a\u{FFFD}z"),
        other => panic!("expected a string, got {other:?}"),
    }
}

// ---- Precedence and associativity -------------------------------------------------------------

/// Renders the tree with explicit parentheses: `(1 + (2 * 3))`.
fn shape(e: &Expr) -> String {
    match e {
        Expr::NumberLiteral { val, .. } => format!("{val}"),
        Expr::StringLiteral { val, .. } => format!("{val:?}"),
        Expr::VectorSelector(v) => v.name.clone().unwrap_or_else(|| "{}".into()),
        Expr::Paren { expr, .. } => format!("[{}]", shape(expr)),
        Expr::Unary { op, expr, .. } => format!("({op}{})", shape(expr)),
        Expr::Binary(b) => format!("({} {} {})", shape(&b.lhs), b.op, shape(&b.rhs)),
        other => format!("{other:?}"),
    }
}

#[test]
fn precedence_and_associativity() {
    let cases: &[(&str, &str)] = &[
        ("1 + 2 * 3", "(1 + (2 * 3))"),
        ("1 * 2 + 3", "((1 * 2) + 3)"),
        ("1 - 2 - 3", "((1 - 2) - 3)"),
        ("2 ^ 3 ^ 2", "(2 ^ (3 ^ 2))"),
        ("-2 ^ 2", "(-(2 ^ 2))"),
        ("-1 ^ -2", "(-(1 ^ -2))"),
        ("-1 * 2", "(-1 * 2)"),
        ("+1 + -2 * 1", "(1 + (-2 * 1))"),
        ("1 + 2 / (3 * 1)", "(1 + (2 / [(3 * 1)]))"),
        ("a atan2 b * c", "((a atan2 b) * c)"),
        ("a + b atan2 c", "(a + (b atan2 c))"),
        ("a or b and c", "(a or (b and c))"),
        ("a and b unless c", "((a and b) unless c)"),
        ("a unless b or c", "((a unless b) or c)"),
        ("a > b + c", "(a > (b + c))"),
        ("a + b > c and d", "(((a + b) > c) and d)"),
        ("a == b != c", "((a == b) != c)"),
        ("-a * b", "((-a) * b)"),
        ("-a ^ b", "(-(a ^ b))"),
        ("2 ^ -a ^ b", "(2 ^ (-(a ^ b)))"),
        ("- - a", "(-(-a))"),
        ("a % b / c", "((a % b) / c)"),
    ];
    for (q, want) in cases {
        assert_eq!(shape(&ok(q)), *want, "{q}");
    }
}

#[test]
fn unary_positions() {
    match ok(" +some_metric") {
        Expr::Unary { op, expr, pos } => {
            assert_eq!(op, BinOp::Add);
            assert_eq!(pos, p(1, 13));
            assert_eq!(vs(&expr).pos, p(2, 13));
        }
        other => panic!("expected a unary expression, got {other:?}"),
    }
    let b = ok("1 < bool 2 - 1 * 2");
    assert_eq!(b.pos(), p(0, 18));
    assert_eq!(bin(&bin(&b).rhs).rhs.pos(), p(13, 18));
}

// ---- Vector selectors -----------------------------------------------------------------------

#[test]
fn vector_selectors() {
    let v = ok(r#"foo{a="b", c!="d", e=~"f.*", g!~'h',}"#);
    let v = vs(&v);
    assert_eq!(v.name.as_deref(), Some("foo"));
    assert_eq!(
        matchers(v),
        vec![
            m("a", MatchOp::Equal, "b"),
            m("c", MatchOp::NotEqual, "d"),
            m("e", MatchOp::Regex, "f.*"),
            m("g", MatchOp::NotRegex, "h"),
            m("__name__", MatchOp::Equal, "foo"),
        ]
    );
    assert_eq!(v.pos, p(0, 37));
    assert_eq!((v.offset_ms, v.at), (0, None));

    let v = ok("foo:bar:baz");
    assert_eq!(vs(&v).name.as_deref(), Some("foo:bar:baz"));
    let v = ok("foo {}");
    assert_eq!(vs(&v).pos, p(0, 6));
    assert_eq!(matchers(vs(&v)), vec![m("__name__", MatchOp::Equal, "foo")]);

    // Keywords and aggregation names can be metric names, and label names inside braces.
    for name in [
        "sum", "by", "without", "offset", "start", "end", "and", "or", "unless", "SUM",
    ] {
        let e = ok(name);
        assert_eq!(vs(&e).name.as_deref(), Some(name), "{name}");
    }
    let e = ok(r#"min{by="x", on="y", bool="z"}"#);
    assert_eq!(matchers(vs(&e))[0], m("by", MatchOp::Equal, "x"));
    assert_eq!(shape(&ok("foo * sum")), "(foo * sum)");
}

#[test]
fn utf8_quoted_names() {
    let e = ok(r#"{"my.metric", "a.b"="c", d="e"}"#);
    let v = vs(&e);
    assert_eq!(v.name, None);
    assert_eq!(
        matchers(v),
        vec![
            m("__name__", MatchOp::Equal, "my.metric"),
            m("a.b", MatchOp::Equal, "c"),
            m("d", MatchOp::Equal, "e"),
        ]
    );
    let e = ok(r#"{"ünïcode"}"#);
    assert_eq!(
        matchers(vs(&e)),
        vec![m("__name__", MatchOp::Equal, "ünïcode")]
    );
    let e = ok(r#"{"a"=~"b"}"#);
    assert_eq!(matchers(vs(&e)), vec![m("a", MatchOp::Regex, "b")]);
}

#[test]
fn selector_checks() {
    assert_eq!(
        fail("{}"),
        "1:1: parse error: vector selector must contain at least one non-empty matcher"
    );
    for q in [r#"{x=""}"#, r#"{x=~".*"}"#, r#"{x!~".+"}"#, r#"{x!="a"}"#] {
        assert!(fail(q).ends_with("vector selector must contain at least one non-empty matcher"));
    }
    assert!(parse(r#"{x=~".+"}"#).is_ok());
    assert_eq!(
        fail(r#"foo{__name__="bar"}"#),
        r#"1:1: parse error: metric name must not be set twice: "foo" or "bar""#
    );
    // A regex error is reported at the matcher.
    let e = parse(r#"foo{a=~"("}"#).unwrap_err();
    assert_eq!((e.pos, e.line, e.col), (p(4, 10), 1, 5));
    assert!(e.msg.contains("invalid regular expression"), "{}", e.msg);
}

// ---- Range selectors and subqueries -----------------------------------------------------------

#[test]
fn matrix_selectors() {
    let cases: &[(&str, i64, i64, usize)] = &[
        ("test[5s]", 5_000, 0, 8),
        ("test[5m]", 300_000, 0, 8),
        ("foo[5m30s]", 330_000, 0, 10),
        ("test[5h] OFFSET 5m", 18_000_000, 300_000, 18),
        ("test[5d] offset 10s", 432_000_000, 10_000, 19),
        ("test[5w] offset -2w", 3_024_000_000, -1_209_600_000, 19),
        ("test[300]", 300_000, 0, 9),
        ("test[1.5]", 1_500, 0, 9),
        ("test[5m] offset 1.5", 300_000, 1_500, 19),
        ("test[100ms]", 100, 0, 11),
    ];
    for (q, range, offset, end) in cases {
        let e = ok(q);
        let mx = matrix(&e);
        assert_eq!(mx.range_ms, *range, "{q}");
        assert_eq!(mx.vs.offset_ms, *offset, "{q}");
        assert_eq!(mx.end_pos, *end, "{q}");
        assert_eq!(mx.vs.pos, p(0, q.find(['[', '{']).unwrap_or(0)), "{q}");
    }
    let e = ok(r#"test{a="b"}[5y] @ 1603774699"#);
    let mx = matrix(&e);
    assert_eq!(mx.vs.at, Some(AtModifier::At(1_603_774_699_000)));
    assert_eq!((mx.vs.pos, mx.end_pos), (p(0, 11), 28));
    assert_eq!(e.pos(), p(0, 28));
}

#[test]
fn subqueries() {
    let e = ok("foo[5m:]");
    let s = subquery(&e);
    assert_eq!((s.range_ms, s.step_ms, s.end_pos), (300_000, None, 8));
    let e = ok("foo[5m:30s] offset 1m @ 100");
    let s = subquery(&e);
    assert_eq!((s.range_ms, s.step_ms), (300_000, Some(30_000)));
    assert_eq!(
        (s.offset_ms, s.at, s.end_pos),
        (60_000, Some(AtModifier::At(100_000)), 27)
    );
    let e = ok("rate(foo[5m])[1h:5m] @ end()");
    let s = subquery(&e);
    assert_eq!(s.at, Some(AtModifier::End));
    assert_eq!(e.pos(), p(0, 28));
    assert_eq!(call(&s.expr).func.name, "rate");
    let e = ok("sum(foo) by (a) [10m:1m]");
    assert_eq!(agg(&subquery(&e).expr).grouping, vec!["a"]);
    // A subquery of a subquery, and of a vector selector with an offset.
    let e = ok("min_over_time(rate(foo[1m])[5m:1m])[10m:]");
    assert_eq!(subquery(&e).range_ms, 600_000);
    let e = ok("foo offset 5m [10m:]");
    assert_eq!(vs(&subquery(&e).expr).offset_ms, 300_000);
    let e = ok("foo[100:1] offset 20 @ 100");
    let s = subquery(&e);
    assert_eq!(
        (s.range_ms, s.step_ms, s.offset_ms),
        (100_000, Some(1_000), 20_000)
    );
}

#[test]
fn offset_and_at_modifiers() {
    let e = ok("foo offset 5m");
    assert_eq!((vs(&e).offset_ms, vs(&e).pos), (300_000, p(0, 13)));
    let e = ok("foo offset -5m @ 100");
    let v = vs(&e);
    assert_eq!(
        (v.offset_ms, v.at, v.pos),
        (-300_000, Some(AtModifier::At(100_000)), p(0, 20))
    );
    let e = ok("foo @ 100 offset 50");
    assert_eq!(
        (vs(&e).offset_ms, vs(&e).at),
        (50_000, Some(AtModifier::At(100_000)))
    );
    for (q, at) in [
        ("foo @ 100s", AtModifier::At(100_000)),
        ("foo @ 1m40s", AtModifier::At(100_000)),
        ("foo @ 1.5", AtModifier::At(1_500)),
        ("foo @ -2", AtModifier::At(-2_000)),
        ("foo @ +3", AtModifier::At(3_000)),
        ("foo @ 0.0005", AtModifier::At(1)),
        ("foo @ start()", AtModifier::Start),
        ("foo @ END()", AtModifier::End),
    ] {
        assert_eq!(vs(&ok(q)).at, Some(at), "{q}");
    }
    assert_eq!(vs(&ok("foo @ start()")).pos, p(0, 13));
    // The modifier binds tighter than operators.
    let e = ok("-foo offset 1m");
    match &e {
        Expr::Unary { expr, .. } => assert_eq!(vs(expr).offset_ms, 60_000),
        other => panic!("expected a unary expression, got {other:?}"),
    }
    let e = ok("a + b offset 1m @ 10");
    assert_eq!(vs(&bin(&e).rhs).offset_ms, 60_000);
    // `offset 1m + 1m` is `(x offset 1m) + 1m`.
    let e = ok("x offset 1m + 1m");
    assert_eq!(vs(&bin(&e).lhs).offset_ms, 60_000);
    assert_eq!(num(&bin(&e).rhs).0, 60.0);
    let e = ok("x offset -2 ^ 2");
    assert_eq!(bin(&e).op, BinOp::Pow);
    assert_eq!(vs(&bin(&e).lhs).offset_ms, -2_000);
}

#[test]
fn modifier_errors() {
    let cases: &[(&str, &str)] = &[
        ("1 offset 1d", "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
        ("foo offset 1s offset 2s", "1:1: parse error: offset may not be set multiple times"),
        ("some_metric OFFSET 1m[5m]", "1:22: parse error: no offset modifiers allowed before range"),
        ("some_metric @ 1234 [5m]", "1:20: parse error: no @ modifiers allowed before range"),
        ("(foo + bar)[5m]", "1:12: parse error: ranges only allowed for vector selectors"),
        ("rate(some_metric[5m]) @ 1234", "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery"),
        ("foo @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"),
        ("foo @ start() @ end()", "1:1: parse error: @ <timestamp> may not be set multiple times"),
        ("foo @ Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"),
        ("foo @ -Inf", "1:1: parse error: timestamp out of bounds for @ modifier: -Inf"),
        ("foo @ NaN", "1:1: parse error: timestamp out of bounds for @ modifier: NaN"),
        ("foo @ 9223372036854775807", "1:1: parse error: timestamp out of bounds for @ modifier: 9223372036854775808.000000"),
        ("some_metric[5m] @", "1:18: parse error: unexpected end of input in @, expected timestamp"),
        ("foo @ bar", "1:7: parse error: unexpected identifier \"bar\" in @, expected timestamp"),
        ("foo @ start", "1:12: parse error: unexpected end of input in @, expected timestamp"),
        ("some_metric[5m] OFFSET", "1:23: parse error: unexpected end of input in offset, expected number, duration, step(), or range()"),
        ("foo offset bar", "1:12: parse error: unexpected identifier \"bar\" in offset, expected number, duration, step(), or range()"),
        ("some_metric[5m] OFFSET 1mm", "1:24: parse error: bad number or duration syntax: \"1mm\""),
        ("foo[0m]", "1:5: parse error: duration must be greater than 0"),
        ("foo[-5m]", "1:5: parse error: duration must be greater than 0"),
        ("foo[5m:0s]", "1:8: parse error: duration must be greater than 0"),
        ("foo[5m1h]", "1:5: parse error: not a valid duration string: \"5m1h\""),
        ("foo[5m1m]", "1:5: parse error: not a valid duration string: \"5m1m\""),
        ("foo[5y1hs]", "1:5: parse error: unknown unit \"hs\" in duration \"5y1hs\""),
        ("foo[5mm]", "1:5: parse error: bad number or duration syntax: \"5mm\""),
        ("foo[5m:1m1]", "1:8: parse error: bad number or duration syntax: \"1m1\""),
        ("foo[]", "1:5: parse error: unexpected \"]\" in subquery or range selector, expected number, duration, step(), or range()"),
        ("foo[5m", "1:7: parse error: unclosed left bracket"),
        ("foo[5m:1m", "1:10: parse error: unclosed left bracket"),
        ("foo[5m 1m]", "1:8: parse error: unexpected duration \"1m\" in subquery or range, expected \":\" or \"]\""),
        ("foo[5m:1m 1m]", "1:11: parse error: unexpected duration \"1m\" in subquery selector, expected \"]\""),
        ("foo[5m::]", "1:7: parse error: unexpected \"::\" in subquery or range, expected \":\" or \"]\""),
        ("foo[\"5m\"]", "1:5: parse error: unexpected character in duration expression: '\"'"),
        ("foo[5m:1m:1m]", "1:10: parse error: unexpected colon ':'"),
        ("foo[5m+1m]", "1:5: parse error: experimental duration expression is not enabled"),
        ("foo[step()]", "1:5: parse error: experimental duration expression is not enabled"),
        ("foo[(5m)]", "1:5: parse error: experimental duration expression is not enabled"),
        ("foo offset step()", "1:12: parse error: experimental duration expression is not enabled"),
        ("foo offset (1m)", "1:12: parse error: experimental duration expression is not enabled"),
        ("foo[10000000000]", "1:5: parse error: duration out of range"),
        ("foo offset 300y", "1:12: parse error: duration out of range"),
        ("foo[5m] anchored", "1:1: parse error: anchored modifier is experimental and not enabled"),
        ("foo[5m] smoothed", "1:1: parse error: smoothed modifier is experimental and not enabled"),
        ("x[5m][5m:]", "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"),
        ("\"a\"[5m:]", "1:1: parse error: subquery is only allowed on instant vector, got string instead"),
        ("foo[1.5s]", "1:5: parse error: unknown unit \".\" in duration \"1.5s\""),
    ];
    for (q, want) in cases {
        assert_eq!(fail(q), *want, "{q}");
    }
}

// ---- Aggregations ---------------------------------------------------------------------------

#[test]
fn aggregations() {
    let e = ok("sum by (foo)(some_metric)");
    let a = agg(&e);
    assert_eq!((a.op, a.without, a.pos), (AggOp::Sum, false, p(0, 25)));
    assert_eq!(a.grouping, vec!["foo"]);
    assert_eq!(vs(&a.expr).pos, p(13, 24));

    let e = ok("sum (some_metric) without (foo)");
    let a = agg(&e);
    assert_eq!((a.without, a.pos), (true, p(0, 31)));
    let e = ok("sum by ()(some_metric)");
    assert!(agg(&e).grouping.is_empty());
    let e = ok("sum by (foo,bar,)(some_metric)");
    assert_eq!(agg(&e).grouping, vec!["foo", "bar"]);
    let e = ok("sum without(and, by, avg, count, alert, annotations, BOOL, on)(some_metric)");
    assert_eq!(
        agg(&e).grouping,
        vec![
            "and",
            "by",
            "avg",
            "count",
            "alert",
            "annotations",
            "BOOL",
            "on"
        ]
    );
    let e = ok(r#"sum by ("foo.bar", "ü", a:b) (x)"#);
    assert_eq!(agg(&e).grouping, vec!["foo.bar", "ü", "a:b"]);
    let e = ok("MAX(x)");
    assert_eq!(agg(&e).op, AggOp::Max);

    let e = ok("topk(5, some_metric)");
    let a = agg(&e);
    assert_eq!(a.op, AggOp::Topk);
    assert_eq!(a.param.as_deref().map(num), Some((5.0, p(5, 6))));
    assert_eq!(a.pos, p(0, 20));
    let e = ok(r#"count_values("value", some_metric)"#);
    match agg(&e).param.as_deref() {
        Some(Expr::StringLiteral { val, pos }) => {
            assert_eq!((val.as_str(), *pos), ("value", p(13, 20)))
        }
        other => panic!("expected a string parameter, got {other:?}"),
    }
    for (q, op) in [
        ("quantile(0.9, x)", AggOp::Quantile),
        ("bottomk(1, x)", AggOp::Bottomk),
        ("limitk(2, x)", AggOp::Limitk),
        ("limit_ratio(0.5, x)", AggOp::LimitRatio),
        ("group(x)", AggOp::Group),
        ("stddev(x)", AggOp::Stddev),
        ("stdvar(x)", AggOp::Stdvar),
        ("count(x)", AggOp::Count),
        ("avg(x)", AggOp::Avg),
        ("min(x)", AggOp::Min),
    ] {
        assert_eq!(agg(&ok(q)).op, op, "{q}");
    }
    // The position of an aggregation inside parentheses ends at its own `)`.
    let e = ok("(sum(x))");
    match &e {
        Expr::Paren { expr, pos } => {
            assert_eq!(*pos, p(0, 8));
            assert_eq!(agg(expr).pos, p(1, 7));
        }
        other => panic!("expected parentheses, got {other:?}"),
    }
}

#[test]
fn aggregation_errors() {
    let cases: &[(&str, &str)] = &[
        ("sum without(==)(some_metric)", "1:13: parse error: unexpected <op:==> in grouping opts, expected label"),
        ("sum without(,)(some_metric)", "1:13: parse error: unexpected \",\" in grouping opts, expected label"),
        ("sum without(foo,,)(some_metric)", "1:17: parse error: unexpected \",\" in grouping opts, expected label"),
        ("sum by (a b) (x)", "1:11: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\""),
        ("sum some_metric by (test)", "1:5: parse error: unexpected identifier \"some_metric\""),
        ("sum (some_metric) by test", "1:22: parse error: unexpected identifier \"test\" in grouping opts, expected \"(\""),
        ("sum () by (test)", "1:1: parse error: no arguments for aggregate expression provided"),
        ("MIN keep_common (some_metric)", "1:5: parse error: unexpected identifier \"keep_common\""),
        ("MIN (some_metric) keep_common", "1:19: parse error: unexpected identifier \"keep_common\""),
        ("sum (some_metric) without (test) by (test)", "1:34: parse error: unexpected <by>"),
        ("sum without (test) (some_metric) by (test)", "1:34: parse error: unexpected <by>"),
        ("topk(some_metric)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1"),
        ("sum(a, b)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1, got 2"),
        ("topk(some_metric,)", "1:17: parse error: trailing commas not allowed in function call args"),
        ("topk(some_metric, other_metric)", "1:6: parse error: expected type scalar in aggregation parameter, got instant vector"),
        ("count_values(5, other_metric)", "1:14: parse error: expected type string in aggregation parameter, got scalar"),
        ("sum(rate(x[5m])[5m])", "1:16: parse error: ranges only allowed for vector selectors"),
        ("sum(x[5m])", "1:5: parse error: expected type instant vector in aggregation expression, got range vector"),
        ("sum(foo bar)", "1:9: parse error: unexpected identifier \"bar\" in aggregation"),
        ("sum(rate(x[5m]) 1)", "1:17: parse error: unexpected number \"1\" in aggregation"),
        ("sum by (a)", "1:11: parse error: unexpected end of input in aggregation"),
        ("sum by (\"\") (x)", "1:9: parse error: invalid label name for grouping: \"\""),
        ("sum by (foo", "1:12: parse error: unclosed left parenthesis"),
    ];
    for (q, want) in cases {
        assert_eq!(fail(q), *want, "{q}");
    }
}

// ---- Binary operators and vector matching -------------------------------------------------------

#[test]
fn vector_matching() {
    let e = ok("foo * bar");
    let b = bin(&e);
    assert_eq!(
        b.matching,
        Some(VectorMatching {
            card: Cardinality::OneToOne,
            matching_labels: vec![],
            on: false,
            include: vec![],
        })
    );
    assert!(!b.return_bool);
    for q in [
        "foo and bar",
        "foo or bar",
        "foo unless bar",
        "foo and on(a) bar",
    ] {
        let e = ok(q);
        assert_eq!(
            bin(&e).matching.as_ref().map(|m| m.card),
            Some(Cardinality::ManyToMany),
            "{q}"
        );
    }
    let e = ok("foo * on(test,blub) group_left(bar) bar");
    let mm = bin(&e).matching.clone();
    assert_eq!(
        mm,
        Some(VectorMatching {
            card: Cardinality::ManyToOne,
            matching_labels: vec!["test".into(), "blub".into()],
            on: true,
            include: vec!["bar".into()],
        })
    );
    let e = ok("foo / ignoring(test) group_right bar");
    let mm = bin(&e).matching.clone();
    assert_eq!(
        mm,
        Some(VectorMatching {
            card: Cardinality::OneToMany,
            matching_labels: vec!["test".into()],
            on: false,
            include: vec![],
        })
    );
    let e = ok("foo == bool on() group_left bar");
    assert!(bin(&e).return_bool);
    assert_eq!(bin(&e).matching.as_ref().map(|m| m.on), Some(true));
    // `group_left (x) y`: the parenthesised list belongs to the modifier.
    let e = ok("a * on(b) group_left (c) d");
    assert_eq!(
        bin(&e).matching.as_ref().map(|m| m.include.clone()),
        Some(vec!["c".to_string()])
    );
    // No matching unless both sides are vectors.
    for q in [
        "foo == 1",
        "2.5 / bar",
        "1 + 1",
        "foo + on() 1",
        "1 == bool 1",
        "time() * foo",
    ] {
        let e = ok(q);
        assert_eq!(bin(&e).matching, None, "{q}");
    }
    let e = ok("foo == bool 1");
    assert!(bin(&e).return_bool);
    // Matching applies inside parentheses too.
    let e = ok("(foo) + (rate(bar[5m]))");
    assert!(bin(&e).matching.is_some());
}

#[test]
fn binary_errors() {
    let cases: &[(&str, &str)] = &[
        ("1 and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"),
        ("1 or foo", "1:1: parse error: set operator \"or\" not allowed in binary scalar expression"),
        ("1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"),
        ("foo + bool bar", "1:5: parse error: bool modifier can only be used on comparison operators"),
        ("foo and bool 10", "1:5: parse error: bool modifier can only be used on comparison operators"),
        ("foo * on(a) group_left(a) bar", "1:5: parse error: label \"a\" must not occur in ON and GROUP clause at once"),
        ("foo and on(bar) group_left(baz) bar", "1:1: parse error: no grouping allowed for \"and\" operation"),
        ("foo or ignoring(a) group_right bar", "1:1: parse error: no grouping allowed for \"or\" operation"),
        ("foo + on(a) 1", "1:1: parse error: vector matching only allowed between instant vectors"),
        ("1 + on(a) group_left bar", "1:1: parse error: vector matching only allowed between instant vectors"),
        ("\"a\" + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types"),
        ("1 + foo[5m]", "1:5: parse error: binary expression must contain only scalar and instant vector types"),
        ("a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>"),
        ("foo + group_left bar", "1:7: parse error: unexpected <group_left>"),
        ("a > b bool", "1:7: parse error: unexpected <bool>"),
        ("foo * on bar", "1:10: parse error: unexpected identifier \"bar\" in grouping opts, expected \"(\""),
        ("foo + fill(0) bar", "1:1: parse error: binop fill modifiers are experimental and not enabled"),
        ("-\"string\"", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\""),
        ("-test[5m]", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\""),
    ];
    for (q, want) in cases {
        assert_eq!(fail(q), *want, "{q}");
    }
}

// ---- Function calls -------------------------------------------------------------------------

#[test]
fn function_calls() {
    let e = ok("time()");
    assert_eq!(
        (call(&e).func.name, call(&e).args.len(), e.pos()),
        ("time", 0, p(0, 6))
    );
    let e = ok(r#"floor(some_metric{foo!="bar"})"#);
    assert_eq!(e.pos(), p(0, 30));
    assert_eq!(vs(&call(&e).args[0]).pos, p(6, 29));
    let e = ok("rate(some_metric[5m])");
    assert_eq!(matrix(&call(&e).args[0]).end_pos, 20);
    assert_eq!(e.value_type(), ValueType::Vector);
    for q in [
        "round(x)",
        "round(x, 5)",
        r#"label_join(x, "a", ",", "b", "c", "d")"#,
        r#"label_join(x, "a", ",")"#,
        r#"label_replace(x, "a", "b", "c", "d")"#,
        "clamp(x, 0, 1)",
        "histogram_quantile(0.9, rate(x[5m]))",
        "quantile_over_time(0.5, x[5m])",
        "vector(1)",
        "scalar(x) * 2",
        "pi()",
        "day_of_week()",
        "absent(nonexistent{job=\"x\"})",
        "predict_linear(x[5m], 60)",
        "info(x, {job=\"a\"})",
        r#"info(x, {__name__=~".+_info"})"#,
        "mad_over_time(x[5m])",
        r#"sort_by_label(x, "a", "b")"#,
    ] {
        assert!(parse(q).is_ok(), "{q}: {:?}", parse(q).err());
    }
    assert_eq!(ok("pi()").value_type(), ValueType::Scalar);
}

#[test]
fn function_errors() {
    let cases: &[(&str, &str)] = &[
        ("non_existent()", "1:1: parse error: unknown function with name \"non_existent\""),
        ("abs(1, 2)", "1:1: parse error: expected 1 argument(s) in call to \"abs\", got 2"),
        ("time(1)", "1:1: parse error: expected 0 argument(s) in call to \"time\", got 1"),
        ("floor()", "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 0"),
        ("round(x, 1, 2)", "1:1: parse error: expected at most 2 argument(s) in call to \"round\", got 3"),
        (r#"label_join(x, "a")"#, "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 2"),
        ("rate(some_metric)", "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"),
        ("floor(some_metric[5m])", "1:7: parse error: expected type instant vector in call to function \"floor\", got range vector"),
        ("floor(1)", "1:7: parse error: expected type instant vector in call to function \"floor\", got scalar"),
        (r#"label_join(x, "a", ",", 1)"#, "1:25: parse error: expected type string in call to function \"label_join\", got scalar"),
        ("floor(some_metric, )", "1:18: parse error: trailing commas not allowed in function call args"),
        ("rate(foo bar)", "1:10: parse error: unexpected identifier \"bar\""),
        ("foo:bar(1)", "1:8: parse error: unexpected \"(\""),
        ("min_of(1, 2)", "1:1: parse error: unknown function with name \"min_of\""),
        ("a </ 1", "1:4: parse error: unexpected <op:/>"),
        ("info(x, foo)", "1:9: parse error: expected label selectors only, got vector selector instead"),
        ("info(x, 1)", "1:1: parse error: expected type instant vector in call to function \"info\", got scalar"),
        ("info(x, rate(y[5m]))", "1:9: parse error: expected label selectors only"),
    ];
    for (q, want) in cases {
        assert_eq!(fail(q), *want, "{q}");
    }
}

// ---- Syntax and lexer errors ----------------------------------------------------------------

#[test]
fn syntax_errors() {
    let cases: &[(&str, &str)] = &[
        ("", "1:1: parse error: no expression found in input"),
        ("# just a comment\n\n", "1:1: parse error: no expression found in input"),
        ("1+", "1:3: parse error: unexpected end of input"),
        ("1 /", "1:4: parse error: unexpected end of input"),
        (".", "1:1: parse error: unexpected character: '.'"),
        ("2.5.", "1:1: parse error: bad number or duration syntax: \"2.5.\""),
        ("100..4", "1:1: parse error: bad number or duration syntax: \"100..\""),
        ("0deadbeef", "1:1: parse error: bad number or duration syntax: \"0de\""),
        ("*1", "1:1: parse error: unexpected <op:*>"),
        ("(1))", "1:5: parse error: unexpected right parenthesis ')'"),
        ("((1)", "1:5: parse error: unclosed left parenthesis"),
        ("(", "1:2: parse error: unclosed left parenthesis"),
        ("()", "1:2: parse error: unexpected \")\""),
        ("1 !~ 1", "1:3: parse error: unexpected character after '!': '~'"),
        ("1 =~ 1", "1:3: parse error: unexpected character after '=': '~'"),
        ("1e400", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e400\": value out of range"),
        ("0x", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"0x\": invalid syntax"),
        ("foo bar", "1:5: parse error: unexpected identifier \"bar\""),
        ("foo 1", "1:5: parse error: unexpected number \"1\""),
        ("foo \"a long string value\"", "1:5: parse error: unexpected string \"\\\"a long st\"..."),
        ("foo{gibberish}", "1:14: parse error: unexpected \"}\" in label matching, expected label matching operator"),
        ("foo{1}", "1:5: parse error: unexpected character inside braces: '1'"),
        ("foo{__name__= =}", "1:15: parse error: unexpected \"=\" in label matching, expected string"),
        ("foo{,}", "1:5: parse error: unexpected \",\" in label matching, expected identifier or \"}\""),
        ("foo{__name__ == \"bar\"}", "1:15: parse error: unexpected \"=\" in label matching, expected string"),
        ("foo{__name__=\"bar\" lol}", "1:20: parse error: unexpected identifier \"lol\" in label matching, expected \",\" or \"}\""),
        ("foo{a=\"b\"", "1:10: parse error: unexpected end of input inside braces"),
        ("foo{a=\"\\q\"}", "1:7: parse error: unknown escape sequence U+0071 'q'"),
        ("\"abc", "1:1: parse error: unterminated quoted string"),
        ("`abc", "1:1: parse error: unterminated raw string"),
        ("foo}", "1:4: parse error: unexpected character: '}'"),
        ("foo$", "1:4: parse error: unexpected character: '$'"),
        ("@", "1:1: parse error: unexpected <op:@>"),
        ("sum(x) by (a) (y)", "1:15: parse error: unexpected \"(\""),
        ("1 +\n  foo bar", "2:7: parse error: unexpected identifier \"bar\""),
    ];
    for (q, want) in cases {
        assert_eq!(fail(q), *want, "{q}");
    }
}

#[test]
fn comments_and_whitespace() {
    let e = ok("# leading comment\nsum(\n  rate(foo[5m]) # rate\n) by (job) # trailing");
    assert_eq!(agg(&e).grouping, vec!["job"]);
    assert_eq!(agg(&e).pos, p(18, 56));
    let e = ok("\t foo \n");
    assert_eq!(vs(&e).pos, p(2, 5));
}

#[test]
fn error_positions_are_line_and_column() {
    let e = parse("sum(\n  rate(x[5m]) +\n)").unwrap_err();
    assert_eq!((e.line, e.col), (3, 1));
    assert_eq!(e.msg, "unexpected \")\" in aggregation");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(fail(&deep).contains("nested too deeply"));
    let unary = format!("{}foo", "-".repeat(100_000));
    assert!(parse(&unary).is_err());
    let chain = vec!["a"; 5000].join(" + ");
    assert!(fail(&chain).contains("nested too deeply"));
    let fine = vec!["a"; 500].join(" or ");
    assert!(parse(&fine).is_ok());
    let signs = format!("x[{}5m]", "-".repeat(100_000));
    assert!(parse(&signs).is_err());
}

// ---- parse_metric -----------------------------------------------------------------------------

fn pairs(l: &Labels) -> Vec<(String, String)> {
    l.iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

fn lp(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn parse_metric_series_descriptions() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("foo", &[("__name__", "foo")]),
        (
            r#"foo{a="b", c="d"}"#,
            &[("__name__", "foo"), ("a", "b"), ("c", "d")],
        ),
        (r#"{__name__="x", a="b"}"#, &[("__name__", "x"), ("a", "b")]),
        (
            r#"{"utf8.name", a="b",}"#,
            &[("__name__", "utf8.name"), ("a", "b")],
        ),
        (r#"{"a.b"="c"}"#, &[("a.b", "c")]),
        ("sum{by='x'}", &[("__name__", "sum"), ("by", "x")]),
        ("foo:bar", &[("__name__", "foo:bar")]),
        ("{}", &[]),
        ("", &[]),
    ];
    for (q, want) in cases {
        match parse_metric(q) {
            Ok(l) => assert_eq!(pairs(&l), lp(want), "{q}"),
            Err(e) => panic!("{q}: {e}"),
        }
    }
    let errors: &[(&str, &str)] = &[
        (
            r#"foo{a!="b"}"#,
            "1:6: parse error: unexpected <op:!=> in label set, expected \"=\"",
        ),
        (
            r#"foo{a=~"b"}"#,
            "1:6: parse error: unexpected <op:=~> in label set, expected \"=\"",
        ),
        (
            r#"foo{a="b" c="d"}"#,
            "1:11: parse error: unexpected identifier \"c\" in label set, expected \",\" or \"}\"",
        ),
        (
            "foo{a=}",
            "1:7: parse error: unexpected \"}\" in label set, expected string",
        ),
        (
            "foo{,}",
            "1:5: parse error: unexpected \",\" in label set, expected identifier or \"}\"",
        ),
        ("foo bar", "1:5: parse error: unexpected identifier \"bar\""),
        (
            "foo{a=\"b\"",
            "1:10: parse error: unexpected end of input inside braces",
        ),
    ];
    for (q, want) in errors {
        match parse_metric(q) {
            Ok(l) => panic!("{q} should fail, got {l}"),
            Err(e) => assert_eq!(e.to_string(), *want, "{q}"),
        }
    }
}

// ---- Helpers ----------------------------------------------------------------------------------

#[test]
fn go_number_parsing() {
    assert_eq!(parse_number("0x1F"), Ok(31.0));
    assert_eq!(parse_number("0755"), Ok(493.0));
    assert_eq!(parse_number("0_7"), Ok(7.0));
    assert_eq!(parse_number("1_000.5"), Ok(1000.5));
    assert!(parse_number("1__0").is_err());
    assert!(parse_number("1e5.5").is_err());
    assert_eq!(parse_number("1e-400"), Ok(0.0));
    assert_eq!(parse_number("Inf"), Ok(f64::INFINITY));
}

#[test]
fn duration_parsing() {
    assert_eq!(
        parse_duration_ms("1y2w3d4h5m6s7ms"),
        Ok(((((365 + 14 + 3) * 24 + 4) * 60 + 5) * 60 + 6) * 1000 + 7)
    );
    assert_eq!(parse_duration_ms("0"), Ok(0));
    assert_eq!(parse_duration_ms("90m"), Ok(5_400_000));
    assert_eq!(
        parse_duration_ms("5s1m"),
        Err("not a valid duration string: \"5s1m\"".into())
    );
    assert_eq!(
        parse_duration_ms("300y"),
        Err("duration out of range".into())
    );
    assert_eq!(secs_to_ms(1.5), 1500);
    assert_eq!(secs_to_ms(-0.0015), -1);
    assert_eq!(secs_to_ms(0.0000001), 0);
}

// ---- Properties -------------------------------------------------------------------------------

const VALID: &[&str] = &[
    r#"sum by (job) (rate(http_requests_total{job=~"api.*", code!="500"}[5m] offset 1m))"#,
    r#"histogram_quantile(0.9, sum without (instance) (rate(x_bucket[5m:30s] @ 100)))"#,
    r#"a / on(b) group_left(c) d > bool 2 ^ -3 * 4 or vector(1) unless {"u.tf8", a="b"}"#,
    r#"topk(3, -foo @ start()) and count_values("v", bar) # comment"#,
    r#"label_replace(up{job="x"}, "dst", "$1", "src", "(.*)") - 0x1F + 1e3 - .5 + Inf"#,
    r#"quantile_over_time(0.5, foo[1h] offset -5m) + time() + label_join(x, "a", `raw`, 'single')"#,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_input_never_panics(s in "\\PC{0,40}") {
        let _ = parse(&s);
        let _ = parse_metric(&s);
    }

    #[test]
    fn random_promql_like_input_never_panics(
        s in r#"[a-z_:{}()\[\]"'`=~!<>^*/%+,@. 0-9eExhmsdwy#\n-]{0,60}"#
    ) {
        let _ = parse(&s);
        let _ = parse_metric(&s);
    }

    #[test]
    fn mutations_of_valid_queries_never_panic(
        which in 0..VALID.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..6),
    ) {
        let mut q: Vec<char> = VALID[which].chars().collect();
        for (idx, kind, c) in edits {
            let i = if q.is_empty() { 0 } else { idx.index(q.len()) };
            match kind {
                0 if !q.is_empty() => { q.remove(i); }
                1 => q.insert(i, c),
                _ if !q.is_empty() => q[i] = c,
                _ => q.push(c),
            }
        }
        let s: String = q.into_iter().collect();
        if let Err(e) = parse(&s) {
            // Errors point inside (or just past) the input.
            prop_assert!(e.pos.start <= s.len());
            prop_assert!(e.line >= 1 && e.col >= 1);
        }
    }
}

#[test]
fn valid_corpus_parses() {
    for q in VALID {
        assert!(parse(q).is_ok(), "{q}: {:?}", parse(q).err());
    }
}

#[test]
fn unquote_rejects_malformed_input() {
    assert_eq!(unquote("`a\\n`"), Ok("a\\n".to_string()));
    assert_eq!(unquote("'a\"b'"), Ok("a\"b".to_string()));
    for bad in [
        "\"",
        "é",
        "\"a",
        "'a\"",
        "\"a\nb\"",
        "\"\\q\"",
        "\"\\400\"",
        "\"\\uD800\"",
        "``a`",
    ] {
        assert!(unquote(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn large_queries_parse() {
    // 40 groups of 500 selectors: 20000 leaves, depth about 540.
    let group = format!("({})", vec!["foo{a=\"b\"}"; 500].join(" or "));
    let q = vec![group.as_str(); 40].join(" + ");
    let started = std::time::Instant::now();
    let e = ok(&q);
    assert_eq!(e.value_type(), ValueType::Vector);
    assert_eq!(e.pos(), p(0, q.len()));
    // Generous bound: linear work, far below this even in debug builds.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn deepest_accepted_tree_checks_without_overflow() {
    // A left-deep chain just below the depth limit goes through `check` on a test thread's
    // default stack.
    let chain = vec!["rate(a[5m])"; 990].join(" + ");
    let e = ok(&chain);
    assert_eq!(e.value_type(), ValueType::Vector);
    let chain = vec!["a"; 990].join(" == bool ");
    assert!(parse(&chain).is_ok());
}

#[test]
fn metric_selectors() {
    let ms = parse_metric_selector(r#"up{job=~"api.*", "a.b"!="c"}"#).unwrap();
    let got: Vec<_> = ms
        .iter()
        .map(|m| (m.name.clone(), m.op, m.value.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            m("job", MatchOp::Regex, "api.*"),
            m("a.b", MatchOp::NotEqual, "c"),
            m("__name__", MatchOp::Equal, "up"),
        ]
    );
    assert_eq!(parse_metric_selector("{}").map(|v| v.len()), Ok(0));
    assert_eq!(parse_metric_selector("sum").map(|v| v.len()), Ok(1));
    let err = |q: &str| {
        parse_metric_selector(q)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(err(""), "1:1: parse error: unexpected end of input");
    assert_eq!(err("rate(x[5m])"), "1:5: parse error: unexpected \"(\"");
    assert_eq!(err("1"), "1:1: parse error: unexpected number \"1\"");
    assert_eq!(err("x offset 5m"), "1:3: parse error: unexpected <offset>");
    assert_eq!(
        err(r#"x{a=~"("}"#),
        "1:3: parse error: invalid regular expression \"(\": missing closing )"
    );
}
