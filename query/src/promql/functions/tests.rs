//! Unit tests of the function families. Expected numbers are worked out by hand from
//! Prometheus's test scripts (functions.test, histograms.test, trig_functions.test).

use o11y_tsdb::labels::Labels;
use o11y_tsdb::matcher::{MatchOp, Matcher};

use super::util::{format_openmetrics_float, go_format_g, kahan_inc};
use super::*;
use crate::promql::ast::{MatrixSelector, VectorSelector};
use crate::promql::value::{Annotation, AnnotationKind, FPoint, Sample};

const MIN: i64 = 60_000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// Points `start, start+step, ...` (values given) at `interval_ms`, starting at t=0.
fn series(interval_ms: i64, values: &[f64]) -> Vec<FPoint> {
    values
        .iter()
        .enumerate()
        .map(|(i, &f)| FPoint {
            t: i as i64 * interval_ms,
            f,
        })
        .collect()
}

/// `a+bxN`: a, a+b, ..., a+N*b.
fn ramp(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..=n).map(|i| a + b * i as f64).collect()
}

struct Run {
    annotations: Annotations,
    pos: Vec<PosRange>,
}

impl Run {
    fn new() -> Run {
        Run {
            annotations: Annotations::default(),
            pos: vec![
                PosRange::new(6, 20),
                PosRange::new(22, 30),
                PosRange::new(32, 40),
            ],
        }
    }

    fn ctx(&mut self, ts: i64) -> FnCtx<'_> {
        FnCtx {
            ts,
            call_pos: PosRange::new(0, 41),
            arg_pos: &self.pos,
            annotations: &mut self.annotations,
        }
    }

    /// Evaluates range function `name` over `pts` for `[range]` at `ts` (no offset).
    fn range(
        &mut self,
        name: &str,
        pts: &[FPoint],
        metric: &Labels,
        range: i64,
        ts: i64,
        scalars: &[f64],
    ) -> Option<f64> {
        let f = range_function(name).unwrap();
        let start = ts - range;
        let window: Vec<FPoint> = pts
            .iter()
            .copied()
            .filter(|p| p.t > start && p.t <= ts)
            .collect();
        let w = Window {
            points: &window,
            range_start: start,
            range_end: ts,
            metric,
        };
        let mut ctx = self.ctx(ts);
        f(&w, scalars, &mut ctx)
    }

    fn call(&mut self, name: &str, args: Vec<StepArg>) -> Result<Vector, QueryError> {
        let mut ctx = self.ctx(0);
        call_instant(name, args, &mut ctx)
    }

    fn messages(&self, kind: AnnotationKind) -> Vec<String> {
        self.annotations
            .iter()
            .filter(|a| a.kind == kind)
            .map(|a| a.msg.clone())
            .collect()
    }
}

fn assert_close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "got {got}, want {want}"
    );
}

fn sample(pairs: &[(&str, &str)], f: f64) -> Sample {
    Sample {
        metric: labels(pairs),
        t: 0,
        f,
        drop_name: false,
    }
}

fn values(v: &Vector) -> Vec<f64> {
    v.iter().map(|s| s.f).collect()
}

// ---- rate, increase, delta ----

#[test]
fn increase_extrapolates_to_range_bounds_and_zero_point() {
    let m = labels(&[("__name__", "http_requests_total")]);
    let mut r = Run::new();
    // /foo 0+10x10, /dings 10+10x10, /bumms 1+10x10: all 100 at 50m over [50m].
    for start in [0.0, 10.0, 1.0] {
        let pts = series(5 * MIN, &ramp(start, 10.0, 10));
        let v = r.range("increase", &pts, &m, 50 * MIN, 50 * MIN, &[]);
        assert_close(v.unwrap(), 100.0);
    }
    // /bar 0+18x5 0+18x5: one counter reset.
    let mut vals = ramp(0.0, 18.0, 5);
    vals.extend(ramp(0.0, 18.0, 5));
    let pts = series(5 * MIN, &vals);
    assert_close(
        r.range("increase", &pts, &m, 50 * MIN, 50 * MIN, &[])
            .unwrap(),
        160.0,
    );
    // 0 1 2 3 2 3 4: the reset counts from 0, zero-point clamp on the left.
    let pts = series(5 * MIN, &[0.0, 1.0, 2.0, 3.0, 2.0, 3.0, 4.0]);
    assert_close(
        r.range("increase", &pts, &m, 30 * MIN, 30 * MIN, &[])
            .unwrap(),
        7.0,
    );
    assert!(r.annotations.is_empty(), "names end in _total");
}

#[test]
fn rate_counter_resets_and_short_windows() {
    let m = labels(&[("__name__", "testcounter_reset_middle_total")]);
    let mut r = Run::new();
    let mut vals = ramp(0.0, 27.0, 4);
    vals.extend(ramp(0.0, 27.0, 5));
    let pts = series(5 * MIN, &vals);
    assert_close(
        r.range("rate", &pts, &m, 50 * MIN, 50 * MIN, &[]).unwrap(),
        0.08,
    );
    // Reset at the end: one point in [5m] gives nothing, two points in [6m] give 0.
    let mut vals = ramp(0.0, 10.0, 9);
    vals.extend([0.0, 10.0]);
    let pts = series(5 * MIN, &vals);
    assert_eq!(r.range("rate", &pts, &m, 5 * MIN, 50 * MIN, &[]), None);
    assert_eq!(r.range("rate", &pts, &m, 6 * MIN, 50 * MIN, &[]), Some(0.0));
    // Empty window.
    assert_eq!(r.range("rate", &[], &m, 5 * MIN, 50 * MIN, &[]), None);
}

#[test]
fn rate_zero_cutoff_on_the_left() {
    let m = labels(&[("__name__", "testcounter_zero_cutoff_total")]);
    let mut r = Run::new();
    let want_10m = [0.5, 0.55, 0.6, 0.6, 0.6, 0.6];
    for (i, want) in want_10m.iter().enumerate() {
        let pts = series(4 * MIN, &ramp(60.0 * i as f64, 240.0, 10));
        let got = r.range("rate", &pts, &m, 20 * MIN, 10 * MIN, &[]).unwrap();
        assert_close(got, *want);
        let got = r.range("rate", &pts, &m, 20 * MIN, 50 * MIN, &[]).unwrap();
        assert_close(got, 0.6);
    }
}

#[test]
fn rate_per_second_and_offset_window() {
    let mut r = Run::new();
    let m = labels(&[("__name__", "calculate_rate_window_total")]);
    let pts = series(5 * MIN, &ramp(0.0, 80.0, 10));
    assert_close(
        r.range("rate", &pts, &m, 50 * MIN, 50 * MIN, &[]).unwrap(),
        0.26666666666666666,
    );
    // rate(x[10m] offset 5m) at 50m = window (35m, 45m].
    let pts = series(5 * MIN, &ramp(0.0, 10.0, 10));
    assert_close(
        r.range("rate", &pts, &m, 10 * MIN, 45 * MIN, &[]).unwrap(),
        0.03333333333333333,
    );
}

#[test]
fn rate_on_non_counter_name_adds_info_at_the_range_argument() {
    let mut r = Run::new();
    let m = labels(&[("__name__", "http_requests")]);
    let pts = series(5 * MIN, &ramp(0.0, 10.0, 10));
    r.range("rate", &pts, &m, 50 * MIN, 50 * MIN, &[]).unwrap();
    let infos: Vec<&Annotation> = r.annotations.iter().collect();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].kind, AnnotationKind::Info);
    assert_eq!(
        infos[0].msg,
        "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \
         \"http_requests\""
    );
    assert_eq!(infos[0].pos, r.pos[0]);
    // delta never warns; no output means no info.
    let mut r = Run::new();
    r.range("delta", &pts, &m, 50 * MIN, 50 * MIN, &[]).unwrap();
    assert_eq!(
        r.range("increase", &pts[..1], &m, 50 * MIN, 50 * MIN, &[]),
        None
    );
    assert!(r.annotations.is_empty());
}

#[test]
fn delta_does_not_treat_decreases_as_resets() {
    let mut r = Run::new();
    let m = labels(&[("__name__", "g")]);
    // 10 at 0s... window (0, 40s]: 8@10 6@20 4@30 2@40, extrapolated by 10s to the left.
    let pts = series(10_000, &[10.0, 8.0, 6.0, 4.0, 2.0]);
    assert_close(
        r.range("delta", &pts, &m, 40_000, 40_000, &[]).unwrap(),
        -8.0,
    );
}

