//! Unit tests of the aggregation operators on hand-built matrices.

use o11y_tsdb::labels::Labels;

use super::super::ast::{AggOp, PosRange};
use super::super::error::QueryError;
use super::super::value::{Annotations, FPoint, Matrix, Series};
use super::*;

const MIN: i64 = 60_000;

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn ser(pairs: &[(&str, &str)], pts: &[(i64, f64)]) -> Series {
    Series {
        metric: ls(pairs),
        floats: pts.iter().map(|&(t, f)| FPoint { t, f }).collect(),
        drop_name: false,
    }
}

fn instant(t: i64) -> Steps {
    Steps {
        start: t,
        end: t,
        step: 0,
    }
}

fn range(start: i64, end: i64, step: i64) -> Steps {
    Steps { start, end, step }
}

struct Run {
    op: AggOp,
    param: AggParam,
    grouping: Vec<String>,
    without: bool,
    steps: Steps,
}

impl Run {
    fn new(op: AggOp, steps: Steps) -> Run {
        Run {
            op,
            param: AggParam::None,
            grouping: Vec::new(),
            without: false,
            steps,
        }
    }
    fn by(mut self, g: &[&str]) -> Run {
        self.grouping = g.iter().map(|s| s.to_string()).collect();
        self
    }
    fn without(mut self, g: &[&str]) -> Run {
        self.without = true;
        self.by(g)
    }
    fn k(mut self, k: f64) -> Run {
        let n = steps_len(self.steps);
        self.param = AggParam::Scalars(vec![k; n]);
        self
    }
    fn params(mut self, v: &[f64]) -> Run {
        self.param = AggParam::Scalars(v.to_vec());
        self
    }
    fn label(mut self, l: &str) -> Run {
        self.param = AggParam::String(l.into());
        self
    }
    fn go(&self, input: Matrix) -> (Result<Matrix, QueryError>, Annotations) {
        let call = AggregateCall {
            op: self.op,
            param: self.param.clone(),
            grouping: &self.grouping,
            without: self.without,
            steps: self.steps,
            pos: PosRange::new(0, 40),
            param_pos: Some(PosRange::new(5, 8)),
            expr_pos: PosRange::new(10, 40),
        };
        let mut a = Annotations::default();
        let r = aggregate(&call, input, &mut a);
        (r, a)
    }
    fn ok(&self, input: Matrix) -> Matrix {
        let (r, a) = self.go(input);
        assert!(a.is_empty(), "unexpected annotations {a:?}");
        r.expect("aggregation failed")
    }
}

fn steps_len(s: Steps) -> usize {
    if s.end <= s.start || s.step <= 0 {
        1
    } else {
        ((i128::from(s.end) - i128::from(s.start)) / i128::from(s.step) + 1).min(1 << 20) as usize
    }
}

/// `(labels as text, values)` of an instant result, in order.
fn inst(m: &Matrix) -> Vec<(String, f64)> {
    m.iter()
        .map(|s| {
            assert_eq!(s.floats.len(), 1, "{s}");
            (s.metric.to_string(), s.floats[0].f)
        })
        .collect()
}

