//! Real Prometheus clients against o11y (Debian bookworm's `prometheus` 2.42, `promtool` and
//! `prometheus-node-exporter` 1.5):
//!
//! ```text
//!  node-exporter ◄─scrape─ Prometheus A (scrapes itself too) ─remote_write─► o11y
//!                                │                                           ▲   ▲
//!           same PromQL at a fixed time, compared ◄──────────────────────────┘   │
//!  Prometheus B (no targets) ─remote_read (SAMPLES)─────────────────────────────┘
//!  promtool query instant|range|series|labels ─► o11y;  GET /api/v1/metadata on o11y
//! ```
//!
//! Without the programs the test prints SKIP and passes, unless `O11Y_REQUIRE_CLIENTS=1`
//! (set by `scripts/test-all.sh`), where it fails. Every child process is killed when the
//! test ends, whatever way it ends (a guard's `Drop`). Waits poll conditions with deadlines.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use o11y_server::remote_read::proto::{LabelMatcher, Query, ReadRequest};
use o11y_server::remote_read::{read_frames, xor, CONTENT_TYPE_STREAMED};
use o11y_server::remote_write::compress;
use o11y_server::serve::{start, ServeConfig};
use serde_json::Value;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// Scrape interval of Prometheus A, and the range used by the rate queries (10 samples).
const SCRAPE: &str = "2s";
const WINDOW: &str = "20s";

/// Child processes, killed and reaped on drop.
struct Procs {
    children: Vec<(String, Child, PathBuf)>,
}