// ---- irate, idelta ----

#[test]
fn irate_and_idelta_use_the_last_two_points() {
    let mut r = Run::new();
    let m = labels(&[("__name__", "x_total")]);
    let pts = series(5 * MIN, &ramp(0.0, 10.0, 10));
    assert_close(
        r.range("irate", &pts, &m, 50 * MIN, 50 * MIN, &[]).unwrap(),
        1.0 / 30.0,
    );
    // Counter reset: the last value alone.
    let pts = series(5 * MIN, &[1.0, 10.0, 4.0]);
    assert_close(
        r.range("irate", &pts, &m, 15 * MIN, 10 * MIN, &[]).unwrap(),
        4.0 / 300.0,
    );
    assert_close(
        r.range("idelta", &pts, &m, 15 * MIN, 10 * MIN, &[])
            .unwrap(),
        -6.0,
    );
    // 1 NaN NaN 5 11 over [15m1s].
    let pts = series(5 * MIN, &[1.0, f64::NAN, f64::NAN, 5.0, 11.0]);
    let at = |r: &mut Run, ts| r.range("irate", &pts, &m, 15 * MIN + 1000, ts, &[]);
    assert_eq!(at(&mut r, 0), None);
    assert!(at(&mut r, 5 * MIN).unwrap().is_nan());
    assert!(at(&mut r, 15 * MIN).unwrap().is_nan());
    assert_close(at(&mut r, 20 * MIN).unwrap(), 0.02);
}

// ---- deriv, predict_linear ----

#[test]
fn deriv_and_predict_linear_fit_a_line() {
    let mut r = Run::new();
    let m = labels(&[("__name__", "x")]);
    let pts = series(5 * MIN, &ramp(0.0, 10.0, 10));
    // 10 per 5m = 1/30 per second.
    assert_close(
        r.range("deriv", &pts, &m, 50 * MIN, 50 * MIN, &[]).unwrap(),
        1.0 / 30.0,
    );
    // The intercept is at the step time: 100 now, 220 in an hour.
    assert_close(
        r.range("predict_linear", &pts, &m, 50 * MIN, 50 * MIN, &[3600.0])
            .unwrap(),
        220.0,
    );
    // Constant and infinite series.
    let pts = series(MIN, &[3.0, 3.0, 3.0]);
    assert_eq!(r.range("deriv", &pts, &m, 5 * MIN, 2 * MIN, &[]), Some(0.0));
    let pts = series(MIN, &[f64::INFINITY; 3]);
    assert!(r
        .range("predict_linear", &pts, &m, 5 * MIN, 2 * MIN, &[60.0])
        .unwrap()
        .is_nan());
    // One point: nothing.
    assert_eq!(r.range("deriv", &pts[..1], &m, 5 * MIN, 2 * MIN, &[]), None);
}

#[test]
fn deriv_and_predict_linear_through_a_counter_reset() {
    // testcounter_reset_middle_total 0+10x4 0+10x5 (the worked example in functions.test).
    let mut r = Run::new();
    let m = labels(&[("__name__", "c_total")]);
    let mut vals = ramp(0.0, 10.0, 4);
    vals.extend(ramp(0.0, 10.0, 5));
    let pts = series(5 * MIN, &vals);
    assert_close(
        r.range("deriv", &pts, &m, 100 * MIN, 50 * MIN, &[])
            .unwrap(),
        0.010606060606060607,
    );
    assert_close(
        r.range("predict_linear", &pts, &m, 50 * MIN, 50 * MIN, &[3600.0])
            .unwrap(),
        70.0,
    );
    // predict_linear(x[55m] @ 3000, 3600) at 50m and at 10m: the intercept follows the step.
    let at = |r: &mut Run, ts| {
        let f = range_function("predict_linear").unwrap();
        let w = Window {
            points: &pts,
            range_start: 3_000_000 - 55 * MIN,
            range_end: 3_000_000,
            metric: &m,
        };
        f(&w, &[3600.0], &mut r.ctx(ts)).unwrap()
    };
    assert_close(at(&mut r, 50 * MIN), 76.81818181818181);
    assert_close(at(&mut r, 10 * MIN), 51.36363636363637);
}

// ---- double_exponential_smoothing ----

#[test]
fn double_exponential_smoothing_follows_a_linear_trend() {
    let mut r = Run::new();
    let m = labels(&[("__name__", "x")]);
    let pts = series(MIN, &ramp(0.0, 10.0, 10));
    // A perfect line is reproduced exactly.
    assert_close(
        r.range(
            "double_exponential_smoothing",
            &pts,
            &m,
            10 * MIN,
            10 * MIN,
            &[0.5, 0.5],
        )
        .unwrap(),
        100.0,
    );
    // s1=1, b=2; i=1: 0.5*3 + 0.5*(1+2) = 3; i=2: b=0.5*(3-1)+0.5*2=2, 0.5*2 + 0.5*(3+2) = 3.5.
    let pts = series(MIN, &[1.0, 3.0, 2.0]);
    assert_close(
        r.range(
            "double_exponential_smoothing",
            &pts,
            &m,
            10 * MIN,
            2 * MIN,
            &[0.5, 0.5],
        )
        .unwrap(),
        3.5,
    );
    assert!(validate_range_args("double_exponential_smoothing", &[0.5, 0.5]).is_ok());
    assert_eq!(
        validate_range_args("double_exponential_smoothing", &[1.0, 0.5]),
        Err(QueryError::Execution(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000".into()
        ))
    );
    assert_eq!(
        validate_range_args("double_exponential_smoothing", &[0.5, 0.0]),
        Err(QueryError::Execution(
            "invalid trend factor. Expected: 0 < tf < 1, got: 0.000000".into()
        ))
    );
    assert!(validate_range_args("rate", &[]).is_ok());
}

// ---- changes, resets ----

