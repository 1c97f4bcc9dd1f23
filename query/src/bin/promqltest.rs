//! Runs Prometheus `promqltest` scripts against O11y's PromQL engine.
//!
//! ```text
//! promqltest [--verbose] [--no-range-check] [--no-at-check] FILE...
//! ```
//!
//! Prints every failure (file:line, query, reason, expected, actual), with `--verbose` every
//! skipped eval and its reason, and ends with the line `N passed, N failed, N skipped`. A
//! script that cannot be run (unreadable or malformed) is printed and counted as one failure.
//! Exits with 1 if anything failed, 2 on bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use o11y_query::promql::promqltest::{run_file_with, RunOptions};
use o11y_query::promql::Engine;

const USAGE: &str = "usage: promqltest [--verbose] [--no-range-check] [--no-at-check] FILE...";

fn main() -> ExitCode {
    let mut verbose = false;
    let mut opts = RunOptions::default();
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--verbose" | "-v" => verbose = true,
            "--no-range-check" => opts.range_check = false,
            "--no-at-check" => opts.at_check = false,
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            a if a.starts_with('-') => {
                eprintln!("unknown option {a}\n{USAGE}");
                return ExitCode::from(2);
            }
            _ => files.push(PathBuf::from(arg)),
        }
    }
    if files.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let engine = Engine::default();
    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    for f in &files {
        match run_file_with(f, &engine, &opts) {
            Ok(report) => {
                for fail in &report.failed {
                    println!("FAIL {fail}");
                }
                if verbose {
                    for s in &report.skips {
                        println!("SKIP {s}");
                    }
                    println!(
                        "{}: {} passed, {} failed, {} skipped",
                        f.display(),
                        report.passed,
                        report.failed.len(),
                        report.skipped
                    );
                }
                passed += report.passed;
                failed += report.failed.len();
                skipped += report.skipped;
            }
            Err(e) => {
                println!("ERROR {e}");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
