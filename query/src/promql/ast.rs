//! The PromQL syntax tree: what the parser produces and the evaluator walks.
//!
//! Every node carries a [`PosRange`] (byte offsets into the query text) so that errors and
//! annotations can name the position of the expression they are about, as Prometheus does
//! (`(1:7)` = line 1, column 7). Durations and timestamps are milliseconds.
//!
//! The function table [`FUNCTIONS`] lists every function with its argument types, the number of
//! optional trailing arguments and its return type, mirroring Prometheus's `parser.Functions`;
//! the parser type-checks calls against it and the evaluator dispatches on [`Function::name`].

use std::fmt;

use o11y_tsdb::matcher::Matcher;

/// Byte offsets `[start, end)` of a node in the query text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PosRange {
    pub start: usize,
    pub end: usize,
}

impl PosRange {
    pub fn new(start: usize, end: usize) -> PosRange {
        PosRange { start, end }
    }

    /// `line:column` of the start, both 1-based, columns counted in bytes as Prometheus does.
    pub fn line_col(&self, query: &str) -> (usize, usize) {
        let upto = &query.as_bytes()[..self.start.min(query.len())];
        let line = 1 + upto.iter().filter(|&&b| b == b'\n').count();
        let col = match upto.iter().rposition(|&b| b == b'\n') {
            Some(nl) => self.start - nl,
            None => self.start + 1,
        };
        (line, col)
    }
}

/// The four value types of PromQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    Scalar,
    String,
    Vector,
    Matrix,
}

impl ValueType {
    /// The name Prometheus uses in type errors: `scalar`, `string`, `instant vector`,
    /// `range vector`.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::String => "string",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An expression.
#[derive(Clone, Debug)]
pub enum Expr {
    NumberLiteral {
        val: f64,
        pos: PosRange,
    },
    StringLiteral {
        val: String,
        pos: PosRange,
    },
    VectorSelector(VectorSelector),
    MatrixSelector(MatrixSelector),
    Subquery(SubqueryExpr),
    Paren {
        expr: Box<Expr>,
        pos: PosRange,
    },
    /// Unary `-` or `+`.
    Unary {
        op: BinOp,
        expr: Box<Expr>,
        pos: PosRange,
    },
    Binary(BinaryExpr),
    Aggregate(AggregateExpr),
    Call(Call),
}

impl Expr {
    /// The type the expression evaluates to.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::NumberLiteral { .. } => ValueType::Scalar,
            Expr::StringLiteral { .. } => ValueType::String,
            Expr::VectorSelector(_) => ValueType::Vector,
            Expr::MatrixSelector(_) | Expr::Subquery(_) => ValueType::Matrix,
            Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => expr.value_type(),
            Expr::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar
                {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Expr::Aggregate(_) => ValueType::Vector,
            Expr::Call(c) => c.func.return_type,
        }
    }

    /// Position of the whole expression.
    pub fn pos(&self) -> PosRange {
        match self {
            Expr::NumberLiteral { pos, .. }
            | Expr::StringLiteral { pos, .. }
            | Expr::Paren { pos, .. }
            | Expr::Unary { pos, .. } => *pos,
            Expr::VectorSelector(v) => v.pos,
            Expr::MatrixSelector(m) => PosRange::new(m.vs.pos.start, m.end_pos),
            Expr::Subquery(s) => PosRange::new(s.expr.pos().start, s.end_pos),
            Expr::Binary(b) => PosRange::new(b.lhs.pos().start, b.rhs.pos().end),
            Expr::Aggregate(a) => a.pos,
            Expr::Call(c) => c.pos,
        }
    }
}

/// `@` modifier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AtModifier {
    /// `@ <timestamp>`, in milliseconds.
    At(i64),
    /// `@ start()`.
    Start,
    /// `@ end()`.
    End,
}

