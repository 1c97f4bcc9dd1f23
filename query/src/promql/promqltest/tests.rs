//! Tests of the script parser, the comparison rules, the skip rules, and the whole runner
//! (with a tiny fake evaluator that answers bare metric names from the real test storage).

use o11y_tsdb::labels::Labels;
use o11y_tsdb::matcher::{MatchOp, Matcher};

use super::compare::{almost_equal, check_annotations, check_expected_failure, compare_result};
use super::env::nhcb_series;
use super::script::*;
use super::skip::experimental_feature;
use super::*;
use crate::promql::ast::PosRange;
use crate::promql::value::{Annotation, Annotations, FPoint, Sample, Series, Value};

/// A series-description parser for tests (the PromQL parser is written elsewhere):
/// `name`, `name{a="b", 'c'='d'}`, `{"quoted.name", a="b"}`, `{}`; Go escapes in values.
fn test_metric(s: &str) -> Result<Labels, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut pairs: Vec<(String, String)> = Vec::new();
    let ident = |i: &mut usize| -> String {
        let st = *i;
        while *i < b.len() && (b[*i].is_ascii_alphanumeric() || b[*i] == b'_' || b[*i] == b':') {
            *i += 1;
        }
        s[st..*i].to_string()
    };
    let quoted = |i: &mut usize| -> Result<String, String> {
        let q = b[*i];
        let st = *i;
        *i += 1;
        while *i < b.len() && b[*i] != q {
            if b[*i] == b'\\' && q != b'`' {
                *i += 1;
            }
            *i += 1;
        }
        if *i >= b.len() {
            return Err("unterminated string".into());
        }
        *i += 1;
        let lit = &s[st..*i];
        let dq = if q == b'\'' {
            format!(
                "\"{}\"",
                lit[1..lit.len() - 1]
                    .replace("\\'", "'")
                    .replace('"', "\\\"")
            )
        } else {
            lit.to_string()
        };
        go_unquote(&dq).ok_or_else(|| format!("bad string {lit}"))
    };
    let name = ident(&mut i);
    if !name.is_empty() {
        pairs.push(("__name__".into(), name));
    }
    if i < b.len() {
        if b[i] != b'{' || b[b.len() - 1] != b'}' {
            return Err(format!("bad series description {s:?}"));
        }
        i += 1;
        loop {
            while i < b.len() && (b[i] == b' ' || b[i] == b',') {
                i += 1;
            }
            if b[i] == b'}' {
                break;
            }
            let key = if matches!(b[i], b'"' | b'\'' | b'`') {
                quoted(&mut i)?
            } else {
                ident(&mut i)
            };
            while b[i] == b' ' {
                i += 1;
            }
            if b[i] == b'=' {
                i += 1;
                while b[i] == b' ' {
                    i += 1;
                }
                if !matches!(b[i], b'"' | b'\'' | b'`') {
                    return Err(format!("unquoted value in {s:?}"));
                }
                let v = quoted(&mut i)?;
                pairs.push((key, v));
            } else if key.is_empty() {
                return Err(format!("bad label in {s:?}"));
            } else {
                pairs.push(("__name__".into(), key));
            }
        }
    }
    Ok(Labels::from_pairs(pairs))
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn parse(text: &str) -> Result<Script, ScriptError> {
    parse_script("t.test", text, test_metric)
}

fn floats(vals: &[SeqValue]) -> Vec<f64> {
    vals.iter()
        .map(|v| match v {
            SeqValue::Float(f) => *f,
            _ => panic!("not a float: {v:?}"),
        })
        .collect()
}

fn only_eval(text: &str) -> Eval {
    let s = parse(text).unwrap();
    let evals: Vec<Eval> = s
        .commands
        .into_iter()
        .filter_map(|c| match c {
            Command::Eval(e) => Some(*e),
            _ => None,
        })
        .collect();
    assert_eq!(evals.len(), 1, "{text}");
    evals.into_iter().next().unwrap()
}

fn syntax_line(text: &str) -> (usize, String) {
    match parse(text) {
        Err(ScriptError::Syntax { file, line, msg }) => {
            assert_eq!(file, "t.test");
            (line, msg)
        }
        other => panic!("expected a syntax error for {text:?}, got {other:?}"),
    }
}

// ---- values ----

#[test]
fn values_expand_like_prometheus() {
    assert_eq!(floats(&parse_values("1 2 3").unwrap()), [1.0, 2.0, 3.0]);
    assert_eq!(
        floats(&parse_values("1+2x3").unwrap()),
        [1.0, 3.0, 5.0, 7.0]
    );
    assert_eq!(
        floats(&parse_values("1-2x3").unwrap()),
        [1.0, -1.0, -3.0, -5.0]
    );
    assert_eq!(floats(&parse_values("1x3").unwrap()), [1.0; 4]);
    assert_eq!(floats(&parse_values("-1+1x2").unwrap()), [-1.0, 0.0, 1.0]);
    assert_eq!(floats(&parse_values("5x0").unwrap()), [5.0]);
    // `x` is always repetition, never a hex prefix.
    assert_eq!(floats(&parse_values("0x3").unwrap()), [0.0; 4]);
    assert_eq!(floats(&parse_values("0+0x2").unwrap()), [0.0; 3]);
    assert_eq!(
        floats(&parse_values("1e3 -1.5e-3 .5 +4").unwrap()),
        [1000.0, -0.0015, 0.5, 4.0]
    );
    assert_eq!(floats(&parse_values("1e+2+1e1x1").unwrap()), [100.0, 110.0]);
    assert_eq!(parse_values("").unwrap(), []);
    assert_eq!(parse_values("_").unwrap(), [SeqValue::Omitted]);
    assert_eq!(parse_values("_x3").unwrap(), [SeqValue::Omitted; 3]);
    assert_eq!(parse_values("_x0").unwrap(), []);
}

#[test]
fn increments_accumulate_as_in_go() {
    // Go adds the increment step by step, so 0.1 three times is 0.30000000000000004.
    let v = floats(&parse_values("0+0.1x3").unwrap());
    assert_eq!(v[3], 0.1 + 0.1 + 0.1);
    assert_ne!(v[3], 0.3);
}

#[test]
fn special_values() {
    let v = parse_values("Inf -Inf +Inf NaN nan inf stale Infx1").unwrap();
    let f = floats(&v);
    assert_eq!(f[0], f64::INFINITY);
    assert_eq!(f[1], f64::NEG_INFINITY);
    assert_eq!(f[2], f64::INFINITY);
    assert!(f[3].is_nan() && f[4].is_nan());
    assert_eq!(f[5], f64::INFINITY);
    assert_eq!(f[6].to_bits(), o11y_tsdb::STALE_NAN_BITS);
    assert_eq!(&f[7..], [f64::INFINITY; 2]);
}

