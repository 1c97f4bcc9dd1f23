//! raft-bench: replicated write throughput, commit latency and failover of `o11y-raft`, with
//! the nodes as separate `o11y-raft-node` processes on loopback (issue #3).
//!
//! ```text
//! cargo run --release -p o11y-benches --bin raft-bench -- --nodes 3 --batch-bytes 65536
//!     [--clients 16] [--duration-secs 10] [--rate BATCHES_PER_SEC] [--failovers K]
//!     [--seed 42] [--dir PATH] [--pool-mib 512] [--node-bin PATH] [--no-build]
//! ```
//!
//! ```text
//! build o11y-raft-node ─► pre-encode a pool of batches ─► start nodes, form the cluster
//!   ─► warm-up (one scrape round: creates the series) ─► timed run:
//!        clients ──Write RPC (pre-encoded command::Request)──► leader ─► commit ─► ack
//!        [failover driver: kill -9 leader ─► first ack sent after the kill ─► restart it]
//!   ─► wait until every node has applied the same index ─► check every acknowledged
//!      batch's marker series on every node ─► one JSON line
//! ```
//!
//! Each batch is one `Command::Metrics` write of node_exporter-like series (one scrape round
//! of a fleet, `benches/src/node.rs`, fixed seed), about `--batch-bytes` once encoded, plus a
//! marker series `raft_bench_marker{batch="ID"}` whose presence on every node shows that the
//! acknowledged batch survived. Batches are encoded before the timed run and sent as the bytes
//! `PeerClient::write` would send, so the clients spend no CPU encoding (the machine has two
//! cores shared by the bench and every node).
//!
//! Clients are closed-loop (send, wait for the ack, send the next) unless `--rate` sets an
//! open-loop schedule across all clients. They send to the leader; on an error they ask the
//! nodes for the leader again and retry the same batch. Latency is per acknowledged attempt
//! (send to ack); failed attempts count in `errors`. Throughput counts acks within the timed
//! window. With `--failovers K` the leader is killed (SIGKILL) K times; the failover time is
//! from the kill to the first ack of a write sent after the kill. The killed node is restarted
//! and must catch up before the next kill; the run lasts until the failovers are done.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use o11y_benches::node::NodeExporterGen;
use o11y_raft::pb::{self, admin_request::Op};
use o11y_raft::{Command, CommandResult, PeerClient, Request, Response};
use o11y_tsdb::labels::Label;
use o11y_tsdb::{Sample, SeriesSamples, DEFAULT_TENANT};

const MARKER: &str = "raft_bench_marker";
/// Timeout of one write attempt.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of one status request.
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
/// Deadline of every wait for the cluster (start, catch-up, convergence).
const WAIT: Duration = Duration::from_secs(120);
/// A failover that has not resumed writes after this long counts as failed.
const FAILOVER_DEADLINE: Duration = Duration::from_secs(30);
/// First sample timestamp of the generated data.
const START_MS: i64 = 1_800_000_000_000;

struct Args {
    nodes: usize,
    batch_bytes: usize,
    clients: usize,
    duration_secs: f64,
    rate: Option<f64>,
    failovers: usize,
    seed: u64,
    dir: Option<PathBuf>,
    pool_mib: usize,
    node_bin: Option<PathBuf>,
    build: bool,
}

const USAGE: &str = "raft-bench --nodes 1|3 [--batch-bytes 65536] [--clients 16] \
[--duration-secs 10] [--rate BATCHES_PER_SEC] [--failovers K] [--seed 42] [--dir PATH] \
[--pool-mib 512] [--node-bin PATH] [--no-build]";

