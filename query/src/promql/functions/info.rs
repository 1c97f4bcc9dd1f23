//! The experimental `info(v, [selector])` function: enriches series with the data labels of
//! "info" series (by default `target_info`) that share their identifying labels (`instance`,
//! `job`).
//!
//! Prometheus evaluates it outside the ordinary function path because it reads storage. The
//! split here keeps storage in the engine:
//!
//! ```text
//!  InfoPlan::new(selector)            once per call (the optional 2nd argument)
//!  plan.select_matchers(base labels)  matchers for selecting info series (None: select none)
//!  engine: select + evaluate the info series like an instant selector at each step, with
//!          Sample::t = the raw timestamp of the info sample picked by the lookback
//!  plan.combine(base, info) per step  the enriched vector
//! ```

use std::collections::HashMap;

use o11y_tsdb::labels::{Labels, METRIC_NAME};
use o11y_tsdb::matcher::{MatchOp, Matcher};

use crate::promql::ast::VectorSelector;
use crate::promql::error::QueryError;
use crate::promql::value::{Sample, Vector};

const TARGET_INFO: &str = "target_info";
/// The labels that tie a series to its info series.
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// What one `info(...)` call needs besides its per-step vectors.
#[derive(Clone, Debug)]
pub struct InfoPlan {
    /// `__name__` matchers deciding which base series are info series themselves (those are
    /// passed through unenriched). Default: `__name__="target_info"`.
    name_matchers: Vec<Matcher>,
    /// All matchers of the selector argument (empty without one).
    selector: Vec<Matcher>,
    /// The selector's non-`__name__` matchers, by label name: the data labels to add.
    data_matchers: HashMap<String, Vec<Matcher>>,
}

impl InfoPlan {
    /// The plan for `info(v)` (no selector) or `info(v, selector)`.
    pub fn new(selector: Option<&VectorSelector>) -> InfoPlan {
        let Some(sel) = selector else {
            let default = Matcher::new(MatchOp::Equal, METRIC_NAME, TARGET_INFO)
                .map(|m| vec![m])
                .unwrap_or_default();
            return InfoPlan {
                name_matchers: default,
                selector: Vec::new(),
                data_matchers: HashMap::new(),
            };
        };
        let mut data_matchers: HashMap<String, Vec<Matcher>> = HashMap::new();
        let mut name_matchers = Vec::new();
        for m in &sel.matchers {
            if m.name == METRIC_NAME {
                name_matchers.push(m.clone());
            } else {
                data_matchers
                    .entry(m.name.clone())
                    .or_default()
                    .push(m.clone());
            }
        }
        InfoPlan {
            name_matchers,
            selector: sel.matchers.clone(),
            data_matchers,
        }
    }

    /// Whether a base series is an info series itself (returned unenriched).
    pub fn is_info_series(&self, metric: &Labels) -> bool {
        let name = metric.metric_name().unwrap_or("");
        !self.name_matchers.is_empty() && self.name_matchers.iter().all(|m| m.matches(name))
    }

    /// Matchers selecting the info series relevant to `base` (the labels of all base series
    /// of the whole evaluation): `instance=~"..."`/`job=~"..."` over the values present, the
    /// selector's matchers, and `__name__="target_info"` unless the selector names metrics.
    /// `None` when no base series has an identifying label: no info series are needed.
    pub fn select_matchers<'a>(
        &self,
        base: impl IntoIterator<Item = &'a Labels>,
    ) -> Option<Vec<Matcher>> {
        let mut values: Vec<(&str, Vec<String>)> =
            IDENTIFYING.iter().map(|&l| (l, Vec::new())).collect();
        for metric in base {
            if self.is_info_series(metric) {
                continue;
            }
            for (label, vals) in &mut values {
                if let Some(v) = metric.get(label).filter(|v| !v.is_empty()) {
                    if !vals.iter().any(|x| x == v) {
                        vals.push(v.to_string());
                    }
                }
            }
        }
        if values.iter().all(|(_, v)| v.is_empty()) {
            return None;
        }
        let mut out = Vec::new();
        if !self.selector.iter().any(|m| m.name == METRIC_NAME) {
            out.push(Matcher::new(MatchOp::Equal, METRIC_NAME, TARGET_INFO).ok()?);
        }
        for (label, vals) in values {
            if vals.is_empty() {
                continue;
            }
            let re = vals
                .iter()
                .map(|v| regex::escape(v))
                .collect::<Vec<_>>()
                .join("|");
            out.push(Matcher::new(MatchOp::Regex, label, re).ok()?);
        }
        out.extend(self.selector.iter().cloned());
        Some(out)
    }

    /// One step: `base` enriched from `info` (the selected info series' samples at this step,
    /// `Sample::t` being each sample's original timestamp; of two info series with the same
    /// name and identifying labels the newer sample wins). Base series without a matching
    /// info series pass unchanged unless a data-label matcher rejects the empty value, in
    /// which case they are dropped. `drop_name` flags are kept.
    pub fn combine(&self, base: Vector, info: &Vector) -> Result<Vector, QueryError> {
        if base.is_empty() {
            return Ok(Vec::new());
        }
        // Latest info sample per (info metric name, identifying labels).
        let mut by_sig: HashMap<Signature, &Sample> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        for s in info {
            let name = s.metric.metric_name().unwrap_or("").to_string();
            if !names.contains(&name) {
                names.push(name.clone());
            }
            let key = (name, identifying(&s.metric));
            match by_sig.get(&key) {
                Some(existing) if existing.t > s.t => {}
                Some(existing) if existing.t == s.t => {
                    return Err(QueryError::Execution(format!(
                        "found duplicate series for info metric: existing {} @ {}, new {} @ {}",
                        existing.metric, existing.t, s.metric, s.t
                    )));
                }
                _ => {
                    by_sig.insert(key, s);
                }
            }
        }
        let mut out = Vec::with_capacity(base.len());
        for bs in base {
            if self.is_info_series(&bs.metric) {
                out.push(bs);
                continue;
            }
            let ids = identifying(&bs.metric);
            let mut added: Vec<(String, String)> = Vec::new();
            let mut matched = false;
            for name in &names {
                let Some(is) = by_sig.get(&(name.clone(), ids.clone())) else {
                    continue;
                };
                matched = true;
                for l in is.metric.iter() {
                    if l.name == METRIC_NAME
                        || (!self.data_matchers.is_empty()
                            && !self.data_matchers.contains_key(&l.name))
                    {
                        continue;
                    }
                    if let Some((_, v)) = added.iter().find(|(n, _)| n == &l.name) {
                        if v != &l.value {
                            return Err(QueryError::Execution(format!(
                                "conflicting label: {}",
                                l.name
                            )));
                        }
                    }
                    if bs.metric.get(&l.name).is_some() {
                        continue;
                    }
                    if !added.iter().any(|(n, _)| n == &l.name) {
                        added.push((l.name.clone(), l.value.clone()));
                    }
                }
            }
            if !matched
                && self
                    .data_matchers
                    .values()
                    .flatten()
                    .any(|m| !m.matches(""))
            {
                continue;
            }
            let metric = Labels::from_pairs(
                bs.metric
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .chain(added),
            );
            out.push(Sample { metric, ..bs });
        }
        Ok(out)
    }
}

/// An info metric's name and the identifying labels (name, value) a series has.
type Signature = (String, Vec<(String, String)>);

/// The identifying labels a series has, in name order.
fn identifying(l: &Labels) -> Vec<(String, String)> {
    IDENTIFYING
        .iter()
        .filter_map(|&n| l.get(n).map(|v| (n.to_string(), v.to_string())))
        .collect()
}
