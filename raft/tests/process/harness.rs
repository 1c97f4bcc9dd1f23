//! Node processes and a gRPC client for them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Stdio};
use std::time::{Duration, Instant};

use o11y_raft::pb::{self, admin_request::Op};
use o11y_raft::{Command, CommandResult, PeerClient};
use o11y_tsdb::DEFAULT_TENANT;

pub const BIN: &str = env!("CARGO_BIN_EXE_o11y-raft-node");
pub const DEADLINE: Duration = Duration::from_secs(60);

/// One node process. Killed (SIGKILL) when dropped.
pub struct Node {
    pub id: u64,
    pub addr: String,
    pub dir: PathBuf,
    pub extra: Vec<String>,
    /// A command the node runs under (`ip netns exec NS`), empty for none.
    pub prefix: Vec<String>,
    child: Option<Child>,
}

impl Node {
    pub fn new(id: u64, addr: String, root: &Path, extra: &[&str]) -> Node {
        Node {
            id,
            addr,
            dir: root.join(format!("n{id}")),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            prefix: Vec::new(),
            child: None,
        }
    }

    /// Starts the process; `env` adds variables (crash points).
    pub fn start(&mut self, bootstrap: bool, env: &[(&str, &str)]) {
        assert!(self.child.is_none(), "node {} already running", self.id);
        std::fs::create_dir_all(&self.dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("stderr.log"))
            .unwrap();
        let mut cmd = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Proc::new(first);
                c.args(rest).arg(BIN);
                c
            }
            None => Proc::new(BIN),
        };
        cmd.arg("serve")
            .args(["--id", &self.id.to_string(), "--listen", &self.addr])
            .arg("--data-dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .env("RUST_LOG", "warn");
        if bootstrap {
            cmd.arg("--bootstrap");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn o11y-raft-node"));
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the process to exit by itself (a crash point aborts it); returns whether it
    /// died by a signal (abort).
    pub fn wait_exit(&mut self) -> bool {
        let end = Instant::now() + DEADLINE;
        let c = self.child.as_mut().expect("running");
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                self.child = None;
                return st.code().is_none();
            }
            assert!(Instant::now() < end, "node {} did not exit", self.id);
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// `Some(aborted)` when the process has exited (it is reaped), `None` while it runs.
    pub fn try_exit(&mut self) -> Option<bool> {
        let st = self.child.as_mut()?.try_wait().unwrap()?;
        self.child = None;
        Some(st.code().is_none())
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Proc::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    pub fn client(&self) -> PeerClient {
        PeerClient::new(&self.addr, Duration::from_secs(5))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            let _ = Proc::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
        }
        self.kill9();
    }
}

/// Three nodes on 127.0.0.x with ports derived from the test process id.
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// Keeps the data directories alive while the cluster runs.
    pub _root: tempfile::TempDir,
}

pub fn port_base() -> u16 {
    20000 + (std::process::id() % 2000) as u16 * 10
}

impl Cluster {
    /// Starts three nodes with `extra` serve flags and forms the cluster. `slot` separates
    /// clusters of tests running at the same time (different 127.0.0.x addresses).
    pub async fn start(slot: u8, extra: &[&str]) -> Cluster {
        let root = tempfile::tempdir().unwrap();
        let nodes: Vec<Node> = (1..=3u64)
            .map(|i| {
                Node::new(
                    i,
                    format!("127.0.{slot}.{i}:{}", port_base() + i as u16),
                    root.path(),
                    extra,
                )
            })
            .collect();
        let mut c = Cluster { nodes, _root: root };
        c.nodes[0].start(true, &[]);
        c.nodes[1].start(false, &[]);
        c.nodes[2].start(false, &[]);
        let n1 = c.nodes[0].client();
        wait_until_async("node 1 leads", || async {
            n1.admin(status_req())
                .await
                .is_ok_and(|s| s.role == "leader")
        })
        .await;
        for i in 1..3 {
            let req = pb::AdminRequest {
                op: Op::AddLearner as i32,
                node_id: c.nodes[i].id,
                addr: c.nodes[i].addr.clone(),
                voters: vec![],
            };
            retry("add learner", || n1.admin(req.clone())).await;
        }
        let req = pb::AdminRequest {
            op: Op::ChangeMembership as i32,
            voters: vec![1, 2, 3],
            ..Default::default()
        };
        retry("change membership", || n1.admin(req.clone())).await;
        c
    }

