//! The `@` re-runs of instant evals, as Prometheus's runner does them (`atModifierTestCases` in
//! `promql/promqltest/test.go`).
//!
//! Every vector selector, matrix selector and subquery without an `@ <timestamp>` gets
//! `@ <eval time>` (an `@ start()`/`@ end()` is replaced, as Prometheus's `String()` prints
//! the timestamp first); selectors inside a subquery are left alone, since the subquery's own
//! `@` fixes their evaluation times. The printed expression is then evaluated at several other
//! times and must give the same result as the original query, because nothing in it depends on
//! the evaluation time any more — unless it calls a function that does
//! ([`AT_MODIFIER_UNSAFE_FUNCTIONS`]), in which case there are no re-runs.

use super::super::ast::{AtModifier, Expr};
use super::super::parser;

/// Prometheus's `AtModifierUnsafeFunctions`: functions whose result depends on the evaluation
/// time even when their arguments do not. Also `start()` and `end()`, our scalar functions
/// giving the query's start and end (Prometheus has them only as `@ start()`/`@ end()`).
pub const AT_MODIFIER_UNSAFE_FUNCTIONS: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
    "start",
    "end",
];

/// One re-run: the query with `@` set, and the time to evaluate it at (ms).
#[derive(Clone, Debug, PartialEq)]
pub struct AtCase {
    pub query: String,
    pub eval_time: i64,
}

/// The re-runs of `query` evaluated at `ts` (ms): none when it does not parse (the original run
/// has reported that) or calls an [`AT_MODIFIER_UNSAFE_FUNCTIONS`] function; otherwise the
/// query with `@ ts` at the times `-10ts, 0, ts/5, ts, 10ts` (`-1s, 0, 1s` when `ts` is 0).
pub fn at_modifier_cases(query: &str, ts: i64) -> Vec<AtCase> {
    let Ok(mut expr) = parser::parse(query) else {
        return Vec::new();
    };
    if set_at(&mut expr, ts) {
        return Vec::new();
    }
    let printed = expr.to_string();
    let times: &[i64] = if ts == 0 {
        &[-1000, 0, 1000]
    } else {
        &[-10 * ts, 0, ts / 5, ts, 10 * ts]
    };
    times
        .iter()
        .map(|&eval_time| AtCase {
            query: printed.clone(),
            eval_time,
        })
        .collect()
}

/// Sets `@ ts` on every selector and subquery of `expr` that has no `@ <timestamp>`, except
/// inside subqueries. Returns whether `expr` (outside subqueries) calls an unsafe function.
pub fn set_at(expr: &mut Expr, ts: i64) -> bool {
    let fix = |at: &mut Option<AtModifier>| {
        if !matches!(at, Some(AtModifier::At(_))) {
            *at = Some(AtModifier::At(ts));
        }
    };
    match expr {
        Expr::NumberLiteral { .. } | Expr::StringLiteral { .. } => false,
        Expr::VectorSelector(vs) => {
            fix(&mut vs.at);
            false
        }
        Expr::MatrixSelector(m) => {
            fix(&mut m.vs.at);
            false
        }
        // With its `@` set, nothing inside a subquery is touched or inspected.
        Expr::Subquery(s) => {
            fix(&mut s.at);
            false
        }
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => set_at(expr, ts),
        Expr::Binary(b) => {
            let l = set_at(&mut b.lhs, ts);
            set_at(&mut b.rhs, ts) || l
        }
        Expr::Aggregate(a) => {
            let p = a.param.as_mut().is_some_and(|p| set_at(p, ts));
            set_at(&mut a.expr, ts) || p
        }
        Expr::Call(c) => {
            let mut unsafe_fn = AT_MODIFIER_UNSAFE_FUNCTIONS.contains(&c.func.name);
            for a in &mut c.args {
                unsafe_fn |= set_at(a, ts);
            }
            unsafe_fn
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cases(q: &str, ts: i64) -> Vec<(String, i64)> {
        at_modifier_cases(q, ts)
            .into_iter()
            .map(|c| (c.query, c.eval_time))
            .collect()
    }

    #[test]
    fn selectors_get_the_eval_time_and_run_at_five_times() {
        let q = "sum by (job) (rate(http_requests[5m])) + on (job) foo";
        let want = "sum by (job) (rate(http_requests[5m] @ 50.000)) + on (job) foo @ 50.000";
        let got = cases(q, 50_000);
        let times: Vec<i64> = got.iter().map(|c| c.1).collect();
        assert_eq!(times, [-500_000, 0, 10_000, 50_000, 500_000]);
        assert!(got.iter().all(|c| c.0 == want), "{got:?}");
    }

    #[test]
    fn eval_time_zero_runs_at_minus_one_zero_and_one_second() {
        let got = cases("foo offset 1m", 0);
        assert_eq!(
            got,
            [-1000, 0, 1000].map(|t| ("foo @ 0.000 offset 1m".to_string(), t))
        );
    }

    #[test]
    fn existing_timestamps_are_kept_and_start_end_replaced() {
        let got = cases("foo @ 10 + bar @ start() + rate(baz[1m] @ end())", 20_000);
        assert_eq!(
            got[0].0,
            "foo @ 10.000 + bar @ 20.000 + rate(baz[1m] @ 20.000)"
        );
    }

    #[test]
    fn subqueries_get_the_timestamp_but_their_insides_do_not() {
        let got = cases("max_over_time(rate(foo[1m])[5m:1m])", 60_000);
        assert_eq!(got[0].0, "max_over_time(rate(foo[1m])[5m:1m] @ 60.000)");
        let got = cases("max_over_time(rate(foo[1m])[5m:1m] @ 100)", 60_000);
        assert_eq!(got[0].0, "max_over_time(rate(foo[1m])[5m:1m] @ 100.000)");
    }

    #[test]
    fn time_dependent_functions_and_bad_queries_have_no_reruns() {
        for q in [
            "time()",
            "timestamp(foo)",
            "foo + hour()",
            "predict_linear(foo[5m], 60)",
            "sum(day_of_week(foo))",
            "vector(start())",
            "foo{",
        ] {
            assert!(cases(q, 10_000).is_empty(), "{q}");
        }
        // Inside a subquery the functions are not looked at (nor are they in Prometheus).
        assert_eq!(
            cases("max_over_time(vector(time())[5m:1m])", 10_000).len(),
            5
        );
        // Queries without selectors are re-run too (their result cannot change).
        assert_eq!(cases("1 + 2", 10_000).len(), 5);
    }
}
