//! OTLP metric and attribute names to Prometheus names, as Prometheus 3's OTLP receiver
//! names them with its default translation strategy (`UnderscoreEscapingWithSuffixes`).
//!
//! ```text
//!   metric name "http.server.duration", unit "ms", kind Histogram
//!     ─► tokens split on anything outside [a-zA-Z0-9:]   ["http","server","duration"]
//!     ─► unit "ms" ─► main suffix "milliseconds"; "By/s" ─► "bytes" + "per_second";
//!        units holding "{...}" annotations add nothing; "1" adds nothing
//!     ─► "_total" last for monotonic cumulative sums; "_ratio" last for gauges of unit "1"
//!     ─► joined with "_"; a leading digit gets a "_" prefix   "http_server_duration_milliseconds"
//!
//!   attribute key "http.method" ─► every char outside [a-zA-Z0-9_] becomes "_"
//!     ─► leading digit: "key_" prefix; leading single "_": "key" prefix; "__x" kept
//! ```
//!
//! A suffix already present as a whole token is not added twice (`"duration.seconds"` with
//! unit `s` stays `duration_seconds`), and `total` / `ratio` tokens are moved to the end.
//! Names that come out empty or made only of underscores are errors: the points carrying
//! them are rejected.

/// How an OTLP metric is typed for naming purposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Gauge,
    /// A monotonic sum: a Prometheus counter, named with `_total`.
    MonotonicCounter,
    /// A non-monotonic sum: stored as a gauge, no `_total`, no `_ratio`.
    NonMonotonicCounter,
    Histogram,
    ExponentialHistogram,
    Summary,
}

/// A name that normalizes to nothing usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("metric name {0:?} normalizes to an empty name")]
    EmptyMetricName(String),
    #[error("metric name {name:?} normalizes to the invalid name {normalized:?}")]
    InvalidMetricName { name: String, normalized: String },
    #[error("attribute key {0:?} normalizes to an empty label name")]
    EmptyLabelName(String),
    #[error("attribute key {name:?} normalizes to the invalid label name {normalized:?}")]
    InvalidLabelName { name: String, normalized: String },
}

/// Characters of a name echoed back in errors.
const EXCERPT: usize = 64;

fn excerpt(s: &str) -> String {
    s.chars().take(EXCERPT).collect()
}

