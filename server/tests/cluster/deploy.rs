//! The files in `deploy/`: the local-cluster script really forms a cluster, the Kubernetes
//! manifest is well-formed and consistent (pod ordinal → node id and join URLs), and every
//! `o11y serve` flag the manifest and the systemd unit pass exists.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::harness::*;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

/// The flags `o11y serve --help` documents.
fn serve_flags() -> Vec<String> {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(String::from)
        .collect()
}

fn assert_flags_exist(args: &[String], source: &str) {
    let known = serve_flags();
    for a in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            known.contains(a),
            "{source} passes {a}, which o11y serve does not know"
        );
    }
}

fn yaml_docs() -> Vec<Value> {
    let text = std::fs::read_to_string(deploy("kubernetes/o11y-statefulset.yaml")).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).expect("well-formed YAML"))
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn the_statefulset_derives_node_ids_and_joins_from_the_pod_ordinal() {
    let docs = yaml_docs();
    let headless = find(&docs, "Service", "o11y-headless");
    assert_eq!(headless["spec"]["clusterIP"], "None");
    let sts = find(&docs, "StatefulSet", "o11y");
    let spec = &sts["spec"];
    assert_eq!(spec["serviceName"], "o11y-headless");
    assert_eq!(spec["replicas"].as_u64(), Some(3));
    let selector = &spec["selector"]["matchLabels"];
    assert_eq!(spec["template"]["metadata"]["labels"], *selector);
    assert_eq!(headless["spec"]["selector"], *selector);
    let claim = &spec["volumeClaimTemplates"][0];
    let c = &spec["template"]["spec"]["containers"][0];
    assert_eq!(c["volumeMounts"][0]["name"], claim["metadata"]["name"]);
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/var/lib/o11y");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/-/ready");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/-/healthy");
    let replicas_env = c["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "O11Y_REPLICAS")
        .expect("O11Y_REPLICAS");
    assert_eq!(replicas_env["value"], "3");

    // Run the pod's start script as each pod would, printing the command instead.
    let script = c["args"][0].as_str().unwrap();
    assert_eq!(c["command"][1], "-c");
    let domain = "o11y-headless.obs.svc.cluster.local";
    for ordinal in 0..3u64 {
        let out = Command::new("sh")
            .args(["-c", script])
            .env("HOSTNAME", format!("o11y-{ordinal}"))
            .env("POD_NAMESPACE", "obs")
            .env("O11Y_REPLICAS", "3")
            .env("O11Y_BIN", "echo")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let args: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(String::from)
            .collect();
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .map(|i| args[i + 1].clone())
        };
        assert_eq!(args[0], "serve");
        assert_eq!(value("--node-id"), Some((ordinal + 1).to_string()));
        assert_eq!(
            value("--cluster-advertise"),
            Some(format!("o11y-{ordinal}.{domain}:9095"))
        );
        let join = value("--join");
        if ordinal == 0 {
            assert_eq!(join, None, "pod 0 bootstraps");
        } else {
            let urls: Vec<String> = (0..3)
                .filter(|i| *i != ordinal)
                .map(|i| format!("http://o11y-{i}.{domain}:9090"))
                .collect();
            assert_eq!(join, Some(urls.join(",")));
        }
        assert_flags_exist(&args, "the StatefulSet");
    }
}

#[test]
fn the_systemd_unit_runs_o11y_serve_with_known_flags() {
    let unit = std::fs::read_to_string(deploy("o11y.service")).unwrap();
    let line = |key: &str| {
        unit.lines()
            .find(|l| l.starts_with(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in o11y.service"))
            .split_once('=')
            .unwrap()
            .1
            .to_string()
    };
    assert_eq!(line("Restart"), "on-failure");
    assert_eq!(line("User"), "o11y");
    assert_eq!(line("KillSignal"), "SIGTERM");
    assert!(line("LimitNOFILE").parse::<u64>().unwrap() >= 65536);
    let exec: Vec<String> = line("ExecStart")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert!(exec[0].ends_with("/o11y") && exec[1] == "serve", "{exec:?}");
    assert!(exec.contains(&"--data-dir".to_string()));
    assert_flags_exist(&exec, "o11y.service");
}

/// The first `b >= from` with `b`, `b + 1` and `b + 2` free on 127.0.0.1.
fn three_free_ports(from: u16) -> u16 {
    (from..u16::MAX - 3)
        .find(|b| (0..3).all(|i| std::net::TcpListener::bind(("127.0.0.1", b + i)).is_ok()))
        .expect("three free consecutive ports")
}

#[test]
fn the_local_cluster_script_starts_three_voters_and_stops_them() {
    let dir = tempfile::tempdir().unwrap();
    // The script numbers each node's ports consecutively from two bases.
    let http_base = three_free_ports(free_ports(1)[0]);
    let cluster_base = three_free_ports(http_base + 3);
    let otlp_grpc_base = three_free_ports(cluster_base + 3);
    let otlp_http_base = three_free_ports(otlp_grpc_base + 3);
    let script = deploy("local-cluster.sh");
    let run = |cmd: &str| {
        Command::new("bash")
            .arg(&script)
            .arg(cmd)
            .env("O11Y_BIN", BIN)
            .env("O11Y_CLUSTER_DIR", dir.path())
            .env("O11Y_HTTP_BASE", http_base.to_string())
            .env("O11Y_CLUSTER_BASE", cluster_base.to_string())
            .env("O11Y_OTLP_GRPC_BASE", otlp_grpc_base.to_string())
            .env("O11Y_OTLP_HTTP_BASE", otlp_http_base.to_string())
            .output()
            .unwrap()
    };
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let started = run("start");
    // Stop whatever started even when an assertion below fails.
    struct StopOnDrop<'a>(&'a dyn Fn(&str) -> std::process::Output);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            (self.0)("stop");
        }
    }
    let _guard = StopOnDrop(&run);
    assert!(started.status.success(), "{}", text(&started));
    let out = text(&started);
    assert_eq!(
        out.lines().filter(|l| l.contains(" voter ")).count(),
        3,
        "{out}"
    );

    let status = run("status");
    assert!(status.status.success(), "{}", text(&status));
    assert_eq!(
        text(&status).matches(": running (pid").count(),
        3,
        "{}",
        text(&status)
    );

    // A write through node 3 is read back on node 1.
    let n3 = format!("127.0.0.1:{}", http_base + 2);
    let n1 = format!("127.0.0.1:{http_base}");
    assert_eq!(
        crate::write_one(&n3, "script_test", crate::now_ms() - 1000, 7.0),
        204
    );
    wait_until("node 1 has the write", DEADLINE, || {
        crate::values(&n1, "script_test", crate::now_ms()).is_some_and(|v| v.contains(&7))
    });

    let stopped = run("stop");
    assert!(stopped.status.success(), "{}", text(&stopped));
    assert_eq!(
        text(&stopped).matches("stopped").count(),
        3,
        "{}",
        text(&stopped)
    );
    let status = run("status");
    assert!(!status.status.success(), "nothing runs: {}", text(&status));
    assert_eq!(text(&status).matches("not running").count(), 3);
}
