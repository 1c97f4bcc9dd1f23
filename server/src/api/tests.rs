//! Tests of the Prometheus API: the router is called directly (`tower::ServiceExt::oneshot`)
//! over a real tsdb in a temporary directory, with the requests Grafana and promtool send.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use o11y_query::promql::Engine;
use o11y_tsdb::labels::{Label, NameValidation};
use o11y_tsdb::{Db, Options, Sample, SeriesSamples, WriteBatch, DEFAULT_TENANT};
use tower::ServiceExt;

use super::params::{
    format_prom_duration, format_rfc3339, parse_duration, parse_prom_duration, parse_time,
    unescape_name, Form, MAX_TIME_MS, MIN_TIME_MS,
};
use super::{router, ApiError, DeleteRequest, Deleter};
use crate::app::AppState;

/// 2023-11-14T22:13:20Z.
pub(super) const T0: i64 = 1_700_000_000_000;

fn series(pairs: &[(&str, &str)], samples: Vec<Sample>) -> SeriesSamples {
    SeriesSamples {
        labels: pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
        samples,
    }
}

/// Samples every minute over the hour after `T0`: `f(i)` for minute `i`.
fn minutes(f: impl Fn(i64) -> f64) -> Vec<Sample> {
    (0..=60)
        .map(|i| Sample {
            t: T0 + i * 60_000,
            v: f(i),
        })
        .collect()
}

pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub(super) db: Arc<Db>,
}

pub(super) fn fixture(opts: Options) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), opts).unwrap());
    let batch = WriteBatch {
        received_ms: None,
        series: vec![
            series(
                &[("__name__", "up"), ("job", "node"), ("instance", "a")],
                minutes(|_| 1.0),
            ),
            series(
                &[("__name__", "up"), ("job", "node"), ("instance", "b")],
                minutes(|_| 0.0),
            ),
            series(
                &[
                    ("__name__", "http_requests_total"),
                    ("job", "api"),
                    ("code", "200"),
                ],
                minutes(|i| (i * 60) as f64),
            ),
            series(
                &[
                    ("__name__", "http_requests_total"),
                    ("job", "api"),
                    ("code", "500"),
                ],
                minutes(|i| (i * 6) as f64),
            ),
        ],
    };
    let rep = db.apply(DEFAULT_TENANT, &batch, 1).unwrap();
    assert!(rep.rejections.is_empty(), "{:?}", rep.rejections);
    Fixture { _dir: dir, db }
}

pub(super) fn state(db: &Arc<Db>) -> AppState {
    let db = db.clone();
    AppState::new(Arc::new(move || db.clone()), Arc::new(Engine::default()))
}

fn app() -> (Fixture, Router) {
    let fx = fixture(Options::default());
    let r = router(state(&fx.db));
    (fx, r)
}

pub(super) async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String) {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post(app: &Router, uri: &str, body: &str) -> (StatusCode, String) {
    let req = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, req).await
}