    pub fn node(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    /// The leader as a running node reports it.
    pub async fn leader(&self) -> u64 {
        let mut leader = 0;
        let end = Instant::now() + DEADLINE;
        loop {
            for n in self.nodes.iter().filter(|n| n.running()) {
                if let Ok(s) = n.client().admin(status_req()).await {
                    if s.role == "leader" && s.node_id == s.leader_id {
                        leader = s.node_id;
                    }
                }
            }
            if leader != 0 {
                return leader;
            }
            assert!(Instant::now() < end, "no leader");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every running node has applied the same index and holds the same data;
    /// returns that data.
    pub async fn converged(&self) -> Dump {
        let mut out = Dump::default();
        let end = Instant::now() + DEADLINE;
        loop {
            let mut statuses = Vec::new();
            let mut dumps = Vec::new();
            for n in self.nodes.iter().filter(|n| n.running()) {
                let (Ok(s), Ok(d)) = (
                    n.client().admin(status_req()).await,
                    dump(&n.client()).await,
                ) else {
                    break;
                };
                statuses.push(s);
                dumps.push(d);
            }
            let all = statuses.len() == self.nodes.iter().filter(|n| n.running()).count();
            if all
                && statuses.iter().all(|s| {
                    s.applied_index == statuses[0].applied_index
                        && s.last_log_index == statuses[0].applied_index
                        && s.leader_id != 0
                })
                && dumps.iter().all(|d| *d == dumps[0])
            {
                out = dumps.swap_remove(0);
                return out;
            }
            if Instant::now() >= end {
                let summary: Vec<String> = statuses
                    .iter()
                    .zip(&dumps)
                    .map(|(s, d)| {
                        format!(
                            "node {} applied {} series {}",
                            s.node_id,
                            s.applied_index,
                            d.series.len()
                        )
                    })
                    .collect();
                panic!("nodes did not converge: {summary:?}");
            }
            let _ = &mut out;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn status_req() -> pb::AdminRequest {
    pb::AdminRequest {
        op: Op::Status as i32,
        ..Default::default()
    }
}

/// A node's whole engine state for the test tenant.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dump {
    pub series: Vec<String>,
    pub counts: Vec<u32>,
    pub timestamps: Vec<i64>,
    pub values: Vec<u64>,
}

impl Dump {
    pub fn keys(&self) -> BTreeSet<u64> {
        self.series
            .iter()
            .filter_map(|s| s.split("key=\"").nth(1)?.split('"').next()?.parse().ok())
            .collect()
    }
}

pub async fn dump(c: &PeerClient) -> Result<Dump, tonic::Status> {
    let r = c
        .query(pb::QueryRequest {
            tenant: DEFAULT_TENANT.into(),
            ops: vec![2],
            names: vec!["__name__".into()],
            values: vec![".+".into()],
            mint: i64::MIN,
            maxt: i64::MAX,
            linearizable: false,
        })
        .await?;
    Ok(Dump {
        series: r.series,
        counts: r.sample_counts,
        timestamps: r.timestamps,
        values: r.value_bits,
    })
}

/// The write for `key`: series `w{key="KEY"}`, one sample at t = KEY.
pub fn key_write(key: u64) -> Command {
    o11y_raft::sim::key_write(key, key as i64)
}

/// Writes `key` through `c`; true when acknowledged (written and applied on a quorum).
pub async fn write(c: &PeerClient, key: u64) -> bool {
    match c.write(&[key_write(key)], Duration::from_secs(1)).await {
        Ok(r) => matches!(
            r.results.as_slice(),
            [CommandResult::Written {
                samples_accepted: 1,
                ..
            }]
        ),
        Err(_) => false,
    }
}

pub async fn wait_until_async<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + DEADLINE;
    while !cond().await {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn retry<F, Fut, T, E: std::fmt::Display>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let end = Instant::now() + DEADLINE;
    loop {
        match f().await {
            Ok(t) => return t,
            Err(e) => {
                assert!(Instant::now() < end, "{what}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
