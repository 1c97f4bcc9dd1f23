//! `o11y cluster status|add|remove`: the membership admin client. It talks to any member's
//! HTTP API (`/api/v1/cluster/*`, see `o11y_server::cluster`); the member forwards changes
//! to the leader.
//!
//! ```text
//!   o11y cluster status --server URL ─► GET  /api/v1/cluster/status ─► one line per member
//!   o11y cluster add    --server URL --node-id N --cluster-addr H:P ─► POST /api/v1/cluster/join
//!   o11y cluster remove --server URL --node-id N ─► POST /api/v1/cluster/remove
//! ```
//!
//! 503 answers (no leader yet, another change in progress) are retried with backoff for up
//! to `--timeout`; anything else that is not a success ends the command with a non-zero exit.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use o11y_server::cluster::http::{request, BaseUrl, Reply};
use o11y_server::cluster::ClusterStatus;

pub const USAGE: &str = "\
usage: o11y cluster <command> [flags]

Inspects and changes the membership of an O11y cluster through any member's HTTP API.

commands:
  status                     every member's id, address, role, term, leader, voters,
                             learners, last log index and applied index
  add                        make a node a voter (it must be running, e.g. with --no-bootstrap)
  remove                     remove a node (voter or learner) from the cluster

flags:
  --server URL               a member's HTTP address (default http://127.0.0.1:9090)
  --node-id N                (add, remove) the node's id
  --cluster-addr HOST:PORT   (add) the node's node-to-node address (its --cluster-advertise)
  --timeout DUR              how long to keep retrying while the member is unreachable or
                             the cluster has no leader (default 10s for status, 90s for
                             add and remove: the leader waits for a new node to catch up)
  -o, --output FORMAT        (status) text or json (default text)
  -h, --help                 this text
";

struct Args {
    server: String,
    node_id: Option<u64>,
    cluster_addr: Option<String>,
    timeout: Option<Duration>,
    json: bool,
}

impl Args {
    fn timeout(&self, default: Duration) -> Duration {
        self.timeout.unwrap_or(default)
    }
}

fn parse(args: &[String], duration: fn(&str) -> Result<Duration>) -> Result<Args> {
    let mut a = Args {
        server: "http://127.0.0.1:9090".into(),
        node_id: None,
        cluster_addr: None,
        timeout: None,
        json: false,
    };
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let mut v = || {
            it.next()
                .cloned()
                .ok_or_else(|| anyhow!("{k} needs a value"))
        };
        match k.as_str() {
            "--server" => a.server = v()?,
            "--node-id" => {
                let n: u64 = v()?.parse().context("--node-id")?;
                if n == 0 {
                    bail!("--node-id must be at least 1");
                }
                a.node_id = Some(n);
            }
            "--cluster-addr" => a.cluster_addr = Some(v()?),
            "--timeout" => a.timeout = Some(duration(&v()?)?),
            "-o" | "--output" => match v()?.as_str() {
                "json" => a.json = true,
                "text" => a.json = false,
                other => bail!("--output must be text or json, not {other:?}"),
            },
            other => bail!("unknown flag {other:?} (see o11y cluster --help)"),
        }
    }
    Ok(a)
}

/// Runs `o11y cluster ARGS`.
pub async fn run(args: &[String], duration: fn(&str) -> Result<Duration>) -> Result<()> {
    let Some((cmd, rest)) = args.split_first() else {
        bail!("missing command\n\n{USAGE}");
    };
    let mut a = parse(rest, duration)?;
    let base = BaseUrl::parse(&a.server)?;
    a.timeout = Some(a.timeout(if cmd == "status" {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(90)
    }));
    match cmd.as_str() {
        "status" => {
            let r = call(&base, "GET", "/api/v1/cluster/status", None, &a).await?;
            let st = data(&r)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                print!("{}", render(&st));
            }
        }
        "add" => {
            let id = a.node_id.context("add needs --node-id")?;
            let addr = a
                .cluster_addr
                .clone()
                .context("add needs --cluster-addr HOST:PORT")?;
            o11y_server::cluster::check_cluster_addr(&addr).map_err(|e| anyhow!(e))?;
            let body = serde_json::json!({ "node_id": id, "cluster_addr": addr }).to_string();
            let r = call(&base, "POST", "/api/v1/cluster/join", Some(&body), &a).await?;
            let st = data(&r)?;
            println!("node {id} is a voter");
            print!("{}", render(&st));
        }
        "remove" => {
            let id = a.node_id.context("remove needs --node-id")?;
            let body = serde_json::json!({ "node_id": id }).to_string();
            let r = call(&base, "POST", "/api/v1/cluster/remove", Some(&body), &a).await?;
            let st = data(&r)?;
            println!("node {id} removed");
            print!("{}", render(&st));
        }
        other => bail!("unknown cluster command {other:?}\n\n{USAGE}"),
    }
    Ok(())
}