fn ok(data: &str) -> String {
    format!(r#"{{"status":"success","data":{data}}}"#)
}

fn bad(msg: &str) -> String {
    let mut s = String::from(r#"{"status":"error","errorType":"bad_data","error":"#);
    super::json::push_str(&mut s, msg);
    s.push('}');
    s
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

const UP_A: &str = r#"{"__name__":"up","instance":"a","job":"node"}"#;
const UP_B: &str = r#"{"__name__":"up","instance":"b","job":"node"}"#;

// ---- queries ----

#[tokio::test]
async fn instant_vector() {
    let (_fx, app) = app();
    let (st, body) = get(&app, "/api/v1/query?query=up&time=1700000000").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        body,
        ok(&format!(
            r#"{{"resultType":"vector","result":[{{"metric":{UP_A},"value":[1700000000,"1"]}},{{"metric":{UP_B},"value":[1700000000,"0"]}}]}}"#
        ))
    );
}

#[tokio::test]
async fn instant_vector_rfc3339_time_and_empty_result() {
    let (_fx, app) = app();
    let (_, a) = get(&app, "/api/v1/query?query=up&time=1700000000").await;
    let (_, b) = get(&app, "/api/v1/query?query=up&time=2023-11-14T22:13:20Z").await;
    assert_eq!(a, b);
    let (st, body) = get(&app, "/api/v1/query?query=nothing&time=1700000000").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, ok(r#"{"resultType":"vector","result":[]}"#));
}

#[tokio::test]
async fn instant_scalar_string_and_special_floats() {
    let (_fx, app) = app();
    let cases = [
        (
            "1.5",
            "1700000000.5",
            r#"{"resultType":"scalar","result":[1700000000.500,"1.5"]}"#,
        ),
        (
            "1%2F0",
            "1700000000",
            r#"{"resultType":"scalar","result":[1700000000,"+Inf"]}"#,
        ),
        (
            "-1%2F0",
            "1700000000",
            r#"{"resultType":"scalar","result":[1700000000,"-Inf"]}"#,
        ),
        (
            "0%2F0",
            "1700000000",
            r#"{"resultType":"scalar","result":[1700000000,"NaN"]}"#,
        ),
        (
            "1e21",
            "1",
            r#"{"resultType":"scalar","result":[1,"1e+21"]}"#,
        ),
        (
            "-1.5e300",
            "1",
            r#"{"resultType":"scalar","result":[1,"-1.5e+300"]}"#,
        ),
        (
            "123456789012345680000",
            "1",
            r#"{"resultType":"scalar","result":[1,"123456789012345680000"]}"#,
        ),
        (
            "0.0000001",
            "0.001",
            r#"{"resultType":"scalar","result":[0.001,"1e-07"]}"#,
        ),
        (
            "-0.05",
            "-1.5",
            r#"{"resultType":"scalar","result":[-1.500,"-0.05"]}"#,
        ),
        (
            "0.000001",
            "0.001",
            r#"{"resultType":"scalar","result":[0.001,"0.000001"]}"#,
        ),
        (
            "%22a%3Cb%22",
            "1700000000",
            r#"{"resultType":"string","result":[1700000000,"a\u003cb"]}"#,
        ),
    ];
    for (q, t, want) in cases {
        let (st, body) = get(&app, &format!("/api/v1/query?query={q}&time={t}")).await;
        assert_eq!(st, StatusCode::OK, "{q}");
        assert_eq!(body, ok(want), "{q}");
    }
}

#[tokio::test]
async fn instant_matrix() {
    let (_fx, app) = app();
    let (st, body) = get(
        &app,
        "/api/v1/query?query=up%7Binstance%3D%22a%22%7D%5B2m%5D&time=1700000120",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        body,
        ok(&format!(
            r#"{{"resultType":"matrix","result":[{{"metric":{UP_A},"values":[[1700000060,"1"],[1700000120,"1"]]}}]}}"#
        ))
    );
}

#[tokio::test]
async fn range_query_exact() {
    let (_fx, app) = app();
    let (st, body) = get(
        &app,
        "/api/v1/query_range?query=sum+by+(job)+(rate(http_requests_total[5m]))&start=1700000300&end=1700000420&step=1m",
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        ok(
            r#"{"resultType":"matrix","result":[{"metric":{"job":"api"},"values":[[1700000300,"1.1"],[1700000360,"1.1"],[1700000420,"1.1"]]}]}"#
        )
    );
    // A scalar query gives one series without labels.
    let (_, body) = get(
        &app,
        "/api/v1/query_range?query=2&start=1700000000&end=1700000001.5&step=0.5",
    )
    .await;
    assert_eq!(
        body,
        ok(
            r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"2"],[1700000000.500,"2"],[1700000001,"2"],[1700000001.500,"2"]]}]}"#
        )
    );
}