fn parse() -> Result<Args> {
    let mut a = Args {
        nodes: 3,
        batch_bytes: 65536,
        clients: 16,
        duration_secs: 10.0,
        rate: None,
        failovers: 0,
        seed: 42,
        dir: None,
        pool_mib: 512,
        node_bin: None,
        build: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--nodes" => a.nodes = v()?.parse().context("--nodes")?,
            "--batch-bytes" => a.batch_bytes = v()?.parse().context("--batch-bytes")?,
            "--clients" => a.clients = v()?.parse().context("--clients")?,
            "--duration-secs" => a.duration_secs = v()?.parse().context("--duration-secs")?,
            "--rate" => a.rate = Some(v()?.parse().context("--rate")?),
            "--failovers" => a.failovers = v()?.parse().context("--failovers")?,
            "--seed" => a.seed = v()?.parse().context("--seed")?,
            "--dir" => a.dir = Some(v()?.into()),
            "--pool-mib" => a.pool_mib = v()?.parse().context("--pool-mib")?,
            "--node-bin" => a.node_bin = Some(v()?.into()),
            "--no-build" => a.build = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    if a.nodes != 1 && a.nodes != 3 {
        bail!("--nodes must be 1 or 3");
    }
    if a.failovers > 0 && a.nodes < 3 {
        bail!("--failovers needs --nodes 3");
    }
    if a.clients == 0 || a.batch_bytes < 256 || a.duration_secs <= 0.0 {
        bail!("--clients ≥ 1, --batch-bytes ≥ 256 and --duration-secs > 0 please");
    }
    if a.rate.is_some_and(|r| r <= 0.0 || r.is_nan()) {
        bail!("--rate must be positive");
    }
    Ok(a)
}

fn main() -> Result<()> {
    let args = parse()?;
    let bin = node_binary(&args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args, bin))
}

/// The `o11y-raft-node` binary next to this executable, built first when run through cargo.
fn node_binary(args: &Args) -> Result<PathBuf> {
    if let Some(b) = &args.node_bin {
        return Ok(b.clone());
    }
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("o11y-raft-node");
    let release = exe
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "release");
    if args.build {
        if let Some(cargo) = std::env::var_os("CARGO") {
            eprintln!("raft-bench: building o11y-raft-node");
            let mut cmd = Proc::new(cargo);
            cmd.args(["build", "-q", "-p", "o11y-raft", "--bin", "o11y-raft-node"]);
            if release {
                cmd.arg("--release");
            }
            let st = cmd.status().context("running cargo build")?;
            if !st.success() {
                bail!("cargo build of o11y-raft-node failed");
            }
        }
    }
    if !bin.exists() {
        bail!(
            "{} not found: run `cargo build --release -p o11y-raft --bin o11y-raft-node` \
             (or pass --node-bin PATH)",
            bin.display()
        );
    }
    Ok(bin)
}

// ---------------------------------------------------------------------------------------------
// Batches

/// Pre-encoded batches; batch `i` carries the marker `raft_bench_marker{batch="i"}`.
struct Pool {
    batches: Vec<Request>,
    /// Batches of the warm-up (the first scrape round).
    warmup: usize,
    series_per_batch: usize,
    fleet_series: usize,
}

fn marker(id: usize, t: i64) -> SeriesSamples {
    SeriesSamples {
        labels: vec![
            Label::new("__name__", MARKER),
            Label::new("batch", id.to_string()),
        ],
        samples: vec![Sample { t, v: id as f64 }],
    }
}

fn encode(mut batch: o11y_tsdb::WriteBatch, id: usize) -> Request {
    let t = batch
        .series
        .first()
        .and_then(|s| s.samples.first())
        .map_or(START_MS, |s| s.t);
    batch.series.push(marker(id, t));
    Request::encode(&[Command::Metrics {
        tenant: DEFAULT_TENANT.into(),
        batch,
    }])
}

