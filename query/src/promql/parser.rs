//! PromQL parser: query text to a type-checked [`Expr`], and series descriptions to [`Labels`].
//!
//! ```text
//!   &str ─► lexer::lex ─► tokens ─► Parser (recursive descent + precedence climbing)
//!        ─► Expr ─► check (Prometheus's `checkAST`: types, arity, vector matching) ─► Expr
//! ```
//!
//! The grammar and messages follow Prometheus 3.x (`generated_parser.y`, `parse.go`):
//!
//! * Binary operators by precedence `or` < `and unless` < comparisons < `+ -` <
//!   `* / % atan2` < `^` (right-associative); unary `+`/`-` binds like `*`, so `-2^2` is
//!   `-(2^2)`; a sign directly applied to a number literal is folded into the literal.
//! * Postfix modifiers (`[range]`, `[range:step]`, `offset`, `@`) bind tighter than any operator.
//! * Numbers and durations are interchangeable where a duration or a number is expected
//!   (`x[300]`, `x offset 5`, `x @ 1m`, and a duration as a scalar: `5m` is 300).
//! * Syntax errors name the unexpected token the way Prometheus does
//!   (`unexpected identifier "foo" in aggregation`); lexer errors are reported verbatim.
//!   The first error wins, as in Prometheus (only its first error is shown).
//! * Experimental features (duration arithmetic and `step()`/`range()` in durations,
//!   `anchored`/`smoothed`, `fill` modifiers) are rejected with Prometheus's "not enabled"
//!   messages; experimental functions and the `limitk`/`limit_ratio` aggregations are
//!   accepted, as the test runner enables them.
//! * Nesting is bounded ([`MAX_TREE_DEPTH`] levels of syntax tree) so that walking the tree
//!   recursively cannot overflow the stack.
//!
//! Also here: [`parse_metric`] (series descriptions of test scripts) and
//! [`parse_metric_selector`] (`match[]` selectors).

use o11y_tsdb::labels::Labels;
use o11y_tsdb::matcher::{MatchOp, Matcher};

use super::ast::{
    function, AggOp, AggregateExpr, AtModifier, BinOp, BinaryExpr, Call, Cardinality, Expr,
    MatrixSelector, PosRange, SubqueryExpr, ValueType, VectorMatching, VectorSelector,
};
use super::error::ParseError;
use super::lexer::{go_quote, is_space, lex, Token, T};
use super::value::go_format_f6;

/// Parses and type-checks a PromQL expression.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    let mut p = Parser::new(input);
    if p.peek().kind == T::Eof {
        return Err(ParseError::new(
            input,
            PosRange::new(0, 0),
            "no expression found in input",
        ));
    }
    let (mut expr, _) = p.parse_expr(1)?;
    if p.peek().kind != T::Eof {
        return Err(p.unexpected_in_expr());
    }
    check(input, &mut expr, false)?;
    Ok(expr)
}

/// Parses a series description `name{label="value", ...}` (as in test scripts and
/// `match[]` parameters written as plain metrics) into a label set.
///
/// Accepts `name`, `name{...}`, `{...}` and quoted names (`{"my.metric", a="b"}`); only `=` is
/// allowed and no matcher is required (`{}` and the empty input give empty labels).
pub fn parse_metric(input: &str) -> Result<Labels, ParseError> {
    let mut p = Parser::new(input);
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut name: Option<String> = None;
    if is_metric_identifier(p.peek().kind) {
        name = Some(p.text(p.peek()).to_string());
        p.bump();
    }
    if p.peek().kind == T::LeftBrace {
        p.bump();
        if p.peek().kind == T::RightBrace {
            p.bump();
        } else {
            loop {
                let t = p.peek();
                match t.kind {
                    T::Identifier => {
                        p.bump();
                        if p.peek().kind != T::Eql {
                            return Err(p.unexpected("label set", "\"=\""));
                        }
                        p.bump();
                        let v = p.expect_string("label set")?;
                        pairs.push((p.text(t).to_string(), v));
                    }
                    T::Str => {
                        let n = p.unquote(t)?;
                        p.bump();
                        if p.peek().kind == T::Eql {
                            p.bump();
                            let v = p.expect_string("label set")?;
                            pairs.push((n, v));
                        } else {
                            pairs.push(("__name__".to_string(), n));
                        }
                    }
                    _ => return Err(p.unexpected("label set", "identifier or \"}\"")),
                }
                match p.peek().kind {
                    T::Comma => {
                        p.bump();
                        if p.peek().kind == T::RightBrace {
                            p.bump();
                            break;
                        }
                    }
                    T::RightBrace => {
                        p.bump();
                        break;
                    }
                    _ => return Err(p.unexpected("label set", "\",\" or \"}\"")),
                }
            }
        }
    }
    if p.peek().kind != T::Eof {
        return Err(p.unexpected("", ""));
    }
    if let Some(n) = name {
        pairs.push(("__name__".to_string(), n));
    }
    Ok(Labels::from_pairs(pairs))
}

/// Parses a series selector such as `up{job=~"api.*"}` or `{__name__="x"}` into its matchers
/// (Prometheus's `ParseMetricSelector`, used for `match[]` parameters). Like Prometheus, it
/// does not require a non-empty matcher; callers that need one check it. A name written before
/// the braces becomes the last matcher.
pub fn parse_metric_selector(input: &str) -> Result<Vec<Matcher>, ParseError> {
    let mut p = Parser::new(input);
    let t = p.peek();
    let e = if is_metric_identifier(t.kind) {
        p.bump();
        p.parse_vector_selector(Some(t))?
    } else if t.kind == T::LeftBrace {
        p.parse_vector_selector(None)?
    } else {
        return Err(p.unexpected("", ""));
    };
    if p.peek().kind != T::Eof {
        return Err(p.unexpected("", ""));
    }
    match e {
        Expr::VectorSelector(vs) => Ok(vs.matchers),
        _ => Err(p.unexpected("", "")),
    }
}

/// A number or duration in a duration position, in seconds.
struct DurationLit {
    secs: f64,
    pos: PosRange,
}

const EXPERIMENTAL_DURATION: &str = "experimental duration expression is not enabled";

/// Deepest syntax tree accepted: evaluation, type checking and dropping walk the tree
/// recursively, so unbounded depth could overflow the stack.
pub const MAX_TREE_DEPTH: u32 = 1000;

/// Deepest parser recursion (parentheses, unary operators, arguments) accepted.
const MAX_NESTING: u32 = 200;

const TOO_DEEP: &str = "expression is nested too deeply";

