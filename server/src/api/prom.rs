//! The `/api/v1` handlers: queries, series and label metadata, status, admin.
//!
//! Every handler reads its parameters from [`Params`] (URL query plus form body), validates
//! them in Prometheus's order with Prometheus's messages, then runs the CPU- or IO-bound part
//! on `spawn_blocking` against the database the [`AppState`] currently serves, in
//! [`DEFAULT_TENANT`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use o11y_query::promql::ast::ValueType;
use o11y_query::promql::engine::TenantStorage;
use o11y_query::promql::{parse, Engine};
use o11y_tsdb::labels::{is_valid_legacy_label_name, Labels, NameValidation};
use o11y_tsdb::{Db, DEFAULT_TENANT};
use serde::Serialize;

use super::json::{self, render_annotations, ApiError, Success};
use super::params::{
    format_prom_duration, format_rfc3339, limit_param, matchers_param, parse_duration, time_param,
    unescape_name, Form, MAX_TIME_MS, MIN_TIME_MS,
};
use super::DeleteRequest;
use crate::app::AppState;

/// Most points per series a range query may return, as Prometheus's API enforces it:
/// `(end - start) / step` may not exceed this.
const MAX_RANGE_POINTS: i64 = 11_000;

/// Warning added when `limit` cuts a result.
const TRUNCATED: &str = "results truncated due to limit";

type ApiResult = Result<Success, ApiError>;

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A request's form values: the URL query, plus the body of a form-encoded POST or PUT.
pub struct Params(pub Form);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Params, ApiError> {
        let query = req.uri().query().map(str::to_owned);
        let is_form = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH)
            && req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .is_some_and(|v| {
                    v.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                });
        let body = if is_form {
            Some(Bytes::from_request(req, state).await.map_err(|e| {
                ApiError::bad_data(format!("error parsing form values: {}", e.body_text()))
            })?)
        } else {
            None
        };
        Form::parse(query.as_deref(), body.as_deref()).map(Params)
    }
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("query task failed: {e}")))?
}

/// Engine options for one request: `timeout` (shortens the configured one) and
/// `lookback_delta` (replaces it when positive).
fn request_engine(base: &Engine, form: &Form) -> Result<Engine, ApiError> {
    let mut opts = base.opts.clone();
    let to = form.value("timeout");
    if !to.is_empty() {
        let ms = parse_duration(to).map_err(|e| ApiError::invalid_param("timeout", e))?;
        let d = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
        opts.timeout = opts.timeout.min(d);
    }
    let lb = form.value("lookback_delta");
    if !lb.is_empty() {
        let ms = parse_duration(lb).map_err(|e| {
            ApiError::bad_data(format!("error parsing lookback delta duration: {e}"))
        })?;
        if ms > 0 {
            opts.lookback_delta_ms = ms;
        }
    }
    // The API's own limit below is the one clients see.
    opts.max_points_per_series = opts
        .max_points_per_series
        .max(MAX_RANGE_POINTS as usize + 1);
    Ok(Engine::new(opts))
}

/// Runs a parsed query on the blocking pool and encodes the result with its annotations.
async fn run_query(
    st: &AppState,
    engine: Engine,
    query: String,
    range: Option<(i64, i64, i64)>,
    ts: i64,
) -> ApiResult {
    let db = (st.db)();
    blocking(move || {
        let expr = parse(&query).map_err(|e| ApiError::invalid_param("query", e.to_string()))?;
        let storage = TenantStorage {
            db: &db,
            tenant: DEFAULT_TENANT,
        };
        let res = match range {
            Some((start, end, step)) => {
                let t = expr.value_type();
                if !matches!(t, ValueType::Scalar | ValueType::Vector) {
                    return Err(ApiError::invalid_param(
                        "query",
                        format!(
                            "invalid expression type \"{t}\" for range query, must be Scalar or instant Vector"
                        ),
                    ));
                }
                engine.eval_range(&storage, &expr, start, end, step)
            }
            None => engine.eval_instant(&storage, &expr, ts),
        }
        .map_err(ApiError::from_exec)?;
        let (warnings, infos) = render_annotations(&res.annotations, &query);
        Ok(Success {
            data: json::query_data(&res.value),
            warnings,
            infos,
        })
    })
    .await
}