#[tokio::test]
async fn range_query_grafana_request() {
    let (_fx, app) = app();
    let (st, body) = get(
        &app,
        "/api/v1/query_range?query=up&start=1700000000&end=1700003600&step=60",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let mut want = String::from(r#"{"resultType":"matrix","result":["#);
    for (i, (m, v)) in [(UP_A, "1"), (UP_B, "0")].iter().enumerate() {
        if i > 0 {
            want.push(',');
        }
        want.push_str(&format!(r#"{{"metric":{m},"values":["#));
        let pts: Vec<String> = (0..=60)
            .map(|k| format!(r#"[{},"{v}"]"#, 1_700_000_000 + k * 60))
            .collect();
        want.push_str(&pts.join(","));
        want.push_str("]}");
    }
    want.push_str("]}");
    assert_eq!(body, ok(&want));
}

#[tokio::test]
async fn form_post_equals_get() {
    let (_fx, app) = app();
    let pairs = [
        ("/api/v1/query", "query=up&time=1700000000"),
        (
            "/api/v1/query_range",
            "query=rate(http_requests_total%5B5m%5D)&start=1700000300&end=1700003600&step=15",
        ),
        ("/api/v1/labels", "start=1700000000&end=1700003600"),
        (
            "/api/v1/series",
            "match%5B%5D=up&start=1700000000&end=1700003600",
        ),
    ];
    for (path, q) in pairs {
        let g = get(&app, &format!("{path}?{q}")).await;
        let p = post(&app, path, q).await;
        assert_eq!(g.0, StatusCode::OK, "{path}: {}", g.1);
        assert_eq!(g, p, "{path}");
    }
    // Body values come first, the URL query fills in the rest.
    let p = post(&app, "/api/v1/query?time=1700000000", "query=up").await;
    assert_eq!(p, get(&app, "/api/v1/query?query=up&time=1700000000").await);
}

#[tokio::test]
async fn annotations_become_infos_and_warnings() {
    let (_fx, app) = app();
    let (st, body) = get(&app, "/api/v1/query?query=rate(up%5B5m%5D)&time=1700000600").await;
    assert_eq!(st, StatusCode::OK);
    let v = json(&body);
    assert_eq!(v["status"], "success");
    assert!(v.get("warnings").is_none(), "{body}");
    assert_eq!(
        v["infos"],
        serde_json::json!([
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"up\" (1:6)"
        ])
    );
}

async fn expect_error(app: &Router, uri: &str, status: StatusCode, typ: &str, msg: &str) {
    let (st, body) = get(app, uri).await;
    assert_eq!(st, status, "{uri}: {body}");
    let mut want = format!(r#"{{"status":"error","errorType":"{typ}","error":"#);
    super::json::push_str(&mut want, msg);
    want.push('}');
    assert_eq!(body, want, "{uri}");
}

#[tokio::test]
async fn query_parameter_errors() {
    let (_fx, app) = app();
    let b = StatusCode::BAD_REQUEST;
    let cases = [
        (
            "/api/v1/query?query=up&time=abc",
            r#"invalid parameter "time": Invalid time value for 'time': cannot parse "abc" to a valid timestamp"#,
        ),
        (
            "/api/v1/query?query=up&time=1&timeout=x",
            r#"invalid parameter "timeout": cannot parse "x" to a valid duration"#,
        ),
        (
            "/api/v1/query?query=up&time=1&lookback_delta=5x",
            r#"error parsing lookback delta duration: cannot parse "5x" to a valid duration"#,
        ),
        (
            "/api/v1/query_range?query=up&end=10&step=1",
            r#"invalid parameter "start": cannot parse "" to a valid timestamp"#,
        ),
        (
            "/api/v1/query_range?query=up&start=1&end=yesterday&step=1",
            r#"invalid parameter "end": cannot parse "yesterday" to a valid timestamp"#,
        ),
        (
            "/api/v1/query_range?query=up&start=10&end=5&step=1",
            "end timestamp must not be before start time",
        ),
        (
            "/api/v1/query_range?query=up&start=1&end=10",
            r#"invalid parameter "step": cannot parse "" to a valid duration"#,
        ),
        (
            "/api/v1/query_range?query=up&start=1&end=10&step=1x",
            r#"invalid parameter "step": cannot parse "1x" to a valid duration"#,
        ),
        (
            "/api/v1/query_range?query=up&start=1&end=10&step=0",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            "/api/v1/query_range?query=up&start=1&end=10&step=-15",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=11001&step=1",
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        (
            "/api/v1/query_range?query=up%5B5m%5D&start=0&end=100&step=10",
            r#"invalid parameter "query": invalid expression type "range vector" for range query, must be Scalar or instant Vector"#,
        ),
        (
            "/api/v1/query?query=&time=1",
            r#"invalid parameter "query": 1:1: parse error: no expression found in input"#,
        ),
    ];
    for (uri, msg) in cases {
        expect_error(&app, uri, b, "bad_data", msg).await;
    }
    // Exactly 11,000 steps (11,001 points) is allowed, as in Prometheus.
    let (st, _) = get(&app, "/api/v1/query_range?query=1&start=0&end=11000&step=1").await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn parse_error_has_position() {
    let (_fx, app) = app();
    let (st, body) = get(&app, "/api/v1/query?query=sum(up&time=1").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let v = json(&body);
    assert_eq!(v["errorType"], "bad_data");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.starts_with("invalid parameter \"query\": 1:") && msg.contains("parse error"),
        "{msg}"
    );
}

#[tokio::test]
async fn execution_error_is_422() {
    let (_fx, app) = app();
    // Both `up` series become {job="node"}.
    let q = "label_replace(up,%22instance%22,%22%22,%22%22,%22%22)";
    let (st, body) = get(&app, &format!("/api/v1/query?query={q}&time=1700000000")).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let v = json(&body);
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "execution");
    assert!(
        v["error"].as_str().unwrap().contains("same labelset"),
        "{body}"
    );
}

#[tokio::test]
async fn timeout_is_503() {
    let (_fx, app) = app();
    let (st, body) = get(
        &app,
        "/api/v1/query_range?query=sum(rate(http_requests_total%5B5m%5D))&start=1700000000&end=1700003600&step=1&timeout=0s",
    )
    .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(json(&body)["errorType"], "timeout");
}

#[tokio::test]
async fn lookback_delta_parameter() {
    let (_fx, app) = app();
    // Two minutes after the last sample: found with the default 5m lookback, not with 1m.
    let (_, body) = get(&app, "/api/v1/query?query=count(up)&time=1700003720").await;
    assert_eq!(json(&body)["data"]["result"][0]["value"][1], "2");
    let (_, body) = get(
        &app,
        "/api/v1/query?query=count(up)&time=1700003720&lookback_delta=1m",
    )
    .await;
    assert_eq!(body, ok(r#"{"resultType":"vector","result":[]}"#));
}

// ---- series, labels, label values ----

#[tokio::test]
async fn series_endpoint() {
    let (_fx, app) = app();
    let (st, body) = get(&app, "/api/v1/series?match[]=up").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, ok(&format!("[{UP_A},{UP_B}]")));
    // Several selectors: union, sorted, without duplicates.
    let (_, body) = get(
        &app,
        "/api/v1/series?match[]=up%7Binstance%3D%22b%22%7D&match[]=http_requests_total%7Bcode%3D%22500%22%7D&match[]=up&start=1700000000&end=1700003600",
    )
    .await;
    assert_eq!(
        body,
        ok(&format!(
            r#"[{{"__name__":"http_requests_total","code":"500","job":"api"}},{UP_A},{UP_B}]"#
        ))
    );
    let (_, body) = get(&app, "/api/v1/series?match[]=up&limit=1").await;
    assert_eq!(
        body,
        format!(
            r#"{{"status":"success","data":[{UP_A}],"warnings":["results truncated due to limit"]}}"#
        )
    );
    // Outside the data's time range.
    let (_, body) = get(
        &app,
        "/api/v1/series?match[]=up&start=1600000000&end=1600003600",
    )
    .await;
    assert_eq!(body, ok("[]"));
}

#[tokio::test]
async fn series_errors() {
    let (_fx, app) = app();
    let b = StatusCode::BAD_REQUEST;
    expect_error(
        &app,
        "/api/v1/series",
        b,
        "bad_data",
        "no match[] parameter provided",
    )
    .await;
    expect_error(
        &app,
        "/api/v1/series?match[]=%7Bjob%3D~%22.*%22%7D",
        b,
        "bad_data",
        r#"invalid parameter "match[]": match[] must contain at least one non-empty matcher"#,
    )
    .await;
    expect_error(
        &app,
        "/api/v1/series?match[]=up&limit=x",
        b,
        "bad_data",
        r#"invalid parameter "limit": strconv.Atoi: parsing "x": invalid syntax"#,
    )
    .await;
    expect_error(
        &app,
        "/api/v1/series?match[]=up&limit=-1",
        b,
        "bad_data",
        r#"invalid parameter "limit": limit must be non-negative"#,
    )
    .await;
    expect_error(
        &app,
        "/api/v1/series?match[]=up&start=x",
        b,
        "bad_data",
        r#"invalid parameter "start": Invalid time value for 'start': cannot parse "x" to a valid timestamp"#,
    )
    .await;
    let (st, body) = get(&app, "/api/v1/series?match[]=up%7B").await;
    assert_eq!(st, b);
    assert!(json(&body)["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid parameter \"match[]\": 1:"));
    // Form decoding errors.
    expect_error(
        &app,
        "/api/v1/series?match[]=%zz",
        b,
        "bad_data",
        r#"error parsing form values: invalid URL escape "%zz""#,
    )
    .await;
}

#[tokio::test]
async fn labels_endpoint() {
    let (_fx, app) = app();
    let (st, body) = get(&app, "/api/v1/labels").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, ok(r#"["__name__","code","instance","job"]"#));
    let (_, body) = post(&app, "/api/v1/labels", "start=1700000000&end=1700003600").await;
    assert_eq!(body, ok(r#"["__name__","code","instance","job"]"#));
    let (_, body) = get(&app, "/api/v1/labels?match[]=up").await;
    assert_eq!(body, ok(r#"["__name__","instance","job"]"#));
    let (_, body) = get(
        &app,
        "/api/v1/labels?match[]=up&match[]=http_requests_total",
    )
    .await;
    assert_eq!(body, ok(r#"["__name__","code","instance","job"]"#));
    let (_, body) = get(&app, "/api/v1/labels?limit=2").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":["__name__","code"],"warnings":["results truncated due to limit"]}"#
    );
    let (_, body) = get(&app, "/api/v1/labels?start=1600000000&end=1600003600").await;
    assert_eq!(body, ok("[]"));
}

#[tokio::test]
async fn label_values_endpoint() {
    let (_fx, app) = app();
    let (st, body) = get(&app, "/api/v1/label/__name__/values").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body, ok(r#"["http_requests_total","up"]"#));
    let (_, body) = get(&app, "/api/v1/label/__name__/values?match[]=up").await;
    assert_eq!(body, ok(r#"["up"]"#));
    let (_, body) = get(
        &app,
        "/api/v1/label/job/values?match[]=%7B__name__%3D~%22.%2B%22%7D&start=1700000000&end=1700003600",
    )
    .await;
    assert_eq!(body, ok(r#"["api","node"]"#));
    let (_, body) = get(&app, "/api/v1/label/instance/values?limit=1").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":["a"],"warnings":["results truncated due to limit"]}"#
    );
    // U__ escaping: `U__job` is `job`; unknown labels have no values.
    let (_, body) = get(&app, "/api/v1/label/U__job/values").await;
    assert_eq!(body, ok(r#"["api","node"]"#));
    let (_, body) = get(&app, "/api/v1/label/nope/values").await;
    assert_eq!(body, ok("[]"));
    expect_error(
        &app,
        "/api/v1/label/job/values?match[]=%7Bjob%3D%22%22%7D",
        StatusCode::BAD_REQUEST,
        "bad_data",
        r#"invalid parameter "match[]": match[] must contain at least one non-empty matcher"#,
    )
    .await;
}

#[tokio::test]
async fn label_values_invalid_name_with_legacy_names() {
    let mut opts = Options::default();
    opts.limits.validation = NameValidation::Legacy;
    let fx = fixture(opts);
    let app = router(state(&fx.db));
    expect_error(
        &app,
        "/api/v1/label/my.label/values",
        StatusCode::BAD_REQUEST,
        "bad_data",
        r#"invalid label name: "my.label""#,
    )
    .await;
    expect_error(
        &app,
        "/api/v1/label/U__my_2e_label/values",
        StatusCode::BAD_REQUEST,
        "bad_data",
        r#"invalid label name: "my.label""#,
    )
    .await;
    let (st, _) = get(&app, "/api/v1/label/job/values").await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn label_values_utf8_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), Options::default()).unwrap());
    let batch = WriteBatch {
        received_ms: None,
        series: vec![series(
            &[("__name__", "m"), ("my.label", "x")],
            vec![Sample { t: T0, v: 1.0 }],
        )],
    };
    db.apply(DEFAULT_TENANT, &batch, 1).unwrap();
    let app = router(state(&db));
    let (_, a) = get(&app, "/api/v1/label/U__my_2e_label/values").await;
    assert_eq!(a, ok(r#"["x"]"#));
    let (_, b) = get(&app, "/api/v1/label/my.label/values").await;
    assert_eq!(b, a);
}

// ---- status and stubs ----

#[tokio::test]
async fn buildinfo_shape() {
    let (_fx, app) = app();
    let (st, body) = get(&app, "/api/v1/status/buildinfo").await;
    assert_eq!(st, StatusCode::OK);
    let v = json(&body);
    assert_eq!(v["status"], "success");
    let keys: Vec<&str> = v["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "branch",
            "buildDate",
            "buildUser",
            "goVersion",
            "revision",
            "version"
        ]
    );
    assert_eq!(v["data"]["version"], "3.0.0");
}

#[tokio::test]
async fn flags_and_runtimeinfo_shapes() {
    let (_fx, app) = app();
    let (_, body) = get(&app, "/api/v1/status/flags").await;
    let v = json(&body);
    assert_eq!(v["data"]["query.lookback-delta"], "5m");
    assert_eq!(v["data"]["query.timeout"], "2m");
    assert_eq!(v["data"]["storage.tsdb.retention.time"], "15d");
    assert_eq!(v["data"]["web.enable-admin-api"], "false");
    let (_, body) = get(&app, "/api/v1/status/runtimeinfo").await;
    let v = json(&body);
    let d = v["data"].as_object().unwrap();
    for k in [
        "startTime",
        "CWD",
        "hostname",
        "serverTime",
        "reloadConfigSuccess",
        "lastConfigTime",
        "corruptionCount",
        "goroutineCount",
        "GOMAXPROCS",
        "GOMEMLIMIT",
        "GOGC",
        "GODEBUG",
        "storageRetention",
    ] {
        assert!(d.contains_key(k), "{k}");
    }
    assert_eq!(d["storageRetention"], "15d");
    assert!(d["startTime"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn tsdb_status_shape() {
    let (_fx, app) = app();
    let (st, body) = get(&app, "/api/v1/status/tsdb").await;
    assert_eq!(st, StatusCode::OK);
    let v = json(&body);
    let d = &v["data"];
    assert_eq!(d["headStats"]["numSeries"], 4);
    assert_eq!(d["headStats"]["minTime"], T0);
    assert_eq!(d["headStats"]["maxTime"], T0 + 3_600_000);
    for k in ["numLabelPairs", "chunkCount"] {
        assert!(d["headStats"][k].is_u64(), "{k}");
    }
    assert_eq!(
        d["seriesCountByMetricName"],
        serde_json::json!([{"name":"http_requests_total","value":2},{"name":"up","value":2}])
    );
    for k in [
        "labelValueCountByLabelName",
        "memoryInBytesByLabelName",
        "seriesCountByLabelValuePair",
    ] {
        assert!(d[k].is_array(), "{k}");
    }
    let (_, body) = get(&app, "/api/v1/status/tsdb?limit=1").await;
    assert_eq!(
        json(&body)["data"]["seriesCountByMetricName"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    expect_error(
        &app,
        "/api/v1/status/tsdb?limit=0",
        StatusCode::BAD_REQUEST,
        "bad_data",
        "limit must be a positive number",
    )
    .await;
}

#[tokio::test]
async fn stub_endpoints() {
    let (_fx, app) = app();
    let cases = [
        ("/api/v1/metadata", "{}"),
        ("/api/v1/query_exemplars?query=up&start=1&end=2", "[]"),
        (
            "/api/v1/targets",
            r#"{"activeTargets":[],"droppedTargets":[],"droppedTargetCounts":{}}"#,
        ),
        ("/api/v1/targets/metadata", "[]"),
        ("/api/v1/rules", r#"{"groups":[]}"#),
        ("/api/v1/alerts", r#"{"alerts":[]}"#),
        (
            "/api/v1/alertmanagers",
            r#"{"activeAlertmanagers":[],"droppedAlertmanagers":[]}"#,
        ),
        ("/api/v1/status/config", r#"{"yaml":""}"#),
        (
            "/api/v1/status/walreplay",
            r#"{"min":0,"max":0,"current":0}"#,
        ),
        (
            "/api/v1/format_query?query=sum+by(job)(up)",
            r#""sum by (job) (up)""#,
        ),
    ];
    for (uri, data) in cases {
        let (st, body) = get(&app, uri).await;
        assert_eq!(st, StatusCode::OK, "{uri}");
        assert_eq!(body, ok(data), "{uri}");
    }
    let (st, _) = get(&app, "/api/v1/query_exemplars?query=sum(").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

// ---- admin ----

#[tokio::test]
async fn admin_disabled_by_default() {
    let (_fx, app) = app();
    for path in [
        "/api/v1/admin/tsdb/delete_series",
        "/api/v1/admin/tsdb/clean_tombstones",
    ] {
        let (st, body) = post(&app, path, "match[]=up").await;
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            r#"{"status":"error","errorType":"unavailable","error":"admin APIs disabled"}"#
        );
    }
}

#[tokio::test]
async fn admin_delete_goes_through_the_deleter() {
    let fx = fixture(Options::default());
    let seen: Arc<Mutex<Vec<DeleteRequest>>> = Arc::default();
    let seen2 = seen.clone();
    let db = fx.db.clone();
    // Stands in for a Raft proposal: applies locally at the next log index.
    let deleter: Deleter = Arc::new(move |r: DeleteRequest| {
        seen2.lock().unwrap().push(r.clone());
        let db = db.clone();
        Box::pin(async move {
            let idx = db.applied_index() + 1;
            db.delete_series(&r.tenant, &r.matchers, r.mint, r.maxt, idx)
                .map_err(|e| ApiError::internal(e.to_string()))
        })
    });
    let mut st = state(&fx.db);
    st.deleter = Some(deleter);
    let app = router(st);
    let (status, body) = post(
        &app,
        "/api/v1/admin/tsdb/delete_series",
        "match[]=up%7Binstance%3D%22a%22%7D&start=1700000000&end=1700003600",
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(body, "");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].tenant, DEFAULT_TENANT);
        assert_eq!((seen[0].mint, seen[0].maxt), (T0, T0 + 3_600_000));
        assert_eq!(seen[0].matchers.len(), 2);
    }
    let (_, body) = get(&app, "/api/v1/query?query=up&time=1700000000").await;
    assert_eq!(
        body,
        ok(&format!(
            r#"{{"resultType":"vector","result":[{{"metric":{UP_B},"value":[1700000000,"0"]}}]}}"#
        ))
    );
    // Defaults to all time; missing match[] is an error; GET is not routed.
    let (status, _) = send(
        &app,
        Request::put("/api/v1/admin/tsdb/delete_series?match[]=up")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let range = {
        let seen = seen.lock().unwrap();
        (seen[1].mint, seen[1].maxt)
    };
    assert_eq!(range, (MIN_TIME_MS, MAX_TIME_MS));
    let (status, body) = post(&app, "/api/v1/admin/tsdb/delete_series", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, bad("no match[] parameter provided"));
    let (status, _) = get(&app, "/api/v1/admin/tsdb/delete_series?match[]=up").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = post(&app, "/api/v1/admin/tsdb/clean_tombstones", "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

// ---- parameter parsing ----

#[test]
fn times() {
    assert_eq!(parse_time("1700000000"), Ok(T0));
    assert_eq!(parse_time("1700000000.123"), Ok(T0 + 123));
    assert_eq!(parse_time("1700000000.1235"), Ok(T0 + 124));
    assert_eq!(parse_time("-1.5"), Ok(-1500));
    assert_eq!(parse_time("1e9"), Ok(1_000_000_000_000));
    assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(T0));
    assert_eq!(parse_time("2023-11-14T22:13:20.5Z"), Ok(T0 + 500));
    assert_eq!(parse_time("2023-11-14T22:13:20.123456789Z"), Ok(T0 + 123));
    assert_eq!(parse_time("2023-11-14T23:13:20+01:00"), Ok(T0));
    assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
    assert_eq!(parse_time("1969-12-31T23:59:59Z"), Ok(-1000));
    assert_eq!(parse_time("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
    assert_eq!(parse_time("-292273086-05-16T16:47:06Z"), Ok(MIN_TIME_MS));
    assert_eq!(
        parse_time("292277025-08-18T07:12:54.999999999Z"),
        Ok(MAX_TIME_MS)
    );
    for bad in [
        "",
        "abc",
        "NaN",
        "Inf",
        "1e300",
        "2023-02-29T00:00:00Z",
        "2023-11-14 22:13:20Z",
        "2023-11-14T22:13:20",
        "2023-11-14T25:00:00Z",
        "2023-11-14T22:13:20.Z",
        "+",
        "-",
        "2023-11-14T22:13:20+0100",
    ] {
        assert!(parse_time(bad).is_err(), "{bad:?}");
    }
    assert_eq!(format_rfc3339(T0), "2023-11-14T22:13:20Z");
    assert_eq!(format_rfc3339(T0 + 120), "2023-11-14T22:13:20.12Z");
    assert_eq!(format_rfc3339(-1000), "1969-12-31T23:59:59Z");
}

#[test]
fn durations() {
    assert_eq!(parse_duration("60"), Ok(60_000));
    assert_eq!(parse_duration("0.5"), Ok(500));
    assert_eq!(parse_duration("1m"), Ok(60_000));
    assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
    assert_eq!(parse_duration("1d2h"), Ok(93_600_000));
    assert_eq!(parse_duration("100ms"), Ok(100));
    assert_eq!(parse_duration("-15"), Ok(-15_000));
    assert_eq!(parse_duration("0"), Ok(0));
    for bad in ["", "1x", "m", "1m1h", "1h1h", "1.5m", "-1m", "1e20"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        parse_duration("1e20"),
        Err(r#"cannot parse "1e20" to a valid duration. It overflows int64"#.into())
    );
    assert_eq!(parse_prom_duration("2w1d"), Some(15 * 86_400_000));
    assert_eq!(format_prom_duration(15 * 86_400_000), "15d");
    assert_eq!(format_prom_duration(90_500), "1m30s500ms");
    assert_eq!(format_prom_duration(14 * 86_400_000), "2w");
    assert_eq!(format_prom_duration(365 * 86_400_000), "1y");
    assert_eq!(format_prom_duration(0), "0s");
}

#[test]
fn names_and_forms() {
    assert_eq!(unescape_name("U__my_2e_label"), "my.label");
    assert_eq!(unescape_name("U__a__b"), "a_b");
    assert_eq!(unescape_name("U___1f600_"), "\u{1f600}");
    assert_eq!(unescape_name("U__bad_zz_"), "U__bad_zz_");
    assert_eq!(unescape_name("U__trailing_"), "U__trailing_");
    assert_eq!(unescape_name("U___d800_"), "U___d800_");
    assert_eq!(unescape_name("plain"), "plain");
    let f = Form::parse(Some("a=1&b=x+y&a=2&c"), Some(b"a=0&d=%C3%A9")).unwrap();
    assert_eq!(f.value("a"), "0");
    assert_eq!(f.values("a"), ["0", "1", "2"]);
    assert_eq!(f.value("b"), "x y");
    assert_eq!(f.value("c"), "");
    assert_eq!(f.value("d"), "é");
    assert!(Form::parse(Some("a=1;b=2"), None).is_err());
    assert!(Form::parse(Some("a=%4"), None).is_err());
}

proptest::proptest! {
    #[test]
    fn parsers_never_panic(s in ".{0,40}") {
        let _ = parse_time(&s);
        let _ = parse_duration(&s);
        let _ = unescape_name(&s);
        let _ = unescape_name(&format!("U__{s}"));
        let _ = Form::parse(Some(&s), Some(s.as_bytes()));
    }

    #[test]
    fn rfc3339_round_trips(ms in -62_135_596_800_000i64..253_402_300_799_999i64) {
        proptest::prop_assert_eq!(parse_time(&format_rfc3339(ms)), Ok(ms));
    }
}

#[tokio::test]
async fn extreme_inputs_do_not_fail_the_server() {
    let (_fx, app) = app();
    for uri in [
        "/api/v1/query?query=up%5B1000y%5D&time=-9223372036854",
        "/api/v1/query?query=up%20offset%201000y&time=9223372036854",
        "/api/v1/query?query=up&time=-292273086-05-16T16:47:06Z",
        "/api/v1/query?query=up&time=292277025-08-18T07:12:54.999999999Z",
        "/api/v1/query_range?query=up&start=-9223372036854&end=9223372036854&step=9223372036",
        "/api/v1/query_range?query=rate(up%5B5m%5D)&start=-9223372036854&end=-9223372036000&step=1",
        "/api/v1/series?match[]=up&start=-9223372036854&end=9223372036854",
        "/api/v1/labels?start=9223372036854&end=-9223372036854",
        "/api/v1/query?query=up&timeout=9223372036854775807",
    ] {
        let (st, body) = get(&app, uri).await;
        assert!(
            st == StatusCode::OK
                || st == StatusCode::BAD_REQUEST
                || st == StatusCode::UNPROCESSABLE_ENTITY,
            "{uri}: {st} {body}"
        );
    }
}