/// UCUM units Prometheus spells out (the "main" unit, left of a `/`).
fn main_unit(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// Units spelled out after `per_` (right of a `/`), singular.
fn per_unit(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

fn is_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// The main and `per_` suffixes of a unit, before cleaning.
fn unit_suffixes(unit: &str) -> (String, String) {
    let mut parts = unit.splitn(2, '/');
    let main = parts.next().unwrap_or("").trim();
    let main_suffix = if !main.is_empty() && !main.contains(['{', '}']) {
        main_unit(main).to_string()
    } else {
        String::new()
    };
    let mut per_suffix = String::new();
    if let Some(per) = parts.next() {
        let per = per.trim();
        if !per.is_empty() && !per.contains(['{', '}']) {
            let p = per_unit(per);
            if !p.is_empty() {
                per_suffix = format!("per_{p}");
            }
        }
    }
    (main_suffix, per_suffix)
}

/// Makes a unit suffix fit a metric name: invalid characters become `_`, runs of `_`
/// collapse into one, and a leading `_` goes.
fn clean_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for c in unit.chars() {
        let c = if is_metric_char(c) { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    match out.strip_prefix('_') {
        Some(rest) => rest.to_string(),
        None => out,
    }
}

/// The Prometheus metric family name of an OTLP metric.
pub fn metric_name(name: &str, unit: &str, kind: MetricKind) -> Result<String, NameError> {
    let mut tokens: Vec<&str> = name
        .split(|c: char| !is_metric_char(c))
        .filter(|t| !t.is_empty())
        .collect();
    let (main, per) = unit_suffixes(unit);
    let mut main = clean_unit(&main);
    let mut per = clean_unit(&per);
    if tokens.contains(&main.as_str()) {
        main.clear();
    }
    if per == "per_" {
        per.clear();
    } else {
        if per.ends_with('_') {
            per.pop();
        }
        if tokens.contains(&per.as_str()) {
            per.clear();
        }
    }
    if !per.is_empty() && main.ends_with('_') {
        main.pop();
    }
    if !main.is_empty() {
        tokens.push(&main);
    }
    if !per.is_empty() {
        tokens.push(&per);
    }
    if kind == MetricKind::MonotonicCounter {
        tokens.retain(|t| *t != "total");
        tokens.push("total");
    }
    if unit == "1" && kind == MetricKind::Gauge {
        tokens.retain(|t| *t != "ratio");
        tokens.push("ratio");
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if out.is_empty() {
        return Err(NameError::EmptyMetricName(excerpt(name)));
    }
    if out != name && out.chars().all(|c| c == '_') {
        return Err(NameError::InvalidMetricName {
            name: excerpt(name),
            normalized: out,
        });
    }
    Ok(out)
}

/// The Prometheus label name of an OTLP attribute key.
pub fn label_name(key: &str) -> Result<String, NameError> {
    if key.is_empty() {
        return Err(NameError::EmptyLabelName(String::new()));
    }
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    if out != key && out.chars().all(|c| c == '_') {
        return Err(NameError::InvalidLabelName {
            name: excerpt(key),
            normalized: out,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use MetricKind::*;

    fn m(name: &str, unit: &str, kind: MetricKind) -> String {
        metric_name(name, unit, kind).unwrap()
    }

    #[test]
    fn units_become_suffixes() {
        assert_eq!(
            m("http.server.duration", "s", Histogram),
            "http_server_duration_seconds"
        );
        assert_eq!(m("memory.usage", "By", Gauge), "memory_usage_bytes");
        assert_eq!(m("system.io", "KiBy", Gauge), "system_io_kibibytes");
        assert_eq!(m("temp", "Cel", Gauge), "temp_celsius");
        assert_eq!(m("rate", "By/s", Gauge), "rate_bytes_per_second");
        assert_eq!(m("freq", "1/s", Gauge), "freq_per_second");
        assert_eq!(m("speed", "m/h", Gauge), "speed_meters_per_hour");
        assert_eq!(m("odd", "foo/bar", Gauge), "odd_foo_per_bar");
        assert_eq!(m("util", "%", Gauge), "util_percent");
        // Unknown units are used as they are, cleaned.
        assert_eq!(m("x", "things", Gauge), "x_things");
        assert_eq!(m("x", "a.b-c", Gauge), "x_a_b_c");
    }

    #[test]
    fn annotations_add_nothing() {
        assert_eq!(m("http.requests", "{request}", Gauge), "http_requests");
        assert_eq!(
            m("http.requests", "{request}", MonotonicCounter),
            "http_requests_total"
        );
        assert_eq!(m("queue", "{item}/s", Gauge), "queue_per_second");
        assert_eq!(m("queue", "By/{x}", Gauge), "queue_bytes");
    }

    #[test]
    fn type_suffixes() {
        assert_eq!(m("requests", "1", MonotonicCounter), "requests_total");
        assert_eq!(m("requests.total", "", MonotonicCounter), "requests_total");
        assert_eq!(m("total.requests", "", MonotonicCounter), "requests_total");
        assert_eq!(m("cpu.utilization", "1", Gauge), "cpu_utilization_ratio");
        assert_eq!(m("ratio.of.x", "1", Gauge), "of_x_ratio");
        // Only gauges get _ratio; non-monotonic sums get neither suffix.
        assert_eq!(m("active", "1", NonMonotonicCounter), "active");
        assert_eq!(m("active", "", NonMonotonicCounter), "active");
        assert_eq!(m("s", "1", Summary), "s");
        assert_eq!(
            m("cpu.time", "s", MonotonicCounter),
            "cpu_time_seconds_total"
        );
    }

    #[test]
    fn existing_suffixes_are_not_repeated() {
        assert_eq!(m("duration.seconds", "s", Histogram), "duration_seconds");
        assert_eq!(m("seconds.duration", "s", Histogram), "seconds_duration");
        assert_eq!(
            m("io.bytes_total", "By", MonotonicCounter),
            "io_bytes_total"
        );
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(m("a__b..c", "", Gauge), "a_b_c");
        assert_eq!(m("_leading", "", Gauge), "leading");
        assert_eq!(m("namespace:metric", "", Gauge), "namespace:metric");
        assert_eq!(m("2xx.count", "", Gauge), "_2xx_count");
        assert_eq!(m("unicodé.name", "", Gauge), "unicod_name");
        assert!(matches!(
            metric_name("", "", Gauge),
            Err(NameError::EmptyMetricName(_))
        ));
        assert!(matches!(
            metric_name("...", "", Gauge),
            Err(NameError::EmptyMetricName(_))
        ));
    }

    #[test]
    fn label_names() {
        let l = |k: &str| label_name(k).unwrap();
        assert_eq!(l("http.method"), "http_method");
        assert_eq!(l("service-name"), "service_name");
        assert_eq!(l("123abc"), "key_123abc");
        assert_eq!(l("_private"), "key_private");
        assert_eq!(l(".private"), "key_private");
        assert_eq!(l("__reserved__"), "__reserved__");
        assert_eq!(l("a..b"), "a__b");
        assert_eq!(l("ä"), "key_");
        assert!(label_name("").is_err());
        assert!(matches!(
            label_name(".."),
            Err(NameError::InvalidLabelName { .. })
        ));
    }

    proptest::proptest! {
        /// Whatever the input, a name that translates is a valid legacy Prometheus name.
        #[test]
        fn translated_names_are_valid(name in "\\PC{0,24}", unit in "\\PC{0,8}") {
            for kind in [Gauge, MonotonicCounter, NonMonotonicCounter, Histogram, Summary] {
                if let Ok(n) = metric_name(&name, &unit, kind) {
                    proptest::prop_assert!(o11y_tsdb::labels::is_valid_legacy_metric_name(&n), "{n:?}");
                }
            }
            if let Ok(l) = label_name(&name) {
                proptest::prop_assert!(o11y_tsdb::labels::is_valid_legacy_label_name(&l), "{l:?}");
            }
        }
    }
}
