//! Resolving label matchers to sets of series ids, the same way for the head and for blocks.
//!
//! A source (the head or one block's index) exposes its inverted index through [`PostingsSource`]:
//! for a label name and a predicate on values, the union of the postings (roaring bitmaps of series
//! ids) of the matching values. [`postings_for_matchers`] combines matchers with Prometheus's
//! semantics: a matcher that matches the empty string also selects series that lack the label, so
//! it *subtracts* the postings of the values it rejects; any other matcher *intersects* with the
//! postings of the values it accepts. With no intersecting matcher the base is every series.

use roaring::RoaringBitmap;

use crate::error::Result;
use crate::matcher::{MatchOp, Matcher};

/// An inverted index: label (name, value) → series ids.
pub(crate) trait PostingsSource {
    /// Every series id.
    fn all_postings(&self) -> Result<RoaringBitmap>;
    /// Postings of exactly `name=value` (empty when absent).
    fn postings(&self, name: &str, value: &str) -> Result<RoaringBitmap>;
    /// Union of the postings of every value of `name` for which `pred` holds.
    fn postings_where(
        &self,
        name: &str,
        pred: &mut dyn FnMut(&str) -> bool,
    ) -> Result<RoaringBitmap>;
}

fn accepted(src: &dyn PostingsSource, m: &Matcher) -> Result<RoaringBitmap> {
    if m.op == MatchOp::Equal || m.op == MatchOp::Regex {
        if let Some(set) = m.set_matches() {
            let mut out = RoaringBitmap::new();
            for v in set {
                out |= src.postings(&m.name, v)?;
            }
            return Ok(out);
        }
    }
    src.postings_where(&m.name, &mut |v| m.matches(v))
}

fn rejected(src: &dyn PostingsSource, m: &Matcher) -> Result<RoaringBitmap> {
    if m.op.is_negative() {
        if let Some(set) = m.literal_set() {
            let mut out = RoaringBitmap::new();
            for v in set {
                out |= src.postings(&m.name, v)?;
            }
            return Ok(out);
        }
    }
    src.postings_where(&m.name, &mut |v| !m.matches(v))
}

/// The ids of the series whose labels satisfy every matcher (an absent label reads as "").
pub(crate) fn postings_for_matchers(
    src: &dyn PostingsSource,
    matchers: &[Matcher],
) -> Result<RoaringBitmap> {
    let mut result: Option<RoaringBitmap> = None;
    let mut subtract = RoaringBitmap::new();
    // Intersecting matchers first: they usually shrink the set the most.
    for m in matchers.iter().filter(|m| !m.matches_empty()) {
        let p = accepted(src, m)?;
        result = Some(match result {
            None => p,
            Some(r) => r & p,
        });
        if result.as_ref().is_some_and(|r| r.is_empty()) {
            return Ok(RoaringBitmap::new());
        }
    }
    for m in matchers.iter().filter(|m| m.matches_empty()) {
        subtract |= rejected(src, m)?;
    }
    let base = match result {
        Some(r) => r,
        None => src.all_postings()?,
    };
    Ok(base - subtract)
}