#[test]
fn changes_and_resets() {
    let mut r = Run::new();
    let m = labels(&[("__name__", "http_requests")]);
    let foo = series(5 * MIN, &[1.0, 2.0, 3.0, 0.0, 1.0, 0.0, 0.0, 1.0, 2.0, 0.0]);
    let bar = series(5 * MIN, &[1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let at50 = |r: &mut Run, f: &str, p: &[FPoint], range| r.range(f, p, &m, range, 50 * MIN, &[]);
    assert_eq!(at50(&mut r, "resets", &foo, 10 * MIN), Some(0.0));
    assert_eq!(at50(&mut r, "resets", &foo, 20 * MIN), Some(1.0));
    assert_eq!(at50(&mut r, "resets", &foo, 32 * MIN), Some(2.0));
    assert_eq!(at50(&mut r, "resets", &foo, 50 * MIN), Some(3.0));
    assert_eq!(at50(&mut r, "resets", &bar, 32 * MIN), Some(1.0));
    assert_eq!(at50(&mut r, "changes", &foo, 5 * MIN), None);
    assert_eq!(at50(&mut r, "changes", &foo, 6 * MIN), Some(0.0));
    assert_eq!(at50(&mut r, "changes", &foo, 30 * MIN), Some(3.0));
    assert_eq!(at50(&mut r, "changes", &bar, 50 * MIN), Some(8.0));
    // NaN to NaN is no change; NaN to 0 and back are.
    let nan = series(5 * MIN, &[f64::NAN; 3]);
    let mixed = series(5 * MIN, &[0.0, f64::NAN, 0.0]);
    assert_eq!(
        r.range("changes", &nan, &m, 20 * MIN, 15 * MIN, &[]),
        Some(0.0)
    );
    assert_eq!(
        r.range("changes", &mixed, &m, 20 * MIN, 15 * MIN, &[]),
        Some(2.0)
    );
}

// ---- *_over_time ----

#[test]
fn aggregations_over_time() {
    let mut r = Run::new();
    let m = labels(&[("__name__", "metric")]);
    let pts = series(10_000, &[0.0, 8.0, 8.0, 2.0, 3.0]);
    let mut at = |f: &str| r.range(f, &pts, &m, 2 * MIN, MIN, &[]).unwrap();
    assert_close(at("stddev_over_time"), 3.249615361854384);
    assert_close(at("stdvar_over_time"), 10.56);
    assert_close(at("avg_over_time"), 4.2);
    assert_close(at("sum_over_time"), 21.0);
    assert_eq!(at("count_over_time"), 5.0);
    assert_eq!(at("min_over_time"), 0.0);
    assert_eq!(at("max_over_time"), 8.0);
    assert_eq!(at("last_over_time"), 3.0);
    assert_eq!(at("first_over_time"), 0.0);
    assert_eq!(at("present_over_time"), 1.0);
    assert_eq!(at("ts_of_first_over_time"), 0.0);
    assert_eq!(at("ts_of_last_over_time"), 40.0);
    // The last maximum and the last minimum win.
    assert_eq!(at("ts_of_max_over_time"), 20.0);
    assert_eq!(at("ts_of_min_over_time"), 0.0);
    // median 3, deviations 3 5 5 1 0 → median 3.
    assert_eq!(at("mad_over_time"), 3.0);
    for f in [
        "avg_over_time",
        "sum_over_time",
        "max_over_time",
        "count_over_time",
    ] {
        assert_eq!(r.range(f, &[], &m, 2 * MIN, MIN, &[]), None, "{f}");
    }
}

#[test]
fn mad_over_time_cases() {
    let mut r = Run::new();
    let m = labels(&[]);
    // metric 4 6 2 1 999 1 2 at 10s, [70s] at 70s: the window holds 6 2 1 999 1 2.
    let pts = series(10_000, &[4.0, 6.0, 2.0, 1.0, 999.0, 1.0, 2.0]);
    assert_eq!(
        r.range("mad_over_time", &pts, &m, 70_000, 70_000, &[]),
        Some(1.0)
    );
    let pts = series(10_000, &[1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(
        r.range("mad_over_time", &pts, &m, 50_000, 40_000, &[]),
        Some(1.0)
    );
    let pts = series(10_000, &[7.0; 5]);
    assert_eq!(
        r.range("mad_over_time", &pts, &m, 50_000, 40_000, &[]),
        Some(0.0)
    );
    // A NaN point makes the result NaN.
    let pts = series(10_000, &[1.0, 2.0, f64::NAN, 4.0]);
    let got = r.range("mad_over_time", &pts, &m, 40_000, 30_000, &[]);
    assert!(got.unwrap().is_nan());
}

#[test]
fn min_max_over_time_skip_nan_unless_only_nan() {
    let mut r = Run::new();
    let m = labels(&[]);
    let pts = series(10_000, &[f64::NAN, 2.0, f64::NAN, 1.0]);
    assert_eq!(
        r.range("max_over_time", &pts, &m, MIN, 30_000, &[]),
        Some(2.0)
    );
    assert_eq!(
        r.range("min_over_time", &pts, &m, MIN, 30_000, &[]),
        Some(1.0)
    );
    let pts = series(10_000, &[f64::NAN, f64::NAN]);
    assert!(r
        .range("max_over_time", &pts, &m, MIN, 30_000, &[])
        .unwrap()
        .is_nan());
}

#[test]
fn avg_and_sum_over_time_handle_overflow_and_nan() {
    let mut r = Run::new();
    let m = labels(&[]);
    let pts = series(10_000, &[f64::MAX, f64::MAX, f64::MAX]);
    // The incremental mean after the overflow: MAX up to rounding, not +Inf.
    assert_close(
        r.range("avg_over_time", &pts, &m, MIN, 30_000, &[])
            .unwrap(),
        f64::MAX,
    );
    assert_eq!(
        r.range("sum_over_time", &pts, &m, MIN, 30_000, &[]),
        Some(f64::INFINITY)
    );
    let pts = series(10_000, &[1.0, f64::NAN, 3.0]);
    assert!(r
        .range("avg_over_time", &pts, &m, MIN, 30_000, &[])
        .unwrap()
        .is_nan());
    // Kahan: 1 + 1e100 + 1 - 1e100 = 2.
    let pts = series(10_000, &[1.0, 1e100, 1.0, -1e100]);
    assert_eq!(
        r.range("sum_over_time", &pts, &m, MIN, 30_000, &[]),
        Some(2.0)
    );
    assert_eq!(kahan_inc(1.0, 1e100, 0.0), (1e100, 1.0));
}

#[test]
fn avg_over_time_infinities_and_overflow_cases() {
    // functions.test's metric..metric10 at 10s intervals, avg_over_time([1m]) at 55s.
    let mut r = Run::new();
    let m = labels(&[]);
    let (inf, ninf) = (f64::INFINITY, f64::NEG_INFINITY);
    let big = 9.988_465_674_311_58e307;
    let cases: &[(&[f64], f64)] = &[
        (&[1.0, 2.0, 3.0, 4.0, 5.0], 3.0),
        (&[1.0, 2.0, 3.0, 4.0, inf], inf),
        (&[1.0, 2.0, 3.0, 4.0, ninf], ninf),
        (&[inf, 0.0, inf], inf),
        (&[1.0, 2.0, 3.0, ninf, ninf], ninf),
        (&[ninf, 0.0, ninf], ninf),
        (&[-big, -big, -big], -big),
        (&[-big, big], 0.0),
    ];
    for (vals, want) in cases {
        let pts = series(10_000, vals);
        let got = r
            .range("avg_over_time", &pts, &m, MIN, 55_000, &[])
            .unwrap();
        if want.is_infinite() {
            assert_eq!(got, *want, "{vals:?}");
        } else {
            assert_close(got, *want);
        }
    }
    for vals in [
        &[inf, inf, inf, ninf][..],
        &[ninf, ninf, ninf, inf],
        &[1.0, 2.0, ninf, ninf, inf],
        &[1.0, 2.0, 3.0, f64::NAN, f64::NAN],
    ] {
        let pts = series(10_000, vals);
        let got = r.range("avg_over_time", &pts, &m, MIN, 55_000, &[]);
        assert!(got.unwrap().is_nan(), "{vals:?}");
    }
    // One point in [20s], none in [10s].
    let pts = series(10_000, &[1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(
        r.range("avg_over_time", &pts, &m, 20_000, 55_000, &[]),
        Some(5.0)
    );
    assert_eq!(
        r.range("avg_over_time", &pts, &m, 10_000, 55_000, &[]),
        None
    );
    // The direct sum of two big values overflows.
    let pts = series(10_000, &[big, big]);
    assert_eq!(
        r.range("sum_over_time", &pts, &m, MIN, 55_000, &[]),
        Some(inf)
    );
    assert_close(
        r.range("avg_over_time", &pts, &m, MIN, 55_000, &[])
            .unwrap(),
        big,
    );
}

#[test]
fn ts_of_extremes_with_nan() {
    let mut r = Run::new();
    let m = labels(&[]);
    let pts = series(10_000, &[f64::NAN, 3.0, 1.0, 3.0, f64::NAN]);
    let at = |r: &mut Run, f| r.range(f, &pts, &m, MIN, 40_000, &[]);
    assert_eq!(at(&mut r, "ts_of_max_over_time"), Some(30.0));
    assert_eq!(at(&mut r, "ts_of_min_over_time"), Some(20.0));
    assert_eq!(at(&mut r, "max_over_time"), Some(3.0));
}

#[test]
fn quantile_over_time_interpolates_and_warns_out_of_range() {
    let m = labels(&[]);
    let pts = series(10_000, &[0.0, 1.0, 2.0, 4.0]);
    let mut r = Run::new();
    let q = |r: &mut Run, q| r.range("quantile_over_time", &pts, &m, 2 * MIN, MIN, &[q]);
    assert_eq!(q(&mut r, 0.5), Some(1.5));
    assert_eq!(q(&mut r, 1.0), Some(4.0));
    assert_eq!(q(&mut r, 0.75), Some(2.5));
    assert!(r.annotations.is_empty());
    assert_eq!(q(&mut r, -1.0), Some(f64::NEG_INFINITY));
    assert_eq!(q(&mut r, 2.0), Some(f64::INFINITY));
    assert!(q(&mut r, f64::NAN).unwrap().is_nan());
    let mut msgs = r.messages(AnnotationKind::Warning);
    msgs.sort();
    assert_eq!(
        msgs,
        [
            "quantile value should be between 0 and 1, got -1",
            "quantile value should be between 0 and 1, got 2",
            "quantile value should be between 0 and 1, got NaN",
        ]
    );
    assert!(r.annotations.iter().all(|a| a.pos == r.pos[0]));
}

// ---- math ----

#[test]
fn math_functions_set_drop_name() {
    let mut r = Run::new();
    let v = vec![
        sample(&[("__name__", "trig"), ("l", "x")], 10.0),
        sample(&[("__name__", "trig"), ("l", "NaN")], f64::NAN),
    ];
    let out = r.call("cos", vec![StepArg::Vector(v.clone())]).unwrap();
    assert_close(out[0].f, -0.8390715290764524);
    assert!(out[1].f.is_nan());
    assert!(out.iter().all(|s| s.drop_name));
    assert_eq!(out[0].metric, v[0].metric, "the name is dropped later");
    let out = r.call("tan", vec![StepArg::Vector(v.clone())]).unwrap();
    assert_close(out[0].f, 0.6483608274590867);
    let out = r.call("deg", vec![StepArg::Vector(v.clone())]).unwrap();
    assert_close(out[0].f, 572.9577951308232);
    let out = r.call("sgn", vec![StepArg::Vector(v)]).unwrap();
    assert_eq!(out[0].f, 1.0);
    assert!(out[1].f.is_nan());
    let pi = r.call("pi", vec![]).unwrap();
    assert_eq!(values(&pi), [std::f64::consts::PI]);
    assert!(drops_name("abs") && drops_name("rate") && drops_name("clamp"));
    assert!(!drops_name("last_over_time") && !drops_name("first_over_time"));
    assert!(!drops_name("sort") && !drops_name("label_replace") && !drops_name("vector"));
    assert_eq!(simple_float_fn("sqrt").unwrap()(9.0), 3.0);
    assert!(simple_float_fn("rate").is_none());
}

#[test]
fn round_and_clamp() {
    let mut r = Run::new();
    let v = vec![
        sample(&[("a", "1")], 2.5),
        sample(&[("a", "2")], -2.5),
        sample(&[("a", "3")], 1.234),
        sample(&[("a", "4")], f64::NAN),
    ];
    let out = r.call("round", vec![StepArg::Vector(v.clone())]).unwrap();
    assert_eq!(values(&out)[..3], [3.0, -2.0, 1.0]);
    let out = r
        .call(
            "round",
            vec![StepArg::Vector(v.clone()), StepArg::Scalar(0.1)],
        )
        .unwrap();
    assert_close(out[2].f, 1.2);
    let out = r
        .call(
            "clamp",
            vec![
                StepArg::Vector(v.clone()),
                StepArg::Scalar(-1.0),
                StepArg::Scalar(2.0),
            ],
        )
        .unwrap();
    assert_eq!(values(&out)[..3], [2.0, -1.0, 1.234]);
    assert!(out[3].f.is_nan(), "Go's math.Max/Min keep NaN");
    let out = r
        .call(
            "clamp",
            vec![
                StepArg::Vector(v.clone()),
                StepArg::Scalar(5.0),
                StepArg::Scalar(2.0),
            ],
        )
        .unwrap();
    assert!(out.is_empty(), "min > max gives nothing");
    let out = r
        .call(
            "clamp_min",
            vec![StepArg::Vector(v.clone()), StepArg::Scalar(0.0)],
        )
        .unwrap();
    assert_eq!(values(&out)[..3], [2.5, 0.0, 1.234]);
    let out = r
        .call("clamp_max", vec![StepArg::Vector(v), StepArg::Scalar(0.0)])
        .unwrap();
    assert_eq!(values(&out)[..3], [0.0, -2.5, 0.0]);
}

// ---- time ----

#[test]
fn date_functions_in_utc() {
    let mut r = Run::new();
    let at = |r: &mut Run, f: &str, secs: f64| {
        let v = vec![sample(&[], secs)];
        r.call(f, vec![StepArg::Vector(v)]).unwrap()[0].f
    };
    let t = 1136239445.0; // 2006-01-02T22:04:05Z, a Monday.
    assert_eq!(at(&mut r, "year", t), 2006.0);
    assert_eq!(at(&mut r, "month", t), 1.0);
    assert_eq!(at(&mut r, "day_of_month", t), 2.0);
    assert_eq!(at(&mut r, "day_of_year", t), 2.0);
    assert_eq!(at(&mut r, "day_of_week", t), 1.0);
    assert_eq!(at(&mut r, "hour", t), 22.0);
    assert_eq!(at(&mut r, "minute", t), 4.0);
    assert_eq!(at(&mut r, "year", 1230767999.0), 2008.0);
    assert_eq!(at(&mut r, "year", 1230768000.0), 2009.0);
    assert_eq!(at(&mut r, "month", 1456790399.0), 2.0);
    assert_eq!(at(&mut r, "day_of_month", 1456790399.0), 29.0);
    assert_eq!(at(&mut r, "month", 1456790400.0), 3.0);
    assert_eq!(at(&mut r, "day_of_year", 1483191420.0), 366.0);
    assert_eq!(at(&mut r, "day_of_year", 1672493820.0), 365.0);
    assert_eq!(at(&mut r, "days_in_month", 1485907200.0), 28.0);
    assert_eq!(at(&mut r, "year", -1.0), 1969.0);
    // No argument: vector(time()) at the step, without drop_name.
    let mut ctx = r.ctx(1_136_239_445_000);
    let out = call_instant("hour", vec![], &mut ctx).unwrap();
    assert_eq!(values(&out), [22.0]);
    assert!(!out[0].drop_name && out[0].metric.is_empty());
}

#[test]
fn time_vector_scalar_timestamp() {
    let mut r = Run::new();
    let mut ctx = r.ctx(90_500);
    assert_eq!(
        values(&call_instant("time", vec![], &mut ctx).unwrap()),
        [90.5]
    );
    assert_eq!(
        values(&r.call("vector", vec![StepArg::Scalar(1.0)]).unwrap()),
        [1.0]
    );
    let one = vec![sample(&[("a", "b")], 7.0)];
    let two = vec![sample(&[("a", "b")], 7.0), sample(&[("a", "c")], 8.0)];
    assert_eq!(
        values(&r.call("scalar", vec![StepArg::Vector(one)]).unwrap()),
        [7.0]
    );
    assert!(r.call("scalar", vec![StepArg::Vector(two)]).unwrap()[0]
        .f
        .is_nan());
    assert!(r.call("scalar", vec![StepArg::Vector(vec![])]).unwrap()[0]
        .f
        .is_nan());
    let mut s = sample(&[("__name__", "metric")], 1.0);
    s.t = 10_000;
    let out = r.call("timestamp", vec![StepArg::Vector(vec![s])]).unwrap();
    assert_eq!(values(&out), [10.0]);
    assert!(out[0].drop_name);
}

#[test]
fn min_of_and_max_of() {
    let mut r = Run::new();
    let call = |r: &mut Run, f: &str, a: f64, b: f64| {
        r.call(f, vec![StepArg::Scalar(a), StepArg::Scalar(b)])
            .unwrap()[0]
            .f
    };
    assert_eq!(call(&mut r, "min_of", 3.0, 5.0), 3.0);
    assert_eq!(call(&mut r, "max_of", 5.0, 3.0), 5.0);
    assert_eq!(call(&mut r, "max_of", -2.0, -5.0), -2.0);
    assert!(call(&mut r, "min_of", f64::NAN, 1.0).is_nan());
    assert_eq!(
        call(&mut r, "max_of", f64::NAN, f64::INFINITY),
        f64::INFINITY
    );
}

// ---- sort ----

#[test]
fn sort_puts_nan_last_both_ways() {
    let mut r = Run::new();
    let v = vec![
        sample(&[("i", "a")], 2.0),
        sample(&[("i", "b")], f64::NAN),
        sample(&[("i", "c")], -1.0),
        sample(&[("i", "d")], 5.0),
    ];
    let ids = |v: &Vector| -> Vec<String> {
        v.iter()
            .map(|s| s.metric.get("i").unwrap_or("").to_string())
            .collect()
    };
    let out = r.call("sort", vec![StepArg::Vector(v.clone())]).unwrap();
    assert_eq!(ids(&out), ["c", "a", "d", "b"]);
    let out = r.call("sort_desc", vec![StepArg::Vector(v)]).unwrap();
    assert_eq!(ids(&out), ["d", "a", "c", "b"]);
}

#[test]
fn sort_by_label_uses_natural_order() {
    let mut r = Run::new();
    let v = vec![
        sample(&[("i", "a10")], 1.0),
        sample(&[("i", "a9")], 1.0),
        sample(&[("i", "a1"), ("x", "2")], 1.0),
        sample(&[("i", "a1"), ("x", "1")], 1.0),
    ];
    let key = |v: &Vector| -> Vec<String> {
        v.iter()
            .map(|s| {
                format!(
                    "{}{}",
                    s.metric.get("i").unwrap(),
                    s.metric.get("x").unwrap_or("")
                )
            })
            .collect()
    };
    let out = r
        .call(
            "sort_by_label",
            vec![StepArg::Vector(v.clone()), StepArg::String("i".into())],
        )
        .unwrap();
    assert_eq!(key(&out), ["a11", "a12", "a9", "a10"]);
    let out = r
        .call(
            "sort_by_label_desc",
            vec![StepArg::Vector(v), StepArg::String("i".into())],
        )
        .unwrap();
    assert_eq!(key(&out), ["a10", "a9", "a12", "a11"]);
    assert!(labels::natural_less("file2", "file10"));
    assert!(!labels::natural_less("file10", "file2"));
    assert!(labels::natural_less("abc", "abd"));
}

// ---- label_replace, label_join ----

fn testmetric() -> Vector {
    vec![
        sample(
            &[
                ("__name__", "testmetric"),
                ("src", "source-value-10"),
                ("dst", "original-destination-value"),
            ],
            0.0,
        ),
        sample(
            &[
                ("__name__", "testmetric"),
                ("src", "source-value-20"),
                ("dst", "original-destination-value"),
            ],
            1.0,
        ),
    ]
}

fn strs(args: &[&str]) -> Vec<StepArg> {
    args.iter()
        .map(|s| StepArg::String(s.to_string()))
        .collect()
}

fn replace(r: &mut Run, v: Vector, a: &[&str]) -> Result<Vector, QueryError> {
    let mut args = vec![StepArg::Vector(v)];
    args.extend(strs(a));
    r.call("label_replace", args)
}

#[test]
fn label_replace_matches_whole_values_and_expands_groups() {
    let mut r = Run::new();
    let dst = |v: &Vector| -> Vec<String> {
        v.iter()
            .map(|s| s.metric.get("dst").unwrap_or("").to_string())
            .collect()
    };
    let out = replace(
        &mut r,
        testmetric(),
        &["dst", "destination-value-$1", "src", "source-value-(.*)"],
    )
    .unwrap();
    assert_eq!(dst(&out), ["destination-value-10", "destination-value-20"]);
    let out = replace(
        &mut r,
        testmetric(),
        &["dst", "destination-value-$1", "src", "value-(.*)"],
    )
    .unwrap();
    assert_eq!(dst(&out), ["original-destination-value"; 2]);
    let out = replace(
        &mut r,
        testmetric(),
        &["dst", "$1-value-${2}", "src", "(.*)-value-(.*)"],
    )
    .unwrap();
    assert_eq!(dst(&out), ["source-value-10", "source-value-20"]);
    let out = replace(
        &mut r,
        testmetric(),
        &["dst", "value-$1", "nonexistent-src", "(.*)"],
    )
    .unwrap();
    assert_eq!(dst(&out), ["value-"; 2]);
    // Setting an empty value removes the label.
    let out = replace(&mut r, testmetric(), &["dst", "", "dst", ".*"]).unwrap();
    assert_eq!(out[0].metric.get("dst"), None);
    assert_eq!(out[0].metric.len(), 2);
}

#[test]
fn label_replace_uses_go_regex_semantics() {
    let mut r = Run::new();
    let v = |src: &str| vec![sample(&[("src", src)], 1.0)];
    let dst = |out: Vector| out[0].metric.get("dst").map(str::to_string);
    // Go's \d is ASCII-only.
    let out = replace(&mut r, v("a12"), &["dst", "$1", "src", "a(\\d+)"]).unwrap();
    assert_eq!(dst(out), Some("12".into()));
    let out = replace(&mut r, v("a\u{663}"), &["dst", "$1", "src", "a(\\d+)"]).unwrap();
    assert_eq!(dst(out), None);
    // \Q...\E quotes literally; \b and \s work.
    let out = replace(&mut r, v("a.b"), &["dst", "x", "src", "\\Qa.b\\E"]).unwrap();
    assert_eq!(dst(out), Some("x".into()));
    let out = replace(&mut r, v("axb"), &["dst", "x", "src", "\\Qa.b\\E"]).unwrap();
    assert_eq!(dst(out), None);
    let out = replace(&mut r, v("ab cd"), &["dst", "$1", "src", "(\\w+)\\b\\s.*"]).unwrap();
    assert_eq!(dst(out), Some("ab".into()));
    // $name and ${name}; $1x names group "1x", which does not exist.
    let out = replace(&mut r, v("ab"), &["dst", "${n}-$1x-$$", "src", "(?P<n>a)b"]).unwrap();
    assert_eq!(dst(out), Some("a--$".into()));
}

#[test]
fn label_replace_errors() {
    let mut r = Run::new();
    assert_eq!(
        replace(&mut r, testmetric(), &["dst", "value-$1", "src", "(.*"]),
        Err(QueryError::Execution(
            "invalid regular expression in label_replace(): (.*".into()
        ))
    );
    assert_eq!(
        replace(&mut r, testmetric(), &["", "", "src", "(.*)"]),
        Err(QueryError::Execution(
            "invalid destination label name in label_replace(): ".into()
        ))
    );
    // "\xff" reaches us as U+FFFD (invalid UTF-8 in Prometheus).
    assert_eq!(
        replace(&mut r, testmetric(), &["\u{FFFD}", "", "src", "(.*)"]),
        Err(QueryError::Execution(
            "invalid destination label name in label_replace(): \u{FFFD}".into()
        ))
    );
    let mut args = vec![StepArg::Vector(testmetric())];
    args.extend(strs(&["dst", "-", "\u{FFFD}"]));
    assert_eq!(
        r.call("label_join", args),
        Err(QueryError::Execution(
            "invalid source label name in label_join(): \u{FFFD}".into()
        ))
    );
    // Both series end up as testmetric{dst="x"}.
    assert_eq!(
        replace(&mut r, testmetric(), &["src", "x", "src", ".*"]),
        Err(QueryError::Execution(
            "vector cannot contain metrics with the same labelset".into()
        ))
    );
}

#[test]
fn label_functions_and_the_drop_name_flag() {
    let mut r = Run::new();
    let mut v = testmetric();
    v[0].drop_name = true;
    // Writing another label keeps the flag; reading __name__ is allowed.
    let out = replace(
        &mut r,
        v.clone(),
        &["my_name", "rate_$1", "__name__", "(.+)"],
    )
    .unwrap();
    assert!(out[0].drop_name && !out[1].drop_name);
    assert_eq!(out[0].metric.get("my_name"), Some("rate_testmetric"));
    // Writing __name__ keeps the new name.
    let out = replace(&mut r, v.clone(), &["__name__", "$1", "__name__", "(.+)"]).unwrap();
    assert!(!out[0].drop_name);
    let mut args = vec![StepArg::Vector(v)];
    args.extend(strs(&["__name__", "_", "src", "dst"]));
    let out = r.call("label_join", args).unwrap();
    assert!(!out[0].drop_name);
    assert_eq!(
        out[0].metric.get("__name__"),
        Some("source-value-10_original-destination-value")
    );
}

#[test]
fn label_join_joins_in_order_and_detects_duplicates() {
    let mut r = Run::new();
    let v = vec![sample(
        &[("src", "a"), ("src1", "b"), ("src2", "c"), ("dst", "orig")],
        0.0,
    )];
    let join = |r: &mut Run, v: Vector, a: &[&str]| {
        let mut args = vec![StepArg::Vector(v)];
        args.extend(strs(a));
        r.call("label_join", args)
    };
    let out = join(&mut r, v.clone(), &["dst", "-", "src", "src1", "src2"]).unwrap();
    assert_eq!(out[0].metric.get("dst"), Some("a-b-c"));
    let out = join(&mut r, v.clone(), &["dst", "-", "src", "src3", "src1"]).unwrap();
    assert_eq!(out[0].metric.get("dst"), Some("a--b"));
    let out = join(&mut r, v, &["dst", ", "]).unwrap();
    assert_eq!(out[0].metric.get("dst"), None);
    let dup = vec![
        sample(&[("label", "a"), ("this", "a")], 1.0),
        sample(&[("label", "b"), ("this", "a")], 1.0),
    ];
    assert_eq!(
        join(&mut r, dup, &["label", "", "this"]),
        Err(QueryError::Execution(
            "vector cannot contain metrics with the same labelset".into()
        ))
    );
}

// ---- absent ----

#[test]
fn absent_labels_from_equality_matchers() {
    let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
    let vs = VectorSelector {
        name: Some("x".into()),
        matchers: vec![
            m(MatchOp::Equal, "__name__", "x"),
            m(MatchOp::Equal, "job", "a"),
            m(MatchOp::Equal, "job", "b"),
            m(MatchOp::Equal, "foo", "bar"),
            m(MatchOp::Regex, "re", "a.*"),
            m(MatchOp::Equal, "empty", ""),
        ],
        offset_ms: 0,
        at: None,
        pos: PosRange::new(7, 20),
    };
    let want = labels(&[("foo", "bar")]);
    assert_eq!(absent_labels(&Expr::VectorSelector(vs.clone())), want);
    let ms = Expr::MatrixSelector(MatrixSelector {
        vs,
        range_ms: 60_000,
        end_pos: 24,
    });
    let paren = Expr::Paren {
        expr: Box::new(ms),
        pos: PosRange::new(6, 25),
    };
    assert_eq!(absent_labels(&paren), want);
    let lit = Expr::NumberLiteral {
        val: 1.0,
        pos: PosRange::new(0, 1),
    };
    assert!(absent_labels(&lit).is_empty());
    let out = absent_vector(&vec![], want.clone(), 5);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].f, &out[0].metric, out[0].drop_name),
        (1.0, &want, false)
    );
    assert!(absent_vector(&vec![sample(&[], 1.0)], want, 5).is_empty());
}

// ---- histograms ----

fn buckets(name: &str, extra: &[(&str, &str)], bounds: &[(&str, f64)]) -> Vector {
    bounds
        .iter()
        .map(|(le, f)| {
            let mut pairs = vec![("__name__", name), ("le", *le)];
            pairs.extend_from_slice(extra);
            sample(&pairs, *f)
        })
        .collect()
}

#[test]
fn histogram_quantile_classic_buckets() {
    let mut r = Run::new();
    // testhistogram_bucket{start="positive"}-like: 0.1:50 1:70 +Inf:100 ... simple case.
    let v = buckets(
        "h_bucket",
        &[("job", "a")],
        &[("1", 10.0), ("2", 20.0), ("+Inf", 20.0)],
    );
    let q = |r: &mut Run, q: f64, v: &Vector| {
        r.call(
            "histogram_quantile",
            vec![StepArg::Scalar(q), StepArg::Vector(v.clone())],
        )
        .unwrap()
    };
    let out = q(&mut r, 0.5, &v);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].f, 1.0);
    assert!(out[0].drop_name);
    assert_eq!(
        out[0].metric,
        labels(&[("__name__", "h_bucket"), ("job", "a")])
    );
    assert_eq!(values(&q(&mut r, 0.75, &v)), [1.5]);
    assert_eq!(values(&q(&mut r, 0.25, &v)), [0.5]);
    assert!(r.annotations.is_empty());
    // All in +Inf: the second-highest bound.
    let v2 = buckets("h_bucket", &[], &[("1", 0.0), ("+Inf", 5.0)]);
    assert_eq!(values(&q(&mut r, 0.5, &v2)), [1.0]);
    // No +Inf bucket, no observations: NaN.
    let v3 = buckets("h_bucket", &[], &[("1", 1.0), ("2", 5.0)]);
    assert!(q(&mut r, 0.5, &v3)[0].f.is_nan());
    let v4 = buckets("h_bucket", &[], &[("1", 0.0), ("+Inf", 0.0)]);
    assert!(q(&mut r, 0.5, &v4)[0].f.is_nan());
    // Out-of-range quantiles: ∓Inf with a warning at q.
    assert_eq!(values(&q(&mut r, -0.1, &v)), [f64::NEG_INFINITY]);
    assert_eq!(values(&q(&mut r, 1.01, &v)), [f64::INFINITY]);
    let mut msgs = r.messages(AnnotationKind::Warning);
    msgs.sort();
    assert_eq!(
        msgs,
        [
            "quantile value should be between 0 and 1, got -0.1",
            "quantile value should be between 0 and 1, got 1.01",
        ]
    );
    assert!(r.annotations.iter().all(|a| a.pos == r.pos[0]));
    // Even without input.
    let mut r = Run::new();
    assert!(q(&mut r, f64::NAN, &vec![]).is_empty());
    assert_eq!(
        r.messages(AnnotationKind::Warning),
        ["quantile value should be between 0 and 1, got NaN"]
    );
}

#[test]
fn histogram_quantile_forces_monotonicity_with_info() {
    let mut r = Run::new();
    // nonmonotonic_bucket at 50m: 20 10 50 40 90 80.
    let v = buckets(
        "nonmonotonic_bucket",
        &[],
        &[
            ("0.1", 20.0),
            ("1", 10.0),
            ("10", 50.0),
            ("100", 40.0),
            ("1000", 90.0),
            ("+Inf", 80.0),
        ],
    );
    let out = r
        .call(
            "histogram_quantile",
            vec![StepArg::Scalar(0.01), StepArg::Vector(v.clone())],
        )
        .unwrap();
    assert_close(out[0].f, 0.0045);
    let infos: Vec<&Annotation> = r.annotations.iter().collect();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].kind, AnnotationKind::Info);
    assert_eq!(
        infos[0].msg,
        "input to histogram_quantile needed to be fixed for monotonicity (see \
         https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) \
         for metric name \"nonmonotonic_bucket\""
    );
    assert_eq!(infos[0].pos, r.pos[1]);
    let mut r = Run::new();
    let out = r
        .call(
            "histogram_quantiles",
            vec![
                StepArg::Vector(v),
                StepArg::String("q".into()),
                StepArg::Scalar(0.01),
                StepArg::Scalar(0.5),
                StepArg::Scalar(0.99),
            ],
        )
        .unwrap();
    let got: Vec<(String, f64)> = out
        .iter()
        .map(|s| (s.metric.get("q").unwrap().to_string(), s.f))
        .collect();
    assert_eq!(got.len(), 3);
    assert_eq!(
        (got[0].0.as_str(), got[1].0.as_str(), got[2].0.as_str()),
        ("0.01", "0.5", "0.99")
    );
    assert_close(got[0].1, 0.0045);
    assert_close(got[1].1, 8.5);
    assert_close(got[2].1, 979.75);
    assert!(r.annotations.iter().all(|a| a.pos == r.pos[0]));
}

