//! Request parameters the way Prometheus's API reads them: form values (URL query and
//! `application/x-www-form-urlencoded` bodies, body first as Go's `Request.FormValue` does),
//! timestamps (`parseTime`: unix seconds with a fraction, or RFC 3339), durations
//! (`parseDuration`: float seconds or a Prometheus duration such as `1h30m`), `limit` and
//! `match[]`.

use o11y_query::promql::parser::parse_metric_selector;
use o11y_tsdb::matcher::Matcher;

use super::json::ApiError;

/// Prometheus's `MinTime` (ms): the smallest time its API handles, used when `start` is absent.
pub const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;
/// Prometheus's `MaxTime` (ms), used when `end` is absent.
pub const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;
/// `MinTime` formatted as RFC 3339, which clients send back verbatim.
const MIN_TIME_FORMATTED: &str = "-292273086-05-16T16:47:06Z";
/// `MaxTime` formatted as RFC 3339.
const MAX_TIME_FORMATTED: &str = "292277025-08-18T07:12:54.999999999Z";

/// The decoded form values of a request, in order: body values first, then the URL query.
#[derive(Debug, Default, Clone)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// Decodes the URL query and, when the request is a form POST, its body.
    pub fn parse(query: Option<&str>, body: Option<&[u8]>) -> Result<Form, ApiError> {
        let mut pairs = Vec::new();
        if let Some(b) = body {
            decode_urlencoded(b, &mut pairs)
                .map_err(|e| ApiError::bad_data(format!("error parsing form values: {e}")))?;
        }
        if let Some(q) = query {
            decode_urlencoded(q.as_bytes(), &mut pairs)
                .map_err(|e| ApiError::bad_data(format!("error parsing form values: {e}")))?;
        }
        Ok(Form(pairs))
    }

    /// The first value of `key`, or `""` (Go's `FormValue`).
    pub fn value(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// All values of `key`.
    pub fn values(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Decodes `application/x-www-form-urlencoded` data into `out`. Like Go's `url.ParseQuery`, a
/// bad `%` escape or a `;` separator is an error.
fn decode_urlencoded(data: &[u8], out: &mut Vec<(String, String)>) -> Result<(), String> {
    for part in data.split(|&b| b == b'&') {
        if part.is_empty() {
            continue;
        }
        if part.contains(&b';') {
            return Err("invalid semicolon separator in query".into());
        }
        let (k, v) = match part.iter().position(|&b| b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &b""[..]),
        };
        out.push((unescape(k)?, unescape(v)?));
    }
    Ok(())
}

fn unescape(s: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
                match (hex(s.get(i + 1)), hex(s.get(i + 2))) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => {
                        let end = (i + 3).min(s.len());
                        return Err(format!(
                            "invalid URL escape {:?}",
                            String::from_utf8_lossy(&s[i..end])
                        ));
                    }
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Parses a timestamp (Prometheus's `parseTime`) into milliseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let err = || format!("cannot parse {s:?} to a valid timestamp");
    if let Some(f) = parse_go_float(s) {
        if !f.is_finite() {
            return Err(err());
        }
        let secs = f.trunc();
        let frac = ((f - secs) * 1000.0).round();
        let ms = secs * 1000.0 + frac;
        // Beyond what a time.Time in Prometheus's API represents meaningfully.
        if !(-9.2e18..=9.2e18).contains(&ms) {
            return Err(err());
        }
        return Ok(ms as i64);
    }
    if s == MIN_TIME_FORMATTED {
        return Ok(MIN_TIME_MS);
    }
    if s == MAX_TIME_FORMATTED {
        return Ok(MAX_TIME_MS);
    }
    parse_rfc3339(s).ok_or_else(err)
}

/// A float as Go's `strconv.ParseFloat` accepts it (decimal forms, `Inf`, `NaN`); Rust's
/// parser accepts the same decimal grammar, minus Go's hex floats and underscores, which no
/// client sends.
fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    if t.is_empty() {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Parses an RFC 3339 timestamp (`2023-11-14T22:13:20.5Z`, `...+01:00`) into milliseconds;
/// fractional digits beyond milliseconds are truncated, as `timestamp.FromTime` does.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = b.get(r)?;
        if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(d).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        for k in 0..3 {
            ms = ms * 10
                + b.get(start + k)
                    .filter(|_| start + k < i)
                    .map_or(0, |d| i64::from(d - b'0'));
        }
    }
    let offset_s = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *c == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_s;
    Some(secs * 1000 + ms)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats milliseconds since the epoch as Go's `time.Time` marshals to JSON (RFC 3339 with
/// nanoseconds, trailing zeros dropped, UTC).
pub fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut s = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if frac != 0 {
        let f = format!("{frac:03}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Parses a duration (Prometheus's `parseDuration`): float seconds or a Prometheus duration.
/// Returns milliseconds (sub-millisecond parts are truncated).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Some(f) = parse_go_float(s) {
        let ns = f * 1e9;
        if ns.is_nan() || ns.abs() > 9.223_372_036_854_775e18 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok((ns as i64) / 1_000_000);
    }
    parse_prom_duration(s).ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

/// A Prometheus duration (`1y2w3d4h5m6s7ms`, units in this order, each at most once) in ms.
pub fn parse_prom_duration(s: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let n: i64 = s[start..i].parse().ok()?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let k = UNITS[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
        next_unit = k + 1;
        total = total.checked_add(n.checked_mul(UNITS[k].1)?)?;
    }
    // Prometheus durations are time.Duration (ns) underneath.
    if total > i64::MAX / 1_000_000 {
        return None;
    }
    Some(total)
}

/// Formats milliseconds as Prometheus's `model.Duration` prints (`1h30m`, `15d`, `2w`, `0s`).
pub fn format_prom_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms.unsigned_abs();
    if ms < 0 {
        out.push('-');
    }
    // Years and weeks only when they divide the rest exactly ("90d", not "12w6d").
    for (u, k, exact) in [
        ("y", 365 * 86_400_000u64, true),
        ("w", 7 * 86_400_000, true),
        ("d", 86_400_000, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ] {
        if rest >= k && (!exact || rest / k * k == rest) {
            out.push_str(&format!("{}{u}", rest / k));
            rest %= k;
        }
    }
    out
}

/// Reads a time parameter: absent or empty gives `default`.
pub fn time_param(form: &Form, name: &str, default: i64) -> Result<i64, ApiError> {
    let v = form.value(name);
    if v.is_empty() {
        return Ok(default);
    }
    parse_time(v)
        .map_err(|e| ApiError::invalid_param(name, format!("Invalid time value for '{name}': {e}")))
}

/// Reads `limit` (Prometheus's `parseLimitParam`): absent gives 0 (no limit).
pub fn limit_param(form: &Form) -> Result<usize, ApiError> {
    let s = form.value("limit");
    if s.is_empty() {
        return Ok(0);
    }
    let n: i64 = s.parse().map_err(|e: std::num::ParseIntError| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        ApiError::invalid_param("limit", format!("strconv.Atoi: parsing {s:?}: {why}"))
    })?;
    if n < 0 {
        return Err(ApiError::invalid_param(
            "limit",
            "limit must be non-negative".into(),
        ));
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Parses `match[]` values (Prometheus's `parseMatchersParam`): each must parse as a series
/// selector with at least one matcher that does not match the empty string.
pub fn matchers_param(values: &[&str]) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let mut sets = Vec::with_capacity(values.len());
    for v in values {
        let ms = parse_metric_selector(v)
            .map_err(|e| ApiError::invalid_param("match[]", e.to_string()))?;
        if !ms.iter().any(|m| !m.matches_empty()) {
            return Err(ApiError::invalid_param(
                "match[]",
                "match[] must contain at least one non-empty matcher".into(),
            ));
        }
        sets.push(ms);
    }
    Ok(sets)
}

/// Reverses Prometheus's `U__` value-encoding escaping of names (`U__my_2e_label` is
/// `my.label`, `__` is `_`). A name that is not validly escaped is returned unchanged, as
/// Prometheus's `UnescapeName` does.
pub fn unescape_name(name: &str) -> String {
    let Some(esc) = name.strip_prefix("U__") else {
        return name.to_string();
    };
    let b = esc.as_bytes();
    let mut out = String::with_capacity(esc.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'_' {
            // Copy one whole character.
            let ch_len = esc[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&esc[i..i + ch_len]);
            i += ch_len;
            continue;
        }
        i += 1;
        if i >= b.len() {
            return name.to_string();
        }
        if b[i] == b'_' {
            out.push('_');
            i += 1;
            continue;
        }
        let mut code: u32 = 0;
        let mut digits = 0;
        loop {
            if i >= b.len() || digits >= 6 && b[i] != b'_' {
                return name.to_string();
            }
            if b[i] == b'_' {
                match char::from_u32(code) {
                    Some(c) if digits > 0 => out.push(c),
                    _ => return name.to_string(),
                }
                i += 1;
                break;
            }
            match (b[i] as char).to_digit(16) {
                Some(d) => code = code * 16 + d,
                None => return name.to_string(),
            }
            digits += 1;
            i += 1;
        }
    }
    out
}
