//! Self-observability and configuration end to end: `/metrics` and the status API over real
//! sockets, config values reaching the engine, a corrupt data file named at startup, and the
//! `o11y` binary itself (`--config`, `--print-config`, JSON logs, SIGTERM).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use o11y_server::config;
use o11y_server::remote_write::encode_v1;
use o11y_server::serve::start;
use o11y_tsdb::labels::Label;
use o11y_tsdb::{Sample, SeriesSamples, WriteBatch};

use super::{config as serve_config, http, now_ms, post_write, series};

fn get_json(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let (status, _, body) = http(addr, "GET", path, &[], b"");
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reaches_the_engine_and_the_status_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = serve_config(dir.path());
    cfg.tsdb.retention_ms = Some(3 * 86_400_000);
    cfg.tsdb.retention_bytes = Some(1 << 30);
    cfg.tsdb.ooo_window_ms = 60_000;
    cfg.tsdb.limits.max_label_count = 3;
    cfg.engine.max_samples = 12345;
    let want_yaml = config::effective(&cfg);
    let running = start(cfg).await.unwrap();
    running
        .node
        .wait_for_leader(Duration::from_secs(20))
        .await
        .unwrap();
    let opts = running.node.db().options().clone();
    assert_eq!(opts.retention_ms, Some(3 * 86_400_000));
    assert_eq!(opts.retention_bytes, Some(1 << 30));
    assert_eq!(opts.ooo_window_ms, 60_000);
    assert_eq!(opts.limits.max_label_count, 3);
    let addr = running.http_addr;
    let t0 = now_ms() - 5_000;
    tokio::task::spawn_blocking(move || {
        // Four labels: over the configured limit of three, so rejected; the other written.
        let batch = WriteBatch {
            series: vec![
                SeriesSamples {
                    labels: vec![
                        Label::new("__name__", "wide"),
                        Label::new("a", "1"),
                        Label::new("b", "2"),
                        Label::new("c", "3"),
                    ],
                    samples: vec![Sample { t: t0, v: 1.0 }],
                },
                series("narrow", "x", &[(t0, 1.0), (t0 + 1000, 2.0)]),
            ],
            received_ms: None,
        };
        let (status, msg) = post_write(addr, &encode_v1(&batch));
        assert_eq!(status, 400, "{msg}");
        assert!(msg.contains("too many labels"), "{msg}");

        let flags = get_json(addr, "/api/v1/status/flags");
        let f = &flags["data"];
        assert_eq!(f["storage.tsdb.retention.time"], "3d");
        assert_eq!(f["storage.tsdb.retention.size"], "1GiB");
        assert_eq!(f["storage.tsdb.out-of-order-window"], "1m");
        assert_eq!(f["query.max-samples"], "12345");

        let conf = get_json(addr, "/api/v1/status/config");
        let yaml = conf["data"]["yaml"].as_str().unwrap();
        let parsed = config::parse(yaml, std::path::Path::new("status/config")).unwrap();
        assert_eq!(parsed, want_yaml);

        let (status, head, body) = http(addr, "GET", "/metrics", &[], b"");
        assert_eq!(status, 200);
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        let text = String::from_utf8(body).unwrap();
        promtool_check_metrics(&text);
        for line in [
            "o11y_samples_received_total{protocol=\"remote_write_v1\"} 3",
            "o11y_samples_written_total{protocol=\"remote_write_v1\"} 2",
            "o11y_samples_rejected_total{protocol=\"remote_write_v1\",reason=\"invalid_labels\"} 1",
            "o11y_http_requests_total{handler=\"/api/v1/status/flags\",code=\"200\"} 1",
            "o11y_raft_is_leader 1",
            "o11y_tsdb_head_series{tenant=\"default\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    })
    .await
    .unwrap();
    running.shutdown().await.unwrap();
}

/// Prometheus's own linter reads the exposition: `promtool check metrics` must accept it with
/// no complaint. Skips (with a message) without promtool unless O11Y_REQUIRE_CLIENTS=1.
fn promtool_check_metrics(text: &str) {
    use std::io::Write;
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("O11Y_REQUIRE_CLIENTS").as_deref() == Ok("1") {
                panic!("promtool is required (O11Y_REQUIRE_CLIENTS=1) but cannot run: {e}");
            }
            eprintln!(
                "SKIP promtool check metrics: promtool not found ({e}); apt-get install prometheus"
            );
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {said}\n{text}");
    assert!(said.trim().is_empty(), "promtool lints: {said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_settings_fail_before_touching_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cfg = serve_config(&data);
    cfg.tsdb.ooo_window_ms = 3 * 3_600_000;
    let err = match start(cfg).await {
        Ok(_) => panic!("started with an out-of-order window above half the block range"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("out_of_order_window"), "{err}");
    assert!(!data.exists(), "nothing created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_cluster_port_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let running = start(serve_config(dir.path())).await.unwrap();
    let taken = running.cluster_addr.to_string();
    let mut cfg = serve_config(other.path());
    cfg.cluster_listen = taken.clone();
    let err = match start(cfg).await {
        Ok(_) => panic!("a second server took the cluster port {taken}"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains(&taken) && err.contains("--cluster-listen") && err.contains("cluster.listen"),
        "{err}"
    );
    running.shutdown().await.unwrap();
}

/// Every file under `dir`, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Writes some data, stops, damages one file, and checks that the next start fails with an
/// error naming that file (and does not panic).
async fn start_fails_naming(damage: impl FnOnce(&std::path::Path) -> std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let running = start(serve_config(dir.path())).await.unwrap();
    running
        .node
        .wait_for_leader(Duration::from_secs(20))
        .await
        .unwrap();
    let addr = running.http_addr;
    let t0 = now_ms() - 5_000;
    tokio::task::spawn_blocking(move || {
        let batch = WriteBatch {
            series: vec![series("c", "x", &[(t0, 1.0)])],
            received_ms: None,
        };
        let (status, msg) = post_write(addr, &encode_v1(&batch));
        assert_eq!(status, 204, "{msg}");
    })
    .await
    .unwrap();
    running.shutdown().await.unwrap();
    let damaged = damage(dir.path());
    let name = damaged.file_name().unwrap().to_string_lossy().to_string();
    let err = match start(serve_config(dir.path())).await {
        Ok(r) => {
            r.shutdown().await.unwrap();
            panic!("started over a damaged {}", damaged.display());
        }
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains(&name), "{err}");
    assert!(err.contains("corrupt"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_raft_log_segment_is_named() {
    start_fails_naming(|dir| {
        let seg = files(&dir.join("log"))
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "seg"))
            .expect("a log segment");
        let mut data = std::fs::read(&seg).unwrap();
        data[..8].copy_from_slice(b"GARBAGE!");
        std::fs::write(&seg, data).unwrap();
        seg
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_raft_vote_file_is_named() {
    start_fails_naming(|dir| {
        let all = files(&dir.join("log"));
        let vote = all
            .iter()
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains("vote"))
            })
            .unwrap_or_else(|| panic!("a vote file among {all:?}"))
            .clone();
        let mut data = std::fs::read(&vote).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&vote, data).unwrap();
        vote
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_tsdb_manifest_is_named() {
    start_fails_naming(|dir| {
        let all = files(&dir.join("sm"));
        let manifest = all
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n == "MANIFEST"))
            .unwrap_or_else(|| panic!("a MANIFEST among {all:?}"))
            .clone();
        let mut data = std::fs::read(&manifest).unwrap();
        data[12] ^= 0xff;
        std::fs::write(&manifest, data).unwrap();
        manifest
    })
    .await;
}

/// Reads a child's stderr lines into a channel.
fn lines_of(stderr: std::process::ChildStderr) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

const BIN: &str = env!("CARGO_BIN_EXE_o11y");

#[test]
fn binary_reads_the_config_file_logs_json_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o11y.yaml");
    std::fs::write(
        &path,
        format!(
            "server:\n  data_dir: {}\n  http_listen: 127.0.0.1:0\n\
             storage:\n  retention_time: 3d\n  out_of_order_window: 5m\n\
             cluster:\n  listen: 127.0.0.1:0\n\
             logging:\n  format: json\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let p = path.display().to_string();

    // --print-config: the effective configuration, flags applied, nothing started.
    let out = Command::new(BIN)
        .args([
            "serve",
            "--config",
            &p,
            "--storage.tsdb.out-of-order-window",
            "1m",
            "--print-config",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = config::parse(
        &String::from_utf8(out.stdout).unwrap(),
        std::path::Path::new("stdout"),
    )
    .unwrap();
    assert_eq!(
        printed.storage.retention_time.unwrap().0.as_secs(),
        3 * 86_400
    );
    assert_eq!(printed.storage.out_of_order_window.unwrap().0.as_secs(), 60);
    assert!(!dir.path().join("data").exists());

    // A bad file: exit code 1 and an error naming file, line and column.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "storage:\n  retention_time: 3 days\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config", &bad.display().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:2:", bad.display())), "{err}");
    assert!(err.contains("invalid duration"), "{err}");

    // Serve: JSON log lines, /metrics, the override in status/flags, then SIGTERM.
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--config",
            &p,
            "--storage.tsdb.out-of-order-window",
            "1m",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines_of(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let addr: std::net::SocketAddr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("no \"O11y is serving\" line; stderr so far: {seen:#?}");
            }
        };
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        assert!(v["level"].is_string(), "{line}");
        if v["fields"]["message"] == "O11y is serving" {
            break v["fields"]["http"].as_str().unwrap().parse().unwrap();
        }
        seen.push(line);
    };
    let flags = get_json(addr, "/api/v1/status/flags");
    assert_eq!(flags["data"]["storage.tsdb.out-of-order-window"], "1m");
    assert_eq!(flags["data"]["storage.tsdb.retention.time"], "3d");
    assert_eq!(flags["data"]["config"], p.as_str());
    let (status, _, body) = http(addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("# TYPE o11y_raft_term gauge"), "{text}");
    assert!(text.contains("process_resident_memory_bytes "), "{text}");

    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("o11y did not stop within 30s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    // The reader ends at EOF, now that the process is gone.
    let mut rest = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(10)) {
        rest.push(l);
    }
    assert!(
        rest.iter()
            .any(|l| l.contains("shutting down") && l.contains("SIGTERM")),
        "{rest:#?}"
    );
}
