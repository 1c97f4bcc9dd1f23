//! Classic-histogram functions: `histogram_quantile`, `histogram_quantiles` and
//! `histogram_fraction` over series carrying an `le` bucket label.
//!
//! Per step the input vector is grouped by its label set without `le` (the name is kept:
//! with delayed name removal different histograms stay apart); samples whose `le` does not
//! parse as a float are skipped with a warning. Each group's buckets are sorted, buckets with
//! equal bounds merged, and counts made monotonic (ignoring relative differences below
//! 1e-12) before interpolating. Outputs are labelled like their group and have `drop_name`
//! set. Native histograms are not stored, so their branch does not exist here.

use o11y_tsdb::labels::Labels;

use super::args;
use super::util::{
    almost_equal, format_openmetrics_float, go_format_g, go_quote, with_metric_name,
};
use super::{FnCtx, StepArg};
use crate::promql::ast::PosRange;
use crate::promql::error::QueryError;
use crate::promql::value::{Annotation, Sample, Vector};

const BUCKET_LABEL: &str = "le";

/// One bucket: upper bound and cumulative count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Bucket {
    pub upper: f64,
    pub count: f64,
}

/// The buckets of one classic histogram at one step.
struct Group {
    metric: Labels,
    buckets: Vec<Bucket>,
}

/// Go's `strconv.ParseFloat` for bucket bounds (`+Inf`, `inf`, `NaN`, `1e3`, `.5`, hex
/// floats like `0x1p-2`). Underscores, which Go allows only in base-prefixed literals, are
/// rejected.
pub(super) fn parse_le(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains('_') {
        return None;
    }
    if let Ok(f) = s.parse::<f64>() {
        return Some(f);
    }
    parse_hex_float(s)
}

/// `[+-]0x<hex digits>[.<hex digits>]p[+-]<decimal exponent>`.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let rest = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))?;
    let (mant, exp) = rest.split_once(['p', 'P'])?;
    let exp: i32 = exp.parse().ok()?;
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut m = 0.0f64;
    for c in int.chars().chain(frac.chars()) {
        m = m * 16.0 + f64::from(c.to_digit(16)?);
    }
    let e = exp.checked_sub(4 * i32::try_from(frac.len()).ok()?)?;
    let v = m * 2f64.powi(e);
    Some(if neg { -v } else { v })
}

/// Groups the vector's classic buckets, warning (at `pos`) about samples without a usable
/// `le`.
fn group_buckets(v: &Vector, pos: PosRange, ctx: &mut FnCtx<'_>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    for s in v {
        let le = s.metric.get(BUCKET_LABEL).unwrap_or("");
        let Some(upper) = parse_le(le) else {
            let name = s.metric.metric_name().unwrap_or("");
            ctx.annotations.add(Annotation::warning(
                with_metric_name(
                    format!(
                        "bucket label \"le\" is missing or has a malformed value of {}",
                        go_quote(le)
                    ),
                    name,
                ),
                pos,
            ));
            continue;
        };
        let key = Labels::from_pairs(
            s.metric
                .iter()
                .filter(|l| l.name != BUCKET_LABEL)
                .map(|l| (l.name.as_str(), l.value.as_str())),
        );
        let b = Bucket { upper, count: s.f };
        match index.get(&key) {
            Some(&i) => groups[i].buckets.push(b),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push(Group {
                    metric: key,
                    buckets: vec![b],
                });
            }
        }
    }
    groups
}

fn quantile_warning(q: f64, pos: PosRange, ctx: &mut FnCtx<'_>) {
    if q.is_nan() || !(0.0..=1.0).contains(&q) {
        ctx.annotations.add(Annotation::warning(
            format!(
                "quantile value should be between 0 and 1, got {}",
                go_format_g(q)
            ),
            pos,
        ));
    }
}

fn monotonicity_info(metric: &Labels, pos: PosRange, ctx: &mut FnCtx<'_>) {
    ctx.annotations.add(Annotation::info(
        with_metric_name(
            "input to histogram_quantile needed to be fixed for monotonicity (see \
             https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)"
                .to_string(),
            metric.metric_name().unwrap_or(""),
        ),
        pos,
    ));
}

fn sort_and_coalesce(buckets: &mut Vec<Bucket>) {
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => out.push(*b),
        }
    }
    *buckets = out;
}

/// Removes decreases between successive buckets; relative differences under `tolerance` are
/// treated as precision noise in either direction. Returns whether a real decrease was fixed.
fn ensure_monotonic(buckets: &mut [Bucket], tolerance: f64) -> bool {
    let mut forced = false;
    let Some(first) = buckets.first() else {
        return false;
    };
    let mut prev = first.count;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, tolerance) {
            b.count = prev;
            continue;
        }
        if curr < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    forced
}

