//! The `o11y serve` configuration file (`--config FILE`, YAML) and the effective
//! configuration reported by `/api/v1/status/config` and `/api/v1/status/flags`.
//!
//! ```text
//!   FILE ─► parse (serde_norway; unknown keys and bad values are errors naming
//!           file:line:column) ─► ConfigFile (every key optional)
//!        ─► ConfigFile::apply onto ServeConfig::default()  ─► command-line flags override
//!        ─► validate ─► ServeConfig { tsdb: o11y_tsdb::Options, engine: EngineOptions, .. }
//!        ─► effective(cfg) / flags(cfg): what the server actually runs with, for the API
//!           and `o11y serve --print-config`
//! ```
//!
//! Durations are Prometheus durations (`15d`, `1h30m`, `250ms`; units y w d h m s ms, largest
//! first). Sizes are bytes (`1073741824`) or a number with a unit: `KB MB GB TB PB EB` or
//! `KiB MiB GiB TiB PiB EiB`, all powers of two as in Prometheus's
//! `--storage.tsdb.retention.size` (`1GB` = `1GiB` = 2^30 bytes). A retention of `0` means no
//! limit of that kind.
//!
//! `deploy/o11y.example.yaml` lists every key with its default.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use o11y_tsdb::labels::NameValidation;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::api::params::format_prom_duration;
use crate::serve::ServeConfig;

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Bad YAML, an unknown key, or a value of the wrong form; `line` and `column` count
    /// from 1.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// A Prometheus duration (`15d`, `1h30m`, `0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PromDuration(pub Duration);

/// A size in bytes (`512MB`, `1GiB`, `1048576`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

/// Parses a Prometheus duration: `<n><unit>` groups, units `y w d h m s ms` in that order,
/// each at most once; `0` alone is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut total = 0u64;
    let mut rest = s;
    let mut next_unit = 0usize;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration {s:?}: expected a number, e.g. 15d, 1h30m, 250ms"
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("duration {s:?} is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(format!(
                "invalid duration {s:?}: missing unit (y, w, d, h, m, s or ms)"
            ));
        }
        let Some(pos) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!(
                "invalid duration {s:?}: unknown unit {unit:?} (y, w, d, h, m, s or ms)"
            ));
        };
        if pos < next_unit {
            return Err(format!(
                "invalid duration {s:?}: units must go from largest to smallest, each once"
            ));
        }
        next_unit = pos + 1;
        total = n
            .checked_mul(UNITS[pos].1)
            .and_then(|v| total.checked_add(v))
            .filter(|v| i64::try_from(*v).is_ok())
            .ok_or_else(|| format!("duration {s:?} is too large"))?;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_millis(total))
}