#[test]
fn histograms_count_their_points() {
    use SeqValue::*;
    let h = "{{schema:1 sum:3 count:22 buckets:[5 10 7]}}";
    assert_eq!(parse_values(h).unwrap(), [Histogram]);
    assert_eq!(parse_values(&format!("{h}x2")).unwrap(), [Histogram; 3]);
    assert_eq!(
        parse_values("{{sum:1 count:1}}+{{sum:2 count:2}}x2").unwrap(),
        [Histogram; 3]
    );
    assert_eq!(
        parse_values(&format!("1 {h} _ 3")).unwrap(),
        [Float(1.0), Histogram, Omitted, Float(3.0)]
    );
}

#[test]
fn malformed_values_are_errors() {
    for bad in [
        "abc",
        "1+x3",
        "1x",
        "1xa",
        "_xa",
        "_x",
        "1+2",
        "1+2y3",
        "{{sum:1",
        "{{sum:1}}y",
        "1_000",
        "--1",
        "1x99999999999",
    ] {
        assert!(parse_values(bad).is_err(), "{bad:?} should not parse");
    }
}

// ---- durations and numbers ----

#[test]
fn durations() {
    assert_eq!(parse_duration("0").unwrap(), 0);
    assert_eq!(parse_duration("0s").unwrap(), 0);
    assert_eq!(parse_duration("1m").unwrap(), 60_000);
    assert_eq!(parse_duration("30s").unwrap(), 30_000);
    assert_eq!(parse_duration("1h5m").unwrap(), 3_900_000);
    assert_eq!(parse_duration("10s53ms").unwrap(), 10_053);
    assert_eq!(parse_duration("1d").unwrap(), 86_400_000);
    assert_eq!(parse_duration("1w").unwrap(), 7 * 86_400_000);
    assert_eq!(parse_duration("1y").unwrap(), 365 * 86_400_000);
    assert_eq!(parse_duration("1111111s").unwrap(), 1_111_111_000);
    for bad in ["", "5", "1m1h", "-1m", "1.5m", "1mm", "m", "1m1m", "1x"] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
    }
}