#[test]
fn histogram_functions_warn_about_bad_le() {
    for (le, want) in [
        (
            None,
            "bucket label \"le\" is missing or has a malformed value of \"\" \
             for metric name \"series\"",
        ),
        (
            Some("Hello World"),
            "bucket label \"le\" is missing or has a malformed value of \"Hello World\" \
             for metric name \"series\"",
        ),
    ] {
        let mut pairs = vec![("__name__", "series")];
        match le {
            Some(le) => pairs.push(("le", le)),
            None => pairs.push(("ale", "0.1")),
        }
        let v = vec![sample(&pairs, 2.0)];
        let mut r = Run::new();
        let out = r
            .call(
                "histogram_fraction",
                vec![
                    StepArg::Scalar(f64::NEG_INFINITY),
                    StepArg::Scalar(1.0),
                    StepArg::Vector(v.clone()),
                ],
            )
            .unwrap();
        assert!(out.is_empty());
        let a: Vec<&Annotation> = r.annotations.iter().collect();
        assert_eq!((a.len(), a[0].msg.as_str(), a[0].pos), (1, want, r.pos[2]));
        let mut r = Run::new();
        r.call(
            "histogram_quantile",
            vec![StepArg::Scalar(0.8), StepArg::Vector(v)],
        )
        .unwrap();
        assert_eq!(r.annotations.iter().next().unwrap().pos, r.pos[1]);
    }
}