/// A duration as Prometheus prints it (`15d`, `1h30m`, `0s`).
pub fn format_duration(d: Duration) -> String {
    format_prom_duration(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

const SIZE_UNITS: [(&str, &str, u32); 6] = [
    ("EB", "EiB", 60),
    ("PB", "PiB", 50),
    ("TB", "TiB", 40),
    ("GB", "GiB", 30),
    ("MB", "MiB", 20),
    ("KB", "KiB", 10),
];

/// Parses a size: bytes, or a number with a power-of-two unit (`KB`/`KiB` … `EB`/`EiB`, `B`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits == 0 {
        return Err(format!(
            "invalid size {s:?}: expected a number of bytes, or one with a unit such as 512MB or 1GiB"
        ));
    }
    let n: u64 = s[..digits]
        .parse()
        .map_err(|_| format!("size {s:?} is too large"))?;
    let unit = &s[digits..];
    let shift = match unit {
        "" | "B" => 0,
        u => SIZE_UNITS
            .iter()
            .find(|(a, b, _)| *a == u || *b == u)
            .map(|(_, _, sh)| *sh)
            .ok_or_else(|| {
                format!("invalid size {s:?}: unknown unit {u:?} (B, KB, MB, GB, TB, PB, EB or KiB … EiB)")
            })?,
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// A size in the largest binary unit that divides it (`512MiB`), or bytes (`1000B`).
pub fn format_size(b: u64) -> String {
    SIZE_UNITS
        .iter()
        .find(|(_, _, sh)| b != 0 && b.trailing_zeros() >= *sh)
        .map_or(format!("{b}B"), |(_, u, sh)| format!("{}{u}", b >> sh))
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PromDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 15d, 1h30m or 250ms")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PromDuration, E> {
                parse_duration(s).map(PromDuration).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<PromDuration, E> {
                if n == 0 {
                    Ok(PromDuration(Duration::ZERO))
                } else {
                    Err(E::custom(format!(
                        "invalid duration {n}: missing unit (y, w, d, h, m, s or ms)"
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<PromDuration, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!("invalid duration {n}: negative"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as 512MB, 1GiB or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ByteSize, E> {
                parse_size(s).map(ByteSize).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ByteSize, E> {
                u64::try_from(n)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("invalid size {n}: negative")))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_size(self.0))
    }
}

/// Log verbosity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    /// Parses a `--log.level` value.
    pub fn parse(s: &str) -> Result<LogLevel, String> {
        match s {
            "error" => Ok(LogLevel::Error),
            "warn" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            "trace" => Ok(LogLevel::Trace),
            _ => Err(format!(
                "log level must be error, warn, info, debug or trace, not {s:?}"
            )),
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }

    /// Parses a `--log.format` value.
    pub fn parse(s: &str) -> Result<LogFormat, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("log format must be text or json, not {s:?}")),
        }
    }
}

/// How the server logs (through `tracing`, to stderr).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogConfig {
    pub level: LogLevel,
    pub format: LogFormat,
}

/// Label name rules, as Prometheus's `metric_name_validation_scheme`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NameScheme {
    Utf8,
    Legacy,
}

/// The configuration file. Every key is optional; absent keys keep their defaults (or the
/// flag given on the command line, which always wins).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigFile {
    pub server: ServerSection,
    pub storage: StorageSection,
    pub limits: LimitsSection,
    pub cluster: ClusterSection,
    pub logging: LoggingSection,
}

/// `server:`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// `--data-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--http-listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<String>,
}

/// `storage:` (the metrics engine).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// `--storage.tsdb.retention.time`; `0` keeps data forever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_time: Option<PromDuration>,
    /// `--storage.tsdb.retention.size`; `0` means no size limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_size: Option<ByteSize>,
    /// `--storage.tsdb.out-of-order-window`: how far behind a series' newest sample a late
    /// sample is still accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_order_window: Option<PromDuration>,
    /// Time range of the blocks cut from the head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_range: Option<PromDuration>,
    /// Largest block range compaction builds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_block_range: Option<PromDuration>,
    /// How far ahead of the receive time a sample may be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub future_grace: Option<PromDuration>,
}

/// `limits:` (labels of written series, queries).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Most labels per series (`0`: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_limit: Option<usize>,
    /// Longest label name in bytes (`0`: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_name_length_limit: Option<usize>,
    /// Longest label value in bytes (`0`: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_value_length_limit: Option<usize>,
    /// `utf8` (Prometheus 3) or `legacy` (`[a-zA-Z_][a-zA-Z0-9_]*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name_validation_scheme: Option<NameScheme>,
    /// `--query.timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_timeout: Option<PromDuration>,
    /// `--query.max-samples`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_max_samples: Option<usize>,
    /// `--query.lookback-delta`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_lookback_delta: Option<PromDuration>,
}

/// `cluster:`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// `--node-id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<u64>,
    /// `--cluster-listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// `--cluster-advertise`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    /// Addresses of members of the cluster to join.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub join: Vec<String>,
    /// `false` is `--no-bootstrap`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<bool>,
}

/// `logging:`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<LogLevel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<LogFormat>,
}

/// Parses configuration `text` read from `path` (named in errors).
pub fn parse(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
    // An empty file (or one with only comments) is an empty configuration.
    let value: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| syntax_error(&e, path))?;
    if value.is_null() {
        return Ok(ConfigFile::default());
    }
    serde_norway::from_str(text).map_err(|e| syntax_error(&e, path))
}

