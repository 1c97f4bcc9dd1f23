//! Runner for Prometheus's `promqltest` script format, so that the PromQL engine is checked
//! against Prometheus's own conformance scripts (`load`, `clear`, `eval` with `expect` lines).
//!
//! ```text
//!   script text ─► script::parse_script ─► [Command]
//!   Load  ─► env::TestEnv (a real tsdb Db in a temp dir; histogram series remembered)
//!   Clear ─► fresh TestEnv
//!   Eval  ─► skip::experimental_feature? ─► skip
//!         ─► Evaluator (the Engine) over env::EnvStorage ─► touched a histogram series? ─► skip
//!         ─► compare::{check_expected_failure, check_annotations, compare_result}
//!         ─► pass | Failure
//!   ─► FileReport { passed, failed, skipped }
//! ```
//!
//! Modules: [`script`] (the text format), [`at_rerun`] (the `@` re-runs), [`env`] (loading data, the storage wrapper),
//! [`compare`] (Prometheus's comparison rules), [`skip`] (what is skipped and why).
//!
//! As in Prometheus's `test.go`, an instant eval whose expected result is neither a range
//! vector nor a string is also run as a range query from `t-1m` to `t+1m` step `1m`, and the
//! point at `t` must give the same result (turn off with [`RunOptions::range_check`]).
//! Also as there, an instant eval is re-run with `@ <t>` added to every selector and subquery,
//! at several other evaluation times, and must give the same result (module [`at_rerun`]; turn
//! off with [`RunOptions::at_check`]).

pub mod at_rerun;
pub mod compare;
pub mod env;
pub mod script;
pub mod skip;

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::path::Path;

use o11y_tsdb::labels::Labels;

use self::compare::{
    check_annotations, check_expected_failure, check_sorted, compare_result, render_annotations,
    render_expected, render_value, Mismatch,
};
use self::env::{EnvStorage, TestEnv};
use self::script::{Command, Eval, EvalTime, ExpectKind, MetricParser, Script};
use super::engine::{Engine, QueryResult, Storage};
use super::error::QueryError;
use super::value::{Sample, Value};

/// A script that cannot be run: unreadable, malformed (with its line), or a storage failure.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    #[error("{file}:{line}: {msg}")]
    Syntax {
        file: String,
        line: usize,
        msg: String,
    },
}

/// One eval (or load) that did not meet its expectation.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub file: String,
    /// 1-based line of the `eval` (or of the series a `load` could not store).
    pub line: usize,
    pub query: String,
    /// What went wrong, in one line.
    pub reason: String,
    pub expected: String,
    pub actual: String,
}

fn indented(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for l in text.lines() {
        writeln!(f, "    {l}")?;
    }
    Ok(())
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:{}: {}", self.file, self.line, self.query)?;
        writeln!(f, "  {}", self.reason)?;
        writeln!(f, "  expected:")?;
        indented(f, &self.expected)?;
        writeln!(f, "  actual:")?;
        indented(f, &self.actual)
    }
}

/// An eval that was not run, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Skip {
    pub file: String,
    pub line: usize,
    pub query: String,
    pub reason: String,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: skipped ({}): {}",
            self.file, self.line, self.reason, self.query
        )
    }
}

/// The outcome of one script.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileReport {
    pub file: String,
    pub passed: usize,
    pub failed: Vec<Failure>,
    /// Number of skipped evals (`skips` says which and why).
    pub skipped: usize,
    pub skips: Vec<Skip>,
}

/// Prometheus's scripts (file stems in `promql/promqltest/testdata`) that must run; the others
/// need features we do not have.
pub const REQUIRED_SCRIPTS: &[&str] = &[
    "aggregators",
    "at_modifier",
    "collision",
    "functions",
    "histograms",
    "literals",
    "operators",
    "range_queries",
    "selectors",
    "staleness",
    "subquery",
    "trig_functions",
    "limit",
    "name_label_dropping",
];

/// Runs queries for the runner; implemented by [`Engine`] (tests use canned results).
pub trait Evaluator {
    fn instant_query(
        &self,
        storage: &dyn Storage,
        query: &str,
        ts: i64,
    ) -> Result<QueryResult, QueryError>;

    fn range_query(
        &self,
        storage: &dyn Storage,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, QueryError>;
}

impl Evaluator for Engine {
    fn instant_query(
        &self,
        storage: &dyn Storage,
        query: &str,
        ts: i64,
    ) -> Result<QueryResult, QueryError> {
        Engine::instant_query(self, storage, query, ts)
    }

    fn range_query(
        &self,
        storage: &dyn Storage,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, QueryError> {
        Engine::range_query(self, storage, query, start, end, step)
    }
}

/// How scripts are run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Also run instant evals as a range query around their time (Prometheus does).
    pub range_check: bool,
    /// Also re-run instant evals with `@ <eval time>` on every selector, at other times
    /// (Prometheus does; see [`at_rerun`]).
    pub at_check: bool,
    /// Parses series descriptions of `load` and expected-output lines.
    pub metric_parser: MetricParser,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            range_check: true,
            at_check: true,
            metric_parser: parse_metric_via_promql,
        }
    }
}