/// An expression with the depth of its syntax tree.
type Parsed = Result<(Expr, u32), ParseError>;

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<Token>,
    lex_error: Option<String>,
    i: usize,
    /// Nesting depth of aggregations being parsed: syntax errors inside one are reported
    /// "in aggregation", as Prometheus's `aggregate_op error` rule does.
    agg_depth: usize,
    /// Current recursion depth, bounded by [`MAX_NESTING`].
    nesting: u32,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Parser<'a> {
        let lexed = lex(input);
        let mut tokens = lexed.tokens;
        if tokens.is_empty() {
            tokens.push(Token {
                kind: T::Eof,
                pos: input.len(),
                end: input.len(),
            });
        }
        Parser {
            input,
            tokens,
            lex_error: lexed.error,
            i: 0,
            agg_depth: 0,
            nesting: 0,
        }
    }

    fn peek(&self) -> Token {
        self.peek_at(0)
    }

    fn peek_at(&self, k: usize) -> Token {
        let last = self.tokens.len() - 1;
        self.tokens[(self.i + k).min(last)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek();
        if self.i < self.tokens.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn text(&self, t: Token) -> &'a str {
        self.input.get(t.pos..t.end).unwrap_or("")
    }

    fn err(&self, pos: PosRange, msg: impl Into<String>) -> ParseError {
        ParseError::new(self.input, pos, msg)
    }

    /// Prometheus's `Item.desc()`.
    fn desc(&self, t: Token) -> String {
        let val = self.text(t);
        match t.kind {
            T::Eof => "end of input".to_string(),
            T::Identifier => format!("identifier {}", go_quote(val)),
            T::MetricIdentifier => format!("metric identifier {}", go_quote(val)),
            T::Str => format!("string {}", short_quote(val)),
            T::Number => format!("number {}", short_quote(val)),
            T::Duration => format!("duration {}", short_quote(val)),
            T::Agg(_) => format!("<aggr:{val}>"),
            k if k.is_keyword() => format!("<{val}>"),
            k if k.is_operator() => format!("<op:{val}>"),
            _ => short_quote(val),
        }
    }

    /// An error about the next token: the lexer's error if lexing stopped there, otherwise
    /// `unexpected <token>[ in <context>][, expected <expected>]`.
    fn unexpected(&self, context: &str, expected: &str) -> ParseError {
        let t = self.peek();
        if t.kind == T::Error {
            return self.err(
                PosRange::new(t.pos, self.input.len()),
                self.lex_error.clone().unwrap_or_default(),
            );
        }
        let mut msg = format!("unexpected {}", self.desc(t));
        if !context.is_empty() {
            msg.push_str(" in ");
            msg.push_str(context);
        }
        if !expected.is_empty() {
            msg.push_str(", expected ");
            msg.push_str(expected);
        }
        self.err(PosRange::new(t.pos, t.end), msg)
    }

    /// A syntax error inside an expression that no more specific rule reports.
    fn unexpected_in_expr(&self) -> ParseError {
        if self.agg_depth > 0 {
            self.unexpected("aggregation", "")
        } else {
            self.unexpected("", "")
        }
    }

    fn unquote(&self, t: Token) -> Result<String, ParseError> {
        unquote(self.text(t)).map_err(|e| {
            self.err(
                PosRange::new(t.pos, t.end),
                format!("error unquoting string {}: {e}", go_quote(self.text(t))),
            )
        })
    }

    fn expect_string(&mut self, context: &str) -> Result<String, ParseError> {
        let t = self.peek();
        if t.kind != T::Str {
            return Err(self.unexpected(context, "string"));
        }
        self.bump();
        self.unquote(t)
    }

    // ---- Expressions ----------------------------------------------------------------------

    /// Precedence climbing over binary operators with precedence >= `min_prec`.
    fn parse_expr(&mut self, min_prec: u8) -> Parsed {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            let t = self.peek();
            return Err(self.err(PosRange::new(t.pos, t.end), TOO_DEEP));
        }
        let r = self.parse_expr_inner(min_prec);
        self.nesting -= 1;
        r
    }

    fn parse_expr_inner(&mut self, min_prec: u8) -> Parsed {
        let (mut lhs, mut depth) = self.parse_unary()?;
        let start = lhs.pos().start;
        while let Some(op) = binop(self.peek().kind) {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            self.bump();
            let (return_bool, matching, fill) = self.parse_bin_modifiers()?;
            let next_min = if op.is_right_assoc() { prec } else { prec + 1 };
            let (rhs, rhs_depth) = self.parse_expr(next_min)?;
            depth = self.deeper(depth.max(rhs_depth), start)?;
            let b = Expr::Binary(BinaryExpr {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                matching: Some(matching),
                return_bool,
            });
            if fill {
                return Err(self.err(
                    b.pos(),
                    "binop fill modifiers are experimental and not enabled",
                ));
            }
            lhs = b;
        }
        Ok((lhs, depth))
    }

    /// `depth + 1`, or an error when that is too deep.
    fn deeper(&self, depth: u32, at: usize) -> Result<u32, ParseError> {
        if depth >= MAX_TREE_DEPTH {
            return Err(self.err(PosRange::new(at, at), TOO_DEEP));
        }
        Ok(depth + 1)
    }

    /// `[bool] [on|ignoring (...) [group_left|group_right [(...)]]] [fill...]`.
    fn parse_bin_modifiers(&mut self) -> Result<(bool, VectorMatching, bool), ParseError> {
        let mut m = VectorMatching {
            card: Cardinality::OneToOne,
            matching_labels: Vec::new(),
            on: false,
            include: Vec::new(),
        };
        let return_bool = if self.peek().kind == T::Bool {
            self.bump();
            true
        } else {
            false
        };
        if matches!(self.peek().kind, T::On | T::Ignoring) {
            m.on = self.bump().kind == T::On;
            m.matching_labels = self.parse_grouping_labels()?;
            if matches!(self.peek().kind, T::GroupLeft | T::GroupRight) {
                m.card = if self.bump().kind == T::GroupLeft {
                    Cardinality::ManyToOne
                } else {
                    Cardinality::OneToMany
                };
                if self.peek().kind == T::LeftParen {
                    m.include = self.parse_grouping_labels()?;
                }
            }
        }
        let mut fill = false;
        while matches!(self.peek().kind, T::Fill | T::FillLeft | T::FillRight) {
            self.bump();
            fill = true;
            if self.peek().kind != T::LeftParen {
                return Err(self.unexpected_in_expr());
            }
            self.bump();
            if matches!(self.peek().kind, T::Add | T::Sub) {
                self.bump();
            }
            if !matches!(self.peek().kind, T::Number | T::Duration) {
                return Err(self.unexpected_in_expr());
            }
            self.bump();
            if self.peek().kind != T::RightParen {
                return Err(self.unexpected_in_expr());
            }
            self.bump();
        }
        Ok((return_bool, m, fill))
    }

    /// `( label, ... )` after `by`, `without`, `on`, `ignoring`, `group_left`, `group_right`.
    fn parse_grouping_labels(&mut self) -> Result<Vec<String>, ParseError> {
        if self.peek().kind != T::LeftParen {
            return Err(self.unexpected("grouping opts", "\"(\""));
        }
        self.bump();
        let mut labels = Vec::new();
        if self.peek().kind == T::RightParen {
            self.bump();
            return Ok(labels);
        }
        loop {
            let t = self.peek();
            if is_maybe_label(t.kind) {
                self.bump();
                labels.push(self.text(t).to_string());
            } else if t.kind == T::Str {
                self.bump();
                let l = self.unquote(t)?;
                if l.is_empty() {
                    return Err(self.err(
                        PosRange::new(t.pos, t.end),
                        format!("invalid label name for grouping: {}", go_quote(&l)),
                    ));
                }
                labels.push(l);
            } else {
                return Err(self.unexpected("grouping opts", "label"));
            }
            match self.peek().kind {
                T::Comma => {
                    self.bump();
                    if self.peek().kind == T::RightParen {
                        self.bump();
                        return Ok(labels);
                    }
                }
                T::RightParen => {
                    self.bump();
                    return Ok(labels);
                }
                _ => return Err(self.unexpected("grouping opts", "\",\" or \")\"")),
            }
        }
    }

    /// Unary `+`/`-` (binding like `*`), then a primary expression with its postfix modifiers.
    fn parse_unary(&mut self) -> Parsed {
        let t = self.peek();
        if matches!(t.kind, T::Add | T::Sub) {
            self.bump();
            let op = if t.kind == T::Sub {
                BinOp::Sub
            } else {
                BinOp::Add
            };
            // Only `^` binds tighter than a unary operator.
            let (operand, depth) = self.parse_expr(BinOp::Pow.precedence())?;
            return Ok(match operand {
                Expr::NumberLiteral { val, pos } => (
                    Expr::NumberLiteral {
                        val: if op == BinOp::Sub { -val } else { val },
                        pos: PosRange::new(t.pos, pos.end),
                    },
                    depth,
                ),
                e => {
                    let depth = self.deeper(depth, t.pos)?;
                    let end = e.pos().end;
                    (
                        Expr::Unary {
                            op,
                            expr: Box::new(e),
                            pos: PosRange::new(t.pos, end),
                        },
                        depth,
                    )
                }
            });
        }
        let (e, depth) = self.parse_primary()?;
        self.parse_postfix(e, depth)
    }

    fn parse_primary(&mut self) -> Parsed {
        let t = self.peek();
        match t.kind {
            T::Number => {
                self.bump();
                let val = self.number(t)?;
                let pos = PosRange::new(t.pos, t.end);
                Ok((Expr::NumberLiteral { val, pos }, 1))
            }
            T::Duration => {
                self.bump();
                let ms = self.duration(t)?;
                let pos = PosRange::new(t.pos, t.end);
                Ok((
                    Expr::NumberLiteral {
                        val: ms as f64 / 1000.0,
                        pos,
                    },
                    1,
                ))
            }
            T::Str => {
                self.bump();
                let val = self.unquote(t)?;
                let pos = PosRange::new(t.pos, t.end);
                Ok((Expr::StringLiteral { val, pos }, 1))
            }
            T::LeftParen => {
                self.bump();
                let (inner, depth) = self.parse_expr(1)?;
                let close = self.peek();
                if close.kind != T::RightParen {
                    return Err(self.unexpected_in_expr());
                }
                self.bump();
                let depth = self.deeper(depth, t.pos)?;
                Ok((
                    Expr::Paren {
                        expr: Box::new(inner),
                        pos: PosRange::new(t.pos, close.end),
                    },
                    depth,
                ))
            }
            T::LeftBrace => Ok((self.parse_vector_selector(None)?, 1)),
            // `step()`, `range()`, `start()`, `end()` are keywords that newer Prometheus
            // versions also accept as functions; they resolve through the function table.
            T::Identifier | T::Step | T::Range | T::Start | T::End
                if self.peek_at(1).kind == T::LeftParen =>
            {
                self.parse_call()
            }
            T::Agg(op) if matches!(self.peek_at(1).kind, T::LeftParen | T::By | T::Without) => {
                self.parse_aggregate(op)
            }
            k if is_metric_identifier(k) => {
                self.bump();
                Ok((self.parse_vector_selector(Some(t))?, 1))
            }
            _ => Err(self.unexpected_in_expr()),
        }
    }

    /// `name`, `name{...}` or `{...}`; `name` (if any) is already consumed.
    fn parse_vector_selector(&mut self, name: Option<Token>) -> Result<Expr, ParseError> {
        let mut matchers = Vec::new();
        let start = name.map_or(self.peek().pos, |t| t.pos);
        let mut end = name.map_or(start, |t| t.end);
        if self.peek().kind == T::LeftBrace {
            self.bump();
            if self.peek().kind == T::RightBrace {
                end = self.bump().end;
            } else {
                loop {
                    matchers.push(self.parse_label_matcher()?);
                    match self.peek().kind {
                        T::Comma => {
                            self.bump();
                            if self.peek().kind == T::RightBrace {
                                end = self.bump().end;
                                break;
                            }
                        }
                        T::RightBrace => {
                            end = self.bump().end;
                            break;
                        }
                        _ => return Err(self.unexpected("label matching", "\",\" or \"}\"")),
                    }
                }
            }
        }
        let name = name.map(|t| self.text(t).to_string());
        if let Some(n) = &name {
            let m = Matcher::new(MatchOp::Equal, "__name__", n.clone())
                .map_err(|e| self.err(PosRange::new(start, end), e.to_string()))?;
            matchers.push(m);
        }
        Ok(Expr::VectorSelector(VectorSelector {
            name,
            matchers,
            offset_ms: 0,
            at: None,
            pos: PosRange::new(start, end),
        }))
    }

    fn parse_label_matcher(&mut self) -> Result<Matcher, ParseError> {
        let t = self.peek();
        let name = match t.kind {
            T::Identifier => {
                self.bump();
                if match_op(self.peek().kind).is_none() {
                    return Err(self.unexpected("label matching", "label matching operator"));
                }
                self.text(t).to_string()
            }
            T::Str => {
                self.bump();
                let s = self.unquote(t)?;
                if match_op(self.peek().kind).is_none() {
                    // A lone quoted string is the metric name.
                    return Matcher::new(MatchOp::Equal, "__name__", s)
                        .map_err(|e| self.err(PosRange::new(t.pos, t.end), e.to_string()));
                }
                s
            }
            _ => return Err(self.unexpected("label matching", "identifier or \"}\"")),
        };
        let op = match_op(self.bump().kind).unwrap_or(MatchOp::Equal);
        let v = self.peek();
        if v.kind != T::Str {
            return Err(self.unexpected("label matching", "string"));
        }
        self.bump();
        let value = self.unquote(v)?;
        Matcher::new(op, name, value)
            .map_err(|e| self.err(PosRange::new(t.pos, v.end), e.to_string()))
    }

    /// `f(args)`: the identifier is the next token and `(` follows.
    fn parse_call(&mut self) -> Parsed {
        let name_tok = self.bump();
        let (args, end, depth) = self.parse_call_body()?;
        let lowered;
        let name = if name_tok.kind == T::Identifier {
            self.text(name_tok)
        } else {
            lowered = self.text(name_tok).to_ascii_lowercase();
            lowered.as_str()
        };
        let Some(func) = function(name) else {
            return Err(self.err(
                PosRange::new(name_tok.pos, name_tok.end),
                format!("unknown function with name {}", go_quote(name)),
            ));
        };
        let depth = self.deeper(depth, name_tok.pos)?;
        Ok((
            Expr::Call(Call {
                func,
                args,
                pos: PosRange::new(name_tok.pos, end),
            }),
            depth,
        ))
    }

    /// `( )` or `( expr, ... )`; returns the arguments, the end of `)` and the deepest
    /// argument's depth.
    fn parse_call_body(&mut self) -> Result<(Vec<Expr>, usize, u32), ParseError> {
        if self.peek().kind != T::LeftParen {
            return Err(self.unexpected_in_expr());
        }
        self.bump();
        let mut args = Vec::new();
        let mut depth = 0;
        if self.peek().kind == T::RightParen {
            return Ok((args, self.bump().end, depth));
        }
        loop {
            let (arg, d) = self.parse_expr(1)?;
            depth = depth.max(d);
            args.push(arg);
            match self.peek().kind {
                T::Comma => {
                    let comma = self.bump();
                    if self.peek().kind == T::RightParen {
                        return Err(self.err(
                            PosRange::new(comma.pos, comma.end),
                            "trailing commas not allowed in function call args",
                        ));
                    }
                }
                T::RightParen => return Ok((args, self.bump().end, depth)),
                _ => return Err(self.unexpected_in_expr()),
            }
        }
    }

    /// `op [by|without (...)] (args) [by|without (...)]`; `op` is the next token.
    fn parse_aggregate(&mut self, op: AggOp) -> Parsed {
        let op_tok = self.bump();
        self.agg_depth += 1;
        let mut grouping = Vec::new();
        let mut without = false;
        let args;
        let mut end;
        let depth;
        if matches!(self.peek().kind, T::By | T::Without) {
            without = self.bump().kind == T::Without;
            grouping = self.parse_grouping_labels()?;
            (args, end, depth) = self.parse_call_body()?;
        } else {
            (args, end, depth) = self.parse_call_body()?;
            if matches!(self.peek().kind, T::By | T::Without) {
                without = self.bump().kind == T::Without;
                grouping = self.parse_grouping_labels()?;
                end = self.tokens[self.i.saturating_sub(1)].end;
            }
        }
        self.agg_depth -= 1;
        let pos = PosRange::new(op_tok.pos, end);
        if args.is_empty() {
            return Err(self.err(pos, "no arguments for aggregate expression provided"));
        }
        let desired = if op.has_param() { 2 } else { 1 };
        if args.len() != desired {
            return Err(self.err(
                pos,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {desired}, got {}",
                    args.len()
                ),
            ));
        }
        let mut args = args.into_iter();
        let param = if op.has_param() {
            args.next().map(Box::new)
        } else {
            None
        };
        let Some(expr) = args.next() else {
            return Err(self.err(pos, "no arguments for aggregate expression provided"));
        };
        let depth = self.deeper(depth, op_tok.pos)?;
        Ok((
            Expr::Aggregate(AggregateExpr {
                op,
                expr: Box::new(expr),
                param,
                grouping,
                without,
                pos,
            }),
            depth,
        ))
    }

    // ---- Postfix modifiers -----------------------------------------------------------------

    fn parse_postfix(&mut self, mut e: Expr, mut depth: u32) -> Parsed {
        loop {
            e = match self.peek().kind {
                T::LeftBracket => {
                    depth = self.deeper(depth, e.pos().start)?;
                    self.parse_range(e)?
                }
                T::Offset => self.parse_offset(e)?,
                T::At => self.parse_at(e)?,
                T::Anchored => {
                    return Err(
                        self.err(e.pos(), "anchored modifier is experimental and not enabled")
                    )
                }
                T::Smoothed => {
                    return Err(
                        self.err(e.pos(), "smoothed modifier is experimental and not enabled")
                    )
                }
                _ => return Ok((e, depth)),
            };
        }
    }

    /// `[range]` or `[range:step]` / `[range:]`.
    fn parse_range(&mut self, e: Expr) -> Result<Expr, ParseError> {
        let lb = self.bump();
        if !starts_duration_expr(self.peek().kind) {
            return Err(self.unexpected(
                "subquery or range selector",
                "number, duration, step(), or range()",
            ));
        }
        let range = self.parse_positive_duration()?;
        match self.peek().kind {
            T::RightBracket => {
                let rb = self.bump();
                let err_pos = PosRange::new(lb.pos, rb.end);
                let mut vs = match e {
                    Expr::VectorSelector(vs) => vs,
                    _ => return Err(self.err(err_pos, "ranges only allowed for vector selectors")),
                };
                if vs.offset_ms != 0 {
                    return Err(self.err(err_pos, "no offset modifiers allowed before range"));
                }
                if matches!(vs.at, Some(AtModifier::At(_))) {
                    return Err(self.err(err_pos, "no @ modifiers allowed before range"));
                }
                vs.offset_ms = 0;
                Ok(Expr::MatrixSelector(MatrixSelector {
                    vs,
                    range_ms: secs_to_ms(range.secs),
                    end_pos: rb.end,
                }))
            }
            T::Colon => {
                self.bump();
                let step = match self.peek().kind {
                    T::RightBracket => None,
                    k if starts_duration_expr(k) => {
                        let s = self.parse_positive_duration()?;
                        if self.peek().kind != T::RightBracket {
                            return Err(self.unexpected("subquery selector", "\"]\""));
                        }
                        Some(secs_to_ms(s.secs))
                    }
                    _ => {
                        return Err(self.unexpected(
                            "subquery selector",
                            "number, duration, step(), range(), or \"]\"",
                        ))
                    }
                };
                let rb = self.bump();
                Ok(Expr::Subquery(SubqueryExpr {
                    expr: Box::new(e),
                    range_ms: secs_to_ms(range.secs),
                    step_ms: step,
                    offset_ms: 0,
                    at: None,
                    end_pos: rb.end,
                }))
            }
            _ => Err(self.unexpected("subquery or range", "\":\" or \"]\"")),
        }
    }

    /// A duration inside brackets, which must be a positive literal (duration arithmetic is
    /// experimental).
    fn parse_positive_duration(&mut self) -> Result<DurationLit, ParseError> {
        let d = self.parse_duration_literal()?;
        if binop(self.peek().kind).is_some() {
            return Err(self.err(d.pos, EXPERIMENTAL_DURATION));
        }
        if d.secs.is_nan() || d.secs <= 0.0 {
            return Err(self.err(d.pos, "duration must be greater than 0"));
        }
        Ok(d)
    }

    /// `[+|-]... (number | duration)`, rejecting experimental duration expressions.
    fn parse_duration_literal(&mut self) -> Result<DurationLit, ParseError> {
        let t = self.peek();
        match t.kind {
            T::Add | T::Sub => {
                self.bump();
                self.nesting += 1;
                if self.nesting > MAX_NESTING {
                    return Err(self.err(PosRange::new(t.pos, t.end), TOO_DEEP));
                }
                let inner = self.parse_duration_literal();
                self.nesting -= 1;
                let inner = inner?;
                let secs = if t.kind == T::Sub {
                    -inner.secs
                } else {
                    inner.secs
                };
                if duration_out_of_range(secs) {
                    return Err(self.err(PosRange::new(t.pos, t.end), "duration out of range"));
                }
                Ok(DurationLit {
                    secs,
                    pos: PosRange::new(t.pos, inner.pos.end),
                })
            }
            T::Number | T::Duration => {
                self.bump();
                let secs = self.duration_value(t)?;
                if duration_out_of_range(secs) {
                    return Err(self.err(PosRange::new(t.pos, t.end), "duration out of range"));
                }
                Ok(DurationLit {
                    secs,
                    pos: PosRange::new(t.pos, t.end),
                })
            }
            T::Step | T::Range | T::Agg(AggOp::Min | AggOp::Max) | T::LeftParen => {
                Err(self.err(PosRange::new(t.pos, t.end), EXPERIMENTAL_DURATION))
            }
            _ => Err(self.unexpected_in_expr()),
        }
    }

    /// The value of a NUMBER or DURATION token in seconds.
    fn duration_value(&self, t: Token) -> Result<f64, ParseError> {
        if t.kind == T::Duration {
            Ok(self.duration(t)? as f64 / 1000.0)
        } else {
            self.number(t)
        }
    }

    fn parse_offset(&mut self, mut e: Expr) -> Result<Expr, ParseError> {
        self.bump();
        let t = self.peek();
        let starts = match t.kind {
            T::Number | T::Duration => true,
            T::Add | T::Sub => matches!(
                self.peek_at(1).kind,
                T::Number
                    | T::Duration
                    | T::Step
                    | T::Range
                    | T::LeftParen
                    | T::Agg(AggOp::Min | AggOp::Max)
            ),
            T::Step | T::Range | T::LeftParen | T::Agg(AggOp::Min | AggOp::Max) => true,
            _ => false,
        };
        if !starts {
            return Err(self.unexpected("offset", "number, duration, step(), or range()"));
        }
        // Only a (signed) literal belongs to the offset: `x offset 1m + 1m` is `(x offset 1m) + 1m`.
        let d = if matches!(t.kind, T::Add | T::Sub) {
            self.bump();
            let v = self.peek();
            if !matches!(v.kind, T::Number | T::Duration) {
                return Err(self.err(PosRange::new(v.pos, v.end), EXPERIMENTAL_DURATION));
            }
            self.bump();
            let secs = self.duration_value(v)?;
            let secs = if t.kind == T::Sub { -secs } else { secs };
            if duration_out_of_range(secs) {
                return Err(self.err(PosRange::new(t.pos, t.end), "duration out of range"));
            }
            DurationLit {
                secs,
                pos: PosRange::new(t.pos, v.end),
            }
        } else if matches!(t.kind, T::Number | T::Duration) {
            self.bump();
            let secs = self.duration_value(t)?;
            if duration_out_of_range(secs) {
                return Err(self.err(PosRange::new(t.pos, t.end), "duration out of range"));
            }
            DurationLit {
                secs,
                pos: PosRange::new(t.pos, t.end),
            }
        } else {
            return Err(self.err(PosRange::new(t.pos, t.end), EXPERIMENTAL_DURATION));
        };
        let offset = secs_to_ms(d.secs);
        let end = d.pos.end;
        let pos = e.pos();
        let (slot, end_slot) = match &mut e {
            Expr::VectorSelector(vs) => (&mut vs.offset_ms, &mut vs.pos.end),
            Expr::MatrixSelector(m) => (&mut m.vs.offset_ms, &mut m.end_pos),
            Expr::Subquery(s) => (&mut s.offset_ms, &mut s.end_pos),
            _ => {
                return Err(self.err(
                    pos,
                    "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ))
            }
        };
        if *slot != 0 {
            return Err(self.err(pos, "offset may not be set multiple times"));
        }
        *slot = offset;
        *end_slot = end;
        Ok(e)
    }

    fn parse_at(&mut self, mut e: Expr) -> Result<Expr, ParseError> {
        self.bump();
        let t = self.peek();
        let (at, end) = match t.kind {
            T::Start | T::End => {
                self.bump();
                if self.peek().kind != T::LeftParen {
                    return Err(self.unexpected("@", "timestamp"));
                }
                self.bump();
                if self.peek().kind != T::RightParen {
                    return Err(self.unexpected("@", "timestamp"));
                }
                let close = self.bump();
                let at = if t.kind == T::Start {
                    AtModifier::Start
                } else {
                    AtModifier::End
                };
                (at, close.end)
            }
            T::Number | T::Duration | T::Add | T::Sub => {
                let (sign, v) = if matches!(t.kind, T::Add | T::Sub) {
                    self.bump();
                    let v = self.peek();
                    if !matches!(v.kind, T::Number | T::Duration) {
                        return Err(self.unexpected("@", "timestamp"));
                    }
                    (if t.kind == T::Sub { -1.0 } else { 1.0 }, v)
                } else {
                    (1.0, t)
                };
                self.bump();
                let ts = sign * self.duration_value(v)?;
                if !ts.is_finite() || ts >= i64::MAX as f64 || ts <= i64::MIN as f64 {
                    return Err(self.err(
                        e.pos(),
                        format!(
                            "timestamp out of bounds for @ modifier: {}",
                            go_format_f6(ts)
                        ),
                    ));
                }
                (AtModifier::At((ts * 1000.0).round() as i64), v.end)
            }
            _ => return Err(self.unexpected("@", "timestamp")),
        };
        let pos = e.pos();
        let (slot, end_slot) = match &mut e {
            Expr::VectorSelector(vs) => (&mut vs.at, &mut vs.pos.end),
            Expr::MatrixSelector(m) => (&mut m.vs.at, &mut m.end_pos),
            Expr::Subquery(s) => (&mut s.at, &mut s.end_pos),
            _ => {
                return Err(self.err(
                    pos,
                    "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                ))
            }
        };
        if slot.is_some() {
            return Err(self.err(pos, "@ <timestamp> may not be set multiple times"));
        }
        *slot = Some(at);
        *end_slot = end;
        Ok(e)
    }

    // ---- Literals -----------------------------------------------------------------------------

    fn number(&self, t: Token) -> Result<f64, ParseError> {
        parse_number(self.text(t)).map_err(|e| {
            self.err(
                PosRange::new(t.pos, t.end),
                format!("error parsing number: {e}"),
            )
        })
    }

    /// A DURATION token in milliseconds.
    fn duration(&self, t: Token) -> Result<i64, ParseError> {
        parse_duration_ms(self.text(t)).map_err(|e| self.err(PosRange::new(t.pos, t.end), e))
    }
}

// ---- Type checking (Prometheus's checkAST) ---------------------------------------------------

/// Type-checks `e`, fixing up vector matching as Prometheus does (set operators are
/// many-to-many; matching is dropped unless both sides are instant vectors).
fn check(input: &str, e: &mut Expr, bypass_empty_matcher: bool) -> Result<ValueType, ParseError> {
    let err = |pos: PosRange, msg: String| Err(ParseError::new(input, pos, msg));
    // Types are computed bottom-up here: `Expr::value_type` walks the whole subtree.
    let typ = match e {
        Expr::NumberLiteral { .. } => ValueType::Scalar,
        Expr::StringLiteral { .. } => ValueType::String,
        Expr::Paren { expr, .. } => check(input, expr, false)?,
        Expr::Unary { expr, pos, .. } => {
            let pos = *pos;
            let t = check(input, expr, false)?;
            if t != ValueType::Scalar && t != ValueType::Vector {
                return err(
                    pos,
                    format!(
                        "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                        go_quote(t.name())
                    ),
                );
            }
            t
        }
        Expr::Subquery(s) => {
            let t = check(input, &mut s.expr, false)?;
            if t != ValueType::Vector {
                return err(
                    PosRange::new(s.expr.pos().start, s.end_pos),
                    format!(
                        "subquery is only allowed on instant vector, got {} instead",
                        go_type_name(t)
                    ),
                );
            }
            ValueType::Matrix
        }
        Expr::MatrixSelector(m) => {
            check_vector_selector(input, &m.vs, false)?;
            ValueType::Matrix
        }
        Expr::VectorSelector(vs) => {
            check_vector_selector(input, vs, bypass_empty_matcher)?;
            ValueType::Vector
        }
        Expr::Aggregate(a) => {
            expect_type(
                input,
                &mut a.expr,
                ValueType::Vector,
                "aggregation expression",
            )?;
            match a.op {
                AggOp::Topk
                | AggOp::Bottomk
                | AggOp::Quantile
                | AggOp::Limitk
                | AggOp::LimitRatio => {
                    if let Some(p) = &mut a.param {
                        expect_type(input, p, ValueType::Scalar, "aggregation parameter")?;
                    }
                }
                AggOp::CountValues => {
                    if let Some(p) = &mut a.param {
                        expect_type(input, p, ValueType::String, "aggregation parameter")?;
                    }
                }
                _ => {}
            }
            ValueType::Vector
        }
        Expr::Call(c) => {
            let pos = c.pos;
            let f = c.func;
            let nargs = f.arg_types.len();
            let got = c.args.len();
            if f.variadic == 0 {
                if nargs != got {
                    return err(
                        pos,
                        format!(
                            "expected {nargs} argument(s) in call to {}, got {got}",
                            go_quote(f.name)
                        ),
                    );
                }
            } else {
                let na = nargs.saturating_sub(1);
                if na > got {
                    return err(
                        pos,
                        format!(
                            "expected at least {na} argument(s) in call to {}, got {got}",
                            go_quote(f.name)
                        ),
                    );
                }
                let max = na + f.variadic.max(0) as usize;
                if f.variadic > 0 && max < got {
                    return err(
                        pos,
                        format!(
                            "expected at most {max} argument(s) in call to {}, got {got}",
                            go_quote(f.name)
                        ),
                    );
                }
            }
            let mut bypass_second = false;
            if f.name == "info" && got > 1 {
                let second = &c.args[1];
                if second.value_type() != ValueType::Vector {
                    return err(
                        pos,
                        format!(
                            "expected type instant vector in call to function {}, got {}",
                            go_quote(f.name),
                            second.value_type()
                        ),
                    );
                }
                match second {
                    Expr::VectorSelector(vs) if vs.name.is_some() => {
                        return err(
                            second.pos(),
                            "expected label selectors only, got vector selector instead".into(),
                        )
                    }
                    Expr::VectorSelector(_) => bypass_second = true,
                    _ => return err(second.pos(), "expected label selectors only".into()),
                }
            }
            for (i, arg) in c.args.iter_mut().enumerate() {
                let idx = if i >= nargs {
                    if f.variadic == 0 || nargs == 0 {
                        break;
                    }
                    nargs - 1
                } else {
                    i
                };
                let t = check(input, arg, bypass_second && i == 1)?;
                let want = f.arg_types[idx];
                if t != want {
                    return err(
                        arg.pos(),
                        format!(
                            "expected type {want} in call to function {}, got {t}",
                            go_quote(f.name)
                        ),
                    );
                }
            }
            f.return_type
        }
        Expr::Binary(b) => {
            let lt = check(input, &mut b.lhs, false)?;
            let rt = check(input, &mut b.rhs, false)?;
            let op_range = || {
                let bytes = input.as_bytes();
                let mut s = b.lhs.pos().end;
                while s < bytes.len() && is_space(bytes[s] as char) {
                    s += 1;
                }
                let mut e = b.rhs.pos().start;
                while e > s && is_space(bytes[e - 1] as char) {
                    e -= 1;
                }
                PosRange::new(s, e.max(s))
            };
            if b.return_bool && !b.op.is_comparison() {
                return err(
                    op_range(),
                    "bool modifier can only be used on comparison operators".into(),
                );
            }
            if b.op.is_comparison()
                && !b.return_bool
                && lt == ValueType::Scalar
                && rt == ValueType::Scalar
            {
                return err(
                    op_range(),
                    "comparisons between scalars must use BOOL modifier".into(),
                );
            }
            if let Some(m) = &mut b.matching {
                if b.op.is_set() && m.card == Cardinality::OneToOne {
                    m.card = Cardinality::ManyToMany;
                }
                if m.on {
                    if let Some(l) = m.matching_labels.iter().find(|l| m.include.contains(l)) {
                        return err(
                            op_range(),
                            format!(
                                "label {} must not occur in ON and GROUP clause at once",
                                go_quote(l)
                            ),
                        );
                    }
                }
            }
            if lt != ValueType::Scalar && lt != ValueType::Vector {
                return err(
                    b.lhs.pos(),
                    "binary expression must contain only scalar and instant vector types".into(),
                );
            }
            if rt != ValueType::Scalar && rt != ValueType::Vector {
                return err(
                    b.rhs.pos(),
                    "binary expression must contain only scalar and instant vector types".into(),
                );
            }
            if lt != ValueType::Vector || rt != ValueType::Vector {
                if let Some(m) = &b.matching {
                    if !m.matching_labels.is_empty() {
                        return err(
                            bin_pos(b),
                            "vector matching only allowed between instant vectors".into(),
                        );
                    }
                }
                b.matching = None;
            } else if b.op.is_set() {
                if let Some(m) = &b.matching {
                    if matches!(m.card, Cardinality::OneToMany | Cardinality::ManyToOne) {
                        return err(
                            bin_pos(b),
                            format!(
                                "no grouping allowed for {} operation",
                                go_quote(b.op.as_str())
                            ),
                        );
                    }
                    if m.card != Cardinality::ManyToMany {
                        return err(
                            bin_pos(b),
                            "set operations must always be many-to-many".into(),
                        );
                    }
                }
            }
            if (lt == ValueType::Scalar || rt == ValueType::Scalar) && b.op.is_set() {
                return err(
                    bin_pos(b),
                    format!(
                        "set operator {} not allowed in binary scalar expression",
                        go_quote(b.op.as_str())
                    ),
                );
            }
            if lt == ValueType::Scalar && rt == ValueType::Scalar {
                ValueType::Scalar
            } else {
                ValueType::Vector
            }
        }
    };
    Ok(typ)
}

/// Position of a whole binary expression.
fn bin_pos(b: &BinaryExpr) -> PosRange {
    PosRange::new(b.lhs.pos().start, b.rhs.pos().end)
}

fn expect_type(
    input: &str,
    e: &mut Expr,
    want: ValueType,
    context: &str,
) -> Result<(), ParseError> {
    let t = check(input, e, false)?;
    if t != want {
        return Err(ParseError::new(
            input,
            e.pos(),
            format!("expected type {want} in {context}, got {t}"),
        ));
    }
    Ok(())
}

fn check_vector_selector(
    input: &str,
    vs: &VectorSelector,
    bypass_empty_matcher: bool,
) -> Result<(), ParseError> {
    if let Some(name) = &vs.name {
        // The last matcher is the one for the name written before the braces.
        let before = &vs.matchers[..vs.matchers.len().saturating_sub(1)];
        if let Some(m) = before.iter().find(|m| m.name == "__name__") {
            return Err(ParseError::new(
                input,
                vs.pos,
                format!(
                    "metric name must not be set twice: {} or {}",
                    go_quote(name),
                    go_quote(&m.value)
                ),
            ));
        }
        return Ok(());
    }
    if !bypass_empty_matcher && vs.matchers.iter().all(|m| m.matches_empty()) {
        return Err(ParseError::new(
            input,
            vs.pos,
            "vector selector must contain at least one non-empty matcher",
        ));
    }
    Ok(())
}

// ---- Token classes ---------------------------------------------------------------------------

fn binop(k: T) -> Option<BinOp> {
    Some(match k {
        T::Add => BinOp::Add,
        T::Sub => BinOp::Sub,
        T::Mul => BinOp::Mul,
        T::Div => BinOp::Div,
        T::Mod => BinOp::Mod,
        T::Pow => BinOp::Pow,
        T::Atan2 => BinOp::Atan2,
        T::Eqlc => BinOp::Eql,
        T::Neq => BinOp::Neq,
        T::Gtr => BinOp::Gtr,
        T::Lss => BinOp::Lss,
        T::Gte => BinOp::Gte,
        T::Lte => BinOp::Lte,
        T::Land => BinOp::And,
        T::Lor => BinOp::Or,
        T::Lunless => BinOp::Unless,
        _ => return None,
    })
}

fn match_op(k: T) -> Option<MatchOp> {
    Some(match k {
        T::Eql => MatchOp::Equal,
        T::Neq => MatchOp::NotEqual,
        T::EqlRegex => MatchOp::Regex,
        T::NeqRegex => MatchOp::NotRegex,
        _ => return None,
    })
}

/// Tokens that can name a metric (Prometheus's `metric_identifier`).
fn is_metric_identifier(k: T) -> bool {
    matches!(
        k,
        T::Identifier
            | T::MetricIdentifier
            | T::Agg(_)
            | T::By
            | T::Without
            | T::Land
            | T::Lor
            | T::Lunless
            | T::Offset
            | T::Start
            | T::End
            | T::Step
            | T::Range
            | T::Anchored
            | T::Smoothed
    )
}

/// Tokens that can be a label in grouping clauses (Prometheus's `maybe_label`).
fn is_maybe_label(k: T) -> bool {
    is_metric_identifier(k)
        || matches!(
            k,
            T::Bool | T::GroupLeft | T::GroupRight | T::Ignoring | T::On | T::Atan2
        )
}

fn starts_duration_expr(k: T) -> bool {
    matches!(
        k,
        T::Number
            | T::Duration
            | T::Add
            | T::Sub
            | T::Step
            | T::Range
            | T::LeftParen
            | T::Agg(AggOp::Min | AggOp::Max)
    )
}

// ---- Literal helpers -------------------------------------------------------------------------

/// Go's `%.10q...` for long token values, `%q` otherwise.
fn short_quote(val: &str) -> String {
    if val.len() > 10 {
        let cut: String = val.chars().take(10).collect();
        format!("{}...", go_quote(&cut))
    } else {
        go_quote(val)
    }
}

/// Go's `ValueType` string (used in the subquery message).
fn go_type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
        ValueType::Vector => "vector",
        ValueType::Matrix => "matrix",
    }
}

/// Whether seconds overflow Go's `time.Duration`.
fn duration_out_of_range(secs: f64) -> bool {
    !(-9_223_372_036.854_775..=9_223_372_036.854_775).contains(&secs)
}

/// Seconds to milliseconds as Prometheus does: round to nanoseconds, then truncate to ms.
fn secs_to_ms(secs: f64) -> i64 {
    let ns = (secs * 1e9).round();
    (ns / 1e6).trunc() as i64
}

/// Parses a number as Prometheus does: Go's `strconv.ParseInt(s, 0, 64)`, falling back to
/// `strconv.ParseFloat(s, 64)`. The error text is Go's.
fn parse_number(s: &str) -> Result<f64, String> {
    parse_go_number(s).map_err(|e| {
        let what = match e {
            NumError::Syntax => "invalid syntax",
            NumError::Range => "value out of range",
        };
        format!("strconv.ParseFloat: parsing {}: {what}", go_quote(s))
    })
}

/// Why Go's `strconv` rejected a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumError {
    Syntax,
    Range,
}