#[test]
fn histogram_fraction_classic_buckets() {
    let mut r = Run::new();
    let v = buckets(
        "h_bucket",
        &[],
        &[("1", 10.0), ("2", 20.0), ("4", 30.0), ("+Inf", 40.0)],
    );
    let frac = |r: &mut Run, lo: f64, hi: f64| {
        r.call(
            "histogram_fraction",
            vec![
                StepArg::Scalar(lo),
                StepArg::Scalar(hi),
                StepArg::Vector(v.clone()),
            ],
        )
        .unwrap()[0]
            .f
    };
    assert_eq!(frac(&mut r, f64::NEG_INFINITY, 2.0), 0.5);
    assert_eq!(frac(&mut r, 0.0, 1.0), 0.25);
    assert_eq!(frac(&mut r, 0.5, 1.5), 0.25);
    assert_eq!(frac(&mut r, 2.0, f64::INFINITY), 0.5);
    assert_eq!(frac(&mut r, 3.0, 1.0), 0.0);
    assert!(frac(&mut r, f64::NAN, 1.0).is_nan());
    assert!(r.annotations.is_empty());
}

#[test]
fn native_histogram_functions_yield_nothing_for_floats() {
    let mut r = Run::new();
    let v = vec![sample(&[("__name__", "x")], 1.0)];
    for f in [
        "histogram_count",
        "histogram_sum",
        "histogram_avg",
        "histogram_stddev",
    ] {
        assert!(r
            .call(f, vec![StepArg::Vector(v.clone())])
            .unwrap()
            .is_empty());
    }
}

