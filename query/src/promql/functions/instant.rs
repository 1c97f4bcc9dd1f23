//! Instant-vector functions that work sample by sample or on the whole vector at one step:
//! elementwise math (`abs` … `sgn`, `deg`, `rad`), `round`, `clamp*`, the UTC date functions,
//! `timestamp`, `sort`/`sort_desc`, and the scalar/vector conversions `vector`, `scalar`,
//! `pi`, `time`, `min_of`, `max_of`, plus `absent` (with empty labels; see `absent_vector`).
//!
//! Outputs carry the step time `ctx.ts` as their timestamp. Elementwise functions set
//! `drop_name`; `sort*` pass samples through unchanged.

use super::args;
use super::util::{go_max, go_min, merge_sort_by};
use super::{FnCtx, StepArg};
use crate::promql::error::QueryError;
use crate::promql::value::{Sample, Vector};
use o11y_tsdb::labels::Labels;

pub(super) fn simple_float_fn(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "sgn" => |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

/// Applies `f` to every sample, setting `drop_name`.
pub(super) fn map_floats(v: &Vector, ts: i64, f: impl Fn(f64) -> f64) -> Vector {
    v.iter()
        .map(|s| Sample {
            metric: s.metric.clone(),
            t: ts,
            f: f(s.f),
            drop_name: true,
        })
        .collect()
}

pub(super) fn is_date_fn(name: &str) -> bool {
    matches!(
        name,
        "day_of_month"
            | "day_of_week"
            | "day_of_year"
            | "days_in_month"
            | "hour"
            | "minute"
            | "month"
            | "year"
    )
}

fn one(f: f64, ts: i64) -> Vector {
    vec![Sample {
        metric: Labels::default(),
        t: ts,
        f,
        drop_name: false,
    }]
}

pub(super) fn call(
    name: &str,
    mut args: Vec<StepArg>,
    ctx: &mut FnCtx<'_>,
) -> Result<Vector, QueryError> {
    let ts = ctx.ts;
    match name {
        "round" => {
            let v = args::vector(&args, 0, name)?;
            let to_nearest = if args.len() >= 2 {
                args::scalar(&args, 1, name)?
            } else {
                1.0
            };
            let inv = 1.0 / to_nearest;
            Ok(map_floats(v, ts, |f| (f * inv + 0.5).floor() / inv))
        }
        "clamp" => {
            let (min, max) = (args::scalar(&args, 1, name)?, args::scalar(&args, 2, name)?);
            Ok(clamp(args::vector(&args, 0, name)?, min, max, ts))
        }
        "clamp_min" => {
            let min = args::scalar(&args, 1, name)?;
            Ok(clamp(args::vector(&args, 0, name)?, min, f64::INFINITY, ts))
        }
        "clamp_max" => {
            let max = args::scalar(&args, 1, name)?;
            Ok(clamp(
                args::vector(&args, 0, name)?,
                f64::NEG_INFINITY,
                max,
                ts,
            ))
        }
        "timestamp" => {
            let v = args::vector(&args, 0, name)?;
            Ok(v.iter()
                .map(|s| Sample {
                    metric: s.metric.clone(),
                    t: ts,
                    f: s.t as f64 / 1000.0,
                    drop_name: true,
                })
                .collect())
        }
        "time" => Ok(one(ts as f64 / 1000.0, ts)),
        "pi" => Ok(one(std::f64::consts::PI, ts)),
        // Newer Prometheus scalar functions (not in the parser's table yet).
        "min_of" => Ok(one(
            go_min(args::scalar(&args, 0, name)?, args::scalar(&args, 1, name)?),
            ts,
        )),
        "max_of" => Ok(one(
            go_max(args::scalar(&args, 0, name)?, args::scalar(&args, 1, name)?),
            ts,
        )),
        "vector" => Ok(one(args::scalar(&args, 0, name)?, ts)),
        "scalar" => {
            let v = args::vector(&args, 0, name)?;
            Ok(one(if v.len() == 1 { v[0].f } else { f64::NAN }, ts))
        }
        "absent" => {
            let v = args::vector(&args, 0, name)?;
            Ok(super::absent_vector(v, Labels::default(), ts))
        }
        "sort" => {
            let mut v = args::take_vector(&mut args, 0, name)?;
            // Ascending, NaN last.
            merge_sort_by(&mut v, &|a: &Sample, b: &Sample| {
                !a.f.is_nan() && (b.f.is_nan() || a.f < b.f)
            });
            Ok(v)
        }
        "sort_desc" => {
            let mut v = args::take_vector(&mut args, 0, name)?;
            // Descending, NaN last.
            merge_sort_by(&mut v, &|a: &Sample, b: &Sample| {
                !a.f.is_nan() && (b.f.is_nan() || a.f > b.f)
            });
            Ok(v)
        }
        n if is_date_fn(n) => {
            let f = date_fn(n);
            if args.is_empty() {
                return Ok(one(f(ts.div_euclid(1000)), ts));
            }
            let v = args::vector(&args, 0, name)?;
            Ok(map_floats(v, ts, |x| f(go_float_to_i64(x))))
        }
        _ => Err(QueryError::Execution(format!(
            "function {name} is not an instant function"
        ))),
    }
}

/// Prometheus's `clamp`: nothing if `min > max`, else `max(min, min(max, v))` with Go's NaN
/// rules.
fn clamp(v: &Vector, min: f64, max: f64, ts: i64) -> Vector {
    if max < min {
        return Vec::new();
    }
    map_floats(v, ts, |f| go_max(min, go_min(max, f)))
}

/// Go's `int64(f)` on amd64: truncation, with NaN and out-of-range values giving `MinInt64`.
fn go_float_to_i64(f: f64) -> i64 {
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// A UTC calendar date and time of day from Unix seconds.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    /// Days since 1970-01-01.
    days: i64,
}

fn civil(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm, in i128 to survive extreme inputs.
    let z = days as i128 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i128::from(month <= 2);
    Civil {
        year: year.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        days,
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

fn date_fn(name: &str) -> fn(i64) -> f64 {
    match name {
        "day_of_month" => |s| civil(s).day as f64,
        "day_of_week" => |s| (civil(s).days + 4).rem_euclid(7) as f64,
        "day_of_year" => |s| {
            let c = civil(s);
            let before: u32 = (1..c.month).map(|m| days_in(c.year, m)).sum();
            (before + c.day) as f64
        },
        "days_in_month" => |s| {
            let c = civil(s);
            days_in(c.year, c.month) as f64
        },
        "hour" => |s| civil(s).hour as f64,
        "minute" => |s| civil(s).minute as f64,
        "month" => |s| civil(s).month as f64,
        _ => |s| civil(s).year as f64,
    }
}