/// `(labels as text, points)` of a result, sorted by labels.
fn sorted(m: &Matrix) -> Vec<(String, Vec<(i64, f64)>)> {
    let mut v: Vec<_> = m
        .iter()
        .map(|s| {
            (
                s.metric.to_string(),
                s.floats.iter().map(|p| (p.t, p.f)).collect::<Vec<_>>(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || ((a - b) / b).abs() < 1e-12
}

/// One series `name{job, instance, group}` per row, each with one point at `t`.
fn job_series(name: &str, t: i64, rows: &[(&str, &str, &str, f64)]) -> Matrix {
    rows.iter()
        .map(|&(job, inst, group, v)| {
            ser(
                &[
                    ("__name__", name),
                    ("job", job),
                    ("instance", inst),
                    ("group", group),
                ],
                &[(t, v)],
            )
        })
        .collect()
}

/// The `http_requests` of Prometheus's aggregators.test at 50m.
fn http_requests() -> Matrix {
    job_series(
        "http_requests",
        50 * MIN,
        &[
            ("api-server", "0", "production", 100.0),
            ("api-server", "1", "production", 200.0),
            ("api-server", "0", "canary", 300.0),
            ("api-server", "1", "canary", 400.0),
            ("app-server", "0", "production", 500.0),
            ("app-server", "1", "production", 600.0),
            ("app-server", "0", "canary", 700.0),
            ("app-server", "1", "canary", 800.0),
        ],
    )
}

#[test]
fn sum_by_without_and_plain() {
    let at = instant(50 * MIN);
    let api: Matrix = http_requests().into_iter().take(4).collect();
    let r = Run::new(AggOp::Sum, at).by(&["group"]).ok(api.clone());
    assert_eq!(
        inst(&r),
        vec![
            (r#"{group="production"}"#.into(), 300.0),
            (r#"{group="canary"}"#.into(), 700.0)
        ]
    );
    let r = Run::new(AggOp::Sum, at)
        .without(&["instance"])
        .ok(api.clone());
    assert_eq!(
        inst(&r),
        vec![
            (r#"{group="production", job="api-server"}"#.into(), 300.0),
            (r#"{group="canary", job="api-server"}"#.into(), 700.0)
        ]
    );
    let r = Run::new(AggOp::Sum, at).ok(api.clone());
    assert_eq!(inst(&r), vec![("{}".into(), 1000.0)]);
    // Empty `without` still drops the name.
    let r = Run::new(AggOp::Sum, at).without(&[]).ok(api.clone());
    assert_eq!(r.len(), 4);
    assert!(r.iter().all(|s| s.metric.metric_name().is_none()));
    // Unknown labels in `by` do not appear; `by` order and duplicates do not matter.
    let r = Run::new(AggOp::Sum, at)
        .by(&["nonexistent", "job", "job"])
        .ok(http_requests());
    assert_eq!(
        inst(&r),
        vec![
            (r#"{job="api-server"}"#.into(), 1000.0),
            (r#"{job="app-server"}"#.into(), 2600.0)
        ]
    );
    // by (__name__) keeps the name.
    let r = Run::new(AggOp::Sum, at).by(&["__name__"]).ok(api);
    assert_eq!(inst(&r), vec![("http_requests".into(), 1000.0)]);
}

#[test]
#[allow(clippy::excessive_precision)] // the value of Prometheus's test
fn avg_count_min_max_group() {
    let at = instant(50 * MIN);
    let by_job = |op| inst(&Run::new(op, at).by(&["job"]).ok(http_requests()));
    assert_eq!(
        by_job(AggOp::Avg),
        vec![
            (r#"{job="api-server"}"#.into(), 250.0),
            (r#"{job="app-server"}"#.into(), 650.0)
        ]
    );
    assert_eq!(by_job(AggOp::Count)[1].1, 4.0);
    assert_eq!(by_job(AggOp::Min)[0].1, 100.0);
    assert_eq!(by_job(AggOp::Max)[1].1, 800.0);
    assert_eq!(by_job(AggOp::Group)[1].1, 1.0);

    // NaN is replaced by any number, whatever its position.
    let vals = |v: &[f64]| -> Matrix {
        v.iter()
            .enumerate()
            .map(|(i, &f)| ser(&[("i", &i.to_string())], &[(0, f)]))
            .collect()
    };
    let one = |op, v: &[f64]| Run::new(op, instant(0)).ok(vals(v))[0].floats[0].f;
    assert_eq!(one(AggOp::Max, &[1.0, 2.0, f64::NAN, 3.0, 4.0]), 4.0);
    assert_eq!(one(AggOp::Min, &[1.0, 2.0, f64::NAN, 3.0, 4.0]), 1.0);
    assert_eq!(one(AggOp::Max, &[f64::NAN, 1.0]), 1.0);
    assert_eq!(one(AggOp::Min, &[f64::NAN, 1.0]), 1.0);
    assert!(one(AggOp::Max, &[f64::NAN]).is_nan());
    assert_eq!(
        one(AggOp::Max, &[f64::NEG_INFINITY, f64::NAN]),
        f64::NEG_INFINITY
    );
    assert_eq!(one(AggOp::Count, &[f64::NAN, 1.0]), 2.0);

    // Kahan summation.
    assert_eq!(one(AggOp::Sum, &[2.0, 8.0, 1e100, -1e100]), 10.0);
    assert!(one(AggOp::Sum, &[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
    assert_eq!(one(AggOp::Sum, &[f64::INFINITY, 2.0]), f64::INFINITY);
    assert!(one(AggOp::Sum, &[f64::NAN, 2.0]).is_nan());

    // avg: direct mean, incremental on overflow, infinities.
    assert_eq!(one(AggOp::Avg, &[52.0; 12]), 52.0);
    assert_eq!(one(AggOp::Avg, &[8.0, 10.0, 12.0]), 10.0);
    let inf = f64::INFINITY;
    assert_eq!(one(AggOp::Avg, &[0.0, inf, inf, 0.0]), inf);
    assert_eq!(one(AggOp::Avg, &[inf, 0.0, inf]), inf);
    assert_eq!(one(AggOp::Avg, &[-inf, -inf, 0.0]), -inf);
    assert!(one(AggOp::Avg, &[inf, inf, -inf]).is_nan());
    assert!(one(AggOp::Avg, &[-inf, 0.0, inf]).is_nan());
    assert!(one(AggOp::Avg, &[1.0, f64::NAN]).is_nan());
    let big = 9.988465674311579e307;
    assert!(close(one(AggOp::Avg, &[big; 4]), big));
    assert!(close(one(AggOp::Avg, &[-big; 4]), -big));
    assert!(one(AggOp::Avg, &[-big, -big, big, big]).abs() < 1e292);
}

#[test]
fn stddev_stdvar() {
    let at = instant(50 * MIN);
    let r = Run::new(AggOp::Stddev, at).ok(http_requests());
    assert!(close(r[0].floats[0].f, 229.12878474779));
    let r = Run::new(AggOp::Stdvar, at).ok(http_requests());
    assert!(close(r[0].floats[0].f, 52500.0));

    let vals = |v: &[f64]| -> Matrix {
        v.iter()
            .enumerate()
            .map(|(i, &f)| ser(&[("label", &i.to_string())], &[(0, f)]))
            .collect()
    };
    let one = |op, v: &[f64]| Run::new(op, instant(0)).ok(vals(v))[0].floats[0].f;
    assert_eq!(one(AggOp::Stddev, &[1.0, 2.0]), 0.5);
    assert_eq!(one(AggOp::Stdvar, &[1.0, 2.0]), 0.25);
    assert_eq!(one(AggOp::Stdvar, &[1.33, 1.33, 1.33]), 0.0);
    for v in [
        [1.0, 2.0, f64::NAN],
        [f64::NAN, 1.0, 2.0],
        [1.0, 2.0, f64::INFINITY],
        [f64::INFINITY, 1.0, 2.0],
    ] {
        assert!(one(AggOp::Stddev, &v).is_nan(), "{v:?}");
        assert!(one(AggOp::Stdvar, &v).is_nan(), "{v:?}");
    }
    assert!(one(AggOp::Stddev, &[f64::INFINITY]).is_nan());
    // by (label): each group alone; a single NaN or Inf is NaN, a number is 0.
    let r = Run::new(AggOp::Stddev, instant(0))
        .by(&["label"])
        .ok(vals(&[1.0, f64::INFINITY]));
    assert_eq!(r[0].floats[0].f, 0.0);
    assert!(r[1].floats[0].f.is_nan());
}

#[test]
fn multi_step_with_gaps() {
    let steps = range(0, 4 * MIN, MIN);
    let input = vec![
        ser(&[("g", "a"), ("i", "1")], &[(0, 1.0), (2 * MIN, 3.0)]),
        ser(&[("g", "a"), ("i", "2")], &[(MIN, 10.0), (2 * MIN, 20.0)]),
        ser(&[("g", "b"), ("i", "3")], &[(4 * MIN, 7.0)]),
        // Off-grid and out-of-range points are ignored.
        ser(
            &[("g", "b"), ("i", "4")],
            &[(MIN + 1, 100.0), (9 * MIN, 100.0)],
        ),
        ser(&[("g", "c"), ("i", "5")], &[]),
    ];
    let r = Run::new(AggOp::Sum, steps).by(&["g"]).ok(input.clone());
    assert_eq!(
        sorted(&r),
        vec![
            (
                r#"{g="a"}"#.into(),
                vec![(0, 1.0), (MIN, 10.0), (2 * MIN, 23.0)]
            ),
            (r#"{g="b"}"#.into(), vec![(4 * MIN, 7.0)]),
        ]
    );
    let r = Run::new(AggOp::Count, steps).ok(input.clone());
    assert_eq!(
        sorted(&r),
        vec![(
            "{}".into(),
            vec![(0, 1.0), (MIN, 1.0), (2 * MIN, 2.0), (4 * MIN, 1.0)]
        )]
    );
    let r = Run::new(AggOp::Quantile, steps)
        .k(0.5)
        .by(&["g"])
        .ok(input.clone());
    assert_eq!(
        sorted(&r)[0].1,
        vec![(0, 1.0), (MIN, 10.0), (2 * MIN, 11.5)]
    );
    // Instant query at a step between two points: only series with a point there.
    let r = Run::new(AggOp::Sum, instant(2 * MIN)).by(&["g"]).ok(input);
    assert_eq!(inst(&r), vec![(r#"{g="a"}"#.into(), 23.0)]);
}

#[test]
fn drop_name_propagation() {
    let at = instant(10 * MIN);
    let mut a = ser(&[("__name__", "m"), ("env", "1")], &[(10 * MIN, 10.0)]);
    let mut b = ser(&[("__name__", "m"), ("env", "2")], &[(10 * MIN, 0.05)]);
    b.drop_name = true;
    // Any dropping series in the group makes the group drop, in either order.
    for input in [vec![a.clone(), b.clone()], vec![b.clone(), a.clone()]] {
        let r = Run::new(AggOp::Sum, at).by(&["__name__"]).ok(input);
        assert_eq!(r.len(), 1);
        assert!(r[0].drop_name);
        assert_eq!(r[0].metric.to_string(), "m");
        assert!(close(r[0].floats[0].f, 10.05));
    }
    let r = Run::new(AggOp::Sum, at)
        .by(&["__name__"])
        .ok(vec![a.clone()]);
    assert!(!r[0].drop_name);
    // Range: the flag of the group's last step with a value.
    let steps = range(0, MIN, MIN);
    a.floats = vec![FPoint { t: 0, f: 1.0 }, FPoint { t: MIN, f: 1.0 }];
    b.floats = vec![FPoint { t: 0, f: 1.0 }];
    let r = Run::new(AggOp::Max, steps)
        .by(&["__name__"])
        .ok(vec![a.clone(), b.clone()]);
    assert!(!r[0].drop_name);
    b.floats = vec![FPoint { t: MIN, f: 1.0 }];
    let r = Run::new(AggOp::Max, steps).by(&["__name__"]).ok(vec![a, b]);
    assert!(r[0].drop_name);
}

/// The topk/bottomk data of aggregators.test at 50m (with a NaN series).
fn topk_data() -> Matrix {
    let t = 50 * MIN;
    let mut m = http_requests();
    m.insert(
        2,
        ser(
            &[
                ("__name__", "http_requests"),
                ("job", "api-server"),
                ("instance", "2"),
                ("group", "production"),
            ],
            &[(t, f64::NAN)],
        ),
    );
    m
}

fn names(m: &Matrix) -> Vec<String> {
    m.iter()
        .map(|s| {
            format!(
                "{}/{}/{}",
                s.metric.get("job").unwrap_or(""),
                s.metric.get("group").unwrap_or(""),
                s.metric.get("instance").unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn topk_bottomk_instant_order() {
    let at = instant(50 * MIN);
    let r = Run::new(AggOp::Topk, at).k(3.0).ok(topk_data());
    assert_eq!(
        names(&r),
        [
            "app-server/canary/1",
            "app-server/canary/0",
            "app-server/production/1"
        ]
    );
    assert_eq!(r[0].floats[0].f, 800.0);
    // Full labels kept, name included.
    assert_eq!(r[0].metric.metric_name(), Some("http_requests"));
    let r = Run::new(AggOp::Bottomk, at).k(3.0).ok(topk_data());
    assert_eq!(
        names(&r),
        [
            "api-server/production/0",
            "api-server/production/1",
            "api-server/canary/0"
        ]
    );
    // NaN sorts last for both.
    let prod: Matrix = topk_data().into_iter().take(3).collect();
    let r = Run::new(AggOp::Topk, at).k(3.0).ok(prod.clone());
    assert_eq!(
        names(&r),
        [
            "api-server/production/1",
            "api-server/production/0",
            "api-server/production/2"
        ]
    );
    assert!(r[2].floats[0].f.is_nan());
    let r = Run::new(AggOp::Topk, at).k(9999999999.0).ok(prod.clone());
    assert_eq!(r.len(), 3);
    assert!(r[2].floats[0].f.is_nan());
    let r = Run::new(AggOp::Bottomk, at).k(5.0).ok(prod.clone());
    assert_eq!(
        names(&r),
        [
            "api-server/production/0",
            "api-server/production/1",
            "api-server/production/2"
        ]
    );
    // A NaN is displaced by any number.
    let r = Run::new(AggOp::Topk, at).k(1.0).ok(prod.clone());
    assert_eq!(names(&r), ["api-server/production/1"]);
    let r = Run::new(AggOp::Bottomk, at).k(1.0).ok(prod);
    assert_eq!(names(&r), ["api-server/production/0"]);
    // by (group): groups in order of first appearance.
    let r = Run::new(AggOp::Topk, at)
        .k(1.0)
        .by(&["group"])
        .ok(topk_data());
    assert_eq!(
        names(&r),
        ["app-server/production/1", "app-server/canary/1"]
    );
    let r = Run::new(AggOp::Bottomk, at)
        .k(2.0)
        .by(&["group"])
        .ok(topk_data());
    assert_eq!(
        names(&r),
        [
            "api-server/production/0",
            "api-server/production/1",
            "api-server/canary/0",
            "api-server/canary/1"
        ]
    );
    // k is truncated: 2.9 -> 2.
    let r = Run::new(AggOp::Topk, at).k(2.9).ok(topk_data());
    assert_eq!(r.len(), 2);
}

#[test]
fn topk_ties_follow_go_heap_and_insertion_sort() {
    let at = instant(0);
    let input: Matrix = (0..5)
        .map(|i| ser(&[("i", &i.to_string())], &[(0, 1.0)]))
        .collect();
    // All equal: heap = [0,1,2] (no swaps), later equal values do not displace the root;
    // insertion sort with strict Less keeps heap order.
    let r = Run::new(AggOp::Topk, at).k(3.0).ok(input.clone());
    let idx: Vec<_> = r.iter().map(|s| s.metric.get("i").unwrap_or("")).collect();
    assert_eq!(idx, ["0", "1", "2"]);
    let r = Run::new(AggOp::Bottomk, at).k(3.0).ok(input);
    let idx: Vec<_> = r.iter().map(|s| s.metric.get("i").unwrap_or("")).collect();
    assert_eq!(idx, ["0", "1", "2"]);
    // Two NaNs: Go's comparator reverses them during the sort.
    let input = vec![
        ser(&[("i", "a")], &[(0, f64::NAN)]),
        ser(&[("i", "b")], &[(0, f64::NAN)]),
        ser(&[("i", "c")], &[(0, 5.0)]),
    ];
    let r = Run::new(AggOp::Topk, at).k(3.0).ok(input);
    let idx: Vec<_> = r.iter().map(|s| s.metric.get("i").unwrap_or("")).collect();
    assert_eq!(idx[0], "c");
    assert_eq!(r.len(), 3);

    // More than 12 elements (past Go's insertion sort): still sorted, NaN last.
    let input: Matrix = (0..30)
        .map(|i| {
            let f = if i == 7 {
                f64::NAN
            } else {
                ((i * 17) % 30) as f64
            };
            ser(&[("i", &i.to_string())], &[(0, f)])
        })
        .collect();
    let r = Run::new(AggOp::Topk, at).k(20.0).ok(input.clone());
    let v: Vec<f64> = r.iter().map(|s| s.floats[0].f).collect();
    let want: Vec<f64> = (10..30)
        .rev()
        .map(f64::from)
        .filter(|&f| f != 29.0)
        .collect();
    // 29 belongs to the NaN series (7 * 17 % 30 = 29), so the top 20 are 28..=9.
    assert_eq!(v, [want, vec![9.0]].concat());
    let r = Run::new(AggOp::Bottomk, at).k(30.0).ok(input);
    let v: Vec<f64> = r.iter().map(|s| s.floats[0].f).collect();
    assert!(v[..29].windows(2).all(|w| w[0] < w[1]));
    assert!(v[29].is_nan());
}

#[test]
fn topk_range_with_per_step_k() {
    // k = 1, 2, 3 over three steps (as `topk(scalar(foo), ...)`).
    let steps = range(0, 2 * MIN, MIN);
    let input: Matrix = (0..4)
        .map(|i| {
            ser(
                &[("i", &i.to_string())],
                &[(0, i as f64), (MIN, i as f64), (2 * MIN, i as f64)],
            )
        })
        .collect();
    let r = Run::new(AggOp::Topk, steps)
        .params(&[1.0, 2.0, 3.0])
        .ok(input.clone());
    assert_eq!(
        sorted(&r),
        vec![
            (r#"{i="1"}"#.into(), vec![(2 * MIN, 1.0)]),
            (r#"{i="2"}"#.into(), vec![(MIN, 2.0), (2 * MIN, 2.0)]),
            (
                r#"{i="3"}"#.into(),
                vec![(0, 3.0), (MIN, 3.0), (2 * MIN, 3.0)]
            ),
        ]
    );
    // k < 1 at some steps: nothing there.
    let r = Run::new(AggOp::Bottomk, steps)
        .params(&[0.0, 1.0, -3.0])
        .ok(input.clone());
    assert_eq!(sorted(&r), vec![(r#"{i="0"}"#.into(), vec![(MIN, 0.0)])]);
    // count(limitk(k, ...)) per step.
    let r = Run::new(AggOp::Limitk, steps)
        .params(&[1.0, 2.0, 8.0])
        .ok(input.clone());
    let mut per_step = [0; 3];
    for s in &r {
        for p in &s.floats {
            per_step[(p.t / MIN) as usize] += 1;
        }
    }
    assert_eq!(per_step, [1, 2, 4]);
    // limitk takes the first series in input order.
    assert_eq!(sorted(&r)[0].1.len(), 3);
}

#[test]
fn k_parameter_errors() {
    let at = instant(0);
    for op in [AggOp::Topk, AggOp::Bottomk, AggOp::Limitk] {
        let (r, _) = Run::new(op, at).k(f64::NAN).go(Vec::new());
        assert_eq!(
            r,
            Err(QueryError::Execution("Parameter value is NaN".into()))
        );
        let (r, _) = Run::new(op, at)
            .k(1e20)
            .go(vec![ser(&[("a", "b")], &[(0, 1.0)])]);
        assert_eq!(
            r,
            Err(QueryError::Execution(
                "Scalar value 1e+20 overflows int64".into()
            ))
        );
        // k < 1 everywhere: empty, even with an underflowing k.
        let r = Run::new(op, at)
            .k(0.0)
            .ok(vec![ser(&[("a", "b")], &[(0, 1.0)])]);
        assert!(r.is_empty());
        let r = Run::new(op, at)
            .k(-1e30)
            .ok(vec![ser(&[("a", "b")], &[(0, 1.0)])]);
        assert!(r.is_empty());
    }
    // A NaN at one step fails even if the other steps are below 1.
    let (r, _) = Run::new(AggOp::Topk, range(0, MIN, MIN))
        .params(&[0.0, f64::NAN])
        .go(Vec::new());
    assert!(r.is_err());
    let (r, _) = Run::new(AggOp::Topk, range(0, MIN, MIN))
        .params(&[-1e19, 2.0])
        .go(Vec::new());
    assert_eq!(
        r,
        Err(QueryError::Execution(
            "Scalar value -1e+19 underflows int64".into()
        ))
    );
    let (r, _) = Run::new(AggOp::LimitRatio, at).k(f64::NAN).go(Vec::new());
    assert_eq!(r, Err(QueryError::Execution("Ratio value is NaN".into())));
}

fn many_series(n: usize, steps: usize) -> Matrix {
    (0..n)
        .map(|i| Series {
            metric: ls(&[
                ("__name__", "http_requests"),
                ("instance", &format!("host-{i}")),
                ("job", if i % 3 == 0 { "api" } else { "web" }),
                ("x", &(i % 7).to_string()),
            ]),
            floats: (0..steps)
                .filter(|s| (s + i) % 11 != 0)
                .map(|s| FPoint {
                    t: s as i64 * MIN,
                    f: ((i * 7919 + s * 104729) % 1000) as f64 / 10.0,
                })
                .collect(),
            drop_name: false,
        })
        .collect()
}

#[test]
fn limit_ratio_complement_and_warnings() {
    let n_steps = 5;
    let steps = range(0, (n_steps as i64 - 1) * MIN, MIN);
    let input = many_series(200, n_steps);
    let total: usize = input.iter().map(|s| s.floats.len()).sum();
    for r in [0.2, 0.5, 0.8, 0.37] {
        let a = Run::new(AggOp::LimitRatio, steps).k(r).ok(input.clone());
        let b = Run::new(AggOp::LimitRatio, steps)
            .k(-(1.0 - r))
            .ok(input.clone());
        let pts = |m: &Matrix| -> std::collections::HashSet<(String, i64)> {
            m.iter()
                .flat_map(|s| s.floats.iter().map(|p| (s.metric.to_string(), p.t)))
                .collect()
        };
        let (pa, pb) = (pts(&a), pts(&b));
        assert!(pa.is_disjoint(&pb), "r={r}");
        assert_eq!(pa.len() + pb.len(), total, "r={r}");
        // Selection is per series: a selected series is selected at all its steps.
        for s in &a {
            let orig = input.iter().find(|o| o.metric == s.metric);
            assert_eq!(orig.map(|o| o.floats.len()), Some(s.floats.len()));
        }
        // Roughly r of the series.
        assert!(a.len() > (200.0 * r * 0.6) as usize && a.len() < (200.0 * r * 1.4) as usize + 5);
        // The instant query selects the same series as the range query at that step.
        let i = Run::new(AggOp::LimitRatio, instant(2 * MIN))
            .k(r)
            .ok(input.clone());
        let range_at: std::collections::HashSet<String> = a
            .iter()
            .filter(|s| s.floats.iter().any(|p| p.t == 2 * MIN))
            .map(|s| s.metric.to_string())
            .collect();
        let inst_set: std::collections::HashSet<String> =
            i.iter().map(|s| s.metric.to_string()).collect();
        assert_eq!(range_at, inst_set);
    }
    // Out of range: capped, with a warning at the parameter.
    let (r, a) = Run::new(AggOp::LimitRatio, steps).k(1.1).go(input.clone());
    assert_eq!(
        r.map(|m| m.iter().map(|s| s.floats.len()).sum::<usize>()),
        Ok(total)
    );
    let msgs: Vec<_> = a.iter().map(|a| (a.msg.clone(), a.pos)).collect();
    assert_eq!(
        msgs,
        vec![(
            "ratio value should be between -1 and 1, got 1.1, capping to 1".to_string(),
            PosRange::new(5, 8)
        )]
    );
    let (_, a) = Run::new(AggOp::LimitRatio, steps).k(-1.1).go(input.clone());
    assert_eq!(
        a.iter().next().map(|a| a.msg.clone()),
        Some("ratio value should be between -1 and 1, got -1.1, capping to -1".into())
    );
    // 0 everywhere: empty; 0 at some steps: nothing at those steps.
    assert!(Run::new(AggOp::LimitRatio, steps)
        .k(0.0)
        .ok(input.clone())
        .is_empty());
    let r = Run::new(AggOp::LimitRatio, steps)
        .params(&[0.0, 1.0, 0.0, -1.0, 0.0])
        .ok(input);
    let mut per_step = [0; 5];
    for s in &r {
        for p in &s.floats {
            per_step[(p.t / MIN) as usize] += 1;
        }
    }
    assert_eq!(per_step[0], 0);
    assert_eq!(per_step[2], 0);
    assert!(per_step[1] > 150 && per_step[3] > 150);
}

#[test]
fn limitk_instant_is_first_k_in_heap_order() {
    let at = instant(0);
    let input: Matrix = [5.0, 3.0, 9.0, 1.0]
        .iter()
        .enumerate()
        .map(|(i, &f)| ser(&[("g", "x"), ("i", &i.to_string())], &[(0, f)]))
        .collect();
    let r = Run::new(AggOp::Limitk, at).k(3.0).ok(input.clone());
    // Series 0, 1, 2 pushed onto a min-heap: [3, 5, 9].
    let v: Vec<f64> = r.iter().map(|s| s.floats[0].f).collect();
    assert_eq!(v, [3.0, 5.0, 9.0]);
    let r = Run::new(AggOp::Limitk, at).k(1.0).ok(input);
    assert_eq!(r[0].floats[0].f, 5.0);
}

#[test]
fn count_values_labels() {
    let at = instant(MIN);
    let input = job_series(
        "version",
        MIN,
        &[
            ("api", "0", "production", 6.0),
            ("api", "1", "production", 6.0),
            ("api", "0", "canary", 8.0),
            ("app", "0", "production", 6.0),
            ("app", "0", "canary", 7.0),
        ],
    );
    let r = Run::new(AggOp::CountValues, at)
        .label("version")
        .ok(input.clone());
    let mut got = inst(&r);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            (r#"{version="6"}"#.into(), 3.0),
            (r#"{version="7"}"#.into(), 1.0),
            (r#"{version="8"}"#.into(), 1.0)
        ]
    );
    assert!(r.iter().all(|s| !s.drop_name));
    // Overwriting an existing label with `without`.
    let r = Run::new(AggOp::CountValues, at)
        .label("job")
        .without(&["instance"])
        .ok(input.clone());
    let mut got = inst(&r);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            (r#"{group="canary", job="7"}"#.into(), 1.0),
            (r#"{group="canary", job="8"}"#.into(), 1.0),
            (r#"{group="production", job="6"}"#.into(), 3.0)
        ]
    );
    // by: the listed labels and the value label.
    let r = Run::new(AggOp::CountValues, at)
        .label("v")
        .by(&["job"])
        .ok(input.clone());
    assert_eq!(r.len(), 4);
    assert!(r.iter().all(|s| s.metric.len() == 2));
    // without listing the value label: values are not told apart.
    let r = Run::new(AggOp::CountValues, at)
        .label("v")
        .without(&["v", "instance", "group"])
        .ok(input.clone());
    let mut got = inst(&r);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            (r#"{job="api"}"#.into(), 3.0),
            (r#"{job="app"}"#.into(), 2.0)
        ]
    );
    // Value formatting.
    let vals = [
        1e21,
        0.1,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1e-7,
        123456789.0,
    ];
    let input: Matrix = vals
        .iter()
        .enumerate()
        .map(|(i, &f)| ser(&[("i", &i.to_string())], &[(0, f)]))
        .collect();
    let r = Run::new(AggOp::CountValues, instant(0))
        .label("v")
        .ok(input);
    let got: Vec<String> = r
        .iter()
        .map(|s| s.metric.get("v").unwrap_or("").to_string())
        .collect();
    assert_eq!(
        got,
        [
            "1000000000000000000000",
            "0.1",
            "-0",
            "+Inf",
            "-Inf",
            "NaN",
            "0.0000001",
            "123456789"
        ]
    );
    // Invalid label name.
    let (r, _) = Run::new(AggOp::CountValues, at).label("").go(Vec::new());
    assert_eq!(
        r,
        Err(QueryError::Execution(r#"invalid label name """#.into()))
    );
}

#[test]
fn count_values_range() {
    let steps = range(0, 2 * MIN, MIN);
    let input = vec![
        ser(&[("i", "0")], &[(0, 1.0), (MIN, 2.0), (2 * MIN, 1.0)]),
        ser(&[("i", "1")], &[(0, 1.0), (2 * MIN, 2.0)]),
    ];
    let r = Run::new(AggOp::CountValues, steps).label("v").ok(input);
    assert_eq!(
        sorted(&r),
        vec![
            (r#"{v="1"}"#.into(), vec![(0, 2.0), (2 * MIN, 1.0)]),
            (r#"{v="2"}"#.into(), vec![(MIN, 1.0), (2 * MIN, 1.0)]),
        ]
    );
}

#[test]
fn quantile_values_and_warnings() {
    let at = instant(MIN);
    let mut input = Vec::new();
    for (test, vals) in [
        ("two", vec![0.0, 1.0]),
        ("three", vec![0.0, 1.0, 2.0]),
        ("uneven", vec![0.0, 1.0, 4.0]),
        ("nan", vec![0.0, 1.0, f64::NAN]),
    ] {
        for (i, v) in vals.into_iter().enumerate() {
            input.push(ser(
                &[("test", test), ("point", &i.to_string())],
                &[(MIN, v)],
            ));
        }
    }
    let q = |q: f64| {
        let (r, a) = Run::new(AggOp::Quantile, at)
            .k(q)
            .without(&["point"])
            .go(input.clone());
        (inst(&r.expect("quantile")), a)
    };
    let (r, a) = q(0.8);
    assert!(a.is_empty());
    let v: Vec<f64> = r.iter().map(|x| x.1).collect();
    assert!(close(v[0], 0.8) && close(v[1], 1.6) && close(v[2], 2.8) && close(v[3], 0.6));
    let (r, _) = q(0.2);
    assert!(close(r[0].1, 0.2) && close(r[2].1, 0.4) && r[3].1.is_nan());
    let (r, a) = q(f64::NAN);
    assert!(r.iter().all(|x| x.1.is_nan()));
    assert_eq!(
        a.iter().map(|a| a.msg.as_str()).collect::<Vec<_>>(),
        ["quantile value should be between 0 and 1, got NaN"]
    );
    let (r, a) = q(1.5);
    assert!(r.iter().all(|x| x.1 == f64::INFINITY));
    assert_eq!(
        a.iter().map(|a| a.msg.as_str()).collect::<Vec<_>>(),
        ["quantile value should be between 0 and 1, got 1.5"]
    );
    let (r, _) = q(-0.5);
    assert!(r.iter().all(|x| x.1 == f64::NEG_INFINITY));
    // Per-step q, both bounds exceeded: two warnings.
    let (_, a) = Run::new(AggOp::Quantile, range(0, MIN, MIN))
        .params(&[-1.0, 2.0])
        .go(input);
    assert_eq!(a.iter().count(), 2);
}

#[test]
fn go_float_formatting() {
    let cases = [
        (1.1, "1.1"),
        (1.0, "1"),
        (-1.0, "-1"),
        (1e20, "1e+20"),
        (100000.0, "100000"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-1.5e-7, "-1.5e-07"),
        (9.223372036854776e18, "9.223372036854776e+18"),
        (1e300, "1e+300"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (0.0, "0"),
    ];
    for (f, want) in cases {
        assert_eq!(crate::promql::value::go_format_g(f), want, "{f}");
    }
}

/// Straightforward per-step reference: gathers each step's values in input order.
fn naive(
    op: AggOp,
    input: &Matrix,
    n_steps: usize,
    key: impl Fn(&Series) -> String,
) -> Vec<(String, Vec<(i64, f64)>)> {
    let mut groups: std::collections::BTreeMap<String, Vec<(i64, f64)>> = Default::default();
    for s in 0..n_steps {
        let t = s as i64 * MIN;
        let mut per: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        for series in input {
            if let Some(p) = series.floats.iter().find(|p| p.t == t) {
                per.entry(key(series)).or_default().push(p.f);
            }
        }
        for (k, v) in per {
            let f = match op {
                AggOp::Sum => v.iter().sum(),
                AggOp::Count => v.len() as f64,
                AggOp::Max => v.iter().copied().fold(f64::MIN, f64::max),
                AggOp::Quantile => {
                    // q = 0.9 by full sort and interpolation.
                    let mut v = v.clone();
                    v.sort_by(|a, b| a.total_cmp(b));
                    let rank = 0.9 * (v.len() as f64 - 1.0);
                    let (lo, w) = (rank.floor() as usize, rank - rank.floor());
                    let hi = (lo + 1).min(v.len() - 1);
                    v[lo] * (1.0 - w) + v[hi] * w
                }
                _ => v.iter().sum::<f64>() / v.len() as f64,
            };
            groups.entry(k).or_default().push((t, f));
        }
    }
    groups.into_iter().collect()
}

#[test]
fn large_inputs_take_the_parallel_path_and_agree() {
    let n_steps = 120;
    let steps = range(0, (n_steps as i64 - 1) * MIN, MIN);
    let input = many_series(600, n_steps);
    for (op, by) in [
        (AggOp::Sum, vec![]),
        (AggOp::Sum, vec!["job"]),
        (AggOp::Count, vec!["x"]),
        (AggOp::Max, vec!["x", "job"]),
        (AggOp::Avg, vec!["job"]),
        (AggOp::Quantile, vec!["x"]),
        (AggOp::Quantile, vec![]),
    ] {
        let r = Run::new(op, steps).by(&by).k(0.9).ok(input.clone());
        let want = naive(op, &input, n_steps, |s| {
            let l: Vec<(&str, &str)> = by
                .iter()
                .filter_map(|b| s.metric.get(b).map(|v| (*b, v)))
                .collect();
            ls(&l).to_string()
        });
        let got = sorted(&r);
        assert_eq!(got.len(), want.len(), "{op}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0);
            assert_eq!(g.1.len(), w.1.len());
            for (a, b) in g.1.iter().zip(&w.1) {
                assert_eq!(a.0, b.0);
                assert!(
                    (a.1 - b.1).abs() <= 1e-9 * b.1.abs().max(1.0),
                    "{op} {a:?} {b:?}"
                );
            }
        }
    }
    // topk by job over all steps: per step, the top 3 values of each job.
    let r = Run::new(AggOp::Topk, steps)
        .k(3.0)
        .by(&["job"])
        .ok(input.clone());
    for s in 0..n_steps {
        let t = s as i64 * MIN;
        for job in ["api", "web"] {
            let mut vals: Vec<f64> = input
                .iter()
                .filter(|x| x.metric.get("job") == Some(job))
                .filter_map(|x| x.floats.iter().find(|p| p.t == t).map(|p| p.f))
                .collect();
            vals.sort_by(|a, b| b.total_cmp(a));
            let mut got: Vec<f64> = r
                .iter()
                .filter(|x| x.metric.get("job") == Some(job))
                .filter_map(|x| x.floats.iter().find(|p| p.t == t).map(|p| p.f))
                .collect();
            got.sort_by(|a, b| b.total_cmp(a));
            assert_eq!(got, vals[..3].to_vec(), "step {s} job {job}");
        }
    }
    // Points stay sorted in every output series.
    assert!(r
        .iter()
        .all(|s| s.floats.windows(2).all(|w| w[0].t < w[1].t)));
    let r = Run::new(AggOp::Sum, steps).ok(input);
    assert!(r[0].floats.windows(2).all(|w| w[0].t < w[1].t));
}

#[test]
fn step_grid_slice_matches_binary_search() {
    let grid = StepGrid::new(range(1000, 1000 + 99 * 10, 10)).expect("grid");
    // Dense, sparse, shifted, off-grid and duplicate-ish layouts.
    let layouts: Vec<Vec<i64>> = vec![
        (0..100).map(|i| 1000 + i * 10).collect(),
        (0..100)
            .filter(|i| i % 7 != 3)
            .map(|i| 1000 + i * 10)
            .collect(),
        (40..60).map(|i| 1000 + i * 10).collect(),
        vec![1000, 1990],
        (0..300).map(|i| 995 + i * 3).collect(),
        vec![],
        vec![5],
        vec![5000, 6000],
    ];
    for ts in layouts {
        let pts: Vec<FPoint> = ts.iter().map(|&t| FPoint { t, f: 0.0 }).collect();
        for s0 in 0..100 {
            let t0 = grid.time(s0);
            let want = pts.partition_point(|p| p.t < t0);
            let got = grid.slice(&pts, s0);
            // Exact from step 1 on; from step 0 everything (earlier points are skipped later).
            let skipped = pts.len() - got.len();
            assert_eq!(skipped, if s0 == 0 { 0 } else { want }, "s0={s0} ts={ts:?}");
            // for_each_point yields exactly the on-grid points of [s0, s1).
            let s1 = (s0 + 17).min(100);
            let mut seen = Vec::new();
            grid.for_each_point(got, s0, s1, |i, _| seen.push(i));
            let expect: Vec<usize> = ts
                .iter()
                .filter_map(|&t| grid.index(t))
                .filter(|&i| i >= s0 && i < s1)
                .collect();
            assert_eq!(seen, expect);
        }
    }
}

#[test]
fn k_operators_keep_input_drop_name() {
    let at = instant(0);
    let mut a = ser(&[("__name__", "m"), ("i", "a")], &[(0, 1.0)]);
    a.drop_name = true;
    let b = ser(&[("__name__", "m"), ("i", "b")], &[(0, 2.0)]);
    for op in [AggOp::Topk, AggOp::Bottomk, AggOp::Limitk] {
        let r = Run::new(op, at).k(2.0).ok(vec![a.clone(), b.clone()]);
        assert_eq!(r.len(), 2);
        for s in &r {
            assert_eq!(s.drop_name, s.metric.get("i") == Some("a"), "{op}");
            assert_eq!(s.metric.metric_name(), Some("m"));
        }
    }
    // count_values never drops (its labels come from the grouping).
    let r = Run::new(AggOp::CountValues, at)
        .label("v")
        .by(&["__name__"])
        .ok(vec![a, b]);
    assert!(r
        .iter()
        .all(|s| !s.drop_name && s.metric.metric_name() == Some("m")));
}

#[test]
fn instant_reduce_keeps_first_appearance_order_and_odd_steps() {
    // Groups come out in order of their first series, not sorted.
    let input = vec![
        ser(&[("g", "z")], &[(5, 1.0)]),
        ser(&[("g", "a")], &[(5, 2.0)]),
        ser(&[("g", "m")], &[(5, 3.0)]),
        ser(&[("g", "a")], &[(5, 4.0)]),
    ];
    let r = Run::new(
        AggOp::Sum,
        Steps {
            start: 5,
            end: 5,
            step: 15_000,
        },
    )
    .by(&["g"])
    .ok(input.clone());
    assert_eq!(
        inst(&r),
        vec![
            (r#"{g="z"}"#.into(), 1.0),
            (r#"{g="a"}"#.into(), 6.0),
            (r#"{g="m"}"#.into(), 3.0)
        ]
    );
    // Degenerate steps do not panic.
    for steps in [
        Steps {
            start: 10,
            end: 0,
            step: 5,
        },
        Steps {
            start: 0,
            end: 10,
            step: 0,
        },
        Steps {
            start: i64::MIN,
            end: i64::MAX,
            step: i64::MAX,
        },
        Steps {
            start: i64::MAX - 1,
            end: i64::MAX,
            step: 1,
        },
    ] {
        for op in [AggOp::Sum, AggOp::Topk, AggOp::Quantile, AggOp::Limitk] {
            let (r, _) = Run::new(op, steps).k(1.0).go(input.clone());
            assert!(r.is_ok(), "{op} {steps:?}");
        }
    }
    let (r, _) = Run::new(
        AggOp::Sum,
        Steps {
            start: 0,
            end: i64::MAX,
            step: 1,
        },
    )
    .go(input);
    assert!(r.is_err());
}