impl Procs {
    fn spawn(&mut self, name: &str, dir: &Path, cmd: &mut Command) {
        let log = dir.join(format!("{name}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        self.children.push((name.to_string(), child, log));
    }

    /// The end of every child's log, for failure messages.
    fn logs(&self) -> String {
        let mut s = String::new();
        for (name, _, log) in &self.children {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            s.push_str(&format!("--- {name} (last lines)\n"));
            for l in tail.into_iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c, _) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` over a fresh connection: (status, body). Errors (refused, reset) are `None`.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let split = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = out[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body)?;
    }
    Some((status, body))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n")?;
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).ok()?.trim(), 16).ok()?;
        if n == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(nl + 2..nl + 2 + n)?);
        b = b.get(nl + 2 + n + 2..)?;
    }
}

/// `POST path` with a snappy protobuf body (a remote read request): (status, content type,
/// body).
fn post_read(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n\
         X-Prometheus-Remote-Read-Version: 0.1.0\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type:"))
        .unwrap_or("")
        .trim()
        .to_string();
    let mut body = out[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body).unwrap();
    }
    (status, ctype, body)
}

/// Series of a streamed read response: labels → samples in `[start, end]` (Prometheus sends
/// whole chunks, which may reach outside the range). Every chunk's bytes must be exactly what
/// our XOR encoder makes of the chunk's samples.
fn streamed_series(
    body: &[u8],
    start: i64,
    end: i64,
) -> std::collections::BTreeMap<String, Vec<(i64, u64)>> {
    let mut out: std::collections::BTreeMap<String, Vec<(i64, u64)>> = Default::default();
    for f in read_frames(body, 64 << 20).unwrap() {
        for s in f.chunked_series {
            let key = format!(
                "{:?}",
                s.labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect::<Vec<_>>()
            );
            for c in &s.chunks {
                assert_eq!(c.r#type, 1, "XOR chunk");
                let samples = xor::decode(&c.data).unwrap();
                let mut e = xor::XorEncoder::new();
                for &(t, v) in &samples {
                    e.append(t, v);
                }
                assert_eq!(e.finish(), c.data, "{key}: chunk of {samples:?}");
                out.entry(key.clone()).or_default().extend(
                    samples
                        .iter()
                        .filter(|x| x.0 >= start && x.0 <= end)
                        .map(|&(t, v)| (t, v.to_bits())),
                );
            }
        }
    }
    out
}

fn get_json(addr: SocketAddr, path: &str) -> Option<Value> {
    let (status, body) = get(addr, path)?;
    (status == 200)
        .then(|| serde_json::from_slice(&body).ok())
        .flatten()
}

/// Polls `cond` every 200 ms until it yields a value or `timeout` passes.
fn wait_for<T>(
    what: &str,
    timeout: Duration,
    procs: &Procs,
    mut cond: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                procs.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A query result reduced to comparable form: series labels (sorted JSON) → values.
type Reduced = Vec<(String, Vec<(f64, f64)>)>;

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            s => s.parse().unwrap(),
        },
        Value::Number(n) => n.as_f64().unwrap(),
        other => panic!("not a number: {other}"),
    }
}

fn reduce(v: &Value) -> Reduced {
    let data = &v["data"];
    let mut out: Reduced = match data["resultType"].as_str() {
        Some("vector") | Some("matrix") => data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels: std::collections::BTreeMap<String, String> =
                    serde_json::from_value(s["metric"].clone()).unwrap();
                let points: Vec<(f64, f64)> = match s.get("value") {
                    Some(p) => vec![(num(&p[0]), num(&p[1]))],
                    None => s["values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| (num(&p[0]), num(&p[1])))
                        .collect(),
                };
                (serde_json::to_string(&labels).unwrap(), points)
            })
            .collect(),
        Some("scalar") => vec![(
            String::new(),
            vec![(num(&data["result"][0]), num(&data["result"][1]))],
        )],
        other => panic!("unexpected result type {other:?}: {v}"),
    };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Why two reduced results differ, or `None` when they agree.
fn diff(a: &Reduced, b: &Reduced) -> Option<String> {
    let ka: Vec<&String> = a.iter().map(|x| &x.0).collect();
    let kb: Vec<&String> = b.iter().map(|x| &x.0).collect();
    if ka != kb {
        return Some(format!(
            "series differ:\n  prometheus: {ka:?}\n  o11y:       {kb:?}"
        ));
    }
    for ((k, pa), (_, pb)) in a.iter().zip(b) {
        if pa.len() != pb.len() {
            return Some(format!("{k}: {} points vs {}", pa.len(), pb.len()));
        }
        for (x, y) in pa.iter().zip(pb) {
            if x.0 != y.0 || !close(x.1, y.1) {
                return Some(format!("{k}: prometheus {x:?}, o11y {y:?}"));
            }
        }
    }
    None
}

fn missing_programs() -> Vec<&'static str> {
    [PROMETHEUS, PROMTOOL, NODE_EXPORTER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_node_exporter_and_promtool_against_o11y() {
    let missing = missing_programs();
    if !missing.is_empty() {
        let msg =
            format!("missing {missing:?} (apt-get install prometheus prometheus-node-exporter)");
        if std::env::var("O11Y_REQUIRE_CLIENTS").as_deref() == Ok("1") {
            panic!("O11Y_REQUIRE_CLIENTS=1 and {msg}");
        }
        eprintln!("SKIP prometheus_compat: {msg}");
        return;
    }
    let began = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let running = start(ServeConfig {
        data_dir: dir.path().join("o11y"),
        http_listen: "127.0.0.1:0".into(),
        cluster_listen: "127.0.0.1:0".into(),
        ..ServeConfig::default()
    })
    .await
    .unwrap();
    let o11y = running.http_addr;
    let path = dir.path().to_path_buf();
    let outcome = tokio::task::spawn_blocking(move || scenario(&path, o11y)).await;
    running.shutdown().await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    eprintln!(
        "prometheus_compat: finished in {:.1} s",
        began.elapsed().as_secs_f64()
    );
}

fn scenario(dir: &Path, o11y: SocketAddr) {
    let mut procs = Procs {
        children: Vec::new(),
    };
    let node: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    procs.spawn(
        "node-exporter",
        dir,
        Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address={node}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.cpu")
            .arg("--collector.meminfo")
            .arg("--collector.loadavg"),
    );

    // Prometheus A: scrapes itself and node-exporter, remote_writes to o11y.
    let prom: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = format!(
        r#"global:
  scrape_interval: {SCRAPE}
  evaluation_interval: {SCRAPE}
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ["{prom}"]}}]
  - job_name: node
    static_configs: [{{targets: ["{node}"]}}]
remote_write:
  - url: http://{o11y}/api/v1/write
    send_exemplars: false
    queue_config:
      batch_send_deadline: 500ms
      max_samples_per_send: 5000
      min_backoff: 100ms
      max_backoff: 1s
    metadata_config:
      send: true
      send_interval: 2s
"#
    );
    std::fs::write(dir.join("a.yml"), config).unwrap();
    procs.spawn(
        "prometheus-a",
        dir,
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", dir.join("a.yml").display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("a-data").display()
            ))
            .arg(format!("--web.listen-address={prom}")),
    );

    // Prometheus B: no targets, reads everything from o11y.
    let reader: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    std::fs::write(
        dir.join("b.yml"),
        format!(
            "global:\n  scrape_interval: 1m\nremote_read:\n  - url: http://{o11y}/api/v1/read\n    read_recent: true\n"
        ),
    )
    .unwrap();
    procs.spawn(
        "prometheus-b",
        dir,
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", dir.join("b.yml").display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("b-data").display()
            ))
            .arg(format!("--web.listen-address={reader}")),
    );

    let minute = Duration::from_secs(60);
    for (what, addr, path) in [
        ("node-exporter", node, "/metrics"),
        ("prometheus A", prom, "/-/ready"),
        ("prometheus B", reader, "/-/ready"),
    ] {
        wait_for(&format!("{what} to answer"), minute, &procs, || {
            get(addr, path).filter(|r| r.0 == 200)
        });
    }

    // Data flows: o11y holds `up` for both jobs, 30 s of it.
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let first = wait_for(
        "o11y to receive up{job=node} and up{job=prometheus}",
        minute,
        &procs,
        || {
            let v = get_json(
                o11y,
                &format!("/api/v1/query?query={}", urlencode("count(up)")),
            )?;
            (reduce(&v).first()?.1[0].1 == 2.0).then(now)
        },
    );
    let t = wait_for("30 s of data", minute, &procs, || {
        // An evaluation time a few seconds back, with an odd millisecond so that no scrape
        // timestamp sits exactly on a range boundary.
        let t = (now() - 6.0).floor() + 0.317;
        (t - first >= 30.0).then_some(t)
    });

    // The same queries against both servers at `t` (data up to `t` may still be in flight
    // to o11y: each comparison polls until o11y's answer agrees, then must agree).
    let instant = [
        "up".to_string(),
        "count by (job) (up)".into(),
        format!("rate(node_cpu_seconds_total[{WINDOW}])"),
        format!("sum by (mode) (rate(node_cpu_seconds_total[{WINDOW}]))"),
        "prometheus_http_requests_total".into(),
        format!(
            "histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[{WINDOW}])))"
        ),
        "node_memory_MemTotal_bytes".into(),
        r#"label_replace(up, "host", "$1", "instance", "(.*):.*")"#.into(),
        "topk(3, node_cpu_seconds_total)".into(),
        "sum(node_load1) + 1".into(),
    ];
    let compare = |what: &str, path: String, against: SocketAddr| {
        let want = reduce(&get_json(prom, &path).unwrap_or_else(|| panic!("{what} on Prometheus")));
        assert!(!want.is_empty(), "{what}: Prometheus has no result");
        let mut last = None;
        let agreed = {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let got = get_json(against, &path).map(|v| reduce(&v));
                match got.as_ref().map(|g| diff(&want, g)) {
                    Some(None) => break true,
                    Some(Some(d)) => last = Some(d),
                    None => last = Some("no answer".into()),
                }
                if Instant::now() >= deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        };
        assert!(
            agreed,
            "{what} at {t}: {}\n{}",
            last.unwrap_or_default(),
            procs.logs()
        );
        want.len()
    };
    for q in &instant {
        let n = compare(
            q,
            format!("/api/v1/query?query={}&time={t}", urlencode(q)),
            o11y,
        );
        eprintln!("same result from Prometheus and o11y: {q} ({n} series)");
    }
    let range = format!("sum by (mode) (rate(node_cpu_seconds_total[{WINDOW}]))");
    let n = compare(
        &range,
        format!(
            "/api/v1/query_range?query={}&start={}&end={t}&step=2",
            urlencode(&range),
            t - 10.0
        ),
        o11y,
    );
    eprintln!("same range result: {range} ({n} series)");

    // Remote read: Prometheus B answers from o11y's data what A answers from its own.
    for q in ["up", "node_memory_MemTotal_bytes"] {
        let path = format!("/api/v1/query?query={}&time={t}", urlencode(q));
        let n = compare(q, path, reader);
        eprintln!("same result through remote read: {q} ({n} series)");
    }

    // Streamed remote read from the real Prometheus: its XOR chunks decode with our decoder
    // and our encoder reproduces them byte for byte; o11y's streamed answer to the same
    // request holds the same samples.
    let (start_ms, end_ms) = ((t * 1000.0) as i64 - 30_000, (t * 1000.0) as i64);
    let req = compress(&prost::Message::encode_to_vec(&ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: start_ms,
            end_timestamp_ms: end_ms,
            matchers: vec![LabelMatcher {
                r#type: 2,
                name: "__name__".into(),
                value: "up|node_cpu_seconds_total|node_memory_MemTotal_bytes".into(),
            }],
            hints: None,
        }],
        accepted_response_types: vec![1],
    }));
    let (status, ctype, body) = post_read(prom, "/api/v1/read", &req);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ctype, CONTENT_TYPE_STREAMED.to_ascii_lowercase());
    let from_prometheus = streamed_series(&body, start_ms, end_ms);
    assert!(from_prometheus.len() > 10, "{from_prometheus:?}");
    let (status, ctype, body) = post_read(o11y, "/api/v1/read", &req);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ctype, CONTENT_TYPE_STREAMED.to_ascii_lowercase());
    let from_o11y = streamed_series(&body, start_ms, end_ms);
    assert_eq!(from_o11y, from_prometheus);
    eprintln!(
        "same streamed remote read from Prometheus and o11y ({} series; Prometheus's XOR chunks re-encoded byte for byte)",
        from_o11y.len()
    );

    // promtool against o11y.
    let server = format!("http://{o11y}");
    let promtool = |args: &[&str]| {
        let out = Command::new(PROMTOOL).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let ts = format!("{t}");
    let text = promtool(&["query", "instant", "--time", &ts, &server, "up"]);
    assert!(
        text.contains(r#"job="node""#) && text.contains(r#"job="prometheus""#),
        "{text}"
    );
    let start = format!("{}", t - 10.0);
    let text = promtool(&[
        "query",
        "range",
        "--start",
        &start,
        "--end",
        &ts,
        "--step",
        "2s",
        &server,
        "up{job=\"node\"}",
    ]);
    assert!(
        text.contains(r#"job="node""#) && text.contains(" @["),
        "{text}"
    );
    let text = promtool(&["query", "series", "--match", "node_load1", &server]);
    assert!(text.contains(r#"__name__="node_load1""#), "{text}");
    let text = promtool(&["query", "labels", &server, "job"]);
    let jobs: Vec<&str> = text.lines().collect();
    assert_eq!(jobs, vec!["node", "prometheus"], "{text}");

    // Metadata that Prometheus sent reached o11y's metadata API.
    let meta = wait_for(
        "metadata of node_cpu_seconds_total on o11y",
        minute,
        &procs,
        || {
            let v = get_json(o11y, "/api/v1/metadata?metric=node_cpu_seconds_total")?;
            let e = v["data"]["node_cpu_seconds_total"].get(0)?.clone();
            Some(e)
        },
    );
    assert_eq!(meta["type"], "counter");
    assert_eq!(meta["help"], "Seconds the CPUs spent in each mode.");
    let all = get_json(o11y, "/api/v1/metadata").unwrap();
    assert_eq!(
        all["data"]["prometheus_http_requests_total"][0]["type"],
        "counter"
    );
}
