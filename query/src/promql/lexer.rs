//! PromQL lexer: turns query text into [`Token`]s for the parser.
//!
//! ```text
//!   &str ──► Lexer (state machine: statements / inside braces / duration expression)
//!        ──► Vec<Token> (comments dropped), ending in `Eof` or in one `Error` token
//! ```
//!
//! The lexer follows Prometheus's `promql/parser/lex.go` behaviour, including its error
//! messages and the positions they are reported at:
//!
//! * Keywords (`by`, `offset`, `and`, aggregation names, ...) are recognised case-insensitively
//!   outside of braces; inside `{...}` every word is an identifier. Whether a keyword is really
//!   used as a keyword (or as a metric/label name) is decided by the parser.
//! * `inf` and `nan` (any case) are numbers; `fill`, `fill_left` and `fill_right` are keywords
//!   only when followed by `(`.
//! * Inside `[...]` the lexer is in "duration expression" mode until the first number or
//!   duration, after which the usual state takes over with the bracket still open.
//! * A lexing error ends the token stream with an [`T::Error`] token whose position is the start
//!   of the offending item; the message is kept in [`Lexed::error`].
//!
//! Positions are byte offsets into the input.

use o11y_tsdb::labels::write_go_quoted;

use super::ast::AggOp;

/// Token kinds (Prometheus's `ItemType`s that the expression grammar uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum T {
    Eof,
    Error,
    Comma,
    Colon,
    DoubleColon,
    Eql,
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    LeftBracket,
    RightBracket,
    Identifier,
    MetricIdentifier,
    Number,
    Duration,
    Str,
    // Operators.
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eqlc,
    Neq,
    Lte,
    Lss,
    Gte,
    Gtr,
    EqlRegex,
    NeqRegex,
    At,
    Land,
    Lor,
    Lunless,
    Atan2,
    // Aggregators.
    Agg(AggOp),
    // Keywords.
    Bool,
    By,
    GroupLeft,
    GroupRight,
    Ignoring,
    Offset,
    On,
    Without,
    Smoothed,
    Anchored,
    Fill,
    FillLeft,
    FillRight,
    // Preprocessors.
    Start,
    End,
    Step,
    Range,
}

impl T {
    /// Prometheus's operator item types (`<op:...>` in messages).
    pub(crate) fn is_operator(self) -> bool {
        matches!(
            self,
            T::Add
                | T::Sub
                | T::Mul
                | T::Div
                | T::Mod
                | T::Pow
                | T::Eqlc
                | T::Neq
                | T::Lte
                | T::Lss
                | T::Gte
                | T::Gtr
                | T::EqlRegex
                | T::NeqRegex
                | T::At
                | T::Land
                | T::Lor
                | T::Lunless
                | T::Atan2
        )
    }

    /// Prometheus's keyword item types (`<...>` in messages).
    pub(crate) fn is_keyword(self) -> bool {
        matches!(
            self,
            T::Bool
                | T::By
                | T::GroupLeft
                | T::GroupRight
                | T::Ignoring
                | T::Offset
                | T::On
                | T::Without
                | T::Smoothed
                | T::Anchored
                | T::Fill
                | T::FillLeft
                | T::FillRight
        )
    }
}

/// One token: its kind and byte range `[pos, end)` in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: T,
    pub pos: usize,
    pub end: usize,
}

/// The result of lexing: tokens (the last one is `Eof` or `Error`) and the lexing error
/// message if the last token is `Error`.
#[derive(Debug)]
pub(crate) struct Lexed {
    pub tokens: Vec<Token>,
    pub error: Option<String>,
}

/// Lexes the whole input.
pub(crate) fn lex(input: &str) -> Lexed {
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        width: 0,
        paren_depth: 0,
        brace_open: false,
        bracket_open: false,
        got_colon: false,
        got_duration: false,
        string_open: '"',
        tokens: Vec::new(),
        error: None,
    };
    let mut state = State::Statements;
    loop {
        let next = match state {
            State::Statements => l.lex_statements(),
            State::Braces => l.lex_inside_braces(),
            State::DurationExpr => l.lex_duration_expr(),
            State::Done => break,
        };
        match next {
            Ok(s) => state = s,
            Err(Stop) => break,
        }
    }
    Lexed {
        tokens: l.tokens,
        error: l.error,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Statements,
    Braces,
    DurationExpr,
    Done,
}