/// One request, retried on 503 and connection failures until `--timeout`.
async fn call(
    base: &BaseUrl,
    method: &str,
    path: &str,
    body: Option<&str>,
    a: &Args,
) -> Result<Reply> {
    let start = tokio::time::Instant::now();
    let timeout = a.timeout(Duration::from_secs(90));
    let mut backoff = Duration::from_millis(200);
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        let err = match request(
            base,
            method,
            path,
            body.map(str::as_bytes),
            left.max(Duration::from_secs(1)),
        )
        .await
        {
            Ok(r) if r.status == 503 => {
                anyhow!("{} answered 503: {}", a.server, r.error_message())
            }
            Ok(r) if (200..300).contains(&r.status) => return Ok(r),
            Ok(r) => bail!(
                "{} answered HTTP {}: {}",
                a.server,
                r.status,
                r.error_message()
            ),
            Err(e) => anyhow!(e),
        };
        if start.elapsed() + backoff >= timeout {
            return Err(err.context(format!("gave up after {:?}", start.elapsed())));
        }
        eprintln!("o11y cluster: {err:#}; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn data(r: &Reply) -> Result<ClusterStatus> {
    let v = r.json();
    serde_json::from_value(v["data"].clone()).with_context(|| {
        format!(
            "unexpected answer: {}",
            String::from_utf8_lossy(&r.body)
                .chars()
                .take(300)
                .collect::<String>()
        )
    })
}

fn ids(v: &[u64]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    }
}

/// A table of the members, one line each, as the members themselves report.
fn render(st: &ClusterStatus) -> String {
    let mut out = format!(
        "asked node {} ({}, term {}); leader: {}\n",
        st.node.id,
        st.node.role,
        st.node.term,
        st.node.leader.map_or("none".to_string(), |l| l.to_string())
    );
    out.push_str(&format!(
        "{:<6} {:<24} {:<8} {:<10} {:>6} {:>7} {:<10} {:<10} {:>10} {:>10}\n",
        "NODE",
        "CLUSTER_ADDR",
        "MEMBER",
        "ROLE",
        "TERM",
        "LEADER",
        "VOTERS",
        "LEARNERS",
        "LAST_LOG",
        "APPLIED"
    ));
    for m in &st.members {
        let kind = if m.voter { "voter" } else { "learner" };
        match &m.status {
            Some(s) => out.push_str(&format!(
                "{:<6} {:<24} {:<8} {:<10} {:>6} {:>7} {:<10} {:<10} {:>10} {:>10}\n",
                m.id,
                m.cluster_addr,
                kind,
                s.role,
                s.term,
                s.leader.map_or("-".to_string(), |l| l.to_string()),
                ids(&s.voters),
                ids(&s.learners),
                s.last_log_index,
                s.applied_index
            )),
            None => out.push_str(&format!(
                "{:<6} {:<24} {:<8} unreachable: {}\n",
                m.id,
                m.cluster_addr,
                kind,
                m.error.as_deref().unwrap_or("no answer")
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use o11y_server::cluster::{MemberStatus, NodeStatus};

    fn st(id: u64, role: &str) -> NodeStatus {
        NodeStatus {
            id,
            role: role.into(),
            term: 3,
            leader: Some(1),
            leader_addr: Some("127.0.0.1:9095".into()),
            last_log_index: 10,
            applied_index: 9,
            voters: vec![1, 2],
            learners: vec![],
        }
    }

    #[test]
    fn the_status_table_has_a_line_per_member() {
        let s = ClusterStatus {
            node: st(2, "follower"),
            members: vec![
                MemberStatus {
                    id: 1,
                    cluster_addr: "127.0.0.1:9095".into(),
                    voter: true,
                    status: Some(st(1, "leader")),
                    error: None,
                },
                MemberStatus {
                    id: 2,
                    cluster_addr: "127.0.0.1:9096".into(),
                    voter: true,
                    status: None,
                    error: Some("Unavailable: connection refused".into()),
                },
            ],
        };
        let out = render(&s);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].contains("asked node 2 (follower, term 3); leader: 1"));
        assert!(lines[2].starts_with("1 ") && lines[2].contains("leader"));
        assert!(lines[2].contains("1,2") && lines[2].contains(" 9"));
        assert!(lines[3].contains("unreachable: Unavailable: connection refused"));
    }

    #[test]
    fn flags_are_checked() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let d = |_: &str| -> Result<Duration> { Ok(Duration::from_secs(1)) };
        let p = parse(&a(&["--server", "http://x:1", "--node-id", "3"]), d).unwrap();
        assert_eq!((p.server.as_str(), p.node_id), ("http://x:1", Some(3)));
        assert!(parse(&a(&["--node-id", "0"]), d).is_err());
        assert!(parse(&a(&["--node-id"]), d).is_err());
        assert!(parse(&a(&["--bogus"]), d).is_err());
        assert!(parse(&a(&["-o", "yaml"]), d).is_err());
    }
}
