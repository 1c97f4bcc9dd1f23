//! ingest-bench: remote_write ingest throughput of the `o11y` server, acknowledged after commit
//! (issue #5).
//!
//! ```text
//! cargo run --release -p o11y-benches --bin ingest-bench -- --target URL --series N
//!     [--connections 8] [--rounds 30] [--samples-per-request 2000] [--seed 42]
//!     [--pid PID] [--max-secs 300]
//! cargo run --release -p o11y-benches --bin ingest-bench -- --spawn 1 --series N ...
//! ```
//!
//! ```text
//! generate node_exporter-like rounds (benches/src/node.rs) ─► encode every request up front
//!   (remote_write 1.0 protobuf + snappy, one sample per series as Prometheus sends them)
//!   ─► warm-up: round 0 (creates the series, not timed)
//!   ─► timed: C connections (threads, HTTP/1.1 keep-alive) take requests in order
//!        POST /api/v1/write ─► 204 once committed through Raft and applied
//!   ─► one JSON line: samples_per_sec, p50/p99 latency, server RSS per active series
//! ```
//!
//! Requests are encoded before the clock starts and sent over a minimal blocking HTTP/1.1
//! client, so the sender's CPU goes to the socket and not to encoding: on a 2-core machine the
//! sender and the server share the cores. Timestamps end at the time of encoding, so that the
//! server accepts them (not too far in the future, inside its out-of-order window).
//!
//! `--spawn N` starts N `o11y serve` processes itself (the `o11y` binary next to this one,
//! data in a temporary directory; nodes 2.. join node 1) and spreads the connections over
//! them, so a follower forwards its share to the leader. Without `--spawn`, `--target` names
//! one server (or several, comma-separated) and `--pid` gives the process whose RSS is read
//! (otherwise the server's own `process_resident_memory_bytes` from `/metrics` is used when it
//! has it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use o11y_benches::node::{NodeExporterGen, INTERVAL_MS};
use rayon::prelude::*;

/// Deadline of every wait for a spawned server.
const WAIT: Duration = Duration::from_secs(60);
/// Timeout of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

struct Args {
    targets: Vec<String>,
    spawn: usize,
    series: usize,
    connections: usize,
    rounds: usize,
    samples_per_request: usize,
    seed: u64,
    pid: Option<u32>,
    max_secs: f64,
    node_bin: Option<PathBuf>,
    keep: bool,
}

const USAGE: &str = "ingest-bench (--target URL[,URL...] | --spawn 1|3) [--series 100000] \
[--connections 8] [--rounds 30] [--samples-per-request 2000] [--seed 42] [--pid PID] \
[--max-secs 300] [--node-bin PATH] [--keep]";

fn parse() -> Result<Args> {
    let mut a = Args {
        targets: vec![],
        spawn: 0,
        series: 100_000,
        connections: 8,
        rounds: 30,
        samples_per_request: 2000,
        seed: 42,
        pid: None,
        max_secs: 300.0,
        node_bin: None,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || {
            it.next()
                .ok_or_else(|| anyhow!("{k} needs a value\n{USAGE}"))
        };
        match k.as_str() {
            "--target" => {
                a.targets = v()?
                    .split(',')
                    .map(|s| s.trim_end_matches('/').to_string())
                    .collect()
            }
            "--spawn" => a.spawn = v()?.parse().context("--spawn")?,
            "--series" => a.series = v()?.parse().context("--series")?,
            "--connections" => a.connections = v()?.parse().context("--connections")?,
            "--rounds" => a.rounds = v()?.parse().context("--rounds")?,
            "--samples-per-request" => {
                a.samples_per_request = v()?.parse().context("--samples-per-request")?
            }
            "--seed" => a.seed = v()?.parse().context("--seed")?,
            "--pid" => a.pid = Some(v()?.parse().context("--pid")?),
            "--max-secs" => a.max_secs = v()?.parse().context("--max-secs")?,
            "--node-bin" => a.node_bin = Some(v()?.into()),
            "--keep" => a.keep = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown flag {other:?}\n{USAGE}"),
        }
    }
    if a.targets.is_empty() == (a.spawn == 0) {
        bail!("give exactly one of --target and --spawn\n{USAGE}");
    }
    if a.connections == 0 || a.rounds == 0 || a.series == 0 || a.samples_per_request == 0 {
        bail!("--connections, --rounds, --series and --samples-per-request must be positive");
    }
    Ok(a)
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 over one keep-alive connection.

/// `http://host:port` → socket address.
fn addr_of(url: &str) -> Result<SocketAddr> {
    let hostport = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("target {url:?} must start with http://"))?;
    let hostport = hostport.split('/').next().unwrap_or(hostport);
    hostport
        .to_socket_addrs()
        .with_context(|| format!("resolving {hostport}"))?
        .next()
        .ok_or_else(|| anyhow!("{hostport} resolves to nothing"))
}