/// Go's `strconv.ParseInt(s, 0, 64)`, else `strconv.ParseFloat(s, 64)` (the float's error):
/// how Prometheus parses number literals and the runner (`parseNumber` of `test.go`) parses
/// expected values.
pub(crate) fn parse_go_number(s: &str) -> Result<f64, NumError> {
    go_parse_int(s)
        .map(|i| i as f64)
        .or_else(|_| go_parse_float(s))
}

/// Splits an optional leading sign off: (negative, rest).
fn split_sign(s: &str) -> (bool, &str) {
    match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: sign, base prefix `0x`/`0o`/`0b`/`0` (octal),
/// underscores between digits.
fn go_parse_int(s: &str) -> Result<i64, NumError> {
    let (neg, body) = split_sign(s);
    let b = body.as_bytes();
    let prefixed = |c: u8| b.len() >= 3 && b[0] == b'0' && b[1].to_ascii_lowercase() == c;
    let (radix, digits) = if prefixed(b'x') {
        (16, &body[2..])
    } else if prefixed(b'o') {
        (8, &body[2..])
    } else if prefixed(b'b') {
        (2, &body[2..])
    } else if b.first() == Some(&b'0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if body.is_empty() || (s.contains('_') && !underscore_ok(s)) {
        return Err(NumError::Syntax);
    }
    let cleaned: String = digits.chars().filter(|&c| c != '_').collect();
    if !cleaned.chars().all(|c| c.is_digit(radix)) {
        return Err(NumError::Syntax);
    }
    if cleaned.is_empty() {
        // A lone `0`.
        return Ok(0);
    }
    let v = i128::from_str_radix(&cleaned, radix).map_err(|_| NumError::Range)?;
    i64::try_from(if neg { -v } else { v }).map_err(|_| NumError::Range)
}

/// Go's `strconv.ParseFloat(s, 64)`: decimal (with exponent), `inf`/`infinity` (signed) and
/// `nan` (unsigned) in any case, hex floats with a `p` exponent, underscores between digits.
/// Out-of-range values are errors, as in Go.
fn go_parse_float(s: &str) -> Result<f64, NumError> {
    let (neg, body) = split_sign(s);
    let sign = if neg { -1.0 } else { 1.0 };
    let lower = body.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "infinity" => return Ok(sign * f64::INFINITY),
        "nan" if body.len() == s.len() => return Ok(f64::NAN),
        _ => {}
    }
    if lower.starts_with(['+', '-']) || !underscore_ok(s) {
        return Err(NumError::Syntax);
    }
    let cleaned: String = lower.chars().filter(|&c| c != '_').collect();
    let v = if let Some(h) = cleaned.strip_prefix("0x") {
        parse_hex_float(h).ok_or(NumError::Syntax)?
    } else {
        let ok = cleaned
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-'))
            && cleaned.bytes().any(|c| c.is_ascii_digit());
        if !ok {
            return Err(NumError::Syntax);
        }
        cleaned.parse::<f64>().map_err(|_| NumError::Syntax)?
    };
    if v.is_infinite() {
        return Err(NumError::Range);
    }
    Ok(sign * v)
}