#[test]
fn go_numbers() {
    let ok = [
        ("1", 1.0),
        ("-1", -1.0),
        ("+2", 2.0),
        ("0x10", 16.0),
        ("010", 8.0),
        ("0o17", 15.0),
        ("0b101", 5.0),
        ("1_000", 1000.0),
        ("1e3", 1000.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("Inf", f64::INFINITY),
        ("-inf", f64::NEG_INFINITY),
        ("+Infinity", f64::INFINITY),
        ("0x1p-2", 0.25),
        ("0.0", 0.0),
    ];
    for (s, want) in ok {
        assert_eq!(parse_go_number(s).unwrap(), want, "{s}");
    }
    assert!(parse_go_number("NaN").unwrap().is_nan());
    for bad in ["abc", "1_", "_1", "{}", "", "1e400", "0x", "foo 1", "1 2"] {
        assert!(parse_go_number(bad).is_err(), "{bad:?} should not parse");
    }
}

// ---- series lines ----

#[test]
fn series_lines_split_respecting_quotes() {
    assert_eq!(
        split_series_line(r#"foo{a="}"} 1 2"#).unwrap(),
        (r#"foo{a="}"}"#, "1 2")
    );
    assert_eq!(
        split_series_line(r#"foo{a="\"}"}	3"#).unwrap(),
        (r#"foo{a="\"}"}"#, "3")
    );
    assert_eq!(split_series_line("{} 3").unwrap(), ("{}", "3"));
    assert_eq!(split_series_line("foo 1").unwrap(), ("foo", "1"));
    assert_eq!(split_series_line("foo").unwrap(), ("foo", ""));
    assert_eq!(
        split_series_line(r#"{"a.b"} 1"#).unwrap(),
        (r#"{"a.b"}"#, "1")
    );
    assert!(split_series_line(r#"foo{a="x} 1"#).is_err());
    assert!(split_series_line(r#"foo{a="x"}1"#).is_err());
    let d = parse_series(r#"foo{a="b"} 1+1x2"#, 7, test_metric).unwrap();
    assert_eq!(d.line, 7);
    assert_eq!(d.labels, labels(&[("__name__", "foo"), ("a", "b")]));
    assert_eq!(floats(&d.values), [1.0, 2.0, 3.0]);
    assert_eq!(
        parse_series("{} 1", 1, test_metric).unwrap().labels,
        Labels::default()
    );
}

// ---- scripts ----

const SCRIPT: &str = r#"
# comment
load 5m
  http{job="a"} 0+10x3
  http{job="b"} 1 _ stale {{sum:1 count:1}}

load_with_nhcb 1m
  h_bucket{le="1"} 1 2

clear

eval instant at 10m http
  expect ordered
  expect warn msg: PromQL warning: something (1:1)
  expect no_info
  http{job="a"} 20
  http{job="b"} 1

eval range from 0 to 10m step 5m sum(http)
  expect info regex: PromQL info: .* \(1:5\)
  {} 1 _ 21

eval instant at 1m 1 + 1
  2
eval instant at 1m some_metric[1m]
  expect range vector from 10s to 1m step 10s
  some_metric{env="a"} 2 3 4 5 6

eval instant at 0 "Foo"
  expect string "Foo"

eval_fail instant at 0 boom
  expected_fail_message boom happened

eval_ordered instant at 0 x

eval instant at 0 y
  expect fail regex: vector cannot .*
"#;

#[test]
fn parses_a_whole_script() {
    let s = parse(SCRIPT).unwrap();
    assert_eq!(s.commands.len(), 11);
    let Command::Load(l) = &s.commands[0] else {
        panic!("load expected")
    };
    assert_eq!((l.line, l.interval_ms, l.with_nhcb), (3, 300_000, false));
    assert_eq!(l.series.len(), 2);
    assert_eq!(l.series[0].line, 4);
    assert_eq!(floats(&l.series[0].values), [0.0, 10.0, 20.0, 30.0]);
    assert!(l.series[1].has_histogram());
    let Command::Load(l2) = &s.commands[1] else {
        panic!("load expected")
    };
    assert!(l2.with_nhcb);
    assert!(matches!(s.commands[2], Command::Clear { line: 10 }));

    let Command::Eval(e) = &s.commands[3] else {
        panic!("eval expected")
    };
    assert_eq!(e.line, 12);
    assert_eq!(e.query, "http");
    assert_eq!(e.time, EvalTime::Instant { at: 600_000 });
    assert!(e.is_ordered() && !e.is_fail());
    assert_eq!(e.expects.len(), 3);
    assert_eq!(
        e.expects[1].matcher,
        MsgMatch::Exact("PromQL warning: something (1:1)".into())
    );
    assert_eq!(e.expects[2].kind, ExpectKind::NoInfo);
    // Positions count the block's lines other than `expect <type>` ones.
    assert_eq!(e.expected_series[0].pos, 1);
    assert_eq!(e.expected_series[1].pos, 2);

    let Command::Eval(e) = &s.commands[4] else {
        panic!("eval expected")
    };
    assert_eq!(
        e.time,
        EvalTime::Range {
            start: 0,
            end: 600_000,
            step: 300_000
        }
    );
    assert_eq!(e.expected_series[0].def.labels, Labels::default());
    assert_eq!(
        e.expected_series[0].def.values,
        [
            SeqValue::Float(1.0),
            SeqValue::Omitted,
            SeqValue::Float(21.0)
        ]
    );
    assert!(e.expects[0].matcher.matches("PromQL info: whatever (1:5)"));

    let Command::Eval(e) = &s.commands[5] else {
        panic!("eval expected")
    };
    assert_eq!(e.query, "1 + 1");
    assert_eq!(e.expected_scalar, Some(SeqValue::Float(2.0)));

    let Command::Eval(e) = &s.commands[6] else {
        panic!("eval expected")
    };
    // `expect range vector` moves the evaluation time to its end.
    assert_eq!(e.time, EvalTime::Instant { at: 60_000 });
    assert_eq!(e.range_vector, Some((10_000, 60_000, 10_000)));
    assert!(e.exclude_from_range_check());
    assert_eq!(e.expected_series[0].def.values.len(), 5);

    let Command::Eval(e) = &s.commands[7] else {
        panic!("eval expected")
    };
    assert_eq!(e.expected_string.as_deref(), Some("Foo"));

    let Command::Eval(e) = &s.commands[8] else {
        panic!("eval expected")
    };
    assert!(e.legacy_fail && e.is_fail());
    assert_eq!(e.fail_message.as_deref(), Some("boom happened"));

    let Command::Eval(e) = &s.commands[9] else {
        panic!("eval expected")
    };
    assert!(e.legacy_ordered && e.is_ordered());

    let Command::Eval(e) = &s.commands[10] else {
        panic!("eval expected")
    };
    assert!(e.is_fail());
    assert!(e
        .of(ExpectKind::Fail)
        .next()
        .unwrap()
        .matcher
        .matches("vector cannot contain"));
}

#[test]
fn scalar_line_and_legacy_fail_message_end_the_block() {
    // As in Prometheus, lines after them are read as commands.
    let (line, msg) = syntax_line("eval instant at 0 1\n  1\n  {} 2\n");
    assert_eq!(line, 3);
    assert!(msg.contains("invalid command"), "{msg}");
    let (line, _) = syntax_line("eval_fail instant at 0 x\n  expected_fail_message m\n  x 1\n");
    assert_eq!(line, 3);
}

#[test]
fn a_comment_ends_a_block() {
    let (line, _) = syntax_line("load 1m\n  a 1\n# c\n  b 1\n");
    assert_eq!(line, 4);
}

#[test]
fn expect_lines() {
    let e = parse_expect("expect fail").unwrap();
    assert_eq!((e.kind, e.matcher), (ExpectKind::Fail, MsgMatch::Any));
    let e = parse_expect("expect warn msg:   a b  ").unwrap();
    assert_eq!(e.matcher, MsgMatch::Exact("a b".into()));
    let e = parse_expect("expect info regex: ^x+$").unwrap();
    assert!(e.matcher.matches("xxx") && !e.matcher.matches("xy"));
    assert_eq!(
        parse_expect("expect no_warn").unwrap().kind,
        ExpectKind::NoWarn
    );
    assert_eq!(
        parse_expect("expect ordered").unwrap().kind,
        ExpectKind::Ordered
    );
    for bad in [
        "expect",
        "expect nothing",
        "expect fail msg:",
        "expect fail text: a",
        "expect fail regex: (",
        "expectfail",
    ] {
        assert!(parse_expect(bad).is_err(), "{bad:?} should not parse");
    }
}

#[test]
fn malformed_scripts_name_the_line() {
    let cases: &[(&str, usize, &str)] = &[
        ("load 1m\n  a 1\n\nbogus\n", 4, "invalid command"),
        ("load x\n", 1, "interval"),
        ("load 1m\n  a 1 zz\n", 2, "invalid value"),
        ("load 1m\n  a{b=\"c 1\n", 2, "unterminated"),
        ("\n\neval instant 0 x\n", 3, "at"),
        ("eval instant at 1q x\n", 1, "timestamp"),
        ("eval instant at 1m\n", 1, "missing query"),
        ("eval range from 1m to 0 step 1m x\n", 1, "before"),
        ("eval range from 0 to 1m x\n", 1, "eval range"),
        ("eval sideways at 0 x\n", 1, "invalid evaluation"),
        ("eval instant at 0 x\n  x 1 2\n", 2, "multiple values"),
        ("eval instant at 0 x\n  expect foo\n", 2, "type"),
        (
            "eval instant at 0 x\n  expect info\n  expect no_info\n",
            3,
            "no_info",
        ),
        (
            "eval instant at 0 x\n  expect warn\n  expect no_warn\n",
            3,
            "no_warn",
        ),
        (
            "eval instant at 0 x\n  expect fail\n  expect fail\n",
            3,
            "multiple expect fail",
        ),
        ("eval instant at 0 x\n  expect string Foo\n", 2, "quoted"),
        (
            "eval instant at 0 x\n  expect string\n",
            2,
            "string literal",
        ),
        (
            "eval instant at 0 x\n  expect range vector from 1m to 0 step 1s\n",
            2,
            "before",
        ),
        (
            "eval instant at 0 x\n  expect range vector 0 to 1m\n",
            2,
            "range vector",
        ),
        (
            "eval range from 0 to 1m step 1m x\n  expect range vector from 0 to 1m step 1m\n",
            2,
            "instant",
        ),
        (
            "eval_fail instant at 0 x\n  expected_fail_regexp (\n",
            2,
            "regexp",
        ),
        ("eval_ordered range from 0 to 1m step 1m x\n", 1, "ordered"),
        ("load 1m\n  a% 1\n", 2, "series description"),
    ];
    for (text, line, needle) in cases {
        let (l, msg) = syntax_line(text);
        assert_eq!(l, *line, "{text:?}: {msg}");
        assert!(msg.contains(needle), "{text:?}: {msg:?} lacks {needle:?}");
    }
    let err = parse("load 1m\n  a 1 zz\n").unwrap_err().to_string();
    assert!(err.starts_with("t.test:2: "), "{err}");
}

#[test]
fn repeated_series_replace_earlier_ones() {
    let s = parse("load 1m\n  a 1\n  a 2\n").unwrap();
    let Command::Load(l) = &s.commands[0] else {
        panic!()
    };
    assert_eq!(l.series.len(), 1);
    assert_eq!(floats(&l.series[0].values), [2.0]);
}

// ---- comparison ----

#[test]
fn epsilon_rule() {
    assert!(almost_equal(1.0, 1.0 + 1e-7, compare::EPSILON));
    assert!(!almost_equal(1.0, 1.00001, compare::EPSILON));
    assert!(almost_equal(1e300, 1e300 * (1.0 + 1e-7), compare::EPSILON));
    assert!(almost_equal(f64::NAN, f64::NAN, compare::EPSILON));
    let stale = f64::from_bits(o11y_tsdb::STALE_NAN_BITS);
    assert!(almost_equal(stale, f64::NAN, compare::EPSILON));
    assert!(!almost_equal(f64::NAN, 1.0, compare::EPSILON));
    assert!(almost_equal(f64::INFINITY, f64::INFINITY, compare::EPSILON));
    assert!(!almost_equal(
        f64::INFINITY,
        f64::NEG_INFINITY,
        compare::EPSILON
    ));
    assert!(!almost_equal(f64::INFINITY, 1e308, compare::EPSILON));
    // Near zero the tolerance is absolute and tiny.
    assert!(almost_equal(0.0, 1e-320, compare::EPSILON));
    assert!(!almost_equal(0.0, 1e-10, compare::EPSILON));
    assert!(almost_equal(-0.0, 0.0, compare::EPSILON));
}

fn sample(l: &[(&str, &str)], f: f64) -> Sample {
    Sample {
        metric: labels(l),
        t: 0,
        f,
        drop_name: false,
    }
}

fn series(l: &[(&str, &str)], pts: &[(i64, f64)]) -> Series {
    Series {
        metric: labels(l),
        floats: pts.iter().map(|&(t, f)| FPoint { t, f }).collect(),
        drop_name: false,
    }
}

const TWO: &str = "eval instant at 0 q\n  a{x=\"1\"} 1\n  a{x=\"2\"} 2\n";

#[test]
fn vectors_compare_as_sets_unless_ordered() {
    let ev = only_eval(TWO);
    let a1 = sample(&[("__name__", "a"), ("x", "1")], 1.0);
    let a2 = sample(&[("__name__", "a"), ("x", "2")], 2.0);
    assert!(compare_result(&ev, &Value::Vector(vec![a1.clone(), a2.clone()])).is_ok());
    assert!(compare_result(&ev, &Value::Vector(vec![a2.clone(), a1.clone()])).is_ok());

    let ordered = only_eval(&TWO.replace("q\n", "q\n  expect ordered\n"));
    assert!(compare_result(&ordered, &Value::Vector(vec![a1.clone(), a2.clone()])).is_ok());
    let err = compare_result(&ordered, &Value::Vector(vec![a2.clone(), a1.clone()])).unwrap_err();
    assert!(err.reason.contains("position"), "{}", err.reason);

    let err = compare_result(&ev, &Value::Vector(vec![a1.clone()])).unwrap_err();
    assert!(err.reason.contains("not found"), "{}", err.reason);
    let extra = sample(&[("__name__", "a"), ("x", "3")], 3.0);
    let err = compare_result(&ev, &Value::Vector(vec![a1.clone(), a2.clone(), extra])).unwrap_err();
    assert!(err.reason.contains("unexpected metric"), "{}", err.reason);
    let mut off = a2.clone();
    off.f = 2.1;
    let err = compare_result(&ev, &Value::Vector(vec![a1.clone(), off])).unwrap_err();
    assert!(
        err.reason.contains("expected 2") && err.reason.contains("2.1"),
        "{}",
        err.reason
    );
    // Within epsilon.
    let mut close = a2;
    close.f = 2.0 + 1e-9;
    assert!(compare_result(&ev, &Value::Vector(vec![a1, close])).is_ok());
    // Labels must match exactly: no name is a different series.
    let err = compare_result(&ev, &Value::Vector(vec![sample(&[("x", "1")], 1.0)])).unwrap_err();
    assert!(err.reason.contains("unexpected metric"));
    // A matrix never satisfies an ordered expectation.
    let err = compare_result(&ordered, &Value::Matrix(vec![])).unwrap_err();
    assert!(err.reason.contains("ordered"));
}

#[test]
fn nan_and_empty_results() {
    let ev = only_eval("eval instant at 0 q\n  {} NaN\n");
    assert!(compare_result(&ev, &Value::Vector(vec![sample(&[], f64::NAN)])).is_ok());
    assert!(compare_result(&ev, &Value::Vector(vec![sample(&[], 1.0)])).is_err());
    let empty = only_eval("eval instant at 0 q\n");
    assert!(compare_result(&empty, &Value::Vector(vec![])).is_ok());
    assert!(compare_result(&empty, &Value::Matrix(vec![])).is_ok());
    assert!(compare_result(&empty, &Value::Vector(vec![sample(&[], 1.0)])).is_err());
}

#[test]
fn range_results_with_missing_points() {
    let ev = only_eval("eval range from 0 to 2m step 1m q\n  a 1 _ 3\n  b _ _ 4\n");
    let a = |pts: &[(i64, f64)]| series(&[("__name__", "a")], pts);
    let b = series(&[("__name__", "b")], &[(120_000, 4.0)]);
    let good = Value::Matrix(vec![a(&[(0, 1.0), (120_000, 3.0)]), b.clone()]);
    assert!(compare_result(&ev, &good).is_ok());
    // A point where `_` expects none.
    let extra = Value::Matrix(vec![
        a(&[(0, 1.0), (60_000, 2.0), (120_000, 3.0)]),
        b.clone(),
    ]);
    assert!(compare_result(&ev, &extra)
        .unwrap_err()
        .reason
        .contains("float points"));
    // Right values at the wrong time.
    let shifted = Value::Matrix(vec![a(&[(0, 1.0), (60_000, 3.0)]), b.clone()]);
    assert!(compare_result(&ev, &shifted)
        .unwrap_err()
        .reason
        .contains("timestamp"));
    let wrong = Value::Matrix(vec![a(&[(0, 1.0), (120_000, 3.5)]), b.clone()]);
    assert!(compare_result(&ev, &wrong)
        .unwrap_err()
        .reason
        .contains("to be 3"));
    // Series must be sorted by labels.
    let unsorted = Value::Matrix(vec![b, a(&[(0, 1.0), (120_000, 3.0)])]);
    assert!(compare_result(&ev, &unsorted)
        .unwrap_err()
        .reason
        .contains("sorted"));
    // More expected values than steps.
    let long = only_eval("eval range from 0 to 1m step 1m q\n  a 1 2 3\n");
    let r = Value::Matrix(vec![a(&[(0, 1.0), (60_000, 2.0)])]);
    assert!(compare_result(&long, &r)
        .unwrap_err()
        .reason
        .contains("cannot return"));
    // A scalar expectation is not met by a matrix.
    let scalar = only_eval("eval instant at 0 q\n  1\n");
    assert!(compare_result(&scalar, &Value::Matrix(vec![])).is_err());
}

#[test]
fn range_vector_of_an_instant_query() {
    let ev = only_eval(
        "eval instant at 5m m[1m]\n  expect range vector from 10s to 30s step 10s\n  m 1 2 3\n",
    );
    let r = Value::Matrix(vec![series(
        &[("__name__", "m")],
        &[(10_000, 1.0), (20_000, 2.0), (30_000, 3.0)],
    )]);
    assert!(compare_result(&ev, &r).is_ok());
    // Without `expect range vector`, an instant query's matrix may hold no expected points.
    let plain = only_eval("eval instant at 0 m[1m]\n  m 1\n");
    let r = Value::Matrix(vec![series(&[("__name__", "m")], &[(0, 1.0)])]);
    assert!(compare_result(&plain, &r)
        .unwrap_err()
        .reason
        .contains("cannot return"));
}

#[test]
fn scalars_and_strings() {
    let ev = only_eval("eval instant at 0 1+1\n  2\n");
    assert!(compare_result(&ev, &Value::Scalar { t: 0, v: 2.0 }).is_ok());
    assert!(compare_result(&ev, &Value::Scalar { t: 0, v: 3.0 }).is_err());
    assert!(compare_result(&ev, &Value::Vector(vec![sample(&[], 2.0)])).is_err());
    let vec_ev = only_eval("eval instant at 0 q\n  {} 2\n");
    assert!(compare_result(&vec_ev, &Value::Scalar { t: 0, v: 2.0 }).is_err());
    let s = only_eval("eval instant at 0 \"a\"\n  expect string \"a\\tb\"\n");
    assert!(compare_result(
        &s,
        &Value::String {
            t: 0,
            s: "a\tb".into()
        }
    )
    .is_ok());
    assert!(compare_result(
        &s,
        &Value::String {
            t: 0,
            s: "a".into()
        }
    )
    .is_err());
    let bq = only_eval("eval instant at 0 \"a\"\n  expect string `x\\y`\n");
    assert_eq!(bq.expected_string.as_deref(), Some("x\\y"));
}

fn annos(list: &[Annotation]) -> Annotations {
    let mut a = Annotations::default();
    for x in list {
        a.add(x.clone());
    }
    a
}

#[test]
fn annotations_match_expect_lines() {
    let q = "sum(x)";
    let w = Annotation::warning("bad thing", PosRange::new(4, 5));
    let i = Annotation::info("note", PosRange::new(0, 6));
    assert_eq!(w.render(q), "PromQL warning: bad thing (1:5)");
    let both = annos(&[w.clone(), i.clone()]);

    // No expect lines: annotations are not checked.
    let none = only_eval("eval instant at 0 sum(x)\n");
    assert!(check_annotations(&none, q, &both).is_ok());

    let exact =
        only_eval("eval instant at 0 sum(x)\n  expect warn msg: PromQL warning: bad thing (1:5)\n");
    assert!(check_annotations(&exact, q, &both).is_ok());
    assert!(check_annotations(&exact, q, &annos(std::slice::from_ref(&i))).is_err());
    // Every warning must be matched once a warn line exists.
    let two = annos(&[w.clone(), Annotation::warning("other", PosRange::new(0, 1))]);
    let err = check_annotations(&exact, q, &two).unwrap_err();
    assert!(
        err.reason.contains("unexpected warn annotation"),
        "{}",
        err.reason
    );

    let re = only_eval("eval instant at 0 sum(x)\n  expect info regex: ^PromQL info: no\n");
    assert!(check_annotations(&re, q, &both).is_ok());
    let wrong = only_eval("eval instant at 0 sum(x)\n  expect info msg: PromQL info: note (1:2)\n");
    assert!(check_annotations(&wrong, q, &both).is_err());

    let no_warn = only_eval("eval instant at 0 sum(x)\n  expect no_warn\n");
    assert!(check_annotations(&no_warn, q, &annos(std::slice::from_ref(&i))).is_ok());
    assert!(check_annotations(&no_warn, q, &both).is_err());
    let no_info = only_eval("eval instant at 0 sum(x)\n  expect no_info\n");
    assert!(check_annotations(&no_info, q, &annos(std::slice::from_ref(&w))).is_ok());
    assert!(check_annotations(&no_info, q, &both).is_err());

    let legacy = only_eval("eval_warn instant at 0 sum(x)\n");
    assert!(check_annotations(&legacy, q, &annos(&[w])).is_ok());
    assert!(check_annotations(&legacy, q, &annos(&[i])).is_err());
}

#[test]
fn expected_failures() {
    let any = only_eval("eval instant at 0 x\n  expect fail\n");
    assert!(check_expected_failure(&any, "whatever").is_ok());
    let msg = only_eval("eval instant at 0 x\n  expect fail msg: boom happened\n");
    assert!(check_expected_failure(&msg, "boom happened").is_ok());
    assert!(check_expected_failure(&msg, "boom").is_err());
    let re = only_eval("eval instant at 0 x\n  expect fail regex: same label ?set\n");
    assert!(
        check_expected_failure(&re, "vector cannot contain metrics with the same labelset").is_ok()
    );
    assert!(check_expected_failure(&re, "other").is_err());
    let legacy = only_eval("eval_fail instant at 0 x\n  expected_fail_regexp ^bo+m$\n");
    assert!(check_expected_failure(&legacy, "booom").is_ok());
    assert!(check_expected_failure(&legacy, "boom!").is_err());
}

// ---- skips ----

#[test]
fn experimental_features_are_detected() {
    let skipped = [
        "changes(x[26m+4m])",
        "changes(x[60*30])",
        "sum_over_time(x[29s+1s:5s+5s])",
        "count_over_time(x[step()])",
        "x offset (1m + 2m)",
        "x offset -step()*2",
        "x offset STEP()",
        "x offset min_of(step(), 1s)",
        "info(metric, {data=~\".+\"})",
        "left + fill(0) right",
        "left + fill_left(5) fill_right(7) right",
        "rate(x[5m] anchored)",
        "increase(x[1m] smoothed)",
        "metric smoothed",
        "metric{a=\"b\"} anchored",
        "sort(x @ 100 smoothed)",
        "x @ (1+2)",
    ];
    for q in skipped {
        assert!(experimental_feature(q).is_some(), "{q} should be skipped");
    }
    let kept = [
        "rate(x[5m])",
        "x[5m:1m]",
        "x[5m:]",
        "x[1h30m:10s53ms]",
        "foo[300]",
        "x offset 5m",
        "x offset -5m",
        "x offset 2",
        "x @ start()",
        "x @   end()",
        "x @ 100",
        "step()",
        "end() - start()",
        "vector(start())",
        "anchored",
        "x and anchored",
        "sum by (a) (smoothed)",
        "sum by (offset) (x)",
        "x{a=\"[5m+1m]\"}",
        "label_replace(x, \"a\", \"step()\", \"b\", \"(.*)\")",
        "info_total",
        "sort_by_label(x, \"range\")",
        "min(x)",
        "limitk(2, x)",
    ];
    for q in kept {
        assert_eq!(experimental_feature(q), None, "{q} should run");
    }
}

#[test]
fn nhcb_names() {
    let b = labels(&[("__name__", "h_bucket"), ("le", "0.5"), ("job", "a")]);
    assert_eq!(
        nhcb_series(&b),
        Some(labels(&[("__name__", "h"), ("job", "a")]))
    );
    let c = labels(&[("__name__", "h_count")]);
    assert_eq!(nhcb_series(&c), Some(labels(&[("__name__", "h")])));
    assert_eq!(
        nhcb_series(&labels(&[("__name__", "h_sum")])),
        Some(labels(&[("__name__", "h")]))
    );
    assert_eq!(
        nhcb_series(&labels(&[("__name__", "h_bucket"), ("le", "x")])),
        None
    );
    assert_eq!(nhcb_series(&labels(&[("__name__", "h_bucket")])), None);
    assert_eq!(nhcb_series(&labels(&[("__name__", "h_total")])), None);
}

// ---- the runner, end to end over a real Db ----

/// Answers a bare metric name (the newest sample of each series within 5m, stale markers
/// ending a series), a number literal (a scalar), `boom` (an error) and `warn_me` (an empty
/// vector with a warning). Ranges evaluate the instant query at every step.
struct FakeEngine;

impl FakeEngine {
    fn eval(&self, st: &dyn Storage, q: &str, t: i64) -> Result<Value, QueryError> {
        if let Ok(v) = q.parse::<f64>() {
            return Ok(Value::Scalar { t, v });
        }
        if q == "boom" {
            return Err(QueryError::Execution("boom happened".into()));
        }
        let m = Matcher::new(MatchOp::Equal, "__name__", q).unwrap();
        let mut out = Vec::new();
        for s in st.select(&[m], t - 300_000 + 1, t)? {
            let samples = s.samples()?;
            if let Some(&(_, v)) = samples.last() {
                if v.to_bits() != o11y_tsdb::STALE_NAN_BITS {
                    out.push(Sample {
                        metric: s.labels().clone(),
                        t,
                        f: v,
                        drop_name: false,
                    });
                }
            }
        }
        Ok(Value::Vector(out))
    }
}

impl Evaluator for FakeEngine {
    fn instant_query(&self, st: &dyn Storage, q: &str, ts: i64) -> Result<QueryResult, QueryError> {
        let mut annotations = Annotations::default();
        if q == "warn_me" {
            annotations.add(Annotation::warning("careful", PosRange::new(0, 7)));
        }
        Ok(QueryResult {
            value: self.eval(st, q, ts)?,
            annotations,
        })
    }

    fn range_query(
        &self,
        st: &dyn Storage,
        q: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, QueryError> {
        let mut by_labels: std::collections::BTreeMap<Labels, Vec<FPoint>> = Default::default();
        let mut t = start;
        while t <= end {
            match self.eval(st, q, t)? {
                Value::Vector(v) => {
                    for s in v {
                        by_labels
                            .entry(s.metric)
                            .or_default()
                            .push(FPoint { t, f: s.f });
                    }
                }
                Value::Scalar { v, .. } => by_labels
                    .entry(Labels::default())
                    .or_default()
                    .push(FPoint { t, f: v }),
                _ => unreachable!("fake engine"),
            }
            t += step;
        }
        Ok(QueryResult {
            value: Value::Matrix(
                by_labels
                    .into_iter()
                    .map(|(metric, floats)| Series {
                        metric,
                        floats,
                        drop_name: false,
                    })
                    .collect(),
            ),
            annotations: Annotations::default(),
        })
    }
}

/// Options for the fake engine: its test metric parser, no `@` re-runs (it knows no `@`).
fn fake_opts(range_check: bool) -> RunOptions {
    RunOptions {
        range_check,
        at_check: false,
        metric_parser: test_metric,
    }
}

fn run(text: &str) -> FileReport {
    let opts = fake_opts(true);
    run_script_with("t.test", text, &FakeEngine, &opts).unwrap()
}

#[test]
fn runs_loads_and_evals_against_a_real_db() {
    let r = run(r#"
load 1m
  up{job="a"} 1+1x5
  up{job="b"} 10 _ _ stale

eval instant at 2m up
  up{job="a"} 3
  up{job="b"} 10

eval instant at 3m up
  up{job="a"} 4

eval range from 0 to 4m step 1m up
  up{job="a"} 1 2 3 4 5
  up{job="b"} 10 10 10 _ _

eval instant at 0 7
  7

eval instant at 0 boom
  expect fail msg: boom happened

eval instant at 0 warn_me
  expect warn msg: PromQL warning: careful (1:1)
"#);
    assert!(r.failed.is_empty(), "{:#?}", r.failed);
    assert_eq!((r.passed, r.skipped), (6, 0));
}

#[test]
fn failures_name_file_line_and_both_sides() {
    let r = run(r#"
load 1m
  up 1 2

eval instant at 1m up
  up 3

eval instant at 1m up
  expect fail

eval instant at 0 boom

eval instant at 0 warn_me
  expect no_warn
"#);
    assert_eq!(r.passed, 0);
    let lines: Vec<usize> = r.failed.iter().map(|f| f.line).collect();
    assert_eq!(lines, [5, 8, 11, 13]);
    let f = &r.failed[0];
    assert_eq!((f.file.as_str(), f.query.as_str()), ("t.test", "up"));
    assert_eq!(f.expected, "up 3");
    assert_eq!(f.actual, "up 2");
    let shown = f.to_string();
    assert!(shown.starts_with("t.test:5: up\n"), "{shown}");
    assert!(
        shown.contains("expected:\n    up 3\n") && shown.contains("actual:\n    up 2\n"),
        "{shown}"
    );
    assert!(r.failed[1].reason.contains("expected an error"));
    assert!(r.failed[2].actual.contains("boom happened"));
    assert!(r.failed[3].actual.contains("PromQL warning: careful (1:1)"));
}

#[test]
fn loads_are_additive_and_clear_drops_everything() {
    let r = run(r#"
load 1m
  m 1 _ 3

load 1m
  m _ 2

eval range from 0 to 2m step 1m m
  m 1 2 3

clear

eval instant at 2m m
"#);
    assert!(r.failed.is_empty(), "{:#?}", r.failed);
    assert_eq!(r.passed, 2);
}

#[test]
fn old_and_distant_timestamps_are_kept() {
    // 1000 hours is far beyond the default retention and block range.
    let r = run("load 1h\n  m 0+1x1000\n\neval instant at 1000h m\n  m 1000\n\neval instant at 1h m\n  m 1\n");
    assert!(r.failed.is_empty(), "{:#?}", r.failed);
    assert_eq!(r.passed, 2);
}

#[test]
fn histogram_evals_are_skipped() {
    let r = run(r#"
load 1m
  h {{sum:1 count:1}}x2
  mixed 1 {{sum:1 count:1}} 3
  plain 5

load_with_nhcb 1m
  classic_bucket{le="1"} 1 2
  classic_bucket{le="+Inf"} 2 3

eval instant at 1m h

eval instant at 0 plain
  plain {{sum:1 count:1}}

eval instant at 1m mixed
  mixed 1

eval instant at 10m mixed

eval instant at 1m classic

eval instant at 1m classic_bucket
  classic_bucket{le="1"} 2
  classic_bucket{le="+Inf"} 3

eval instant at 1m plain
  plain 5

eval range from 0 to 1m step 1m min_of(1, 2)
"#);
    assert!(r.failed.is_empty(), "{:#?}", r.failed);
    assert_eq!(r.passed, 3, "{:#?}", r.skips);
    let skipped: Vec<(usize, &str)> = r
        .skips
        .iter()
        .map(|s| (s.line, s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 5);
    assert_eq!(skipped[0].0, 11);
    assert!(skipped[0].1.contains("native histograms"));
    assert_eq!(skipped[1].0, 13);
    assert!(skipped[1].1.contains("expected output"));
    assert_eq!(skipped[2].0, 16);
    // `mixed` at 10m: its histogram sample (1m) is outside the 5m lookback, so it runs.
    assert_eq!(skipped[3].0, 21);
    assert_eq!(skipped[4].0, 30);
    assert!(skipped[4].1.contains("min_of()"));
    assert_eq!(r.skipped, 5);
}

#[test]
fn tsdb_rejections_are_failures_at_the_series_line() {
    let r = run("load 1m\n  {job=\"x\"} 1\n  ok 1\n\neval instant at 0 ok\n  ok 1\n");
    assert_eq!(r.passed, 1);
    assert_eq!(r.failed.len(), 1);
    assert_eq!((r.failed[0].line, r.failed[0].query.as_str()), (2, "load"));
    assert!(
        r.failed[0].actual.contains("metric name"),
        "{}",
        r.failed[0].actual
    );
}

#[test]
fn range_check_compares_the_middle_step() {
    // The fake engine's range mode agrees with its instant mode, so this passes with the
    // check; an evaluator whose range mode disagrees must fail.
    let text = "load 1m\n  m 1\n\neval instant at 0 m\n  m 1\n\neval instant at 0 m\n  expect ordered\n  m 1\n";
    let disagree = Hooked {
        range: |_, _| {
            Ok(QueryResult {
                value: Value::Matrix(vec![]),
                annotations: Annotations::default(),
            })
        },
        ..Hooked::fake()
    };
    let mut opts = fake_opts(true);
    let r = run_script_with("t.test", text, &disagree, &opts).unwrap();
    assert_eq!(r.passed, 1, "ordered evals skip the range comparison");
    assert_eq!(r.failed.len(), 1);
    assert!(
        r.failed[0].reason.contains("range mode"),
        "{}",
        r.failed[0].reason
    );
    opts.range_check = false;
    let r = run_script_with("t.test", text, &disagree, &opts).unwrap();
    assert_eq!(r.passed, 2);
    assert!(run(text).failed.is_empty());
}

#[test]
fn run_file_reads_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.test");
    std::fs::write(&p, "load 1m\n  m 1\n\neval instant at 0 m\n  m 2\n").unwrap();
    let opts = fake_opts(false);
    let r = run_file_with(&p, &FakeEngine, &opts).unwrap();
    assert_eq!(r.file, "x.test");
    assert_eq!(r.failed[0].to_string().lines().next(), Some("x.test:4: m"));
    let missing = run_file_with(&dir.path().join("nope.test"), &FakeEngine, &opts);
    assert!(matches!(missing, Err(ScriptError::Io { .. })));
}

/// Every required Prometheus script parses (when the shared folder is present); parse errors
/// of the others (newer syntax such as `@st` series) are printed.
#[test]
fn shared_scripts_parse() {
    const REQUIRED: &[&str] = super::REQUIRED_SCRIPTS;
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/promql");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("SKIPPED shared_scripts_parse: {} is absent", dir.display());
        return;
    };
    let mut parsed = 0;
    for e in entries {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "test") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let required = REQUIRED.contains(&p.file_stem().unwrap().to_str().unwrap());
        match parse_script(&name, &text, test_metric) {
            Ok(_) => parsed += usize::from(required),
            Err(e) if required => panic!("{e}"),
            Err(e) => eprintln!("not required, does not parse: {e}"),
        }
    }
    assert_eq!(parsed, REQUIRED.len());
}

#[test]
fn env_remembers_histogram_series_and_flags_selects_that_hit_them() {
    let s = parse(
        "load 1m\n  h 1 {{sum:1 count:1}} _ {{sum:2 count:2}} 5\n\n\
         load_with_nhcb 1m\n  c_bucket{le=\"1\"} _ 1 2\n  c_count 3 4\n  other 1\n",
    )
    .unwrap();
    let mut env = env::TestEnv::new().unwrap();
    for c in &s.commands {
        let Command::Load(l) = c else { panic!() };
        assert!(env.load(l).unwrap().is_empty());
    }
    let h = env.histograms();
    assert_eq!(h.len(), 3, "{h:#?}");
    assert_eq!(
        (h[0].labels.clone(), h[0].mint, h[0].maxt),
        (labels(&[("__name__", "h")]), 60_000, 180_000)
    );
    assert_eq!(
        (h[1].labels.clone(), h[1].mint, h[1].maxt),
        (labels(&[("__name__", "c")]), 60_000, 120_000)
    );
    assert_eq!(
        (h[2].labels.clone(), h[2].mint, h[2].maxt),
        (labels(&[("__name__", "c")]), 0, 60_000)
    );

    let name = |n: &str| vec![Matcher::new(MatchOp::Equal, "__name__", n).unwrap()];
    let st = env.storage();
    // Floats of a mixed series are stored; its histograms are not.
    let got = st.select(&name("h"), 240_000, 240_000).unwrap();
    assert_eq!(got[0].samples().unwrap(), [(240_000, 5.0)]);
    assert!(
        !st.touched_histogram(),
        "outside the histogram samples' time range"
    );
    assert_eq!(st.select(&name("other"), 0, 1_000_000).unwrap().len(), 1);
    assert!(!st.touched_histogram());
    assert_eq!(st.select(&name("c_bucket"), 0, 1_000_000).unwrap().len(), 1);
    assert!(!st.touched_histogram(), "classic series are plain floats");
    // The NHCB series is not stored, but selecting it is noticed.
    assert!(st.select(&name("c"), 0, 0).unwrap().is_empty());
    assert!(st.touched_histogram());
    let st = env.storage();
    st.select(&name("h"), 0, 60_000).unwrap();
    assert!(st.touched_histogram());
    env.clear().unwrap();
    assert!(env.histograms().is_empty());
    assert!(env
        .storage()
        .select(&name("other"), 0, 1_000_000)
        .unwrap()
        .is_empty());
}

#[test]
fn an_engine_panic_fails_only_its_eval() {
    let opts = fake_opts(true);
    let text = "load 1m\n  m 1\n\neval instant at 0 explode\n\neval instant at 0 m\n  m 1\n";
    let r = run_script_with(
        "t.test",
        text,
        &Hooked {
            instant: |q, r| {
                if q == "explode" {
                    panic!("kaboom");
                }
                r
            },
            ..Hooked::fake()
        },
        &opts,
    )
    .unwrap();
    assert_eq!(r.passed, 1);
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].line, 4);
    assert_eq!(r.failed[0].actual, "panic: kaboom");
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    /// Script-like text: keywords, quotes, braces, numbers and separators in any order.
    fn scriptish() -> impl Strategy<Value = String> {
        let atoms = prop::sample::select(vec![
            "load",
            "load_with_nhcb",
            "clear",
            "eval",
            "eval_fail",
            "eval_ordered",
            "instant",
            "range",
            "at",
            "from",
            "to",
            "step",
            "expect",
            "fail",
            "warn",
            "info",
            "ordered",
            "no_warn",
            "string",
            "vector",
            "msg:",
            "regex:",
            "expected_fail_message",
            " ",
            "\t",
            "\n",
            "\n\n",
            "#",
            "{",
            "}",
            "{{",
            "}}",
            "[",
            "]",
            "(",
            ")",
            "\"",
            "'",
            "`",
            "\\",
            "=",
            ",",
            ":",
            "+",
            "-",
            "x",
            "_",
            "1",
            "0",
            "5m",
            "1h5m",
            "3",
            "1e3",
            "Inf",
            "NaN",
            "stale",
            "foo",
            "µ",
            "é",
        ]);
        prop::collection::vec(atoms, 0..60).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn parsing_never_panics(text in scriptish()) {
            let _ = parse(&text);
            let _ = parse_values(&text);
            let _ = parse_duration(&text);
            let _ = parse_go_number(&text);
            let _ = split_series_line(&text);
            let _ = parse_expect(&text);
            let _ = experimental_feature(&text);
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,80}") {
            let _ = parse(&text);
            let _ = parse_values(&text);
            let _ = experimental_feature(&text);
        }
    }
}

#[test]
fn range_mode_results_must_be_sorted() {
    let opts = fake_opts(true);
    let text = "load 1m\n  m{a=\"1\"} 1\n  m{a=\"2\"} 2\n\neval instant at 0 m\n  m{a=\"1\"} 1\n  m{a=\"2\"} 2\n";
    let r = run_script_with(
        "t.test",
        text,
        &Hooked {
            range: |_, r| {
                let mut r = r?;
                if let Value::Matrix(m) = &mut r.value {
                    m.reverse();
                }
                Ok(r)
            },
            ..Hooked::fake()
        },
        &opts,
    )
    .unwrap();
    assert_eq!(r.failed.len(), 1);
    assert!(
        r.failed[0].reason.contains("sorted"),
        "{}",
        r.failed[0].reason
    );
    assert!(run(text).failed.is_empty());
}

/// What a [`Hooked`] evaluator does with a query and its inner evaluator's answer.
type Hook = fn(&str, Result<QueryResult, QueryError>) -> Result<QueryResult, QueryError>;

/// A test evaluator: `inner`'s answers, passed through a hook per mode.
struct Hooked<E> {
    inner: E,
    instant: Hook,
    range: Hook,
}

impl Hooked<FakeEngine> {
    /// The fake engine, unchanged until a hook is set.
    fn fake() -> Self {
        Hooked {
            inner: FakeEngine,
            instant: |_, r| r,
            range: |_, r| r,
        }
    }
}

impl<E: Evaluator> Evaluator for Hooked<E> {
    fn instant_query(&self, st: &dyn Storage, q: &str, ts: i64) -> Result<QueryResult, QueryError> {
        (self.instant)(q, self.inner.instant_query(st, q, ts))
    }

    fn range_query(
        &self,
        st: &dyn Storage,
        q: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, QueryError> {
        (self.range)(q, self.inner.range_query(st, q, start, end, step))
    }
}

#[test]
fn at_reruns_must_give_the_same_result() {
    let text = "load 1m\n  m{a=\"1\"} 1 2 3\n\neval instant at 2m m\n  m{a=\"1\"} 3\n\n\
                eval instant at 2m time()\n  120\n";
    let engine = Engine::default();
    let r = run_script_with("t.test", text, &engine, &RunOptions::default()).unwrap();
    assert_eq!((r.passed, r.failed.len()), (2, 0), "{:?}", r.failed);

    // The real engine, but `@` re-runs see one more series: the runner must notice.
    let broken = Hooked {
        inner: Engine::default(),
        instant: |q, r| {
            let mut r = r?;
            if let (true, Value::Vector(v)) = (q.contains(" @ "), &mut r.value) {
                v.push(Sample {
                    metric: Labels::default(),
                    t: 0,
                    f: 7.0,
                    drop_name: false,
                });
            }
            Ok(r)
        },
        range: |_, r| r,
    };
    let r = run_script_with("t.test", text, &broken, &RunOptions::default()).unwrap();
    // `time()` has no re-runs, so only the first eval fails.
    assert_eq!((r.passed, r.failed.len()), (1, 1), "{:?}", r.failed);
    let f = r.failed[0].to_string();
    assert!(
        f.contains("with @ modifier (m @ 120.000 at t=-1200000)"),
        "{f}"
    );

    let opts = RunOptions {
        at_check: false,
        ..RunOptions::default()
    };
    let r = run_script_with("t.test", text, &broken, &opts).unwrap();
    assert_eq!((r.passed, r.failed.len()), (2, 0), "{:?}", r.failed);
}