struct Conn {
    addr: SocketAddr,
    host: String,
    stream: Option<BufReader<TcpStream>>,
}

struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Conn {
    fn new(url: &str) -> Result<Conn> {
        let addr = addr_of(url)?;
        Ok(Conn {
            addr,
            host: addr.to_string(),
            stream: None,
        })
    }

    fn stream(&mut self) -> Result<&mut BufReader<TcpStream>> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, REQUEST_TIMEOUT)
                .with_context(|| format!("connecting to {}", self.addr))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(REQUEST_TIMEOUT))?;
            s.set_write_timeout(Some(REQUEST_TIMEOUT))?;
            self.stream = Some(BufReader::with_capacity(16 << 10, s));
        }
        Ok(self.stream.as_mut().expect("just set"))
    }

    /// One request; the connection is dropped (and reopened next time) on any I/O error.
    fn request(&mut self, method: &str, path: &str, headers: &str, body: &[u8]) -> Result<Reply> {
        let r = self.request_once(method, path, headers, body);
        if r.is_err() {
            self.stream = None;
        }
        r
    }

    fn request_once(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> Result<Reply> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n{headers}\r\n",
            self.host,
            body.len()
        );
        let s = self.stream()?;
        {
            let w = s.get_mut();
            w.write_all(head.as_bytes())?;
            w.write_all(body)?;
        }
        let mut line = String::new();
        s.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {line:?}"))?;
        let mut len = 0usize;
        let mut close = false;
        let mut chunked = false;
        loop {
            line.clear();
            if s.read_line(&mut line)? == 0 {
                bail!("connection closed in the headers");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let v = v.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.parse().context("content-length")?;
                } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
                    close = true;
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v.eq_ignore_ascii_case("chunked");
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                s.read_line(&mut line)?;
                let n = usize::from_str_radix(line.trim(), 16).context("chunk size")?;
                let start = body.len();
                body.resize(start + n, 0);
                s.read_exact(&mut body[start..])?;
                line.clear();
                s.read_line(&mut line)?;
                if n == 0 {
                    break;
                }
            }
        } else {
            body.resize(len, 0);
            s.read_exact(&mut body)?;
        }
        if close {
            self.stream = None;
        }
        Ok(Reply { status, body })
    }

    fn get(&mut self, path: &str) -> Result<Reply> {
        self.request("GET", path, "", &[])
    }
}

// ---------------------------------------------------------------------------------------------
// Spawned servers.

struct Server {
    child: Child,
    url: String,
}

struct Cluster {
    servers: Vec<Server>,
    dir: PathBuf,
    keep: bool,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The `o11y` binary next to this executable, built first when run through cargo.
fn o11y_binary(args: &Args) -> Result<PathBuf> {
    if let Some(b) = &args.node_bin {
        return Ok(b.clone());
    }
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("o11y");
    let release = exe
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "release");
    if let Some(cargo) = std::env::var_os("CARGO") {
        eprintln!("ingest-bench: building o11y");
        let mut cmd = Proc::new(cargo);
        cmd.args(["build", "-q", "-p", "o11y-server", "--bin", "o11y"]);
        if release {
            cmd.arg("--release");
        }
        if !cmd.status().context("running cargo build")?.success() {
            bail!("cargo build of o11y failed");
        }
    }
    if !bin.exists() {
        bail!(
            "{} not found: run `cargo build --release -p o11y-server --bin o11y` (or pass \
             --node-bin PATH)",
            bin.display()
        );
    }
    Ok(bin)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if f() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("timed out after {WAIT:?} waiting for {what}")
}