/// Prometheus's `BucketQuantile`: (quantile, whether monotonicity had to be forced).
/// Interpolates linearly inside the bucket holding the rank, from 0 for a first bucket with a
/// positive bound; the `+Inf` bucket yields the second-highest bound; NaN without a `+Inf`
/// bucket, with fewer than two buckets or with no observations.
pub(super) fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    if buckets.is_empty() {
        return (f64::NAN, false);
    }
    sort_and_coalesce(buckets);
    if buckets[buckets.len() - 1].upper != f64::INFINITY {
        return (f64::NAN, false);
    }
    let forced = ensure_monotonic(buckets, 1e-12);
    if buckets.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let n = buckets.len() - 1;
    let b = buckets[..n].partition_point(|b| b.count < rank);
    if b == n {
        return (buckets[n - 1].upper, forced);
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return (buckets[0].upper, forced);
    }
    let mut start = 0.0;
    let end = buckets[b].upper;
    let mut count = buckets[b].count;
    if b > 0 {
        start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    (start + (end - start) * (rank / count), forced)
}

/// Prometheus's `BucketFraction`: the estimated share of observations in `(lower, upper]`,
/// interpolating linearly within buckets (the first bucket starts at 0 if its bound is
/// positive, else at −Inf, and then contributes all or nothing).
pub(super) fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if buckets.is_empty() {
        return f64::NAN;
    }
    sort_and_coalesce(buckets);
    if buckets[buckets.len() - 1].upper != f64::INFINITY {
        return f64::NAN;
    }
    let count = buckets[buckets.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut lower_bound = if buckets[0].upper <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    for (i, b) in buckets.iter().enumerate() {
        if i > 0 {
            lower_bound = buckets[i - 1].upper;
        }
        let upper_bound = b.upper;
        let interpolate = |v: f64| -> f64 {
            if lower_bound == f64::NEG_INFINITY {
                return b.count;
            }
            rank + (b.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

fn out(metric: Labels, f: f64, ts: i64) -> Sample {
    Sample {
        metric,
        t: ts,
        f,
        drop_name: true,
    }
}

/// `histogram_quantile(q, buckets)`.
pub(super) fn histogram_quantile(
    args: Vec<StepArg>,
    ctx: &mut FnCtx<'_>,
) -> Result<Vector, QueryError> {
    const NAME: &str = "histogram_quantile";
    let q = args::scalar(&args, 0, NAME)?;
    let v = args::vector(&args, 1, NAME)?;
    quantile_warning(q, ctx.pos(0), ctx);
    let vec_pos = ctx.pos(1);
    let mut result = Vec::new();
    for mut g in group_buckets(v, vec_pos, ctx) {
        let (value, forced) = bucket_quantile(q, &mut g.buckets);
        if forced {
            monotonicity_info(&g.metric, vec_pos, ctx);
        }
        result.push(out(g.metric, value, ctx.ts));
    }
    Ok(result)
}

/// `histogram_quantiles(buckets, "label", q1, q2, ...)`: one output per quantile and group,
/// with `label` set to the quantile (OpenMetrics float form, e.g. `0.5`, `1.0`).
pub(super) fn histogram_quantiles(
    args: Vec<StepArg>,
    ctx: &mut FnCtx<'_>,
) -> Result<Vector, QueryError> {
    const NAME: &str = "histogram_quantiles";
    let v = args::vector(&args, 0, NAME)?;
    let label = args::string(&args, 1, NAME)?.to_string();
    let mut qs = Vec::new();
    for i in 2..args.len() {
        let q = args::scalar(&args, i, NAME)?;
        quantile_warning(q, ctx.pos(i), ctx);
        qs.push(q);
    }
    let vec_pos = ctx.pos(0);
    let mut groups = group_buckets(v, vec_pos, ctx);
    let mut result = Vec::new();
    for q in qs {
        let q_str = format_openmetrics_float(q);
        for g in &mut groups {
            let (value, forced) = bucket_quantile(q, &mut g.buckets);
            if forced {
                monotonicity_info(&g.metric, vec_pos, ctx);
            }
            let metric = Labels::from_pairs(
                g.metric
                    .iter()
                    .filter(|l| l.name != label)
                    .map(|l| (l.name.as_str(), l.value.as_str()))
                    .chain(std::iter::once((label.as_str(), q_str.as_str()))),
            );
            result.push(out(metric, value, ctx.ts));
        }
    }
    Ok(result)
}

/// `histogram_fraction(lower, upper, buckets)`.
pub(super) fn histogram_fraction(
    args: Vec<StepArg>,
    ctx: &mut FnCtx<'_>,
) -> Result<Vector, QueryError> {
    const NAME: &str = "histogram_fraction";
    let lower = args::scalar(&args, 0, NAME)?;
    let upper = args::scalar(&args, 1, NAME)?;
    let v = args::vector(&args, 2, NAME)?;
    let vec_pos = ctx.pos(2);
    let mut result = Vec::new();
    for mut g in group_buckets(v, vec_pos, ctx) {
        let f = bucket_fraction(lower, upper, &mut g.buckets);
        result.push(out(g.metric, f, ctx.ts));
    }
    Ok(result)
}