/// The part of a Go hex float after `0x`: hex mantissa with optional `.`, mandatory `p`
/// exponent (infinite when out of range).
fn parse_hex_float(h: &str) -> Option<f64> {
    let (mant, exp) = h.split_once('p')?;
    let exp: i32 = exp.parse().ok()?;
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars().chain(frac.chars()) {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let e = exp.checked_sub(4 * frac.len() as i32)?;
    Some(v * 2f64.powi(e))
}

/// Go's `underscoreOK`: underscores only between digits or after a base prefix.
fn underscore_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let b = if !b.is_empty() && (b[0] == b'+' || b[0] == b'-') {
        &b[1..]
    } else {
        b
    };
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.to_ascii_lowercase().is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Prometheus's `model.ParseDuration`, in milliseconds (sub-millisecond parts cannot occur).
/// Also what the `promqltest` runner uses for `load`/`eval` intervals and times.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    // time.Duration limit in milliseconds.
    const MAX_MS: u128 = (i64::MAX as u128) / 1_000_000;
    match s {
        "0" => return Ok(0),
        "" => return Err("empty duration string".into()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: {}", go_quote(s));
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: u128 = 0;
    let mut last_unit = 0usize;
    while i < b.len() {
        let ds = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == ds {
            return Err(invalid());
        }
        let v: u64 = s[ds..i].parse().map_err(|_| invalid())?;
        let us = i;
        while i < b.len() && !b[i].is_ascii_digit() {
            i += 1;
        }
        if i == us {
            return Err(invalid());
        }
        let unit = &s[us..i];
        let Some(idx) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!(
                "unknown unit {} in duration {}",
                go_quote(unit),
                go_quote(s)
            ));
        };
        if idx < last_unit {
            return Err(invalid());
        }
        last_unit = idx + 1;
        let mult = UNITS[idx].1 as u128;
        if u128::from(v) > MAX_MS / mult {
            return Err("duration out of range".into());
        }
        total += u128::from(v) * mult;
        if total > MAX_MS {
            return Err("duration out of range".into());
        }
    }
    i64::try_from(total).map_err(|_| "duration out of range".to_string())
}