/// An instant vector selector: `name{matchers} offset ... @ ...`.
#[derive(Clone, Debug)]
pub struct VectorSelector {
    /// The metric name if written before the braces (it is also among `matchers`).
    pub name: Option<String>,
    /// All matchers, including `__name__="<name>"` for a leading name.
    pub matchers: Vec<Matcher>,
    /// `offset`, in milliseconds (negative for a negative offset).
    pub offset_ms: i64,
    pub at: Option<AtModifier>,
    pub pos: PosRange,
}

/// `<vector selector>[<range>]`.
#[derive(Clone, Debug)]
pub struct MatrixSelector {
    pub vs: VectorSelector,
    pub range_ms: i64,
    /// End of the whole selector (after `]`, `offset` and `@`).
    pub end_pos: usize,
}

/// `<expr>[<range>:<step>]`.
#[derive(Clone, Debug)]
pub struct SubqueryExpr {
    pub expr: Box<Expr>,
    pub range_ms: i64,
    /// `None` when the step is omitted (the engine's default evaluation interval is used).
    pub step_ms: Option<i64>,
    pub offset_ms: i64,
    pub at: Option<AtModifier>,
    pub end_pos: usize,
}

/// Binary operators, plus `-`/`+` when used as unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eql,
    Neq,
    Gtr,
    Lss,
    Gte,
    Lte,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Atan2 => "atan2",
            BinOp::Eql => "==",
            BinOp::Neq => "!=",
            BinOp::Gtr => ">",
            BinOp::Lss => "<",
            BinOp::Gte => ">=",
            BinOp::Lte => "<=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }

    /// `== != > < >= <=`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eql | BinOp::Neq | BinOp::Gtr | BinOp::Lss | BinOp::Gte | BinOp::Lte
        )
    }

    /// `and or unless`.
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    /// Precedence, higher binds tighter (Prometheus: `or` 1, `and unless` 2, comparisons 3,
    /// `+ -` 4, `* / % atan2` 5, `^` 6).
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eql | BinOp::Neq | BinOp::Gtr | BinOp::Lss | BinOp::Gte | BinOp::Lte => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Atan2 => 5,
            BinOp::Pow => 6,
        }
    }

    /// `^` is right-associative, everything else left-associative.
    pub fn is_right_assoc(self) -> bool {
        self == BinOp::Pow
    }
}

impl fmt::Display for BinOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Cardinality of a vector match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cardinality {
    OneToOne,
    /// `group_left`.
    ManyToOne,
    /// `group_right`.
    OneToMany,
    /// Set operators.
    ManyToMany,
}

/// `on(...)`/`ignoring(...)` and `group_left(...)`/`group_right(...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorMatching {
    pub card: Cardinality,
    /// The `on`/`ignoring` labels.
    pub matching_labels: Vec<String>,
    /// True for `on(...)`, false for `ignoring(...)` (or no clause).
    pub on: bool,
    /// Labels listed in `group_left(...)`/`group_right(...)`.
    pub include: Vec<String>,
}

/// `lhs <op> [bool] [matching] rhs`.
#[derive(Clone, Debug)]
pub struct BinaryExpr {
    pub op: BinOp,
    pub lhs: Box<Expr>,
    pub rhs: Box<Expr>,
    /// Present when both sides are vectors (set operators always get `ManyToMany`).
    pub matching: Option<VectorMatching>,
    /// The `bool` modifier on a comparison.
    pub return_bool: bool,
}

/// Aggregation operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
    Limitk,
    LimitRatio,
}