fn build_pool(args: &Args, count: usize) -> Pool {
    // Bytes per series, from a sample of the data.
    let mut probe = NodeExporterGen::new(args.seed, 2000, START_MS);
    let probe_batch = probe.next_round(2000).swap_remove(0);
    let n = probe_batch.series.len();
    let per_series = (encode(probe_batch, 0).as_bytes().len() as f64 / n as f64).max(1.0);
    let marker_bytes = 48.0;
    let series_per_batch =
        (((args.batch_bytes as f64 - marker_bytes) / per_series) as usize).max(1);
    // A scrape round spans 64 batches: concurrent clients then write different series, and a
    // series' samples arrive in order except around retries (within the 10 min OOO window).
    let fleet_series = (series_per_batch * 64).clamp(1000, 200_000);
    let mut gen = NodeExporterGen::new(args.seed, fleet_series, START_MS);
    let mut batches = Vec::with_capacity(count);
    let mut warmup = 0;
    for round in 0..usize::MAX {
        if batches.len() >= count {
            break;
        }
        for b in gen.next_round(series_per_batch) {
            if batches.len() >= count {
                break;
            }
            let id = batches.len();
            batches.push(encode(b, id));
        }
        if round == 0 {
            warmup = batches.len();
        }
    }
    Pool {
        batches,
        warmup,
        series_per_batch,
        fleet_series,
    }
}

// ---------------------------------------------------------------------------------------------
// Node processes

struct NodeProc {
    id: u64,
    addr: String,
    dir: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
}

impl NodeProc {
    fn start(&mut self, bootstrap: bool) -> Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("stderr.log"))?;
        let mut cmd = Proc::new(&self.bin);
        cmd.arg("serve")
            .args(["--id", &self.id.to_string(), "--listen", &self.addr])
            .arg("--data-dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .env("RUST_LOG", "warn");
        if bootstrap {
            cmd.arg("--bootstrap");
        }
        self.child = Some(
            cmd.spawn()
                .with_context(|| format!("spawning {}", self.bin.display()))?,
        );
        Ok(())
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Fails (with the end of its stderr) when the process has exited by itself.
    fn check(&mut self) -> Result<()> {
        let Some(c) = self.child.as_mut() else {
            return Ok(());
        };
        if let Some(st) = c.try_wait()? {
            self.child = None;
            bail!(
                "node {} exited ({st}); end of {}:\n{}",
                self.id,
                self.dir.join("stderr.log").display(),
                tail(&self.dir.join("stderr.log"), 2000)
            );
        }
        Ok(())
    }
}

fn tail(path: &Path, n: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let len = f.metadata().map_or(0, |m| m.len());
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(n)));
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// The node processes; every one still running is killed when this is dropped (also on an
/// error or a panic).
struct Cluster {
    nodes: Vec<NodeProc>,
    /// Removed on drop (after the processes are gone).
    _root: Option<tempfile::TempDir>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill9();
        }
    }
}

impl Cluster {
    fn check(&mut self) -> Result<()> {
        self.nodes.iter_mut().try_for_each(NodeProc::check)
    }
}

fn status_req() -> pb::AdminRequest {
    pb::AdminRequest {
        op: Op::Status as i32,
        ..Default::default()
    }
}

async fn status(c: &PeerClient) -> Option<pb::StatusReply> {
    tokio::time::timeout(STATUS_TIMEOUT, c.admin(status_req()))
        .await
        .ok()?
        .ok()
}

/// The node that reports itself leader (highest term wins), if any. Asks the nodes one after
/// the other, each bounded by `STATUS_TIMEOUT` (a dead node on loopback refuses at once).
async fn find_leader(clients: &[(u64, PeerClient)]) -> Option<u64> {
    let mut best: Option<pb::StatusReply> = None;
    for (_, c) in clients {
        if let Some(s) = status(c).await {
            if s.role == "leader"
                && s.leader_id == s.node_id
                && best.as_ref().is_none_or(|b| s.term > b.term)
            {
                best = Some(s);
            }
        }
    }
    best.map(|s| s.node_id)
}

