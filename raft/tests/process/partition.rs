//! A partition that isolates the leader, made of real network namespaces: every node lives in
//! its own namespace, linked by veth pairs to a bridge in another; the partition takes the
//! leader's link down. Skipped (with a message) where namespaces cannot be created.

use std::process::Command as Proc;
use std::time::{Duration, Instant};

use crate::harness::*;

/// Namespaces and links created by the test; deleted on drop.
struct Net {
    prefix: String,
    made: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Proc::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Net {
    fn ns(&self, i: u64) -> String {
        format!("{}n{i}", self.prefix)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.prefix)
    }

    fn link(&self, i: u64) -> String {
        format!("{}b{i}", self.prefix)
    }

    fn setup(n: u64) -> Result<Net, String> {
        let mut net = Net {
            prefix: format!("o{}", std::process::id() % 100_000),
            made: Vec::new(),
        };
        let br = net.bridge();
        ip(&["netns", "add", &br])?;
        net.made.push(br.clone());
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        for i in 1..=n {
            let ns = net.ns(i);
            ip(&["netns", "add", &ns])?;
            net.made.push(ns.clone());
            let peer = net.link(i);
            ip(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &peer, "netns",
                &br,
            ])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("10.77.0.{i}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &br, "link", "set", &peer, "master", "br0"])?;
            ip(&["-n", &br, "link", "set", &peer, "up"])?;
        }
        Ok(net)
    }

    /// Runs the node binary's client inside node `from`'s namespace against node `to`.
    fn client(&self, from: u64, to: u64, args: &[&str]) -> (bool, String) {
        let out = Proc::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(from),
                BIN,
                "client",
                "--addr",
                &addr(to),
            ])
            .args(args)
            .output()
            .expect("run client");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    fn client_ok(&self, from: u64, to: u64, args: &[&str]) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let (ok, out) = self.client(from, to, args);
            if ok {
                return out;
            }
            assert!(
                Instant::now() < end,
                "client {args:?} from {from} to {to}: {out}"
            );
            std::thread::park_timeout(Duration::from_millis(100));
        }
    }

    /// Node `to`'s status field (`leader`, `applied`...) as `from` sees it.
    fn status(&self, from: u64, to: u64, field: &str) -> Option<u64> {
        let (ok, out) = self.client(from, to, &["status"]);
        if !ok {
            return None;
        }
        out.split_whitespace()
            .find_map(|w| w.strip_prefix(field)?.strip_prefix('='))?
            .parse()
            .ok()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

fn addr(i: u64) -> String {
    format!("10.77.0.{i}:7000")
}

fn wait(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

#[test]
fn an_isolated_leader_refuses_writes_and_catches_up_after_healing() {
    let net = match Net::setup(3) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("SKIPPED: network namespaces are not available here ({e})");
            return;
        }
    };
    let root = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| {
            let mut n = Node::new(i, addr(i), root.path(), &[]);
            n.prefix = vec!["ip".into(), "netns".into(), "exec".into(), net.ns(i)];
            n
        })
        .collect();
    nodes[0].start(true, &[]);
    nodes[1].start(false, &[]);
    nodes[2].start(false, &[]);
    wait("node 1 leads", || net.status(1, 1, "leader") == Some(1));
    net.client_ok(1, 1, &["add-learner", "2", &addr(2)]);
    net.client_ok(1, 1, &["add-learner", "3", &addr(3)]);
    net.client_ok(1, 1, &["change-membership", "1,2,3"]);
    net.client_ok(2, 2, &["write", "1", "2", "3", "4", "5"]);
    let old = net.status(1, 1, "leader").expect("a leader");

    // Partition: the leader's link to the bridge goes down.
    ip(&["-n", &net.bridge(), "link", "set", &net.link(old), "down"]).unwrap();
    let (ok, out) = net.client(old, old, &["write", "100"]);
    assert!(!ok, "the isolated leader acknowledged a write: {out}");
    assert!(
        out.contains("quorum")
            || out.contains("leader")
            || out.contains("timed out")
            || out.contains("Timeout"),
        "refusal should say why: {out}"
    );
    let m = (1..=3).find(|i| *i != old).unwrap();
    wait("the majority elects a new leader", || {
        net.status(m, m, "leader")
            .is_some_and(|l| l != old && l != 0)
    });
    net.client_ok(m, m, &["write", "101", "102", "103", "104", "105"]);

    // Heal: the old leader steps down and catches up.
    ip(&["-n", &net.bridge(), "link", "set", &net.link(old), "up"]).unwrap();
    let want: Vec<String> = [1, 2, 3, 4, 5, 101, 102, 103, 104, 105]
        .iter()
        .map(|k| format!("w{{key=\"{k}\"}}"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for i in 1..=3 {
        wait("every node holds exactly the acknowledged writes", || {
            let (ok, out) = net.client(i, i, &["keys"]);
            let mut got: Vec<String> = out.lines().map(str::to_string).collect();
            got.sort();
            ok && got == want
        });
    }
    let new_leader = net.status(old, old, "leader");
    assert!(
        new_leader.is_some_and(|l| l != old),
        "the old leader follows the new one: {new_leader:?}"
    );
    drop(nodes);
}