impl AggOp {
    pub fn from_name(name: &str) -> Option<AggOp> {
        Some(match name {
            "sum" => AggOp::Sum,
            "avg" => AggOp::Avg,
            "count" => AggOp::Count,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "group" => AggOp::Group,
            "stddev" => AggOp::Stddev,
            "stdvar" => AggOp::Stdvar,
            "topk" => AggOp::Topk,
            "bottomk" => AggOp::Bottomk,
            "count_values" => AggOp::CountValues,
            "quantile" => AggOp::Quantile,
            "limitk" => AggOp::Limitk,
            "limit_ratio" => AggOp::LimitRatio,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AggOp::Sum => "sum",
            AggOp::Avg => "avg",
            AggOp::Count => "count",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Group => "group",
            AggOp::Stddev => "stddev",
            AggOp::Stdvar => "stdvar",
            AggOp::Topk => "topk",
            AggOp::Bottomk => "bottomk",
            AggOp::CountValues => "count_values",
            AggOp::Quantile => "quantile",
            AggOp::Limitk => "limitk",
            AggOp::LimitRatio => "limit_ratio",
        }
    }

    /// Operators that take a parameter before the vector: `topk(k, v)`, `quantile(q, v)`,
    /// `count_values("label", v)`, `limitk(k, v)`, `limit_ratio(r, v)`.
    pub fn has_param(self) -> bool {
        matches!(
            self,
            AggOp::Topk
                | AggOp::Bottomk
                | AggOp::CountValues
                | AggOp::Quantile
                | AggOp::Limitk
                | AggOp::LimitRatio
        )
    }
}

impl fmt::Display for AggOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `op [by|without (labels)] ([param,] expr) [by|without (labels)]`.
#[derive(Clone, Debug)]
pub struct AggregateExpr {
    pub op: AggOp,
    pub expr: Box<Expr>,
    pub param: Option<Box<Expr>>,
    /// The `by`/`without` labels, in the order written.
    pub grouping: Vec<String>,
    pub without: bool,
    pub pos: PosRange,
}

/// A function call.
#[derive(Clone, Debug)]
pub struct Call {
    pub func: &'static Function,
    pub args: Vec<Expr>,
    pub pos: PosRange,
}

/// A PromQL function's signature.
#[derive(Debug, PartialEq)]
pub struct Function {
    pub name: &'static str,
    /// Argument types. With `variadic == 0` exactly these; with `variadic > 0` the last
    /// argument is optional and may repeat so that at most `len + variadic - 1` are given;
    /// with `variadic < 0` the last one may repeat without bound. (Prometheus's convention.)
    pub arg_types: &'static [ValueType],
    pub variadic: i32,
    pub return_type: ValueType,
    /// Behind Prometheus's `promql-experimental-functions` flag.
    pub experimental: bool,
}

use ValueType::{Matrix as M, Scalar as S, String as Str, Vector as V};

macro_rules! f {
    ($name:literal, [$($t:expr),*], $var:expr, $ret:expr) => {
        Function { name: $name, arg_types: &[$($t),*], variadic: $var, return_type: $ret, experimental: false }
    };
    ($name:literal, [$($t:expr),*], $var:expr, $ret:expr, experimental) => {
        Function { name: $name, arg_types: &[$($t),*], variadic: $var, return_type: $ret, experimental: true }
    };
}

/// Every function the engine knows, sorted by name.
pub static FUNCTIONS: &[Function] = &[
    f!("abs", [V], 0, V),
    f!("absent", [V], 0, V),
    f!("absent_over_time", [M], 0, V),
    f!("acos", [V], 0, V),
    f!("acosh", [V], 0, V),
    f!("asin", [V], 0, V),
    f!("asinh", [V], 0, V),
    f!("atan", [V], 0, V),
    f!("atanh", [V], 0, V),
    f!("avg_over_time", [M], 0, V),
    f!("ceil", [V], 0, V),
    f!("changes", [M], 0, V),
    f!("clamp", [V, S, S], 0, V),
    f!("clamp_max", [V, S], 0, V),
    f!("clamp_min", [V, S], 0, V),
    f!("cos", [V], 0, V),
    f!("cosh", [V], 0, V),
    f!("count_over_time", [M], 0, V),
    f!("day_of_month", [V], 1, V),
    f!("day_of_week", [V], 1, V),
    f!("day_of_year", [V], 1, V),
    f!("days_in_month", [V], 1, V),
    f!("deg", [V], 0, V),
    f!("delta", [M], 0, V),
    f!("deriv", [M], 0, V),
    f!(
        "double_exponential_smoothing",
        [M, S, S],
        0,
        V,
        experimental
    ),
    f!("end", [], 0, S, experimental),
    f!("exp", [V], 0, V),
    f!("first_over_time", [M], 0, V, experimental),
    f!("floor", [V], 0, V),
    f!("histogram_avg", [V], 0, V),
    f!("histogram_count", [V], 0, V),
    f!("histogram_fraction", [S, S, V], 0, V),
    f!("histogram_quantile", [S, V], 0, V),
    f!("histogram_quantiles", [V, Str, S], -1, V, experimental),
    f!("histogram_stddev", [V], 0, V),
    f!("histogram_stdvar", [V], 0, V),
    f!("histogram_sum", [V], 0, V),
    f!("hour", [V], 1, V),
    f!("idelta", [M], 0, V),
    f!("increase", [M], 0, V),
    f!("info", [V, V], 1, V, experimental),
    f!("irate", [M], 0, V),
    f!("label_join", [V, Str, Str, Str], -1, V),
    f!("label_replace", [V, Str, Str, Str, Str], 0, V),
    f!("last_over_time", [M], 0, V),
    f!("ln", [V], 0, V),
    f!("log10", [V], 0, V),
    f!("log2", [V], 0, V),
    f!("mad_over_time", [M], 0, V, experimental),
    f!("max_over_time", [M], 0, V),
    f!("min_over_time", [M], 0, V),
    f!("minute", [V], 1, V),
    f!("month", [V], 1, V),
    f!("pi", [], 0, S),
    f!("predict_linear", [M, S], 0, V),
    f!("present_over_time", [M], 0, V),
    f!("quantile_over_time", [S, M], 0, V),
    f!("rad", [V], 0, V),
    f!("range", [], 0, S, experimental),
    f!("rate", [M], 0, V),
    f!("resets", [M], 0, V),
    f!("round", [V, S], 1, V),
    f!("scalar", [V], 0, S),
    f!("sgn", [V], 0, V),
    f!("sin", [V], 0, V),
    f!("sinh", [V], 0, V),
    f!("sort", [V], 0, V),
    f!("sort_by_label", [V, Str], -1, V, experimental),
    f!("sort_by_label_desc", [V, Str], -1, V, experimental),
    f!("sort_desc", [V], 0, V),
    f!("sqrt", [V], 0, V),
    f!("start", [], 0, S, experimental),
    f!("stddev_over_time", [M], 0, V),
    f!("stdvar_over_time", [M], 0, V),
    f!("step", [], 0, S, experimental),
    f!("sum_over_time", [M], 0, V),
    f!("tan", [V], 0, V),
    f!("tanh", [V], 0, V),
    f!("time", [], 0, S),
    f!("timestamp", [V], 0, V),
    f!("ts_of_first_over_time", [M], 0, V, experimental),
    f!("ts_of_last_over_time", [M], 0, V, experimental),
    f!("ts_of_max_over_time", [M], 0, V, experimental),
    f!("ts_of_min_over_time", [M], 0, V, experimental),
    f!("vector", [S], 0, V),
    f!("year", [V], 1, V),
];

/// Looks a function up by name.
pub fn function(name: &str) -> Option<&'static Function> {
    FUNCTIONS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &FUNCTIONS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_table_is_sorted_and_found() {
        for w in FUNCTIONS.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
        assert_eq!(function("rate").unwrap().arg_types, &[ValueType::Matrix]);
        assert!(function("holt_winters").is_none());
    }

    #[test]
    fn line_col_counts_from_one() {
        let q = "sum(\n  rate(x[5m]))";
        assert_eq!(PosRange::new(0, 3).line_col(q), (1, 1));
        assert_eq!(PosRange::new(7, 11).line_col(q), (2, 3));
    }
}