// ---- formatting, dispatch ----

#[test]
fn go_float_formatting() {
    assert_eq!(go_format_g(2.0), "2");
    assert_eq!(go_format_g(-0.1), "-0.1");
    assert_eq!(go_format_g(1e6), "1e+06");
    assert_eq!(go_format_g(123456.0), "123456");
    assert_eq!(go_format_g(1234567.0), "1.234567e+06");
    assert_eq!(go_format_g(0.0001), "0.0001");
    assert_eq!(go_format_g(0.00001), "1e-05");
    assert_eq!(go_format_g(1.5e-300), "1.5e-300");
    assert_eq!(go_format_g(f64::NAN), "NaN");
    assert_eq!(go_format_g(f64::NEG_INFINITY), "-Inf");
    assert_eq!(format_openmetrics_float(1.0), "1.0");
    assert_eq!(format_openmetrics_float(0.0), "0.0");
    assert_eq!(format_openmetrics_float(0.25), "0.25");
    assert_eq!(format_openmetrics_float(f64::INFINITY), "+Inf");
}

#[test]
fn dispatch_rejects_wrong_arguments_without_panicking() {
    let mut r = Run::new();
    assert!(r.call("abs", vec![]).is_err());
    assert!(r.call("rate", vec![]).is_err());
    assert!(r.call("no_such_function", vec![]).is_err());
    assert!(r.call("clamp", vec![StepArg::Scalar(1.0)]).is_err());
    assert!(r.call("label_replace", strs(&["a", "b"])).is_err());
    assert!(range_function("abs").is_none());
    for f in crate::promql::ast::FUNCTIONS {
        let is_range = f.arg_types.contains(&crate::promql::ast::ValueType::Matrix);
        if is_range {
            assert!(range_function(f.name).is_some(), "{}", f.name);
        }
    }
}