fn spawn_cluster(args: &Args) -> Result<Cluster> {
    let bin = o11y_binary(args)?;
    let dir = std::env::temp_dir().join(format!("ingest-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut cluster = Cluster {
        servers: vec![],
        dir: dir.clone(),
        keep: args.keep,
    };
    for id in 1..=args.spawn {
        let http = free_port()?;
        let grpc = free_port()?;
        let otlp_grpc = free_port()?;
        let otlp_http = free_port()?;
        let url = format!("http://127.0.0.1:{http}");
        let log = std::fs::File::create(dir.join(format!("node{id}.log")))?;
        let mut cmd = Proc::new(&bin);
        cmd.arg("serve")
            .args(["--node-id", &id.to_string()])
            .arg("--data-dir")
            .arg(dir.join(format!("node{id}")))
            .args(["--http-listen", &format!("127.0.0.1:{http}")])
            .args(["--cluster-listen", &format!("127.0.0.1:{grpc}")]);
        // Servers built with OTLP listen on two more ports; give them free ones when the
        // binary knows the flags.
        if help_mentions(&bin, "--otlp-grpc-listen") {
            cmd.args(["--otlp-grpc-listen", &format!("127.0.0.1:{otlp_grpc}")])
                .args(["--otlp-http-listen", &format!("127.0.0.1:{otlp_http}")]);
        }
        if id > 1 {
            cmd.args(["--join", &cluster.servers[0].url]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        cluster.servers.push(Server { child, url });
        let url = cluster.servers.last().expect("pushed").url.clone();
        let mut conn = Conn::new(&url)?;
        wait_until(&format!("node {id} to be ready"), || {
            conn.get("/-/ready").is_ok_and(|r| r.status == 200)
        })?;
    }
    if args.spawn > 1 {
        let mut conn = Conn::new(&cluster.servers[0].url)?;
        let want = args.spawn;
        wait_until(&format!("{want} voters"), || {
            conn.get("/api/v1/cluster/status").is_ok_and(|r| {
                serde_json::from_slice::<serde_json::Value>(&r.body)
                    .ok()
                    .and_then(|v| voters_in(&v))
                    .is_some_and(|n| n >= want)
            })
        })?;
    }
    Ok(cluster)
}

/// The number of voters in a `/api/v1/cluster/status` answer, wherever it puts them.
fn voters_in(v: &serde_json::Value) -> Option<usize> {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::Array(a)) = m.get("voters") {
                return Some(a.len());
            }
            m.values().find_map(voters_in)
        }
        _ => None,
    }
}