/// Prometheus's `strutil.Unquote`: `"..."` and `'...'` with Go escapes, `` `...` `` raw.
/// Escapes producing invalid UTF-8 (`\xff`) are replaced by U+FFFD.
pub(crate) fn unquote(s: &str) -> Result<String, &'static str> {
    let mut chars = s.chars();
    let (Some(q), Some(last)) = (chars.next(), chars.next_back()) else {
        return Err("invalid syntax");
    };
    if q != last || !matches!(q, '"' | '\'' | '`') {
        return Err("invalid syntax");
    }
    // Both ends are one-byte quotes.
    let body = &s[1..s.len() - 1];
    if q == '`' {
        if body.contains('`') {
            return Err("invalid syntax");
        }
        return Ok(body.to_string());
    }
    if q != '"' && q != '\'' {
        return Err("invalid syntax");
    }
    if body.contains('\n') {
        return Err("invalid syntax");
    }
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut it = body.chars().peekable();
    while let Some(c) = it.next() {
        if c == q {
            return Err("invalid syntax");
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = it.next().ok_or("invalid syntax")?;
        let simple = match e {
            'a' => Some(7u8),
            'b' => Some(8),
            'f' => Some(12),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(11),
            '\\' => Some(b'\\'),
            '\'' | '"' if e == q => Some(e as u8),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let (n, radix, is_byte) = match e {
            '0'..='7' => (3, 8, true),
            'x' => (2, 16, true),
            'u' => (4, 16, false),
            'U' => (8, 16, false),
            _ => return Err("invalid syntax"),
        };
        let mut v: u32 = 0;
        let mut digits_left = n;
        if radix == 8 {
            v = e.to_digit(8).ok_or("invalid syntax")?;
            digits_left -= 1;
        }
        for _ in 0..digits_left {
            let d = it
                .next()
                .and_then(|c| c.to_digit(radix))
                .ok_or("invalid syntax")?;
            v = v * radix + d;
        }
        if is_byte {
            let b = u8::try_from(v).map_err(|_| "invalid syntax")?;
            out.push(b);
        } else {
            let c = char::from_u32(v).ok_or("invalid syntax")?;
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Ok(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

#[cfg(test)]
mod tests;