/// `GET|POST /api/v1/query`: `query`, `time` (default now), `timeout`, `lookback_delta`.
pub async fn query(State(st): State<AppState>, Params(f): Params) -> ApiResult {
    let ts = time_param(&f, "time", now_ms())?;
    let engine = request_engine(&st.engine, &f)?;
    let q = f.value("query").to_string();
    let started = std::time::Instant::now();
    let res = run_query(&st, engine, q, None, ts).await;
    st.telemetry.observe_query("query", started.elapsed());
    res
}

/// `GET|POST /api/v1/query_range`: `query`, `start`, `end`, `step`, `timeout`,
/// `lookback_delta`.
pub async fn query_range(State(st): State<AppState>, Params(f): Params) -> ApiResult {
    let start = super::params::parse_time(f.value("start"))
        .map_err(|e| ApiError::invalid_param("start", e))?;
    let end =
        super::params::parse_time(f.value("end")).map_err(|e| ApiError::invalid_param("end", e))?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start time",
        ));
    }
    let step = parse_duration(f.value("step")).map_err(|e| ApiError::invalid_param("step", e))?;
    if step <= 0 {
        return Err(ApiError::bad_data(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (i128::from(end) - i128::from(start)) / i128::from(step) > i128::from(MAX_RANGE_POINTS) {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let engine = request_engine(&st.engine, &f)?;
    let q = f.value("query").to_string();
    let started = std::time::Instant::now();
    let res = run_query(&st, engine, q, Some((start, end, step)), start).await;
    st.telemetry.observe_query("query_range", started.elapsed());
    res
}

/// `GET|POST /api/v1/query_exemplars`: validates like Prometheus, returns no exemplars (none
/// are stored yet).
pub async fn query_exemplars(Params(f): Params) -> ApiResult {
    time_param(&f, "start", MIN_TIME_MS)?;
    time_param(&f, "end", MAX_TIME_MS)?;
    parse(f.value("query")).map_err(|e| ApiError::invalid_param("query", e.to_string()))?;
    Ok(Success::new("[]".into()))
}

/// `GET|POST /api/v1/format_query`: the query in canonical form (Prometheus's `String()`
/// form; Prometheus's `Pretty` would also break long queries over lines).
pub async fn format_query(Params(f): Params) -> ApiResult {
    let expr =
        parse(f.value("query")).map_err(|e| ApiError::invalid_param("query", e.to_string()))?;
    let mut data = String::new();
    json::push_str(&mut data, &expr.to_string());
    Ok(Success::new(data))
}

/// `start`, `end` (defaulting to Prometheus's min/max time), `limit` and the optional
/// `match[]` sets, in Prometheus's validation order.
struct MetaParams {
    start: i64,
    end: i64,
    limit: usize,
    sets: Vec<Vec<o11y_tsdb::matcher::Matcher>>,
}

fn meta_params(f: &Form) -> Result<MetaParams, ApiError> {
    let limit = limit_param(f)?;
    let start = time_param(f, "start", MIN_TIME_MS)?;
    let end = time_param(f, "end", MAX_TIME_MS)?;
    let sets = matchers_param(&f.values("match[]"))?;
    Ok(MetaParams {
        start,
        end,
        limit,
        sets,
    })
}

/// Cuts `v` to `limit` (0: no limit), returning the warnings to report.
fn truncate<T>(v: &mut Vec<T>, limit: usize) -> Vec<String> {
    if limit > 0 && v.len() > limit {
        v.truncate(limit);
        vec![TRUNCATED.to_string()]
    } else {
        Vec::new()
    }
}

/// `GET|POST /api/v1/series`: `match[]` (required), `start`, `end`, `limit`.
pub async fn series(State(st): State<AppState>, Params(f): Params) -> ApiResult {
    if f.values("match[]").is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let p = meta_params(&f)?;
    let db = (st.db)();
    blocking(move || {
        let mut all: Vec<Labels> = Vec::new();
        for set in &p.sets {
            let found = db
                .select(DEFAULT_TENANT, set, p.start, p.end)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            all.extend(found.into_iter().map(|s| s.labels().clone()));
        }
        if p.sets.len() > 1 {
            all = all
                .into_iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
        }
        let warnings = truncate(&mut all, p.limit);
        let mut data = String::from("[");
        for (i, l) in all.iter().enumerate() {
            if i > 0 {
                data.push(',');
            }
            json::push_labels(&mut data, l);
        }
        data.push(']');
        Ok(Success {
            data,
            warnings,
            infos: Vec::new(),
        })
    })
    .await
}

/// The union over `sets` (or all series when there are none) of `f(db, matchers)`, sorted.
fn union_over(
    db: &Db,
    sets: &[Vec<o11y_tsdb::matcher::Matcher>],
    f: impl Fn(&Db, &[o11y_tsdb::matcher::Matcher]) -> o11y_tsdb::Result<Vec<String>>,
) -> Result<Vec<String>, ApiError> {
    let err = |e: o11y_tsdb::Error| ApiError::internal(e.to_string());
    if sets.is_empty() {
        return f(db, &[]).map_err(err);
    }
    let mut all = BTreeSet::new();
    for set in sets {
        all.extend(f(db, set).map_err(err)?);
    }
    Ok(all.into_iter().collect())
}

fn string_list(mut v: Vec<String>, limit: usize) -> Success {
    let warnings = truncate(&mut v, limit);
    let mut data = String::new();
    json::push_str_array(&mut data, &v);
    Success {
        data,
        warnings,
        infos: Vec::new(),
    }
}

/// `GET|POST /api/v1/labels`: `match[]`, `start`, `end`, `limit`.
pub async fn labels(State(st): State<AppState>, Params(f): Params) -> ApiResult {
    let p = meta_params(&f)?;
    let db = (st.db)();
    blocking(move || {
        let names = union_over(&db, &p.sets, |db, ms| {
            db.label_names(DEFAULT_TENANT, ms, p.start, p.end)
        })?;
        Ok(string_list(names, p.limit))
    })
    .await
}

/// `GET /api/v1/label/{name}/values`: `match[]`, `start`, `end`, `limit`. `U__`-escaped names
/// are unescaped first.
pub async fn label_values(
    State(st): State<AppState>,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
    Params(f): Params,
) -> ApiResult {
    let Path(raw) = name.map_err(|e| ApiError::bad_data(e.body_text()))?;
    let name = unescape_name(&raw);
    let db = (st.db)();
    let valid = match db.options().limits.validation {
        NameValidation::Utf8 => !name.is_empty(),
        NameValidation::Legacy => is_valid_legacy_label_name(&name),
    };
    if !valid {
        return Err(ApiError::bad_data(format!(
            "invalid label name: {}",
            json::go_quote(&name)
        )));
    }
    let p = meta_params(&f)?;
    blocking(move || {
        let values = union_over(&db, &p.sets, |db, ms| {
            db.label_values(DEFAULT_TENANT, &name, ms, p.start, p.end)
        })?;
        Ok(string_list(values, p.limit))
    })
    .await
}

/// One metadata entry as `/api/v1/metadata` shows it.
#[derive(Serialize)]
struct MetadataJson {
    r#type: String,
    help: String,
    unit: String,
}

/// A signed integer parameter as Go's `strconv.Atoi` reads it (-1 when absent).
fn int_param(f: &Form, name: &str) -> Result<i64, ApiError> {
    let s = f.value(name);
    if s.is_empty() {
        return Ok(-1);
    }
    s.parse::<i64>()
        .map_err(|_| ApiError::bad_data(format!("{name} must be a number")))
}

/// `GET /api/v1/metadata`: the metric metadata received through remote_write (replicated, so
/// every node answers the same), one entry per family. `metric` selects one family; `limit`
/// caps the families (negative: no cap; 0: none), `limit_per_metric` the entries per family
/// (positive values only), as in Prometheus.
pub async fn metadata(State(st): State<AppState>, Params(f): Params) -> ApiResult {
    let limit = int_param(&f, "limit")?;
    let per_metric = int_param(&f, "limit_per_metric")?;
    let metric = f.value("metric");
    let entries = if metric.is_empty() {
        st.metadata.list(DEFAULT_TENANT)
    } else {
        st.metadata
            .get(DEFAULT_TENANT, metric)
            .into_iter()
            .collect()
    };
    let mut out: BTreeMap<String, Vec<MetadataJson>> = BTreeMap::new();
    for e in entries {
        if limit >= 0 && out.len() as i64 >= limit {
            break;
        }
        let mut list = vec![MetadataJson {
            r#type: e.kind,
            help: e.help,
            unit: e.unit,
        }];
        if per_metric > 0 {
            list.truncate(per_metric as usize);
        }
        out.insert(e.metric, list);
    }
    Success::serialize(&out)
}

/// `GET /api/v1/targets`: this server scrapes nothing.
pub async fn targets() -> ApiResult {
    Ok(Success::new(
        r#"{"activeTargets":[],"droppedTargets":[],"droppedTargetCounts":{}}"#.into(),
    ))
}

/// `GET /api/v1/targets/metadata`.
pub async fn targets_metadata() -> ApiResult {
    Ok(Success::new("[]".into()))
}

/// `GET /api/v1/rules`: no rules are evaluated.
pub async fn rules() -> ApiResult {
    Ok(Success::new(r#"{"groups":[]}"#.into()))
}

/// `GET /api/v1/alerts`.
pub async fn alerts() -> ApiResult {
    Ok(Success::new(r#"{"alerts":[]}"#.into()))
}

/// `GET /api/v1/alertmanagers`.
pub async fn alertmanagers() -> ApiResult {
    Ok(Success::new(
        r#"{"activeAlertmanagers":[],"droppedAlertmanagers":[]}"#.into(),
    ))
}

/// `GET /api/v1/status/buildinfo`.
pub async fn buildinfo(State(st): State<AppState>) -> ApiResult {
    Success::serialize(&st.info.build)
}

/// `GET /api/v1/status/config`: `{"yaml": ...}` with the effective configuration
/// ([`super::ServerInfo::config_yaml`]; empty when the state was built without one).
pub async fn config(State(st): State<AppState>) -> ApiResult {
    #[derive(Serialize)]
    struct Config<'a> {
        yaml: &'a str,
    }
    Success::serialize(&Config {
        yaml: &st.info.config_yaml,
    })
}

/// `GET /api/v1/status/walreplay`: there is no WAL to replay (the Raft log is replayed before
/// the API starts).
pub async fn walreplay() -> ApiResult {
    Ok(Success::new(r#"{"min":0,"max":0,"current":0}"#.into()))
}

/// Retention as Prometheus prints it: `15d`, `512MiB`, `15d or 512MiB`.
fn retention_string(db: &Db) -> String {
    let o = db.options();
    let time = o.retention_ms.map(format_prom_duration);
    let size = o.retention_bytes.map(|b| {
        let units = [
            ("EiB", 60),
            ("PiB", 50),
            ("TiB", 40),
            ("GiB", 30),
            ("MiB", 20),
            ("KiB", 10),
        ];
        units
            .iter()
            .find(|(_, s)| b != 0 && b % (1u64 << s) == 0)
            .map_or(format!("{b}B"), |(u, s)| format!("{}{u}", b >> s))
    });
    match (time, size) {
        (Some(t), Some(s)) => format!("{t} or {s}"),
        (Some(t), None) => t,
        (None, Some(s)) => s,
        (None, None) => String::new(),
    }
}

/// `GET /api/v1/status/flags`: flags derived from the engine and database options, overlaid
/// with [`super::ServerInfo::flags`].
pub async fn flags(State(st): State<AppState>) -> ApiResult {
    let o = &st.engine.opts;
    let db = (st.db)();
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    m.insert(
        "query.lookback-delta".into(),
        format_prom_duration(o.lookback_delta_ms),
    );
    m.insert(
        "query.timeout".into(),
        format_prom_duration(i64::try_from(o.timeout.as_millis()).unwrap_or(i64::MAX)),
    );
    m.insert("query.max-samples".into(), o.max_samples.to_string());
    m.insert(
        "storage.tsdb.retention.time".into(),
        db.options()
            .retention_ms
            .map_or("0s".into(), format_prom_duration),
    );
    m.insert(
        "storage.tsdb.retention.size".into(),
        db.options()
            .retention_bytes
            .map_or("0B".into(), |b| format!("{b}B")),
    );
    m.insert(
        "web.enable-admin-api".into(),
        st.deleter.is_some().to_string(),
    );
    for (k, v) in &st.info.flags {
        m.insert(k.clone(), v.clone());
    }
    Success::serialize(&m)
}

/// Prometheus's `RuntimeInfo`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeInfo {
    start_time: String,
    #[serde(rename = "CWD")]
    cwd: String,
    hostname: String,
    server_time: String,
    reload_config_success: bool,
    last_config_time: String,
    corruption_count: i64,
    goroutine_count: i64,
    #[serde(rename = "GOMAXPROCS")]
    gomaxprocs: usize,
    #[serde(rename = "GOMEMLIMIT")]
    gomemlimit: i64,
    #[serde(rename = "GOGC")]
    gogc: String,
    #[serde(rename = "GODEBUG")]
    godebug: String,
    storage_retention: String,
}

/// `GET /api/v1/status/runtimeinfo` (Go-runtime fields get neutral values).
pub async fn runtimeinfo(State(st): State<AppState>) -> ApiResult {
    let db = (st.db)();
    let start = format_rfc3339(st.info.start_time_ms);
    Success::serialize(&RuntimeInfo {
        start_time: start.clone(),
        cwd: std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        server_time: format_rfc3339(now_ms()),
        reload_config_success: true,
        last_config_time: start,
        corruption_count: 0,
        goroutine_count: 0,
        gomaxprocs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        gomemlimit: i64::MAX,
        gogc: String::new(),
        godebug: String::new(),
        storage_retention: retention_string(&db),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HeadStats {
    num_series: u64,
    num_label_pairs: u64,
    chunk_count: u64,
    min_time: i64,
    max_time: i64,
}

#[derive(Serialize)]
struct Stat {
    name: String,
    value: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TsdbStatus {
    head_stats: HeadStats,
    series_count_by_metric_name: Vec<Stat>,
    label_value_count_by_label_name: Vec<Stat>,
    memory_in_bytes_by_label_name: Vec<Stat>,
    series_count_by_label_value_pair: Vec<Stat>,
}

/// `GET /api/v1/status/tsdb`: head cardinality statistics; `limit` (default 10) entries per
/// list.
pub async fn tsdb_status(State(st): State<AppState>, Params(f): Params) -> ApiResult {
    let mut limit = 10usize;
    let s = f.value("limit");
    if !s.is_empty() {
        limit = match s.parse::<i64>() {
            Ok(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => return Err(ApiError::bad_data("limit must be a positive number")),
        };
    }
    let db = (st.db)();
    let stats = blocking(move || {
        db.stats(DEFAULT_TENANT, limit)
            .map_err(|e| ApiError::internal(format!("error getting head stats: {e}")))
    })
    .await?;
    let list = |v: Vec<(String, u64)>| -> Vec<Stat> {
        v.into_iter()
            .map(|(name, value)| Stat { name, value })
            .collect()
    };
    Success::serialize(&TsdbStatus {
        head_stats: HeadStats {
            num_series: stats.num_series,
            num_label_pairs: stats.num_label_pairs,
            chunk_count: stats.chunk_count,
            min_time: stats.min_time,
            max_time: stats.max_time,
        },
        series_count_by_metric_name: list(stats.series_count_by_metric_name),
        label_value_count_by_label_name: list(stats.label_value_count_by_label_name),
        memory_in_bytes_by_label_name: list(stats.memory_in_bytes_by_label_name),
        series_count_by_label_value_pair: list(stats.series_count_by_label_value_pair),
    })
}

fn admin_disabled() -> ApiError {
    ApiError::unavailable("admin APIs disabled")
}

/// `POST|PUT /api/v1/admin/tsdb/delete_series`: `match[]` (required), `start`, `end`. Each
/// selector is one [`DeleteRequest`] through [`AppState::deleter`]. Answers 204 No Content.
pub async fn delete_series(State(st): State<AppState>, Params(f): Params) -> Response {
    match delete_series_inner(&st, &f).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn delete_series_inner(st: &AppState, f: &Form) -> Result<(), ApiError> {
    let Some(deleter) = st.deleter.clone() else {
        return Err(admin_disabled());
    };
    let sels = f.values("match[]");
    if sels.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let start = time_param(f, "start", MIN_TIME_MS)?;
    let end = time_param(f, "end", MAX_TIME_MS)?;
    let mut reqs = Vec::with_capacity(sels.len());
    for s in sels {
        let matchers = o11y_query::promql::parser::parse_metric_selector(s)
            .map_err(|e| ApiError::invalid_param("match[]", e.to_string()))?;
        reqs.push(DeleteRequest {
            tenant: DEFAULT_TENANT.to_string(),
            matchers,
            mint: start,
            maxt: end,
        });
    }
    for r in reqs {
        deleter(r).await?;
    }
    Ok(())
}

/// `POST|PUT /api/v1/admin/tsdb/clean_tombstones`: rewrites this node's blocks without
/// deleted data. It changes no visible data, so it runs locally rather than through the log.
pub async fn clean_tombstones(State(st): State<AppState>) -> Response {
    if st.deleter.is_none() {
        return admin_disabled().into_response();
    }
    let db: Arc<Db> = (st.db)();
    match blocking(move || {
        db.clean_tombstones()
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
    {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}
