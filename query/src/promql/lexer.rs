//! PromQL lexer (CONTRACT STUB: being implemented).