/// Polls `cond` every 10 ms until it holds, failing after `limit` or when a node dies.
async fn wait_for<F, Fut>(
    what: &str,
    cluster: &Mutex<Cluster>,
    limit: Duration,
    mut cond: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + limit;
    loop {
        if cond().await {
            return Ok(());
        }
        cluster.lock().expect("cluster lock").check()?;
        if Instant::now() >= end {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn start_cluster(
    args: &Args,
    bin: &Path,
) -> Result<(Arc<Mutex<Cluster>>, Vec<(u64, PeerClient)>)> {
    let (root, tmp) = match &args.dir {
        Some(d) => {
            let r = d.join(format!("raft-bench-{}", std::process::id()));
            std::fs::create_dir_all(&r)?;
            (r, None)
        }
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let port = 40_000 + (std::process::id() % 20_000) as u16;
    let nodes: Vec<NodeProc> = (1..=args.nodes as u64)
        .map(|id| NodeProc {
            id,
            addr: format!("127.0.0.{id}:{port}"),
            dir: root.join(format!("n{id}")),
            bin: bin.to_path_buf(),
            child: None,
        })
        .collect();
    let clients: Vec<(u64, PeerClient)> = nodes
        .iter()
        .map(|n| (n.id, PeerClient::new(&n.addr, Duration::from_secs(5))))
        .collect();
    let cluster = Arc::new(Mutex::new(Cluster { nodes, _root: tmp }));
    eprintln!(
        "raft-bench: data in {}, nodes on 127.0.0.N:{port}",
        root.display()
    );
    {
        let mut c = cluster.lock().expect("cluster lock");
        for (i, n) in c.nodes.iter_mut().enumerate() {
            n.start(i == 0)?;
        }
    }
    let n1 = clients[0].1.clone();
    wait_for("node 1 to lead", &cluster, WAIT, || async {
        status(&n1).await.is_some_and(|s| s.role == "leader")
    })
    .await?;
    if args.nodes > 1 {
        let addrs: Vec<(u64, String)> = {
            let c = cluster.lock().expect("cluster lock");
            c.nodes.iter().map(|n| (n.id, n.addr.clone())).collect()
        };
        for (id, addr) in &addrs[1..] {
            let req = pb::AdminRequest {
                op: Op::AddLearner as i32,
                node_id: *id,
                addr: addr.clone(),
                voters: vec![],
            };
            retry_admin(&cluster, &n1, req, "add-learner").await?;
        }
        let req = pb::AdminRequest {
            op: Op::ChangeMembership as i32,
            voters: addrs.iter().map(|(id, _)| *id).collect(),
            ..Default::default()
        };
        retry_admin(&cluster, &n1, req, "change-membership").await?;
        let want = args.nodes;
        for (_, c) in &clients {
            wait_for(
                "every node to see the membership",
                &cluster,
                WAIT,
                || async {
                    status(c)
                        .await
                        .is_some_and(|s| s.leader_id != 0 && s.voters.len() == want)
                },
            )
            .await?;
        }
    }
    Ok((cluster, clients))
}

async fn retry_admin(
    cluster: &Mutex<Cluster>,
    c: &PeerClient,
    req: pb::AdminRequest,
    what: &str,
) -> Result<()> {
    let end = Instant::now() + WAIT;
    loop {
        match c.admin(req.clone()).await {
            Ok(_) => return Ok(()),
            Err(e) => {
                cluster.lock().expect("cluster lock").check()?;
                if Instant::now() >= end {
                    bail!("{what}: {e}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

/// What every client shares.
struct Shared {
    pool: Vec<Request>,
    /// Next batch to send.
    next: AtomicUsize,
    /// Index of the leader in `clients` (the node clients send to).
    target: AtomicUsize,
    nodes: Vec<(u64, PeerClient)>,
    addrs: Vec<String>,
    stop: AtomicBool,
    exhausted: AtomicBool,
    /// Set at a kill: (kill instant, first ack of a write sent after it).
    failover: Mutex<Option<(Instant, Option<Instant>)>>,
    errors: AtomicU64,
    rejected_items: AtomicU64,
}

/// One client's record.
#[derive(Default)]
struct Record {
    /// (batch id, latency µs, ack instant).
    acks: Vec<(u32, u32, Instant)>,
    /// Largest delay behind the open-loop schedule, µs.
    max_lag_us: u64,
}

/// A write attempt's outcome.
enum Attempt {
    Acked(Response),
    Failed(String),
}

async fn send(client: &PeerClient, data: &Request) -> Attempt {
    let call = async {
        let mut c = client.client();
        c.write(pb::Blob {
            data: data.as_bytes().clone(),
        })
        .await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, call).await {
        Err(_) => Attempt::Failed("timeout".into()),
        Ok(Err(s)) => Attempt::Failed(s.to_string()),
        Ok(Ok(r)) => match Response::decode(&r.into_inner().data) {
            Ok(resp) => Attempt::Acked(resp),
            Err(e) => Attempt::Failed(e.to_string()),
        },
    }
}

/// After a failed attempt: point every client at the node that leads now (if one does).
async fn refresh_leader(sh: &Shared) {
    if let Some(l) = find_leader(&sh.nodes).await {
        if let Some(i) = sh.nodes.iter().position(|(id, _)| *id == l) {
            sh.target.store(i, Ordering::Relaxed);
        }
    }
}

/// Sends batches `range` (closed-loop, or on the open-loop schedule starting at `t0`) until
/// `stop`, the pool's end, or `until`.
async fn client_loop(
    sh: Arc<Shared>,
    schedule: Option<(Instant, f64, usize)>,
    until: Option<usize>,
) -> Record {
    let mut rec = Record::default();
    // A connection of this client's own to every node.
    let mine: Vec<PeerClient> = sh
        .addrs
        .iter()
        .map(|a| PeerClient::new(a, WRITE_TIMEOUT))
        .collect();
    let limit = until.unwrap_or(sh.pool.len()).min(sh.pool.len());
    while !sh.stop.load(Ordering::Relaxed) {
        let i = sh.next.fetch_add(1, Ordering::Relaxed);
        if i >= limit {
            if until.is_none() {
                sh.exhausted.store(true, Ordering::Relaxed);
            }
            break;
        }
        if let Some((t0, rate, first)) = schedule {
            let at = t0 + Duration::from_secs_f64((i - first) as f64 / rate);
            tokio::time::sleep_until(at.into()).await;
            if sh.stop.load(Ordering::Relaxed) {
                break;
            }
            rec.max_lag_us = rec
                .max_lag_us
                .max(Instant::now().saturating_duration_since(at).as_micros() as u64);
        }
        // Retry this batch until acknowledged (bounded in attempts and time).
        let give_up = Instant::now() + Duration::from_secs(120);
        for _attempt in 0..10_000 {
            let node = sh.target.load(Ordering::Relaxed);
            let sent = Instant::now();
            match send(&mine[node], &sh.pool[i]).await {
                Attempt::Acked(resp) => {
                    let acked = Instant::now();
                    match resp.results.as_slice() {
                        [CommandResult::Written { rejections, .. }] => {
                            sh.rejected_items
                                .fetch_add(rejections.len() as u64, Ordering::Relaxed);
                            rec.acks.push((
                                i as u32,
                                (acked - sent).as_micros().min(u32::MAX as u128) as u32,
                                acked,
                            ));
                            let mut f = sh.failover.lock().expect("failover lock");
                            if let Some((kill, first @ None)) = f.as_mut() {
                                if sent >= *kill {
                                    *first = Some(acked);
                                }
                            }
                        }
                        other => {
                            // Not a write result: a bench bug; never acknowledged.
                            eprintln!("raft-bench: batch {i}: unexpected result {other:?}");
                            sh.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    break;
                }
                Attempt::Failed(e) => {
                    let n = sh.errors.fetch_add(1, Ordering::Relaxed);
                    if n < 5 {
                        eprintln!("raft-bench: batch {i}: {e} (retrying)");
                    }
                    if Instant::now() >= give_up {
                        break;
                    }
                    refresh_leader(&sh).await;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    rec
}

// ---------------------------------------------------------------------------------------------
// Failovers

/// Per kill: time until writes resumed, time until another node reported itself leader.
type FailoverTimes = (Option<Duration>, Option<Duration>);

/// Kills the leader `k` times, one after another once the previous victim has caught up;
/// pushes to `out` the time from each kill to the first ack of a write sent after it (`None`:
/// writes did not resume within `FAILOVER_DEADLINE`) and to the first status of another node
/// as leader (polled while no write has been acknowledged yet).
async fn failovers(
    sh: Arc<Shared>,
    cluster: Arc<Mutex<Cluster>>,
    k: usize,
    interval: Duration,
    out: Arc<Mutex<Vec<FailoverTimes>>>,
) -> Result<()> {
    for round in 0..k {
        tokio::time::sleep(interval).await;
        let mut leader = None;
        let end = Instant::now() + WAIT;
        while leader.is_none() && Instant::now() < end {
            leader = find_leader(&sh.nodes).await;
        }
        let leader = leader.ok_or_else(|| anyhow!("no leader before kill {round}"))?;
        let kill = Instant::now();
        *sh.failover.lock().expect("failover lock") = Some((kill, None));
        cluster.lock().expect("cluster lock").nodes[(leader - 1) as usize].kill9();
        let mut took = None;
        let mut elected = None;
        while kill.elapsed() < FAILOVER_DEADLINE {
            if let Some((_, Some(first))) = *sh.failover.lock().expect("failover lock") {
                took = Some(first - kill);
                break;
            }
            if elected.is_none() {
                // A node other than the victim reports itself leader.
                if find_leader(&sh.nodes).await.is_some_and(|l| l != leader) {
                    elected = Some(kill.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        *sh.failover.lock().expect("failover lock") = None;
        out.lock().expect("failover lock").push((took, elected));
        // Restart the victim and wait until it has caught up with the new leader.
        cluster.lock().expect("cluster lock").nodes[(leader - 1) as usize].start(false)?;
        let victim = &sh.nodes[(leader - 1) as usize].1;
        let caught_up = Instant::now();
        // The leader's applied index now; the victim must reach it.
        let mut target = None;
        let end = Instant::now() + WAIT;
        loop {
            if target.is_none() {
                if let Some(l) = find_leader(&sh.nodes).await {
                    target = status(&sh.nodes[(l - 1) as usize].1)
                        .await
                        .map(|s| s.applied_index);
                }
            }
            if let Some(t) = target {
                if status(victim)
                    .await
                    .is_some_and(|s| s.leader_id != 0 && s.applied_index >= t)
                {
                    break;
                }
            }
            cluster.lock().expect("cluster lock").check()?;
            if Instant::now() >= end {
                bail!("node {leader} did not catch up within {WAIT:?} after its restart");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!(
            "raft-bench: failover {}: killed leader {leader}, new leader seen after {}, writes \
             resumed after {}, restarted node caught up in {:.1} s",
            round + 1,
            elected.map_or("—".to_string(), |d| format!("{} ms", d.as_millis())),
            took.map_or("—".to_string(), |d| format!("{} ms", d.as_millis())),
            caught_up.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Verification

/// Waits until every node has applied the same index (nothing left to apply), then returns
/// the marker ids present on each node.
async fn markers_per_node(
    cluster: &Mutex<Cluster>,
    nodes: &[(u64, PeerClient)],
) -> Result<Vec<BTreeSet<u32>>> {
    wait_for(
        "every node to apply the same index",
        cluster,
        WAIT,
        || async {
            let mut st = Vec::new();
            for (_, c) in nodes {
                match status(c).await {
                    Some(s) => st.push(s),
                    None => return false,
                }
            }
            st.iter().all(|s| {
                s.leader_id != 0
                    && s.applied_index == st[0].applied_index
                    && s.last_log_index == s.applied_index
            })
        },
    )
    .await?;
    let mut out = Vec::new();
    for (id, c) in nodes {
        let r = c
            .query(pb::QueryRequest {
                tenant: DEFAULT_TENANT.into(),
                ops: vec![0],
                names: vec!["__name__".into()],
                values: vec![MARKER.into()],
                mint: i64::MIN,
                maxt: i64::MAX,
                linearizable: false,
            })
            .await
            .map_err(|e| anyhow!("query on node {id}: {e}"))?;
        out.push(
            r.series
                .iter()
                .filter_map(|s| s.split("batch=\"").nth(1)?.split('"').next()?.parse().ok())
                .collect(),
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted_us.len() as f64 * p).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    sorted_us[i] as f64 / 1000.0
}

fn round3(x: f64) -> serde_json::Value {
    if x.is_finite() {
        serde_json::json!((x * 1000.0).round() / 1000.0)
    } else {
        serde_json::Value::Null
    }
}

async fn run(args: Args, bin: PathBuf) -> Result<()> {
    // Pool: enough for the run (open loop) or as much as the memory budget allows.
    let budget = (args.pool_mib << 20) / args.batch_bytes;
    let count = match args.rate {
        Some(r) => ((r * (args.duration_secs + 60.0 * args.failovers as f64) * 1.2) as usize
            + 2000)
            .min(budget),
        None => budget,
    }
    .max(200);
    let t = Instant::now();
    let pool = build_pool(&args, count);
    let pool_bytes: usize = pool.batches.iter().map(|b| b.as_bytes().len()).sum();
    eprintln!(
        "raft-bench: {} batches of ~{} B ({} series each, fleet of {} series) built in {:.1} s",
        pool.batches.len(),
        pool_bytes / pool.batches.len(),
        pool.series_per_batch,
        pool.fleet_series,
        t.elapsed().as_secs_f64()
    );
    let (cluster, nodes) = start_cluster(&args, &bin).await?;
    let leader = find_leader(&nodes)
        .await
        .ok_or_else(|| anyhow!("no leader after start"))?;
    let sh = Arc::new(Shared {
        pool: pool.batches,
        next: AtomicUsize::new(0),
        target: AtomicUsize::new(nodes.iter().position(|(id, _)| *id == leader).unwrap_or(0)),
        nodes: nodes.clone(),
        addrs: cluster
            .lock()
            .expect("cluster lock")
            .nodes
            .iter()
            .map(|n| n.addr.clone())
            .collect(),
        stop: AtomicBool::new(false),
        exhausted: AtomicBool::new(false),
        failover: Mutex::new(None),
        errors: AtomicU64::new(0),
        rejected_items: AtomicU64::new(0),
    });

    // Warm-up: the first scrape round creates every series.
    let warm: Vec<_> = (0..args.clients)
        .map(|_| tokio::spawn(client_loop(sh.clone(), None, Some(pool.warmup))))
        .collect();
    let mut records = Vec::new();
    for w in warm {
        records.push(w.await?);
    }
    let warm_errors = sh.errors.swap(0, Ordering::Relaxed);
    let warm_acked: usize = records.iter().map(|r| r.acks.len()).sum();
    eprintln!("raft-bench: warm-up: {warm_acked} batches ({warm_errors} errors)");
    sh.rejected_items.store(0, Ordering::Relaxed);

    // Timed run.
    let first = sh.next.load(Ordering::Relaxed).min(pool.warmup);
    sh.next.store(first, Ordering::Relaxed);
    let t0 = Instant::now();
    let schedule = args.rate.map(|r| (t0, r, first));
    let duration = Duration::from_secs_f64(args.duration_secs);
    let runners: Vec<_> = (0..args.clients)
        .map(|_| tokio::spawn(client_loop(sh.clone(), schedule, None)))
        .collect();
    let failover_times = Arc::new(Mutex::new(Vec::new()));
    let driver = (args.failovers > 0).then(|| {
        // At least a second of writes under each leader before it is killed.
        let interval = (duration / (args.failovers as u32 + 1)).max(Duration::from_secs(1));
        tokio::spawn(failovers(
            sh.clone(),
            cluster.clone(),
            args.failovers,
            interval,
            failover_times.clone(),
        ))
    });
    // Stop when the time is up and the failovers are done (or the pool runs out).
    let hard_end = t0 + duration + Duration::from_secs(300) * (args.failovers as u32 + 1);
    loop {
        let done = driver.as_ref().is_none_or(|d| d.is_finished());
        if (t0.elapsed() >= duration && done)
            || sh.exhausted.load(Ordering::Relaxed)
            || Instant::now() >= hard_end
        {
            break;
        }
        cluster.lock().expect("cluster lock").check()?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t_end = Instant::now();
    sh.stop.store(true, Ordering::Relaxed);
    for r in runners {
        records.push(r.await?);
    }
    if let Some(d) = driver {
        if d.is_finished() {
            d.await??;
        } else {
            // The pool ran out (or the hard end came) before the failovers were done.
            eprintln!("raft-bench: stopping the failovers early");
            d.abort();
        }
    }
    let failover_times = failover_times.lock().expect("failover lock").clone();
    let elapsed = (t_end - t0).as_secs_f64();

    // Figures over the timed window.
    let mut lat: Vec<u32> = Vec::new();
    let mut window_bytes = 0usize;
    let mut window_batches = 0usize;
    let mut acked: BTreeSet<u32> = BTreeSet::new();
    let mut max_lag_us = 0;
    for r in &records {
        max_lag_us = max_lag_us.max(r.max_lag_us);
        for &(id, us, at) in &r.acks {
            acked.insert(id);
            if (id as usize) >= first && at >= t0 {
                lat.push(us);
                if at <= t_end {
                    window_batches += 1;
                    window_bytes += sh.pool[id as usize].as_bytes().len();
                }
            }
        }
    }
    lat.sort_unstable();

    // Every acknowledged batch on every node (a node left down by stopped failovers first
    // comes back).
    {
        let mut c = cluster.lock().expect("cluster lock");
        for n in c.nodes.iter_mut().filter(|n| n.child.is_none()) {
            n.start(false)?;
        }
    }
    let present = markers_per_node(&cluster, &nodes).await?;
    let lost: BTreeSet<u32> = acked
        .iter()
        .copied()
        .filter(|id| present.iter().any(|p| !p.contains(id)))
        .collect();
    if !lost.is_empty() {
        eprintln!(
            "raft-bench: LOST {} acknowledged batches, e.g. {:?}",
            lost.len(),
            lost.iter().take(10).collect::<Vec<_>>()
        );
    }

    let sorted = |v: Vec<Option<Duration>>| {
        let mut v: Vec<Duration> = v.into_iter().flatten().collect();
        v.sort();
        v
    };
    let fo = sorted(failover_times.iter().map(|f| f.0).collect());
    let el = sorted(failover_times.iter().map(|f| f.1).collect());
    let ms = |v: &[Duration], p: f64| -> serde_json::Value {
        if v.is_empty() {
            return serde_json::Value::Null;
        }
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        serde_json::json!(v[i].as_millis() as u64)
    };
    let out = serde_json::json!({
        "nodes": args.nodes,
        "batch_bytes": args.batch_bytes,
        "avg_batch_bytes": pool_bytes / sh.pool.len(),
        "series_per_batch": pool.series_per_batch,
        "clients": args.clients,
        "duration_secs": args.duration_secs,
        "elapsed_secs": round3(elapsed),
        "rate": args.rate,
        "seed": args.seed,
        "batches": window_batches,
        "batches_per_sec": round3(window_batches as f64 / elapsed),
        "mib_per_sec": round3(window_bytes as f64 / elapsed / (1 << 20) as f64),
        "commit_p50_ms": round3(percentile_ms(&lat, 0.5)),
        "commit_p99_ms": round3(percentile_ms(&lat, 0.99)),
        "commit_max_ms": round3(percentile_ms(&lat, 1.0)),
        "max_schedule_lag_ms": args.rate.map(|_| max_lag_us as f64 / 1000.0),
        "errors": sh.errors.load(Ordering::Relaxed),
        "rejected_items": sh.rejected_items.load(Ordering::Relaxed),
        "pool_exhausted": sh.exhausted.load(Ordering::Relaxed),
        "acked_batches": acked.len(),
        "lost_acked_writes": lost.len(),
        "failovers_requested": args.failovers,
        "failovers": failover_times.len(),
        "failovers_without_resume": failover_times.iter().filter(|t| t.0.is_none()).count(),
        "failover_p50_ms": ms(&fo, 0.5),
        "failover_max_ms": ms(&fo, 1.0),
        "election_p50_ms": ms(&el, 0.5),
        "election_max_ms": ms(&el, 1.0),
    });
    drop(cluster);
    println!("{out}");
    if !lost.is_empty() {
        bail!("{} acknowledged batches lost", lost.len());
    }
    Ok(())
}