// ---- info ----

fn selector(matchers: &[(MatchOp, &str, &str)]) -> VectorSelector {
    VectorSelector {
        name: None,
        matchers: matchers
            .iter()
            .map(|(op, n, v)| Matcher::new(*op, *n, *v).unwrap())
            .collect(),
        offset_ms: 0,
        at: None,
        pos: PosRange::new(13, 30),
    }
}

fn info_sample(pairs: &[(&str, &str)], t: i64) -> Sample {
    Sample {
        metric: labels(pairs),
        t,
        f: 1.0,
        drop_name: false,
    }
}

#[test]
fn info_adds_target_info_data_labels() {
    let plan = InfoPlan::new(None);
    let base = vec![
        sample(
            &[
                ("__name__", "metric"),
                ("instance", "a"),
                ("job", "1"),
                ("label", "value"),
            ],
            2.0,
        ),
        sample(
            &[("__name__", "other"), ("instance", "a"), ("job", "2")],
            3.0,
        ),
    ];
    let m = plan
        .select_matchers(base.iter().map(|s| &s.metric))
        .unwrap();
    let names: Vec<String> = m
        .iter()
        .map(|m| format!("{}{}{}", m.name, m.op, m.value))
        .collect();
    assert_eq!(names, ["__name__=target_info", "instance=~a", "job=~1|2"]);
    let info = vec![info_sample(
        &[
            ("__name__", "target_info"),
            ("instance", "a"),
            ("job", "1"),
            ("data", "info"),
            ("another_data", "another info"),
        ],
        0,
    )];
    let out = plan.combine(base, &info).unwrap();
    assert_eq!(
        out[0].metric,
        labels(&[
            ("__name__", "metric"),
            ("another_data", "another info"),
            ("data", "info"),
            ("instance", "a"),
            ("job", "1"),
            ("label", "value"),
        ])
    );
    assert_eq!(out[0].f, 2.0);
    // No matching info series: unchanged.
    assert_eq!(
        out[1].metric,
        labels(&[("__name__", "other"), ("instance", "a"), ("job", "2")])
    );
}

#[test]
fn info_data_matchers_filter_labels_and_series() {
    let base = vec![sample(
        &[
            ("__name__", "metric"),
            ("instance", "a"),
            ("job", "1"),
            ("data", "base"),
        ],
        1.0,
    )];
    let info = vec![info_sample(
        &[
            ("__name__", "target_info"),
            ("instance", "a"),
            ("job", "1"),
            ("data", "info"),
            ("x", "y"),
        ],
        0,
    )];
    // Only the selected data label; the base's own value wins.
    let plan = InfoPlan::new(Some(&selector(&[(MatchOp::Regex, "data", ".+")])));
    let out = plan.combine(base.clone(), &info).unwrap();
    assert_eq!(out[0].metric, base[0].metric);
    // A matcher rejecting "" drops base series without an info series.
    let plan = InfoPlan::new(Some(&selector(&[(MatchOp::Regex, "non_existent", ".+")])));
    assert!(plan.combine(base.clone(), &[].to_vec()).unwrap().is_empty());
    let plan = InfoPlan::new(Some(&selector(&[(MatchOp::Regex, "non_existent", ".*")])));
    assert_eq!(plan.combine(base.clone(), &vec![]).unwrap().len(), 1);
    // No identifying labels anywhere: nothing to select.
    let plan = InfoPlan::new(None);
    let bare = [labels(&[("__name__", "m")])];
    assert!(plan.select_matchers(bare.iter()).is_none());
}

#[test]
fn info_ignores_info_series_picks_newest_and_detects_conflicts() {
    let plan = InfoPlan::new(Some(&selector(&[(MatchOp::Regex, "__name__", ".+_info")])));
    let mut b = sample(
        &[("__name__", "build_info"), ("instance", "a"), ("job", "1")],
        1.0,
    );
    b.drop_name = true;
    let info = vec![
        info_sample(
            &[
                ("__name__", "target_info"),
                ("instance", "a"),
                ("job", "1"),
                ("v", "old"),
            ],
            1000,
        ),
        info_sample(
            &[
                ("__name__", "target_info"),
                ("instance", "a"),
                ("job", "1"),
                ("v", "new"),
            ],
            2000,
        ),
    ];
    // An info series passes unchanged, flag kept.
    let out = plan.combine(vec![b.clone()], &info).unwrap();
    assert_eq!(out, [b]);
    let base = vec![sample(
        &[("__name__", "metric"), ("instance", "a"), ("job", "1")],
        1.0,
    )];
    let out = plan.combine(base.clone(), &info).unwrap();
    assert_eq!(out[0].metric.get("v"), Some("new"));
    let same_t = vec![
        info[0].clone(),
        Sample {
            t: 1000,
            ..info[1].clone()
        },
    ];
    assert!(matches!(
        plan.combine(base.clone(), &same_t),
        Err(QueryError::Execution(m)) if m.starts_with("found duplicate series for info metric")
    ));
    let conflicting = vec![
        info_sample(
            &[
                ("__name__", "target_info"),
                ("instance", "a"),
                ("job", "1"),
                ("x", "t"),
            ],
            0,
        ),
        info_sample(
            &[
                ("__name__", "build_info"),
                ("instance", "a"),
                ("job", "1"),
                ("x", "b"),
            ],
            0,
        ),
    ];
    assert_eq!(
        plan.combine(base, &conflicting),
        Err(QueryError::Execution("conflicting label: x".into()))
    );
}

