//! PromQL: parser, evaluator and the `promqltest` script runner.
//!
//! ```text
//!   query text ─► parser::parse ─► ast::Expr ─► engine::Engine (selects series from a
//!   `Storage`, evaluates all steps of a range query at once, series in parallel)
//!   ─► value::Value + value::Annotations
//! ```
//!
//! Modules: [`ast`] (syntax tree and function table), `lexer`/[`parser`], [`value`] (result
//! types, annotations), [`engine`] (selectors, subqueries, binary operators, the evaluation
//! loop), [`functions`] (every function), [`aggregate`] (aggregation operators), [`error`],
//! [`promqltest`] (Prometheus's test-script format).

pub mod aggregate;
pub mod ast;
pub mod engine;
pub mod error;
pub mod functions;
mod lexer;
pub mod parser;
pub mod printer;
pub mod promqltest;
pub mod value;

pub use engine::{Engine, EngineOptions, QueryResult, Storage};
pub use error::{ParseError, QueryError};
pub use parser::parse;