fn help_mentions(bin: &Path, flag: &str) -> bool {
    Proc::new(bin)
        .args(["serve", "--help"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(flag))
}

// ---------------------------------------------------------------------------------------------
// Memory of the server.

fn rss_of_pid(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// User plus system CPU time of a process, in seconds.
fn cpu_secs_of_pid(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on Linux.
    Some((utime + stime) / 100.0)
}

/// CPU time of this process (the sender), in seconds.
fn own_cpu_secs() -> f64 {
    cpu_secs_of_pid(std::process::id()).unwrap_or(0.0)
}

fn rss_from_metrics(url: &str) -> Option<u64> {
    let mut c = Conn::new(url).ok()?;
    let r = c.get("/metrics").ok()?;
    if r.status != 200 {
        return None;
    }
    let text = String::from_utf8_lossy(&r.body).into_owned();
    text.lines()
        .find(|l| l.starts_with("process_resident_memory_bytes "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Head series of the server, from `/api/v1/status/tsdb`.
fn head_series(url: &str) -> Option<u64> {
    let mut c = Conn::new(url).ok()?;
    let r = c.get("/api/v1/status/tsdb").ok()?;
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    v["data"]["headStats"]["numSeries"].as_u64()
}

// ---------------------------------------------------------------------------------------------

struct Request {
    body: Vec<u8>,
    samples: u64,
}

fn encode_requests(args: &Args) -> Result<(Vec<Request>, Vec<Request>, usize)> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    // The last round ends one interval before now.
    let start = now - (args.rounds as i64 + 1) * INTERVAL_MS;
    let mut gen = NodeExporterGen::new(args.seed, args.series, start);
    let series = gen.len();
    let mut rounds = Vec::with_capacity(args.rounds + 1);
    for _ in 0..=args.rounds {
        rounds.push(gen.next_round(args.samples_per_request));
    }
    let mut encoded: Vec<Vec<Request>> = rounds
        .into_par_iter()
        .map(|round| {
            round
                .into_iter()
                .map(|b| Request {
                    samples: b.series.iter().map(|s| s.samples.len() as u64).sum(),
                    body: o11y_server::remote_write::encode_v1(&b),
                })
                .collect()
        })
        .collect();
    let warm = encoded.remove(0);
    Ok((warm, encoded.into_iter().flatten().collect(), series))
}

const RW_HEADERS: &str = "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n\
X-Prometheus-Remote-Write-Version: 0.1.0\r\n";

#[derive(Default)]
struct Outcome {
    acked_samples: AtomicU64,
    errors: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    first_error: Mutex<Option<String>>,
}

/// Sends `reqs` over `connections` threads in order; returns the wall time.
fn send_all(
    targets: &[String],
    reqs: &Arc<Vec<Request>>,
    connections: usize,
    deadline: Instant,
    out: &Arc<Outcome>,
) -> Result<Duration> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut threads = Vec::new();
    for c in 0..connections {
        let url = targets[c % targets.len()].clone();
        let reqs = reqs.clone();
        let next = next.clone();
        let out = out.clone();
        threads.push(std::thread::spawn(move || -> Result<()> {
            let mut conn = Conn::new(&url)?;
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= reqs.len() || Instant::now() > deadline {
                    break;
                }
                let r = &reqs[i];
                // A retriable answer (503/429, connection error) is retried, as Prometheus
                // does, until the deadline.
                loop {
                    let t = Instant::now();
                    match conn.request("POST", "/api/v1/write", RW_HEADERS, &r.body) {
                        Ok(rep) if (200..300).contains(&rep.status) => {
                            lat.push(t.elapsed().as_micros() as u64);
                            out.acked_samples.fetch_add(r.samples, Ordering::Relaxed);
                            break;
                        }
                        res => {
                            out.errors.fetch_add(1, Ordering::Relaxed);
                            let (msg, retry) = match res {
                                Ok(rep) => (
                                    format!(
                                        "HTTP {}: {}",
                                        rep.status,
                                        String::from_utf8_lossy(&rep.body).trim()
                                    ),
                                    rep.status == 503 || rep.status == 429,
                                ),
                                Err(e) => (format!("{e:#}"), true),
                            };
                            out.first_error.lock().expect("lock").get_or_insert(msg);
                            if !retry || Instant::now() > deadline {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            }
            out.latencies_us.lock().expect("lock").extend(lat);
            Ok(())
        }));
    }
    for t in threads {
        t.join()
            .map_err(|_| anyhow!("a sender thread panicked"))??;
    }
    Ok(start.elapsed())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() -> Result<()> {
    let args = parse()?;
    let t = Instant::now();
    let (warm, timed, series) = encode_requests(&args)?;
    let bytes: usize = timed.iter().map(|r| r.body.len()).sum();
    eprintln!(
        "ingest-bench: {series} series, {} timed requests ({:.1} MiB snappy) encoded in {:.1?}",
        timed.len(),
        bytes as f64 / (1 << 20) as f64,
        t.elapsed()
    );
    let cluster = if args.spawn > 0 {
        Some(spawn_cluster(&args)?)
    } else {
        None
    };
    let targets: Vec<String> = match &cluster {
        Some(c) => c.servers.iter().map(|s| s.url.clone()).collect(),
        None => args.targets.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs_f64(args.max_secs);

    // Warm-up: creates the series.
    let warm_out = Arc::new(Outcome::default());
    send_all(
        &targets,
        &Arc::new(warm),
        args.connections,
        deadline,
        &warm_out,
    )?;
    if warm_out.errors.load(Ordering::Relaxed) > 0 {
        eprintln!(
            "ingest-bench: warm-up errors: {} (first: {})",
            warm_out.errors.load(Ordering::Relaxed),
            warm_out
                .first_error
                .lock()
                .expect("lock")
                .clone()
                .unwrap_or_default()
        );
    }

    let pids: Vec<u32> = match (&cluster, args.pid) {
        (Some(c), _) => c.servers.iter().map(|s| s.child.id()).collect(),
        (None, Some(pid)) => vec![pid],
        (None, None) => vec![],
    };
    let server_cpu =
        |pids: &[u32]| -> f64 { pids.iter().filter_map(|p| cpu_secs_of_pid(*p)).sum() };
    // Peak RSS while the load runs, sampled every 100 ms.
    let peak = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, stop, pids) = (peak.clone(), stop.clone(), pids.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for p in &pids {
                    peak.fetch_max(rss_of_pid(*p).unwrap_or(0), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let cpu0 = server_cpu(&pids);
    let own0 = own_cpu_secs();
    let out = Arc::new(Outcome::default());
    let requests = timed.len();
    let elapsed = send_all(&targets, &Arc::new(timed), args.connections, deadline, &out)?;
    let server_cpu_secs = server_cpu(&pids) - cpu0;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let peak_rss = peak.load(Ordering::Relaxed);
    let sender_cpu_secs = own_cpu_secs() - own0;
    let acked = out.acked_samples.load(Ordering::Relaxed);
    let mut lat = std::mem::take(&mut *out.latencies_us.lock().expect("lock"));
    lat.sort_unstable();

    // Memory: every server's RSS (the largest counts: every node holds every series).
    let mut rss: Vec<u64> = pids.iter().filter_map(|p| rss_of_pid(*p)).collect();
    if pids.is_empty() {
        rss.extend(targets.iter().filter_map(|t| rss_from_metrics(t)));
    }
    let active = head_series(&targets[0]).unwrap_or(series as u64);
    let max_rss = rss.iter().copied().max();
    let result = serde_json::json!({
        "nodes": targets.len(),
        "series": series,
        "active_series": active,
        "connections": args.connections,
        "requests": requests,
        "acked_requests": lat.len(),
        "samples_per_request": args.samples_per_request,
        "acked_samples": acked,
        "errors": out.errors.load(Ordering::Relaxed),
        "first_error": out.first_error.lock().expect("lock").clone(),
        "elapsed_secs": elapsed.as_secs_f64(),
        "samples_per_sec": (acked as f64 / elapsed.as_secs_f64()).round(),
        "mib_per_sec_snappy": bytes as f64 / (1 << 20) as f64 / elapsed.as_secs_f64(),
        "p50_ms": percentile(&lat, 0.50),
        "p99_ms": percentile(&lat, 0.99),
        "max_ms": percentile(&lat, 1.0),
        "server_cpu_secs": server_cpu_secs,
        "server_cpu_us_per_sample": if pids.is_empty() { None } else { Some(server_cpu_secs * 1e6 / acked.max(1) as f64) },
        "sender_cpu_secs": sender_cpu_secs,
        "load_average": std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split_whitespace().next().map(str::to_string)),
        "rss_bytes": rss,
        "peak_rss_bytes_per_active_series": (peak_rss > 0).then(|| (peak_rss as f64 / active.max(1) as f64).round()),
        "rss_bytes_per_active_series": max_rss.map(|r| (r as f64 / active.max(1) as f64).round()),
    });
    println!("{result}");
    drop(cluster);
    Ok(())
}