/// The default [`MetricParser`]: PromQL's [`parse_metric`](super::parser::parse_metric).
pub fn parse_metric_via_promql(s: &str) -> Result<Labels, String> {
    super::parser::parse_metric(s).map_err(|e| e.to_string())
}

/// Runs the script at `path` (named by its file name in failures).
pub fn run_file(path: &Path, engine: &Engine) -> Result<FileReport, ScriptError> {
    run_file_with(path, engine, &RunOptions::default())
}

/// [`run_file`] with any [`Evaluator`] and options.
pub fn run_file_with(
    path: &Path,
    evaluator: &dyn Evaluator,
    opts: &RunOptions,
) -> Result<FileReport, ScriptError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScriptError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    })?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    run_script_with(&name, &text, evaluator, opts)
}

/// Runs a script given as text; `name` names it in failures.
pub fn run_script(name: &str, text: &str, engine: &Engine) -> Result<FileReport, ScriptError> {
    run_script_with(name, text, engine, &RunOptions::default())
}

/// [`run_script`] with any [`Evaluator`] and options.
pub fn run_script_with(
    name: &str,
    text: &str,
    evaluator: &dyn Evaluator,
    opts: &RunOptions,
) -> Result<FileReport, ScriptError> {
    let script = script::parse_script(name, text, opts.metric_parser)?;
    run_parsed(&script, evaluator, opts)
}

/// Runs a parsed script from a fresh, empty environment.
pub fn run_parsed(
    script: &Script,
    evaluator: &dyn Evaluator,
    opts: &RunOptions,
) -> Result<FileReport, ScriptError> {
    let io = |e: std::io::Error| ScriptError::Io {
        path: script.name.clone(),
        msg: format!("test storage: {e}"),
    };
    let mut env = TestEnv::new().map_err(io)?;
    let mut report = FileReport {
        file: script.name.clone(),
        ..FileReport::default()
    };
    for cmd in &script.commands {
        match cmd {
            Command::Clear { .. } => env.clear().map_err(io)?,
            Command::Load(load) => {
                let rejected = env.load(load).map_err(|e| ScriptError::Io {
                    path: script.name.clone(),
                    msg: format!("test storage, load at line {}: {e}", load.line),
                })?;
                for r in rejected {
                    report.failed.push(Failure {
                        file: script.name.clone(),
                        line: r.line,
                        query: "load".into(),
                        reason: "the tsdb rejected samples of this series".into(),
                        expected: format!("{} stored", r.labels),
                        actual: r.reason,
                    });
                }
            }
            Command::Eval(ev) => match run_eval(&env, ev, evaluator, opts) {
                Outcome::Pass => report.passed += 1,
                Outcome::Skip(reason) => {
                    report.skipped += 1;
                    report.skips.push(Skip {
                        file: script.name.clone(),
                        line: ev.line,
                        query: ev.query.clone(),
                        reason,
                    });
                }
                Outcome::Fail(f) => report.failed.push(Failure {
                    file: script.name.clone(),
                    line: ev.line,
                    query: ev.query.clone(),
                    reason: f.reason,
                    expected: f.expected,
                    actual: f.actual,
                }),
            },
        }
    }
    Ok(report)
}

/// The result of one eval.
#[derive(Debug, PartialEq)]
enum Outcome {
    Pass,
    Skip(String),
    Fail(Fail),
}

#[derive(Debug, PartialEq)]
struct Fail {
    reason: String,
    expected: String,
    actual: String,
}

fn run_eval(env: &TestEnv, ev: &Eval, evaluator: &dyn Evaluator, opts: &RunOptions) -> Outcome {
    if let Some(feature) = skip::experimental_feature(&ev.query) {
        return Outcome::Skip(format!("uses {feature}, not implemented"));
    }
    if ev.expects_histograms() {
        return Outcome::Skip("expected output contains native histograms".into());
    }
    let storage = env.storage();
    // An engine panic fails this eval only; the environment is only read, so the run goes on.
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| match ev.time {
        EvalTime::Instant { at } => instant_eval(&storage, ev, at, evaluator, opts),
        EvalTime::Range { start, end, step } => {
            let r = evaluator.range_query(&storage, &ev.query, start, end, step);
            check_query(ev, &ev.query, r).map(|_| ())
        }
    }))
    .unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        Err(Fail {
            reason: "the engine panicked".into(),
            expected: render_expected(ev),
            actual: format!("panic: {msg}"),
        })
    });
    if storage.touched_histogram() {
        return Outcome::Skip("query reads series holding native histograms".into());
    }
    match result {
        Ok(()) => Outcome::Pass,
        Err(f) => Outcome::Fail(f),
    }
}