/// Lexing stopped with an error (already recorded).
struct Stop;

type Step = Result<State, Stop>;

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    width: usize,
    paren_depth: i64,
    brace_open: bool,
    bracket_open: bool,
    got_colon: bool,
    got_duration: bool,
    string_open: char,
    tokens: Vec<Token>,
    error: Option<String>,
}

const DIGITS: &str = "0123456789";
const HEX_DIGITS: &str = "0123456789abcdefABCDEF";

impl Lexer<'_> {
    fn next(&mut self) -> Option<char> {
        match self.input.get(self.pos..).and_then(|s| s.chars().next()) {
            Some(c) => {
                self.width = c.len_utf8();
                self.pos += self.width;
                Some(c)
            }
            None => {
                self.width = 0;
                None
            }
        }
    }

    fn backup(&mut self) {
        self.pos -= self.width;
        self.width = 0;
    }

    fn peek(&self) -> Option<char> {
        self.input.get(self.pos..).and_then(|s| s.chars().next())
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.next() {
            Some(c) if valid.contains(c) => true,
            _ => {
                self.backup();
                false
            }
        }
    }

    fn is(&self, valid: &str) -> bool {
        matches!(self.peek(), Some(c) if valid.contains(c))
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn emit(&mut self, kind: T) {
        self.tokens.push(Token {
            kind,
            pos: self.start,
            end: self.pos,
        });
        self.start = self.pos;
    }

    fn ignore(&mut self) {
        self.start = self.pos;
    }

    /// Records a lexing error at the start of the current item and stops.
    fn errorf(&mut self, msg: String) -> Step {
        self.tokens.push(Token {
            kind: T::Error,
            pos: self.start,
            end: self.input.len(),
        });
        self.error = Some(msg);
        Err(Stop)
    }

    /// Like [`Lexer::errorf`] after an `emit`: Prometheus overwrites the emitted item.
    fn error_replacing_last(&mut self, msg: String) -> Step {
        self.tokens.pop();
        self.errorf(msg)
    }

    /// `(` or `)` (just read), in expressions and in duration expressions alike: emitted, with
    /// the nesting depth tracked; a `)` without its `(` is an error.
    fn lex_paren(&mut self, c: char) -> Result<(), Stop> {
        if c == '(' {
            self.emit(T::LeftParen);
            self.paren_depth += 1;
            return Ok(());
        }
        self.emit(T::RightParen);
        self.paren_depth -= 1;
        if self.paren_depth < 0 {
            self.error_replacing_last(format!(
                "unexpected right parenthesis {}",
                quote_rune(Some(')'))
            ))?;
        }
        Ok(())
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(c) if is_space(c)) {
            self.next();
        }
        self.ignore();
    }

    fn line_comment(&mut self) {
        // Skip to the end of the line (the newline itself is left for the space lexer).
        while let Some(c) = self.next() {
            if c == '\r' || c == '\n' {
                self.backup();
                break;
            }
        }
        self.ignore();
    }

    fn lex_statements(&mut self) -> Step {
        if self.brace_open {
            return Ok(State::Braces);
        }
        if self.input[self.pos..].starts_with('#') {
            self.line_comment();
            return Ok(State::Statements);
        }
        let Some(r) = self.next() else {
            if self.paren_depth != 0 {
                return self.errorf("unclosed left parenthesis".into());
            }
            if self.bracket_open {
                return self.errorf("unclosed left bracket".into());
            }
            self.emit(T::Eof);
            return Ok(State::Done);
        };
        match r {
            ',' => self.emit(T::Comma),
            c if is_space(c) => self.skip_spaces(),
            '*' => self.emit(T::Mul),
            '/' => self.emit(T::Div),
            '%' => self.emit(T::Mod),
            '+' => self.emit(T::Add),
            '-' => self.emit(T::Sub),
            '^' => self.emit(T::Pow),
            '=' => match self.peek() {
                Some('=') => {
                    self.next();
                    self.emit(T::Eqlc);
                }
                Some('~') => {
                    return self.errorf(format!(
                        "unexpected character after '=': {}",
                        quote_rune(Some('~'))
                    ))
                }
                _ => self.emit(T::Eql),
            },
            '!' => {
                let t = self.next();
                if t != Some('=') {
                    return self
                        .errorf(format!("unexpected character after '!': {}", quote_rune(t)));
                }
                self.emit(T::Neq);
            }
            '<' => {
                if self.peek() == Some('=') {
                    self.next();
                    self.emit(T::Lte);
                } else {
                    self.emit(T::Lss);
                }
            }
            '>' => {
                if self.peek() == Some('=') {
                    self.next();
                    self.emit(T::Gte);
                } else {
                    self.emit(T::Gtr);
                }
            }
            c if is_digit(c) || (c == '.' && matches!(self.peek(), Some(d) if is_digit(d))) => {
                self.backup();
                return self.lex_number_or_duration();
            }
            '"' | '\'' => {
                self.string_open = r;
                return self.lex_string();
            }
            '`' => {
                self.string_open = r;
                return self.lex_raw_string();
            }
            c if is_alpha(c) || c == ':' => {
                if !self.bracket_open {
                    self.backup();
                    return self.lex_keyword_or_identifier();
                }
                match c {
                    ':' => {
                        if self.got_colon {
                            return self
                                .errorf(format!("unexpected colon {}", quote_rune(Some(c))));
                        }
                        if self.peek() == Some(':') {
                            self.next();
                            self.emit(T::DoubleColon);
                        } else {
                            self.emit(T::Colon);
                        }
                        self.got_colon = true;
                        return Ok(State::Statements);
                    }
                    's' | 'S' | 'm' | 'M' if self.scan_duration_keyword() => {
                        return Ok(State::Statements);
                    }
                    _ => {}
                }
                return self.errorf(format!(
                    "unexpected character: {}, expected {}",
                    quote_rune(Some(c)),
                    quote_rune(Some(':'))
                ));
            }
            '(' | ')' => self.lex_paren(r)?,
            '{' => {
                self.emit(T::LeftBrace);
                self.brace_open = true;
                return Ok(State::Braces);
            }
            '[' => {
                if self.bracket_open {
                    return self
                        .errorf(format!("unexpected left bracket {}", quote_rune(Some('['))));
                }
                self.got_colon = false;
                self.emit(T::LeftBracket);
                self.skip_spaces();
                self.bracket_open = true;
                return Ok(State::DurationExpr);
            }
            ']' => {
                if !self.bracket_open {
                    return self.errorf(format!(
                        "unexpected right bracket {}",
                        quote_rune(Some(']'))
                    ));
                }
                self.emit(T::RightBracket);
                self.bracket_open = false;
            }
            '@' => self.emit(T::At),
            c => return self.errorf(format!("unexpected character: {}", quote_rune(Some(c)))),
        }
        Ok(State::Statements)
    }

    fn lex_inside_braces(&mut self) -> Step {
        if self.input[self.pos..].starts_with('#') {
            self.line_comment();
            return Ok(State::Braces);
        }
        let Some(r) = self.next() else {
            return self.errorf("unexpected end of input inside braces".into());
        };
        match r {
            c if is_space(c) => self.skip_spaces(),
            c if is_alpha(c) => {
                while matches!(self.peek(), Some(c) if is_alpha_numeric(c)) {
                    self.next();
                }
                self.emit(T::Identifier);
            }
            ',' => self.emit(T::Comma),
            '"' | '\'' => {
                self.string_open = r;
                self.lex_string()?;
            }
            '`' => {
                self.string_open = r;
                self.lex_raw_string()?;
            }
            '=' => {
                if self.next() == Some('~') {
                    self.emit(T::EqlRegex);
                } else {
                    self.backup();
                    self.emit(T::Eql);
                }
            }
            '!' => match self.next() {
                Some('~') => self.emit(T::NeqRegex),
                Some('=') => self.emit(T::Neq),
                nr => {
                    return self.errorf(format!(
                        "unexpected character after '!' inside braces: {}",
                        quote_rune(nr)
                    ))
                }
            },
            '{' => return self.errorf(format!("unexpected left brace {}", quote_rune(Some('{')))),
            '}' => {
                self.emit(T::RightBrace);
                self.brace_open = false;
                return Ok(State::Statements);
            }
            c => {
                return self.errorf(format!(
                    "unexpected character inside braces: {}",
                    quote_rune(Some(c))
                ))
            }
        }
        Ok(State::Braces)
    }

    fn lex_duration_expr(&mut self) -> Step {
        let Some(r) = self.next() else {
            return self.errorf("unexpected end of input in duration expression".into());
        };
        match r {
            ']' => {
                self.emit(T::RightBracket);
                self.bracket_open = false;
                self.got_colon = false;
                return Ok(State::Statements);
            }
            ':' => {
                self.emit(T::Colon);
                if !self.got_duration {
                    return self.error_replacing_last(
                        "unexpected colon before duration in duration expression".into(),
                    );
                }
                if self.got_colon {
                    return self.error_replacing_last(
                        "unexpected repeated colon in duration expression".into(),
                    );
                }
                self.got_colon = true;
            }
            '(' | ')' => self.lex_paren(r)?,
            c if is_space(c) => self.skip_spaces(),
            '+' => self.emit(T::Add),
            '-' => self.emit(T::Sub),
            '*' => self.emit(T::Mul),
            '/' => self.emit(T::Div),
            '%' => self.emit(T::Mod),
            '^' => self.emit(T::Pow),
            ',' => self.emit(T::Comma),
            's' | 'S' | 'm' | 'M' | 'r' | 'R' => {
                if !self.scan_duration_keyword() {
                    return self.errorf(format!(
                        "unexpected character in duration expression: {}",
                        quote_rune(Some(r))
                    ));
                }
            }
            c if is_digit(c) || (c == '.' && matches!(self.peek(), Some(d) if is_digit(d))) => {
                self.backup();
                self.got_duration = true;
                return self.lex_number_or_duration();
            }
            c => {
                return self.errorf(format!(
                    "unexpected character in duration expression: {}",
                    quote_rune(Some(c))
                ))
            }
        }
        Ok(State::DurationExpr)
    }

    /// `step`, `range`, `min`, `max` inside brackets (the first letter is consumed).
    fn scan_duration_keyword(&mut self) -> bool {
        while matches!(self.peek(), Some(c) if is_alpha(c)) {
            self.next();
        }
        let kind = match self.input[self.start..self.pos]
            .to_ascii_lowercase()
            .as_str()
        {
            "step" => T::Step,
            "range" => T::Range,
            "min" => T::Agg(AggOp::Min),
            "max" => T::Agg(AggOp::Max),
            _ => return false,
        };
        self.emit(kind);
        true
    }

    fn lex_number_or_duration(&mut self) -> Step {
        if self.scan_number() {
            self.emit(T::Number);
            return Ok(State::Statements);
        }
        if self.accept_remaining_duration() {
            self.backup();
            self.emit(T::Duration);
            return Ok(State::Statements);
        }
        let text = go_quote(&self.input[self.start..self.pos]);
        self.errorf(format!("bad number or duration syntax: {text}"))
    }

    fn accept_remaining_duration(&mut self) -> bool {
        if !self.accept("smhdwy") {
            return false;
        }
        self.accept("s");
        while self.accept(DIGITS) {
            while self.accept(DIGITS) {}
            if !self.accept("smhdw") {
                return false;
            }
            self.accept("s");
        }
        !matches!(self.next(), Some(c) if is_alpha_numeric(c))
    }

    /// Scans a number; the text is not necessarily a valid number (the parser checks).
    fn scan_number(&mut self) -> bool {
        let initial = self.pos;
        let mut digits = DIGITS;
        if self.accept("0") && self.accept("xX") {
            self.accept("_");
            digits = HEX_DIGITS;
        }
        let loop_set: String = format!("{digits}._eE");
        self.accept(".");
        self.accept(digits);
        let mut dot_consumed = false;
        let mut exponent_consumed = false;
        while self.is(&loop_set) {
            if self.is(".") && dot_consumed {
                self.accept(".");
                return false;
            }
            if self.is("eE") && exponent_consumed {
                self.accept("eE");
                return false;
            }
            if self.accept(".") {
                dot_consumed = true;
                if self.accept("_.") {
                    return false;
                }
                if digits.len() > 10 {
                    return false;
                }
                continue;
            }
            if self.accept("eE") {
                exponent_consumed = true;
                self.accept("+-");
                if self.accept("._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            if self.accept("_") {
                if self.accept("._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            self.accept_run(digits);
        }
        if self.pos == initial {
            return false;
        }
        !matches!(self.peek(), Some(c) if is_alpha_numeric(c))
    }

    fn lex_keyword_or_identifier(&mut self) -> Step {
        while matches!(self.peek(), Some(c) if is_alpha_numeric(c) || c == ':') {
            self.next();
        }
        let word = &self.input[self.start..self.pos];
        let kind = match keyword(&word.to_ascii_lowercase()) {
            Some(k @ (T::Fill | T::FillLeft | T::FillRight)) => {
                if self.followed_by_left_paren() {
                    k
                } else {
                    T::Identifier
                }
            }
            Some(k) => k,
            None if word.contains(':') => T::MetricIdentifier,
            None => T::Identifier,
        };
        self.emit(kind);
        Ok(State::Statements)
    }

    fn followed_by_left_paren(&self) -> bool {
        self.input[self.pos..]
            .chars()
            .find(|&c| !is_space(c))
            .is_some_and(|c| c == '(')
    }

    /// A quoted string; the opening quote is consumed.
    fn lex_string(&mut self) -> Step {
        loop {
            match self.next() {
                Some('\\') => self.lex_escape()?,
                Some('\u{FFFD}') => return self.errorf("invalid UTF-8 rune".into()),
                None | Some('\n') => return self.errorf("unterminated quoted string".into()),
                Some(c) if c == self.string_open => break,
                Some(_) => {}
            }
        }
        self.emit(T::Str);
        Ok(State::Statements)
    }

    fn lex_escape(&mut self) -> Result<(), Stop> {
        let ch = self.next();
        let (mut n, base, max): (u32, u32, u32) = match ch {
            Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => return Ok(()),
            Some(c) if c == self.string_open => return Ok(()),
            Some('0'..='7') => (3, 8, 255),
            Some('x') => (2, 16, 255),
            Some('u') => (4, 16, 0x10FFFF),
            Some('U') => (8, 16, 0x10FFFF),
            None => {
                self.errorf("escape sequence not terminated".into())?;
                return Ok(());
            }
            Some(c) => {
                self.errorf(format!("unknown escape sequence {}", go_unicode(c)))?;
                return Ok(());
            }
        };
        let mut ch = if matches!(ch, Some('0'..='7')) {
            ch
        } else {
            self.next()
        };
        let mut x: u32 = 0;
        while n > 0 {
            let d = ch.and_then(|c| c.to_digit(16)).unwrap_or(16);
            if d >= base {
                match ch {
                    None => self.errorf("escape sequence not terminated".into())?,
                    Some(c) => self.errorf(format!(
                        "illegal character {} in escape sequence",
                        go_unicode(c)
                    ))?,
                };
                return Ok(());
            }
            x = x.saturating_mul(base).saturating_add(d);
            n -= 1;
            if n > 0 {
                ch = self.next();
            }
        }
        if x > max || (0xD800..0xE000).contains(&x) {
            self.errorf("escape sequence is an invalid Unicode code point".into())?;
        }
        Ok(())
    }

    fn lex_raw_string(&mut self) -> Step {
        loop {
            match self.next() {
                Some('\u{FFFD}') => return self.errorf("invalid UTF-8 rune".into()),
                None => return self.errorf("unterminated raw string".into()),
                Some(c) if c == self.string_open => break,
                Some(_) => {}
            }
        }
        self.emit(T::Str);
        Ok(State::Statements)
    }
}

/// Keyword token for a lower-cased word, if it is one.
fn keyword(lower: &str) -> Option<T> {
    Some(match lower {
        "and" => T::Land,
        "or" => T::Lor,
        "unless" => T::Lunless,
        "atan2" => T::Atan2,
        "offset" => T::Offset,
        "smoothed" => T::Smoothed,
        "anchored" => T::Anchored,
        "by" => T::By,
        "without" => T::Without,
        "on" => T::On,
        "ignoring" => T::Ignoring,
        "group_left" => T::GroupLeft,
        "group_right" => T::GroupRight,
        "fill" => T::Fill,
        "fill_left" => T::FillLeft,
        "fill_right" => T::FillRight,
        "bool" => T::Bool,
        "start" => T::Start,
        "end" => T::End,
        "step" => T::Step,
        "range" => T::Range,
        "inf" | "nan" => T::Number,
        other => T::Agg(AggOp::from_name(other)?),
    })
}

pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}

fn is_alpha(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_alpha_numeric(c: char) -> bool {
    is_alpha(c) || is_digit(c)
}

/// Go's `%q` of a string.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    // Writing into a String cannot fail.
    let _ = write_go_quoted(&mut out, s);
    out
}

/// Go's `%q` of a rune (`None` is Go's `eof`, printed as the replacement character).
pub(crate) fn quote_rune(c: Option<char>) -> String {
    let c = c.unwrap_or('\u{FFFD}');
    let body = match c {
        '\x07' => "\\a".to_string(),
        '\x08' => "\\b".to_string(),
        '\x0C' => "\\f".to_string(),
        '\n' => "\\n".to_string(),
        '\r' => "\\r".to_string(),
        '\t' => "\\t".to_string(),
        '\x0B' => "\\v".to_string(),
        '\\' => "\\\\".to_string(),
        '\'' => "\\'".to_string(),
        c if (c as u32) < 0x20 || c as u32 == 0x7F => format!("\\x{:02x}", c as u32),
        c if c.is_control() => {
            if (c as u32) < 0x10000 {
                format!("\\u{:04x}", c as u32)
            } else {
                format!("\\U{:08x}", c as u32)
            }
        }
        c => c.to_string(),
    };
    format!("'{body}'")
}

/// Go's `%#U` of a rune: `U+0071 'q'` (the character only when printable).
fn go_unicode(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<T> {
        lex(input).tokens.iter().map(|t| t.kind).collect()
    }

    fn texts(input: &str) -> Vec<&str> {
        lex(input)
            .tokens
            .iter()
            .map(|t| &input[t.pos..t.end])
            .collect()
    }

    fn error(input: &str) -> (usize, String) {
        let l = lex(input);
        let last = l.tokens.last().copied().expect("at least one token");
        assert_eq!(last.kind, T::Error, "expected an error for {input:?}");
        (last.pos, l.error.expect("error message"))
    }

    #[test]
    fn operators_and_punctuation() {
        assert_eq!(
            kinds("+ - * / % ^ == != <= < >= > @ , ( )"),
            vec![
                T::Add,
                T::Sub,
                T::Mul,
                T::Div,
                T::Mod,
                T::Pow,
                T::Eqlc,
                T::Neq,
                T::Lte,
                T::Lss,
                T::Gte,
                T::Gtr,
                T::At,
                T::Comma,
                T::LeftParen,
                T::RightParen,
                T::Eof
            ]
        );
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(
            kinds(
                "SUM By wiThout and OR unless atan2 offset bool on ignoring group_left group_right"
            ),
            vec![
                T::Agg(AggOp::Sum),
                T::By,
                T::Without,
                T::Land,
                T::Lor,
                T::Lunless,
                T::Atan2,
                T::Offset,
                T::Bool,
                T::On,
                T::Ignoring,
                T::GroupLeft,
                T::GroupRight,
                T::Eof
            ]
        );
        assert_eq!(kinds("Inf nan"), vec![T::Number, T::Number, T::Eof]);
        assert_eq!(kinds("start end"), vec![T::Start, T::End, T::Eof]);
    }

    #[test]
    fn identifiers_and_metric_identifiers() {
        assert_eq!(
            kinds("foo foo:bar :a _x1"),
            vec![
                T::Identifier,
                T::MetricIdentifier,
                T::MetricIdentifier,
                T::Identifier,
                T::Eof
            ]
        );
        // Inside braces keywords are identifiers and colons are not allowed.
        assert_eq!(
            kinds("{by=\"x\", sum!~'y'}"),
            vec![
                T::LeftBrace,
                T::Identifier,
                T::Eql,
                T::Str,
                T::Comma,
                T::Identifier,
                T::NeqRegex,
                T::Str,
                T::RightBrace,
                T::Eof
            ]
        );
        assert_eq!(error("{a:b}").1, "unexpected character inside braces: ':'");
    }

    #[test]
    fn fill_is_a_keyword_only_before_a_paren() {
        assert_eq!(kinds("fill"), vec![T::Identifier, T::Eof]);
        assert_eq!(kinds("fill ("), vec![T::Fill, T::LeftParen, T::Error]);
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(
            texts("1 .5 2. 1e3 12.34e+6 0x1F 1_000 5m 1h30m 5ms 1y"),
            vec![
                "1", ".5", "2.", "1e3", "12.34e+6", "0x1F", "1_000", "5m", "1h30m", "5ms", "1y", ""
            ]
        );
        assert_eq!(
            kinds("1 5m 1.5s"),
            vec![T::Number, T::Duration, T::Duration, T::Eof]
        );
        assert_eq!(
            error("5mx"),
            (0, "bad number or duration syntax: \"5mx\"".into())
        );
        assert_eq!(
            error("1e"),
            (0, "bad number or duration syntax: \"1e\"".into())
        );
        assert_eq!(
            error("1.2.3"),
            (0, "bad number or duration syntax: \"1.2.\"".into())
        );
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            texts(r#""a\"b" 'c\'d' `e\f`"#),
            vec![r#""a\"b""#, r"'c\'d'", r"`e\f`", ""]
        );
        assert_eq!(
            texts(r#""\x41\u00e9\U0001F600\101""#),
            vec![r#""\x41\u00e9\U0001F600\101""#, ""]
        );
        assert_eq!(error("\"abc").1, "unterminated quoted string");
        assert_eq!(error("\"a\nb\"").1, "unterminated quoted string");
        assert_eq!(error("`abc").1, "unterminated raw string");
        assert_eq!(error(r#""\q""#).1, "unknown escape sequence U+0071 'q'");
        assert_eq!(error(r#""\'""#).1, "unknown escape sequence U+0027 '''");
        assert_eq!(
            error(r#""\xZZ""#).1,
            "illegal character U+005A 'Z' in escape sequence"
        );
        assert_eq!(
            error(r#""\400""#).1,
            "escape sequence is an invalid Unicode code point"
        );
        assert_eq!(
            error(r#""\uD800""#).1,
            "escape sequence is an invalid Unicode code point"
        );
        assert_eq!(error("\"\\").1, "escape sequence not terminated");
    }

    #[test]
    fn comments_are_dropped() {
        assert_eq!(
            kinds("foo # comment\n+ 1"),
            vec![T::Identifier, T::Add, T::Number, T::Eof]
        );
        assert_eq!(kinds("# only a comment"), vec![T::Eof]);
    }

    #[test]
    fn brackets_and_subqueries() {
        assert_eq!(
            kinds("x[5m:1m]"),
            vec![
                T::Identifier,
                T::LeftBracket,
                T::Duration,
                T::Colon,
                T::Duration,
                T::RightBracket,
                T::Eof
            ]
        );
        assert_eq!(
            kinds("x[ 5m:]"),
            vec![
                T::Identifier,
                T::LeftBracket,
                T::Duration,
                T::Colon,
                T::RightBracket,
                T::Eof
            ]
        );
        assert_eq!(
            kinds("x[step()]"),
            vec![
                T::Identifier,
                T::LeftBracket,
                T::Step,
                T::LeftParen,
                T::RightParen,
                T::RightBracket,
                T::Eof
            ]
        );
        assert_eq!(error("x[5m"), (4, "unclosed left bracket".into()));
        assert_eq!(
            error("x[foo]").1,
            "unexpected character in duration expression: 'f'"
        );
        assert_eq!(
            error("x[:5m]").1,
            "unexpected colon before duration in duration expression"
        );
        assert_eq!(
            error("x[5m[1m]]"),
            (4, "unexpected left bracket '['".into())
        );
        assert_eq!(error("x[5m:1m:]").1, "unexpected colon ':'");
        assert_eq!(error("x]").1, "unexpected right bracket ']'");
    }

    #[test]
    fn paren_and_brace_errors() {
        assert_eq!(error("(1"), (2, "unclosed left parenthesis".into()));
        assert_eq!(error("1)"), (2, "unexpected right parenthesis ')'".into()));
        assert_eq!(
            error("{a=\"b\""),
            (6, "unexpected end of input inside braces".into())
        );
        assert_eq!(error("{{").1, "unexpected left brace '{'");
        assert_eq!(error("a =~ b").1, "unexpected character after '=': '~'");
        assert_eq!(error("a ! b").1, "unexpected character after '!': ' '");
        assert_eq!(error("a $").1, "unexpected character: '$'");
        assert_eq!(error("é").1, "unexpected character: 'é'");
        assert_eq!(
            error("{a!b}").1,
            "unexpected character after '!' inside braces: 'b'"
        );
    }

    #[test]
    fn positions_are_byte_offsets() {
        let l = lex("sum(é)");
        // `é` is two bytes and not allowed outside strings.
        assert_eq!(l.tokens.last().map(|t| t.pos), Some(4));
        let l = lex("\"é\" + 1");
        assert_eq!(l.tokens[0].end, 4);
        assert_eq!(l.tokens[1].pos, 5);
    }
}