fn syntax_error(e: &serde_norway::Error, path: &Path) -> ConfigError {
    let mut message = e.to_string();
    let (line, column) = match e.location() {
        Some(l) => {
            // serde_norway appends the position; it is in front of the message instead.
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            if let Some(m) = message.strip_suffix(&suffix) {
                message = m.to_string();
            }
            (l.line(), l.column())
        }
        None => (1, 1),
    };
    ConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

/// Reads and parses the configuration file at `path`.
pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(&text, path)
}

fn ms(d: PromDuration) -> i64 {
    i64::try_from(d.0.as_millis()).unwrap_or(i64::MAX)
}

impl ConfigFile {
    /// Sets every key present in the file on `cfg`.
    pub fn apply(&self, cfg: &mut ServeConfig) {
        let s = &self.server;
        if let Some(v) = &s.data_dir {
            cfg.data_dir = v.clone();
        }
        if let Some(v) = &s.http_listen {
            cfg.http_listen = v.clone();
        }
        let st = &self.storage;
        if let Some(v) = st.retention_time {
            cfg.tsdb.retention_ms = (!v.0.is_zero()).then(|| ms(v));
        }
        if let Some(v) = st.retention_size {
            cfg.tsdb.retention_bytes = (v.0 != 0).then_some(v.0);
        }
        if let Some(v) = st.out_of_order_window {
            cfg.tsdb.ooo_window_ms = ms(v);
        }
        if let Some(v) = st.block_range {
            cfg.tsdb.block_range_ms = ms(v);
        }
        if let Some(v) = st.max_block_range {
            cfg.tsdb.max_block_range_ms = ms(v);
        }
        if let Some(v) = st.future_grace {
            cfg.tsdb.future_grace_ms = ms(v);
        }
        let l = &self.limits;
        if let Some(v) = l.label_limit {
            cfg.tsdb.limits.max_label_count = v;
        }
        if let Some(v) = l.label_name_length_limit {
            cfg.tsdb.limits.max_name_len = v;
        }
        if let Some(v) = l.label_value_length_limit {
            cfg.tsdb.limits.max_value_len = v;
        }
        if let Some(v) = l.metric_name_validation_scheme {
            cfg.tsdb.limits.validation = match v {
                NameScheme::Utf8 => NameValidation::Utf8,
                NameScheme::Legacy => NameValidation::Legacy,
            };
        }
        if let Some(v) = l.query_timeout {
            cfg.engine.timeout = v.0;
        }
        if let Some(v) = l.query_max_samples {
            cfg.engine.max_samples = v;
        }
        if let Some(v) = l.query_lookback_delta {
            cfg.engine.lookback_delta_ms = ms(v);
        }
        let c = &self.cluster;
        if let Some(v) = c.node_id {
            cfg.node_id = v;
        }
        if let Some(v) = &c.listen {
            cfg.cluster_listen = v.clone();
        }
        if let Some(v) = &c.advertise {
            cfg.cluster_advertise = Some(v.clone());
        }
        if !c.join.is_empty() {
            cfg.join = c.join.clone();
        }
        if let Some(v) = c.bootstrap {
            cfg.bootstrap = v;
        }
        if let Some(v) = self.logging.level {
            cfg.log.level = v;
        }
        if let Some(v) = self.logging.format {
            cfg.log.format = v;
        }
    }

    /// The configuration as YAML.
    pub fn to_yaml(&self) -> String {
        // Serializing plain structs of strings, numbers and lists cannot fail.
        serde_norway::to_string(self).unwrap_or_default()
    }
}

