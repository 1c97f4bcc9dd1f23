//! PromQL parser (CONTRACT STUB: being implemented).

use o11y_tsdb::labels::Labels;

use super::ast::{Expr, PosRange};
use super::error::ParseError;

/// Parses and type-checks a PromQL expression.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    Err(ParseError::new(
        input,
        PosRange::new(0, input.len()),
        "parser not available yet",
    ))
}

/// Parses a series description `name{label="value", ...}` (as in test scripts and
/// `match[]` parameters written as plain metrics) into a label set.
pub fn parse_metric(input: &str) -> Result<Labels, ParseError> {
    Err(ParseError::new(
        input,
        PosRange::new(0, input.len()),
        "parser not available yet",
    ))
}