/// Checks a query's outcome against the eval: expected failure, annotations, result.
/// Returns the result of a successful query (`None` for an expected error).
fn check_query(
    ev: &Eval,
    query: &str,
    r: Result<QueryResult, QueryError>,
) -> Result<Option<QueryResult>, Fail> {
    let expected = || render_expected(ev);
    match r {
        Err(e) => {
            let msg = e.to_string();
            if !ev.is_fail() {
                return Err(Fail {
                    reason: format!("error evaluating query: {msg}"),
                    expected: expected(),
                    actual: format!("error: {msg}"),
                });
            }
            check_expected_failure(ev, &msg).map_err(|m| Fail {
                reason: m.reason,
                expected: expected(),
                actual: format!("error: {msg}"),
            })?;
            Ok(None)
        }
        Ok(res) => {
            if ev.is_fail() {
                return Err(Fail {
                    reason: "expected an error, but the query succeeded".into(),
                    expected: expected(),
                    actual: render_value(&res.value),
                });
            }
            check_annotations(ev, query, &res.annotations).map_err(|m| Fail {
                reason: m.reason,
                expected: render_expected_annotations(ev),
                actual: {
                    let a = render_annotations(query, &res.annotations);
                    if a.is_empty() {
                        "no annotations".into()
                    } else {
                        a
                    }
                },
            })?;
            compare_result(ev, &res.value).map_err(|m| Fail {
                reason: m.reason,
                expected: expected(),
                actual: render_value(&res.value),
            })?;
            Ok(Some(res))
        }
    }
}

fn render_expected_annotations(ev: &Eval) -> String {
    let mut lines = Vec::new();
    if ev.legacy_warn {
        lines.push("at least one warning".to_string());
    }
    if ev.legacy_info {
        lines.push("at least one info".to_string());
    }
    for e in &ev.expects {
        let kind = match e.kind {
            ExpectKind::Warn => "warn",
            ExpectKind::Info => "info",
            ExpectKind::NoWarn => "no warnings",
            ExpectKind::NoInfo => "no infos",
            ExpectKind::Fail | ExpectKind::Ordered => continue,
        };
        lines.push(format!("{kind} {}", e.matcher));
    }
    lines.join("\n")
}

/// An instant eval: the instant query, then (unless excluded) the same query as a range query
/// from `at-1m` to `at+1m` whose point at `at` must match too; then the same for each `@`
/// re-run of [`at_rerun::at_modifier_cases`] (annotations checked against the printed query,
/// as Prometheus does).
fn instant_eval(
    storage: &EnvStorage<'_>,
    ev: &Eval,
    at: i64,
    evaluator: &dyn Evaluator,
    opts: &RunOptions,
) -> Result<(), Fail> {
    instant_case(storage, ev, &ev.query, at, evaluator, opts)?;
    if !opts.at_check {
        return Ok(());
    }
    for case in at_rerun::at_modifier_cases(&ev.query, at) {
        instant_case(storage, ev, &case.query, case.eval_time, evaluator, opts).map_err(|f| {
            Fail {
                reason: format!(
                    "with @ modifier ({} at t={}): {}",
                    case.query, case.eval_time, f.reason
                ),
                ..f
            }
        })?;
    }
    Ok(())
}

/// One instant query of an eval (`query` at `at`) and its range-mode check.
fn instant_case(
    storage: &EnvStorage<'_>,
    ev: &Eval,
    query: &str,
    at: i64,
    evaluator: &dyn Evaluator,
    opts: &RunOptions,
) -> Result<(), Fail> {
    let r = evaluator.instant_query(storage, query, at);
    let Some(res) = check_query(ev, query, r)? else {
        return Ok(());
    };
    if !opts.range_check || ev.exclude_from_range_check() {
        return Ok(());
    }
    const MIN: i64 = 60_000;
    let fail = |reason: String, actual: String| Fail {
        reason: format!("in range mode (from t-1m to t+1m step 1m): {reason}"),
        expected: render_expected(ev),
        actual,
    };
    let range = evaluator
        .range_query(storage, query, at - MIN, at + MIN, MIN)
        .map_err(|e| fail(format!("error: {e}"), format!("error: {e}")))?;
    if ev.is_ordered() {
        // Range results are sorted by labels, not in the instant query's order.
        return Ok(());
    }
    let Value::Matrix(m) = &range.value else {
        return Err(fail(
            "the range query did not return a matrix".into(),
            render_value(&range.value),
        ));
    };
    check_sorted(m).map_err(|e| fail(e.reason, render_value(&range.value)))?;
    let mut vector = Vec::new();
    for s in m {
        if let Some(p) = s.floats.iter().find(|p| p.t == at) {
            vector.push(Sample {
                metric: s.metric.clone(),
                t: p.t,
                f: p.f,
                drop_name: false,
            });
        }
    }
    let step_value = if matches!(res.value, Value::Scalar { .. }) {
        match vector.first() {
            Some(s) => Value::Scalar { t: at, v: s.f },
            None => {
                return Err(fail(
                    format!("no point at t={at} for a scalar result"),
                    render_value(&range.value),
                ))
            }
        }
    } else {
        Value::Vector(vector)
    };
    compare_result(ev, &step_value)
        .map_err(|m: Mismatch| fail(m.reason, render_value(&range.value)))
}

#[cfg(test)]
mod tests;
