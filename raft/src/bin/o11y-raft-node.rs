//! `o11y-raft-node`: one Raft node as a process (node-to-node and client gRPC), plus a small
//! client. Used by the multi-process tests and `raft-bench` until the `o11y` server (which
//! embeds the same `RaftNode`) takes over.
//!
//! ```text
//! o11y-raft-node serve  --id N --listen HOST:PORT --data-dir DIR [--advertise HOST:PORT]
//!                       [--bootstrap] [--snapshot-every N] [--keep-log N] [--segment-bytes N]
//!                       [--election-ms MIN:MAX]
//! o11y-raft-node client --addr HOST:PORT status
//!                       | add-learner ID ADDR | change-membership ID,ID,... | remove ID
//!                       | write KEY [KEY...]          (series w{key="KEY"} at t=KEY)
//!                       | keys [--linearizable]       (keys of the w series, one per line)
//! ```

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use o11y_raft::network::{self, PeerClient};
use o11y_raft::{pb, Command, CommandResult, NodeConfig, RaftNode, Transport};
use o11y_tsdb::DEFAULT_TENANT;

fn usage() -> &'static str {
    "usage:\n  o11y-raft-node serve --id N --listen HOST:PORT --data-dir DIR [--advertise HOST:PORT] \
     [--bootstrap] [--snapshot-every N] [--keep-log N] [--segment-bytes N] [--election-ms MIN:MAX]\n  o11y-raft-node client --addr \
     HOST:PORT (status | add-learner ID ADDR | change-membership ID,... | remove ID | write KEY... \
     | keys [--linearizable])"
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("o11y-raft-node: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let res = match args.first().map(String::as_str) {
        Some("serve") => rt.block_on(serve(&args[1..])),
        Some("client") => rt.block_on(client(&args[1..])),
        Some("-h" | "--help") => {
            println!("{}", usage());
            Ok(())
        }
        _ => Err(anyhow!("{}", usage())),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("o11y-raft-node: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn required(args: &[String], name: &str) -> Result<String> {
    flag(args, name).ok_or_else(|| anyhow!("missing {name}\n{}", usage()))
}

async fn serve(args: &[String]) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,o11y_raft=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let id: u64 = required(args, "--id")?.parse().context("--id")?;
    let listen = required(args, "--listen")?;
    let dir = required(args, "--data-dir")?;
    let advertise = flag(args, "--advertise").unwrap_or_else(|| listen.clone());
    let mut cfg = NodeConfig::new(id, advertise, dir);
    if let Some(n) = flag(args, "--snapshot-every") {
        cfg.snapshot_every_entries = n.parse().context("--snapshot-every")?;
    }
    if let Some(n) = flag(args, "--keep-log") {
        cfg.keep_log_after_snapshot = n.parse().context("--keep-log")?;
    }
    if let Some(n) = flag(args, "--segment-bytes") {
        cfg.log.segment_bytes = n.parse().context("--segment-bytes")?;
    }
    if let Some(e) = flag(args, "--election-ms") {
        let (a, b) = e
            .split_once(':')
            .ok_or_else(|| anyhow!("--election-ms MIN:MAX"))?;
        cfg.election_min_ms = a.parse().context("--election-ms")?;
        cfg.election_max_ms = b.parse().context("--election-ms")?;
        cfg.heartbeat_ms = (cfg.election_min_ms / 5).max(10);
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let node = RaftNode::open(cfg, Transport::Grpc)
        .await
        .context("opening the node")?;
    if args.iter().any(|a| a == "--bootstrap") {
        node.bootstrap().await.context("bootstrap")?;
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(network::serve(node.clone(), listener, async {
        let _ = stop_rx.await;
    }));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    eprintln!("o11y-raft-node {id}: serving on {listen}");
    // Only a signal stops the node (a failed handler registration is an error at startup
    // above, never a silent exit here).
    let sig = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    eprintln!("o11y-raft-node {id}: {sig}, shutting down");
    let _ = stop_tx.send(());
    let _ = server.await;
    node.shutdown().await.context("shutdown")?;
    Ok(())
}

fn print_status(s: &pb::StatusReply) {
    let ids = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    println!(
        "node={} role={} term={} leader={} last_log={} applied={} voters={} learners={}",
        s.node_id,
        s.role,
        s.term,
        s.leader_id,
        s.last_log_index,
        s.applied_index,
        ids(&s.voters),
        ids(&s.learners)
    );
}

/// The test write: series `w{key="KEY"}` with one sample at t = KEY.
fn key_write(key: u64) -> Command {
    o11y_raft::sim::key_write(key, key as i64)
}

async fn client(args: &[String]) -> Result<()> {
    let addr = required(args, "--addr")?;
    let c = PeerClient::new(&addr, Duration::from_secs(5));
    let rest: Vec<&String> = {
        let mut v = Vec::new();
        let mut skip = false;
        for a in args {
            if skip {
                skip = false;
            } else if a == "--addr" {
                skip = true;
            } else {
                v.push(a);
            }
        }
        v
    };
    let admin = |op: pb::admin_request::Op, node_id: u64, addr: String, voters: Vec<u64>| {
        pb::AdminRequest {
            op: op as i32,
            node_id,
            addr,
            voters,
        }
    };
    use pb::admin_request::Op;
    match rest.first().map(|s| s.as_str()) {
        Some("status") => {
            print_status(&c.admin(admin(Op::Status, 0, String::new(), vec![])).await?)
        }
        Some("add-learner") => {
            let id: u64 = rest.get(1).context("ID")?.parse()?;
            let a = rest.get(2).context("ADDR")?.to_string();
            print_status(&c.admin(admin(Op::AddLearner, id, a, vec![])).await?);
        }
        Some("change-membership") => {
            let ids = rest
                .get(1)
                .context("ID,ID,...")?
                .split(',')
                .map(|s| s.parse::<u64>())
                .collect::<Result<Vec<_>, _>>()?;
            print_status(
                &c.admin(admin(Op::ChangeMembership, 0, String::new(), ids))
                    .await?,
            );
        }
        Some("remove") => {
            let id: u64 = rest.get(1).context("ID")?.parse()?;
            print_status(
                &c.admin(admin(Op::RemoveNode, id, String::new(), vec![]))
                    .await?,
            );
        }
        Some("write") => {
            let keys = rest[1..]
                .iter()
                .map(|s| s.parse::<u64>())
                .collect::<Result<Vec<_>, _>>()?;
            let cmds: Vec<Command> = keys.iter().map(|k| key_write(*k)).collect();
            let r = c.write(&cmds, Duration::from_secs(5)).await?;
            for (k, res) in keys.iter().zip(r.results) {
                match res {
                    CommandResult::Written {
                        samples_accepted: 1,
                        ..
                    } => println!("ok {k}"),
                    other => bail!("write {k}: {other:?}"),
                }
            }
        }
        Some("keys") => {
            let r = c
                .query(pb::QueryRequest {
                    tenant: DEFAULT_TENANT.into(),
                    ops: vec![0],
                    names: vec!["__name__".into()],
                    values: vec!["w".into()],
                    mint: i64::MIN,
                    maxt: i64::MAX,
                    linearizable: rest.iter().any(|a| *a == "--linearizable"),
                })
                .await?;
            for s in r.series {
                println!("{s}");
            }
        }
        _ => bail!("{}", usage()),
    }
    Ok(())
}
