//! Three-node clusters of real `o11y serve` processes on loopback: joining with `--join`,
//! `o11y cluster status|add|remove`, kill -9 of the leader under remote_write load sent to a
//! follower, and the files in `deploy/` (`deploy.rs`).

mod deploy;
mod harness;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::*;
use o11y_server::remote_write::encode_v1;
use o11y_tsdb::labels::Label;
use o11y_tsdb::{Sample, SeriesSamples, WriteBatch};

const RW1: [(&str, &str); 3] = [
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "snappy"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// remote_write of one sample of `name` (value `v` at `t`); returns the HTTP status (0 when
/// the node cannot be reached).
fn write_one(addr: &str, name: &str, t: i64, v: f64) -> u16 {
    let batch = WriteBatch {
        series: vec![SeriesSamples {
            labels: vec![Label::new("__name__", name), Label::new("job", "cluster")],
            samples: vec![Sample { t, v }],
        }],
        received_ms: None,
    };
    http(addr, "POST", "/api/v1/write", &RW1, &encode_v1(&batch)).map_or(0, |(s, _)| s)
}

/// The values of `name`'s raw samples in the 1 h before `at_ms`, as a node's own copy holds
/// them (`None` when the node cannot answer).
fn values(addr: &str, name: &str, at_ms: i64) -> Option<BTreeSet<u64>> {
    let path = format!(
        "/api/v1/query?query={}&time={}",
        urlencode(&format!("{name}[1h]")),
        at_ms as f64 / 1000.0
    );
    let (st, v) = get_json(addr, &path)?;
    if st != 200 {
        return None;
    }
    let mut out = BTreeSet::new();
    for series in v["data"]["result"].as_array()? {
        for p in series["values"].as_array()? {
            out.insert(p[1].as_str()?.parse::<f64>().ok()? as u64);
        }
    }
    Some(out)
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn nodes_join_with_join_flag_and_the_cli_lists_removes_and_adds_them() {
    let mut c = Cluster::new();
    // Node 2 starts before there is anyone to join: it keeps asking until node 1 is up.
    c.node(2).start();
    let n2 = c.node(2).http.clone();
    wait_until("node 2's HTTP API", DEADLINE, || {
        get_json(&n2, "/api/v1/cluster/status").is_some()
    });
    // A member without a leader cannot change the membership: 503, retriable.
    let (st, v) = post_json(
        &n2,
        "/api/v1/cluster/join",
        r#"{"node_id": 9, "cluster_addr": "127.0.0.1:1"}"#,
    )
    .unwrap();
    assert_eq!(st, 503, "{v}");
    assert_eq!(v["errorType"], "unavailable", "{v}");
    c.node(1).start();
    c.node(3).start();
    let leader = c.wait_voters(&[1, 2, 3]);
    assert_eq!(leader, 1, "node 1 bootstrapped and still leads");

    // Writes through any node are readable on every node.
    let t0 = now_ms() - 60_000;
    for (i, n) in c.nodes.iter().enumerate() {
        assert_eq!(
            write_one(&n.http, "join_test", t0 + i as i64, i as f64),
            204
        );
    }
    for n in &c.nodes {
        wait_until(&format!("node {} has the writes", n.id), DEADLINE, || {
            values(&n.http, "join_test", now_ms()).is_some_and(|v| v.len() == 3)
        });
    }

    // `o11y cluster status` through a follower lists all three members.
    let out = Cluster::cli(&["cluster", "status", "--server", &c.node(3).url()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let members: Vec<&str> = text.lines().filter(|l| l.contains(" voter ")).collect();
    assert_eq!(members.len(), 3, "{text}");
    assert!(text.contains("leader: 1"), "{text}");
    for (i, line) in members.iter().enumerate() {
        assert!(line.starts_with(&format!("{} ", i + 1)), "{text}");
        assert!(line.contains(&c.nodes[i].cluster), "{text}");
        assert!(line.contains("1,2,3"), "{text}");
    }

    // Bad requests are refused with a clear message and a non-zero exit.
    let out = Cluster::cli(&[
        "cluster",
        "remove",
        "--server",
        &c.node(2).url(),
        "--node-id",
        "7",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("node 7 is not a member"),
        "{}",
        stderr(&out)
    );
    let out = Cluster::cli(&[
        "cluster",
        "add",
        "--server",
        &c.node(2).url(),
        "--node-id",
        "3",
        "--cluster-addr",
        "127.0.0.1:1",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already a member"),
        "{}",
        stderr(&out)
    );
    let out = Cluster::cli(&["cluster", "status", "--server", "https://x:1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not supported"), "{}", stderr(&out));
    for (body, want) in [
        ("{", "invalid request body"),
        (r#"{"node_id": 4}"#, "missing field `cluster_addr`"),
        (
            r#"{"node_id": 4, "cluster_addr": "x"}"#,
            "must be host:port",
        ),
        (r#"{"node_id": 0, "cluster_addr": "x:1"}"#, "at least 1"),
        (
            r#"{"node_id": 4, "cluster_addr": "x:1", "http": 1}"#,
            "unknown field",
        ),
    ] {
        let (st, v) = post_json(&c.node(1).http, "/api/v1/cluster/join", body).unwrap();
        assert_eq!(st, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(want), "{body}: {v}");
    }

    // Remove node 3 through a follower, then add it back through node 3's own API.
    let out = Cluster::cli(&[
        "cluster",
        "remove",
        "--server",
        &c.node(2).url(),
        "--node-id",
        "3",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    c.wait_voters(&[1, 2]);
    let s = c.node(1).status().unwrap();
    assert!(
        s["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["id"] != 3),
        "{s}"
    );
    let n3 = c.node(3).cluster.clone();
    let out = Cluster::cli(&[
        "cluster",
        "add",
        "--server",
        &c.node(1).url(),
        "--node-id",
        "3",
        "--cluster-addr",
        &n3,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("node 3 is a voter"),
        "{}",
        stdout(&out)
    );
    c.wait_voters(&[1, 2, 3]);
    // Adding a voter again is a no-op.
    let (st, v) = post_json(
        &c.node(2).http,
        "/api/v1/cluster/join",
        &format!(r#"{{"node_id": 3, "cluster_addr": "{n3}"}}"#),
    )
    .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(ids(&v["data"]["node"]["voters"]), [1, 2, 3], "{v}");
    assert_eq!(write_one(&c.node(3).http, "join_test", t0 + 10, 10.0), 204);
    for n in &c.nodes {
        wait_until(
            &format!("node {} has the write after re-adding", n.id),
            DEADLINE,
            || values(&n.http, "join_test", now_ms()).is_some_and(|v| v.len() == 4),
        );
    }

    // A second process claiming node 3's id at another address is refused and exits.
    let ports = free_ports(2);
    let other_root = c.node(1).dir.with_file_name("impostor");
    std::fs::create_dir_all(&other_root).unwrap();
    let mut impostor = Node::new(3, ports[0], ports[1], &other_root);
    impostor.join = vec![c.node(1).url()];
    impostor.start();
    let st = impostor.wait_exit();
    assert!(!st.success(), "{st}");
    let log = std::fs::read_to_string(impostor.log_path()).unwrap();
    assert!(log.contains("refused the join"), "{log}");
    assert!(log.contains("node 3 is already a member at"), "{log}");

    // A restarted member with --join is already a voter: it just starts.
    c.node(2).stop();
    c.node(2).start();
    c.wait_voters(&[1, 2, 3]);
    let log = std::fs::read_to_string(c.node(2).log_path()).unwrap();
    assert!(log.contains("already a voter of the cluster"), "{log}");
    assert_eq!(
        log.matches("joined the cluster as a voter").count(),
        1,
        "joined once, before the restart"
    );
}

#[test]
fn kill_9_of_the_leader_under_remote_write_to_a_follower_loses_no_acknowledged_sample() {
    let mut c = Cluster::new();
    for n in &mut c.nodes {
        n.start();
    }
    let leader = c.wait_voters(&[1, 2, 3]);
    let follower = c.nodes.iter().find(|n| n.id != leader).unwrap().id;
    let target = c.node(follower).http.clone();
    eprintln!("leader {leader}, writing to follower {follower}");

    // Three writers, one sample per request, each with its own series and strictly
    // increasing timestamps; bounded in count and time. Every 2xx is recorded (value
    // writer * 1e6 + seq); failures (503 during the election) are not retried.
    const WRITERS: u64 = 3;
    const MAX_WRITES: u64 = 5_000;
    let t0 = now_ms() - 30 * 60_000;
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let acks = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let attempts: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (acked, acks, failed, attempts, stop, target) = (
                acked.clone(),
                acks.clone(),
                failed.clone(),
                attempts.clone(),
                stop.clone(),
                target.clone(),
            );
            std::thread::spawn(move || {
                let end = Instant::now() + Duration::from_secs(120);
                let name = format!("kill_test_{w}");
                for seq in 0..MAX_WRITES {
                    if stop.load(Ordering::Relaxed) || Instant::now() > end {
                        break;
                    }
                    attempts[w as usize].store(seq + 1, Ordering::Relaxed);
                    let value = w * 1_000_000 + seq;
                    let st = write_one(&target, &name, t0 + seq as i64 * 100, value as f64);
                    if (200..300).contains(&st) {
                        acked.lock().unwrap().insert(value);
                        acks.fetch_add(1, Ordering::Relaxed);
                    } else {
                        assert!(st == 503 || st == 0, "write {value}: unexpected HTTP {st}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let progress = |what: &str, more: u64| {
        let base = acks.load(Ordering::Relaxed);
        wait_until(what, DEADLINE, || {
            assert!(
                writers.iter().all(|w| !w.is_finished()),
                "a writer stopped early"
            );
            acks.load(Ordering::Relaxed) >= base + more
        });
    };
    progress("writes acknowledged before the kill", 100);
    let killed_at = Instant::now();
    c.node(leader).kill9();
    let at_kill = acks.load(Ordering::Relaxed);
    progress("writes acknowledged under a new leader", 100);
    eprintln!(
        "killed leader {leader} after {at_kill} acks; writes resumed within {:?}",
        killed_at.elapsed()
    );
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != leader).collect();
    let new_leader = c.nodes[(survivors[0] - 1) as usize]
        .status()
        .and_then(|s| s["node"]["leader"].as_u64());
    assert!(
        new_leader.is_some_and(|l| l != leader),
        "a survivor leads: {new_leader:?}"
    );
    // The killed node comes back (it is a voter already: no join) while writes go on.
    c.node(leader).start();
    progress("writes acknowledged after the restart", 100);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let failed = failed.load(Ordering::Relaxed);
    c.wait_voters(&[1, 2, 3]);

    // Every acknowledged sample is on every node; nothing was invented.
    let attempted: Vec<u64> = attempts.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    let written = |v: u64| v % 1_000_000 < attempted[(v / 1_000_000) as usize];
    for n in &c.nodes {
        let mut last = BTreeSet::new();
        wait_until(
            &format!("node {} holds every acknowledged sample", n.id),
            DEADLINE,
            || {
                last = (0..WRITERS)
                    .flat_map(|w| {
                        values(&n.http, &format!("kill_test_{w}"), now_ms()).unwrap_or_default()
                    })
                    .collect();
                acked.is_subset(&last)
            },
        );
        assert!(
            last.iter().all(|v| written(*v)),
            "node {} holds samples never written",
            n.id
        );
    }
    eprintln!(
        "{} writes acknowledged, {failed} refused during the failover; all on three nodes",
        acked.len()
    );
}
