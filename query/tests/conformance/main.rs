//! PromQL conformance: runs `promqltest` scripts through the engine.
//!
//! - `own_scripts_pass`: our scripts in `query/testdata/promql/*.test` must pass entirely.
//! - `prometheus_scripts_match_known_failures`: Prometheus's scripts, read in place from
//!   `<workspace>/../shared/conformance/promql` (never copied into the repository), must fail
//!   at most at the evals listed in `query/testdata/promql/known-failures.txt`; listed evals
//!   that now pass are printed so the list can shrink. Skipped when the folder is absent.
//!
//! Both skip, loudly, while the PromQL parser or engine cannot yet evaluate the literal `1`
//! (they are being written concurrently), since every eval would fail for that one reason.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use o11y_query::promql::promqltest::{run_file, FileReport, REQUIRED_SCRIPTS};
use o11y_query::promql::{parser, Engine, QueryError, Storage};

/// Prometheus's scripts that must run (the others need features we do not have).
const REQUIRED: &[&str] = REQUIRED_SCRIPTS;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn testdata() -> PathBuf {
    crate_dir().join("testdata/promql")
}

fn shared_dir() -> PathBuf {
    crate_dir().join("../../shared/conformance/promql")
}

struct Empty;

impl Storage for Empty {
    fn select(
        &self,
        _: &[o11y_tsdb::matcher::Matcher],
        _: i64,
        _: i64,
    ) -> Result<Vec<o11y_tsdb::Series>, QueryError> {
        Ok(Vec::new())
    }
}

/// Why the engine cannot run scripts yet, if it cannot.
fn engine_not_ready(engine: &Engine) -> Option<String> {
    if let Err(e) = parser::parse_metric("up{job=\"a\"}") {
        return Some(format!("parse_metric(`up{{job=\"a\"}}`) fails: {e}"));
    }
    if let Err(e) = engine.instant_query(&Empty, "1", 0) {
        return Some(format!("instant query `1` fails: {e}"));
    }
    None
}

fn run_all(files: &[PathBuf], engine: &Engine) -> (Vec<FileReport>, Vec<String>) {
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match run_file(f, engine) {
            Ok(r) => reports.push(r),
            Err(e) => errors.push(e.to_string()),
        }
    }
    (reports, errors)
}

#[test]
fn own_scripts_pass() {
    let engine = Engine::default();
    if let Some(why) = engine_not_ready(&engine) {
        eprintln!("SKIPPED own_scripts_pass: the PromQL engine is not ready ({why})");
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata())
        .expect("query/testdata/promql")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scripts in {}", testdata().display());
    let (reports, errors) = run_all(&files, &engine);
    let mut problems = errors;
    let mut passed = 0;
    for r in &reports {
        passed += r.passed;
        problems.extend(r.failed.iter().map(|f| f.to_string()));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(passed > 0);
}

/// Entries of `known-failures.txt`: `file.test:LINE`.
fn known_failures() -> BTreeSet<String> {
    let path = testdata().join("known-failures.txt");
    let text = std::fs::read_to_string(&path).expect("known-failures.txt");
    parse_known_failures(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_known_failures(text: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let ok = l.split_once(':').is_some_and(|(f, n)| {
            f.ends_with(".test") && !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())
        });
        if !ok {
            return Err(format!(
                "line {}: expected `file.test:LINE`, got {l:?}",
                i + 1
            ));
        }
        out.insert(l.to_string());
    }
    Ok(out)
}

#[test]
fn known_failures_list_is_well_formed() {
    known_failures();
    assert!(parse_known_failures("# c\n\nfunctions.test:12\n").is_ok());
    assert!(parse_known_failures("functions.test\n").is_err());
    assert!(parse_known_failures("functions:12\n").is_err());
}

#[test]
fn prometheus_scripts_match_known_failures() {
    let dir = shared_dir();
    if !dir.is_dir() {
        eprintln!(
            "SKIPPED prometheus_scripts_match_known_failures: {} is absent",
            dir.display()
        );
        return;
    }
    let engine = Engine::default();
    if let Some(why) = engine_not_ready(&engine) {
        eprintln!(
            "SKIPPED prometheus_scripts_match_known_failures: the PromQL engine is not ready ({why})"
        );
        return;
    }
    let known = known_failures();
    let files: Vec<PathBuf> = REQUIRED
        .iter()
        .map(|n| dir.join(format!("{n}.test")))
        .collect();
    for f in &files {
        assert!(f.is_file(), "missing {}", f.display());
    }
    let (reports, errors) = run_all(&files, &engine);
    let mut unexpected: Vec<String> = errors;
    let mut failing = BTreeSet::new();
    let mut skipped = BTreeSet::new();
    let (mut passed, mut failed, mut nskipped) = (0, 0, 0);
    for r in &reports {
        passed += r.passed;
        failed += r.failed.len();
        nskipped += r.skipped;
        for f in &r.failed {
            let key = format!("{}:{}", f.file, f.line);
            if !known.contains(&key) {
                unexpected.push(f.to_string());
            }
            failing.insert(key);
        }
        skipped.extend(r.skips.iter().map(|s| format!("{}:{}", s.file, s.line)));
    }
    for k in &known {
        if !failing.contains(k) {
            let how = if skipped.contains(k) {
                "is now skipped"
            } else {
                "no longer fails"
            };
            println!("known failure {k} {how}: remove it from known-failures.txt");
        }
    }
    println!(
        "Prometheus conformance ({}): {passed} passed, {failed} failed, {nskipped} skipped",
        Path::new(&dir).display()
    );
    assert!(
        unexpected.is_empty(),
        "{} unexpected failure(s):\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}