#[test]
fn histogram_fraction_cases_from_histograms_test() {
    let inf = f64::INFINITY;
    let b = |pairs: &[(f64, f64)]| -> Vec<histogram::Bucket> {
        pairs
            .iter()
            .map(|&(upper, count)| histogram::Bucket { upper, count })
            .collect()
    };
    let neg = [(-3.0, 10.0), (-2.0, 12.0), (-1.0, 15.0), (inf, 100.0)];
    let pos = [(1.0, 1.0), (2.0, 3.0), (3.0, 6.0), (inf, 100.0)];
    type Case<'a> = (&'a [(f64, f64)], f64, f64, f64);
    let cases: &[Case] = &[
        (
            &[
                (0.0, 0.0),
                (2.0, 10.0),
                (4.0, 20.0),
                (6.0, 30.0),
                (inf, 30.0),
            ],
            0.0,
            4.0,
            2.0 / 3.0,
        ),
        (
            &[
                (0.0, 0.0),
                (2.0, 10.0),
                (4.0, 20.0),
                (6.0, 30.0),
                (inf, 30.0),
            ],
            0.0,
            3.5,
            0.5833333333333334,
        ),
        (&pos, 0.0, 1.5, 0.02),
        (&neg, -4.0, -2.0, 0.02),
        (&neg, f64::NEG_INFINITY, -1.5, 0.135),
        (&neg, 0.0, 1.0, 0.0),
        (&pos, 400.0, inf, 0.94),
        (&pos, 2.0, 3.5, 0.03),
        (&pos, 0.5, 2.0, 0.025),
        (&pos, 1.0, 3.0, 0.05),
        (&[(0.5, 2.5), (1.0, 7.5), (inf, 100.0)], 0.1, 0.75, 0.045),
        (
            &[
                (-2.0, 5.0),
                (-1.0, 10.0),
                (0.0, 15.0),
                (1.0, 20.0),
                (inf, 100.0),
            ],
            -1.0,
            1.0,
            0.1,
        ),
    ];
    for (buckets, lo, hi, want) in cases {
        let got = histogram::bucket_fraction(*lo, *hi, &mut b(buckets));
        assert_close(got, *want);
    }
    assert!(histogram::bucket_fraction(0.0, 5.0, &mut b(&[(1.0, 0.0), (inf, 0.0)])).is_nan());
    // testhistogram2: q(1/6), q(1/2), q(5/6) in the middle of buckets.
    let h2 = [
        (0.0, 0.0),
        (2.0, 10.0),
        (4.0, 20.0),
        (6.0, 30.0),
        (inf, 30.0),
    ];
    for (q, want) in [(1.0 / 6.0, 1.0), (0.5, 3.0), (5.0 / 6.0, 5.0)] {
        assert_close(histogram::bucket_quantile(q, &mut b(&h2)).0, want);
    }
    // testhistogram{start="negative"} at 50m: the lowest bucket's bound when q falls in it.
    let negh = [(-0.2, 10.0), (-0.1, 20.0), (0.3, 20.0), (inf, 30.0)];
    assert_close(histogram::bucket_quantile(0.0, &mut b(&negh)).0, -0.2);
    assert_close(histogram::bucket_quantile(0.5, &mut b(&negh)).0, -0.15);
    // Duplicate bounds (le="1" and le="1.0") are merged before interpolating.
    let (q, forced) =
        histogram::bucket_quantile(0.5, &mut b(&[(1.0, 2.0), (1.0, 2.0), (inf, 8.0)]));
    assert_eq!((q, forced), (1.0, false));
}

#[test]
fn le_values_parse_like_go() {
    // testhistogram{start="positive"} at 50m: 0.1:50 .2:70 1e0:110 +Inf:120.
    let mut r = Run::new();
    let v = buckets(
        "testhistogram_bucket",
        &[("start", "positive")],
        &[("0.1", 50.0), (".2", 70.0), ("1e0", 110.0), ("+Inf", 120.0)],
    );
    let out = r
        .call(
            "histogram_quantile",
            vec![StepArg::Scalar(0.5), StepArg::Vector(v)],
        )
        .unwrap();
    assert!(r.annotations.is_empty());
    // rank 60 falls in (0.1, 0.2]: 0.1 + 0.1 * 10/20.
    assert_close(out[0].f, 0.15);
    let v = buckets(
        "x",
        &[],
        &[("-.2", 1.0), ("inf", 2.0), ("1_0", 1.0), ("0x1p-2", 1.0)],
    );
    let out = r
        .call(
            "histogram_quantile",
            vec![StepArg::Scalar(0.5), StepArg::Vector(v)],
        )
        .unwrap();
    assert_eq!(out.len(), 1);
    // Only "1_0" is rejected, as in Go.
    assert_eq!(
        r.messages(AnnotationKind::Warning),
        ["bucket label \"le\" is missing or has a malformed value of \"1_0\" for metric name \"x\""]
    );
    assert_eq!(histogram::parse_le("0x1p-2"), Some(0.25));
    assert_eq!(histogram::parse_le("-0X1.8p1"), Some(-3.0));
    assert_eq!(histogram::parse_le("0x1"), None);
    assert_eq!(histogram::parse_le("Infinity"), Some(f64::INFINITY));
    assert!(histogram::parse_le("nan").unwrap().is_nan());
    assert_eq!(histogram::parse_le(" 1"), None);
}

// ---- no panics on any input ----

mod no_panics {
    use proptest::prelude::*;

    use super::*;
    use crate::promql::ast::{ValueType, FUNCTIONS};

    fn float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
            Just(-0.0),
            -1e3..1e3f64,
        ]
    }

    fn label_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("+Inf".to_string()),
            Just("0.5".to_string()),
            Just("x".to_string()),
            "[a-z0-9.$(){}\\\\*+?|^]{0,6}",
        ]
    }

    fn vector() -> impl Strategy<Value = Vector> {
        prop::collection::vec(
            (
                label_value(),
                label_value(),
                float(),
                any::<i64>(),
                any::<bool>(),
            ),
            0..6,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(a, le, f, t, drop_name)| Sample {
                    metric: Labels::from_pairs([("__name__", "m"), ("a", &a), ("le", &le)]),
                    t,
                    f,
                    drop_name,
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn range_functions(
            mut points in prop::collection::vec((-1_000_000i64..1_000_000, float()), 0..12),
            scalars in prop::collection::vec(float(), 0..3),
            range in 1i64..2_000_000,
            ts in -1_000_000i64..1_000_000,
        ) {
            points.sort_by_key(|p| p.0);
            points.dedup_by_key(|p| p.0);
            let pts: Vec<FPoint> = points.iter().map(|&(t, f)| FPoint { t, f }).collect();
            let metric = labels(&[("__name__", "x")]);
            let mut r = Run::new();
            for f in FUNCTIONS {
                if let Some(func) = range_function(f.name) {
                    let w = Window {
                        points: &pts,
                        range_start: ts - range,
                        range_end: ts,
                        metric: &metric,
                    };
                    let _ = func(&w, &scalars, &mut r.ctx(ts));
                    let _ = validate_range_args(f.name, &scalars);
                }
            }
        }

        #[test]
        fn instant_functions(
            vectors in prop::collection::vec(vector(), 2),
            scalars in prop::collection::vec(float(), 4),
            strings in prop::collection::vec(label_value(), 4),
            extra in 0usize..3,
        ) {
            let mut r = Run::new();
            for f in FUNCTIONS {
                if f.arg_types.contains(&ValueType::Matrix) {
                    continue;
                }
                let n = f.arg_types.len() + if f.variadic != 0 { extra } else { 0 };
                let args: Vec<StepArg> = (0..n)
                    .map(|i| {
                        let t = f.arg_types[i.min(f.arg_types.len().saturating_sub(1))];
                        match t {
                            ValueType::Scalar => StepArg::Scalar(scalars[i % 4]),
                            ValueType::String => StepArg::String(strings[i % 4].clone()),
                            _ => StepArg::Vector(vectors[i % 2].clone()),
                        }
                    })
                    .collect();
                let _ = r.call(f.name, args);
            }
        }
    }
}
