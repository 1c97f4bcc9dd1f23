//! `o11y serve` processes on loopback and a blocking HTTP client for them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_o11y");
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `cond` every 50 ms until it holds; panics naming `what` after `deadline`.
pub fn wait_until(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `n` distinct free loopback ports: all bound at once (so they differ), then released.
pub fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// One HTTP/1.1 request over a fresh connection: (status, body). `None` when the server
/// cannot be reached or does not answer within 30 s.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: o11y\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let split = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = out[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
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

/// GET `path` as JSON (`None` when unreachable or not JSON).
pub fn get_json(addr: &str, path: &str) -> Option<(u16, serde_json::Value)> {
    let (st, body) = http(addr, "GET", path, &[], b"")?;
    Some((st, serde_json::from_slice(&body).ok()?))
}

pub fn post_json(addr: &str, path: &str, body: &str) -> Option<(u16, serde_json::Value)> {
    let (st, body) = http(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )?;
    Some((st, serde_json::from_slice(&body).ok()?))
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One `o11y serve` process. Killed (SIGKILL) when dropped.
pub struct Node {
    pub id: u64,
    pub http: String,
    pub cluster: String,
    pub dir: PathBuf,
    /// `--join` URLs (empty: the node bootstraps).
    pub join: Vec<String>,
    child: Option<Child>,
}

impl Node {
    pub fn new(id: u64, http_port: u16, cluster_port: u16, root: &Path) -> Node {
        Node {
            id,
            http: format!("127.0.0.1:{http_port}"),
            cluster: format!("127.0.0.1:{cluster_port}"),
            dir: root.join(format!("node-{id}")),
            join: Vec::new(),
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.with_extension("log")
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node {} already runs", self.id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .args(["--node-id", &self.id.to_string()])
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--http-listen", &self.http])
            .args(["--cluster-listen", &self.cluster])
            .args(["--cluster-advertise", &self.cluster]);
        // The OTLP listeners are not used here; free ports keep three nodes from colliding
        // on the 4317/4318 defaults.
        let otlp = free_ports(2);
        cmd.args(["--otlp-grpc-listen", &format!("127.0.0.1:{}", otlp[0])])
            .args(["--otlp-http-listen", &format!("127.0.0.1:{}", otlp[1])])
            .stdout(Stdio::null())
            .stderr(log);
        if !self.join.is_empty() {
            cmd.args(["--join", &self.join.join(",")]);
        }
        self.child = Some(cmd.spawn().expect("spawn o11y serve"));
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(&mut self) {
        let mut c = self.child.take().expect("running");
        let ok = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM");
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                assert!(st.success(), "node {} exited with {st}", self.id);
                return;
            }
            assert!(Instant::now() < end, "node {} did not stop", self.id);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit by itself; returns its exit status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < end, "node {} did not exit", self.id);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// `GET /api/v1/cluster/status` data.
    pub fn status(&self) -> Option<serde_json::Value> {
        match get_json(&self.http, "/api/v1/cluster/status") {
            Some((200, v)) => Some(v["data"].clone()),
            _ => None,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Ids in a JSON array.
pub fn ids(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
        .unwrap_or_default()
}

/// Three nodes: node 1 bootstraps, nodes 2 and 3 join through node 1.
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// Keeps the data directories until the cluster is dropped.
    pub _root: tempfile::TempDir,
}

impl Cluster {
    pub fn new() -> Cluster {
        let root = tempfile::tempdir().unwrap();
        let ports = free_ports(6);
        let mut nodes: Vec<Node> = (0..3)
            .map(|i| Node::new(i as u64 + 1, ports[i], ports[i + 3], root.path()))
            .collect();
        let urls: Vec<String> = nodes.iter().map(Node::url).collect();
        for n in nodes.iter_mut().skip(1) {
            // Node 1 first; the rest let a restarted node rejoin while node 1 is down.
            n.join = urls.iter().filter(|u| **u != n.url()).cloned().collect();
        }
        Cluster { nodes, _root: root }
    }

    pub fn node(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    /// Waits until every running node reports the voters `want`, the same leader, and every
    /// member of its membership answering.
    pub fn wait_voters(&self, want: &[u64]) -> u64 {
        let mut leader = 0;
        wait_until(
            &format!("voters {want:?} with one leader"),
            DEADLINE,
            || {
                let mut leaders = Vec::new();
                for n in self.nodes.iter().filter(|n| n.running()) {
                    if !want.contains(&n.id) {
                        continue;
                    }
                    let Some(s) = n.status() else { return false };
                    if ids(&s["node"]["voters"]) != want
                        || s["members"].as_array().is_none_or(|m| {
                            m.len() != want.len() || m.iter().any(|m| m["status"].is_null())
                        })
                    {
                        return false;
                    }
                    leaders.push(s["node"]["leader"].as_u64());
                }
                match leaders.first() {
                    Some(Some(l)) if leaders.iter().all(|x| *x == Some(*l)) => {
                        leader = *l;
                        true
                    }
                    _ => false,
                }
            },
        );
        leader
    }

    /// Runs `o11y ARGS` to completion.
    pub fn cli(args: &[&str]) -> Output {
        Command::new(BIN).args(args).output().expect("run o11y")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for n in &self.nodes {
                let log = std::fs::read_to_string(n.log_path()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(25).collect();
                eprintln!("--- node {} log (last lines) ---", n.id);
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}