/// Checks values that parse but cannot work, naming the key (and flag) at fault.
pub fn validate(cfg: &ServeConfig) -> Result<(), String> {
    if cfg.node_id == 0 {
        return Err("cluster.node_id (--node-id) must be at least 1".into());
    }
    let t = &cfg.tsdb;
    if t.block_range_ms < 1000 {
        return Err(format!(
            "storage.block_range {} is below 1s",
            format_prom_duration(t.block_range_ms)
        ));
    }
    if t.ooo_window_ms > t.block_range_ms / 2 {
        return Err(format!(
            "storage.out_of_order_window (--storage.tsdb.out-of-order-window) {} is more than \
             half the block range ({})",
            format_prom_duration(t.ooo_window_ms),
            format_prom_duration(t.block_range_ms)
        ));
    }
    if cfg.engine.lookback_delta_ms <= 0 {
        return Err("limits.query_lookback_delta (--query.lookback-delta) must be positive".into());
    }
    if cfg.engine.timeout.is_zero() {
        return Err("limits.query_timeout (--query.timeout) must be positive".into());
    }
    Ok(())
}

/// The configuration `cfg` runs with, every key filled in.
pub fn effective(cfg: &ServeConfig) -> ConfigFile {
    let t = &cfg.tsdb;
    let dur = |ms: i64| PromDuration(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
    ConfigFile {
        server: ServerSection {
            data_dir: Some(cfg.data_dir.clone()),
            http_listen: Some(cfg.http_listen.clone()),
        },
        storage: StorageSection {
            retention_time: Some(dur(t.retention_ms.unwrap_or(0))),
            retention_size: Some(ByteSize(t.retention_bytes.unwrap_or(0))),
            out_of_order_window: Some(dur(t.ooo_window_ms)),
            block_range: Some(dur(t.block_range_ms)),
            max_block_range: Some(dur(t.max_block_range_ms)),
            future_grace: Some(dur(t.future_grace_ms)),
        },
        limits: LimitsSection {
            label_limit: Some(t.limits.max_label_count),
            label_name_length_limit: Some(t.limits.max_name_len),
            label_value_length_limit: Some(t.limits.max_value_len),
            metric_name_validation_scheme: Some(match t.limits.validation {
                NameValidation::Utf8 => NameScheme::Utf8,
                NameValidation::Legacy => NameScheme::Legacy,
            }),
            query_timeout: Some(PromDuration(cfg.engine.timeout)),
            query_max_samples: Some(cfg.engine.max_samples),
            query_lookback_delta: Some(dur(cfg.engine.lookback_delta_ms)),
        },
        cluster: ClusterSection {
            node_id: Some(cfg.node_id),
            listen: Some(cfg.cluster_listen.clone()),
            advertise: cfg.cluster_advertise.clone(),
            join: cfg.join.clone(),
            bootstrap: Some(cfg.bootstrap),
        },
        logging: LoggingSection {
            level: Some(cfg.log.level),
            format: Some(cfg.log.format),
        },
    }
}

/// The effective command-line flags of `cfg`, for `/api/v1/status/flags`.
pub fn flags(cfg: &ServeConfig) -> BTreeMap<String, String> {
    let t = &cfg.tsdb;
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    put(
        "config",
        cfg.config_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    put("data-dir", cfg.data_dir.display().to_string());
    put("http-listen", cfg.http_listen.clone());
    put("cluster-listen", cfg.cluster_listen.clone());
    put(
        "cluster-advertise",
        cfg.cluster_advertise.clone().unwrap_or_default(),
    );
    put("node-id", cfg.node_id.to_string());
    put("no-bootstrap", (!cfg.bootstrap).to_string());
    put(
        "storage.tsdb.retention.time",
        format_prom_duration(t.retention_ms.unwrap_or(0)),
    );
    put(
        "storage.tsdb.retention.size",
        format_size(t.retention_bytes.unwrap_or(0)),
    );
    put(
        "storage.tsdb.out-of-order-window",
        format_prom_duration(t.ooo_window_ms),
    );
    put(
        "query.lookback-delta",
        format_prom_duration(cfg.engine.lookback_delta_ms),
    );
    put("query.timeout", format_duration(cfg.engine.timeout));
    put("query.max-samples", cfg.engine.max_samples.to_string());
    put("log.level", cfg.log.level.as_str().to_string());
    put("log.format", cfg.log.format.as_str().to_string());
    m
}

#[cfg(test)]
mod tests;
