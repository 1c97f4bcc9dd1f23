//! The `o11y` binary: `o11y serve` runs a node (a one-member cluster by default, data in
//! `./data`); `o11y cluster` inspects and changes a cluster's membership (`cluster_cli`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use o11y_server::serve::{self, ServeConfig};

mod cluster_cli;

const USAGE: &str = "\
usage: o11y serve [flags]
       o11y cluster status|add|remove [flags]   (see o11y cluster --help)

Runs an O11y node: a one-member cluster unless told otherwise, data in --data-dir.

flags:
  --data-dir DIR             where data lives (default ./data)
  --http-listen HOST:PORT    Prometheus API and remote_write (default 0.0.0.0:9090)
  --cluster-listen HOST:PORT node-to-node gRPC (default 0.0.0.0:9095)
  --cluster-advertise HOST:PORT
                             address other nodes reach this one on (default: the bound
                             --cluster-listen address)
  --node-id N                this node's id in the cluster (default 1)
  --no-bootstrap             do not make this node a one-member cluster (it waits to be added)
  --join URL[,URL...]        join the cluster of these members (HTTP URLs, e.g.
                             http://node1:9090): never bootstrap, ask them to add this node
                             as a voter (retried for up to 10 minutes; nothing to do when it
                             already is one); needs a reachable --cluster-advertise
  --query.lookback-delta DUR how far back an instant selector looks (default 5m)
  --query.timeout DUR        maximum query time (default 2m)
  --query.max-samples N      maximum samples one query holds (default 50000000)
  --log.level LEVEL          error, warn, info, debug (default info)
  --log.format FORMAT        text or json (default text)
  -h, --help                 this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("-h" | "--help") | None => {
            print!("{USAGE}");
            return if args.is_empty() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
        Some("serve") => {}
        Some("cluster") => {
            if args.len() < 2 || args.iter().any(|a| a == "-h" || a == "--help") {
                print!("{}", cluster_cli::USAGE);
                return if args.len() < 2 {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                };
            }
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("o11y: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            return match rt.block_on(cluster_cli::run(&args[1..], duration)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("o11y cluster: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(other) => {
            eprintln!("o11y: unknown command {other:?}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    }
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("o11y: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&args[1..])) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("o11y: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses a Prometheus-style duration (`90s`, `5m`, `1h30m`, `250ms`).
fn duration(s: &str) -> Result<Duration> {
    let mut total = 0u64;
    let mut rest = s;
    if rest.is_empty() {
        bail!("empty duration");
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            bail!("invalid duration {s:?}");
        }
        let n: u64 = rest[..digits]
            .parse()
            .with_context(|| format!("invalid duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            u => bail!("invalid duration {s:?}: unknown unit {u:?}"),
        };
        total = n
            .checked_mul(ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| anyhow!("duration {s:?} is too large"))?;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_millis(total))
}

fn parse(args: &[String]) -> Result<(ServeConfig, String, bool)> {
    let mut cfg = ServeConfig::default();
    let mut level = "info".to_string();
    let mut json = false;
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let mut v = || {
            it.next()
                .cloned()
                .ok_or_else(|| anyhow!("{k} needs a value"))
        };
        match k.as_str() {
            "--data-dir" => cfg.data_dir = v()?.into(),
            "--http-listen" => cfg.http_listen = v()?,
            "--cluster-listen" => cfg.cluster_listen = v()?,
            "--cluster-advertise" => cfg.cluster_advertise = Some(v()?),
            "--node-id" => cfg.node_id = v()?.parse().context("--node-id")?,
            "--no-bootstrap" => cfg.bootstrap = false,
            "--join" => cfg.join.extend(
                v()?.split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(String::from),
            ),
            "--query.lookback-delta" => {
                cfg.engine.lookback_delta_ms = duration(&v()?)?.as_millis() as i64
            }
            "--query.timeout" => cfg.engine.timeout = duration(&v()?)?,
            "--query.max-samples" => {
                cfg.engine.max_samples = v()?.parse().context("--query.max-samples")?
            }
            "--log.level" => level = v()?,
            "--log.format" => match v()?.as_str() {
                "json" => json = true,
                "text" => json = false,
                other => bail!("--log.format must be text or json, not {other:?}"),
            },
            other => bail!("unknown flag {other:?} (see o11y serve --help)"),
        }
    }
    if cfg.node_id == 0 {
        bail!("--node-id must be at least 1");
    }
    Ok((cfg, level, json))
}

async fn run(args: &[String]) -> Result<()> {
    let (cfg, level, json) = parse(args)?;
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "warn,o11y={level},o11y_server={level},o11y_raft={level},o11y_tsdb={level}"
    ))
    .with_context(|| format!("--log.level {level:?}"))?;
    let sub = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        sub.json().init();
    } else {
        sub.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let mut running = serve::start(cfg.clone()).await?;
    tracing::info!(
        node_id = cfg.node_id,
        data_dir = %cfg.data_dir.display(),
        http = %running.http_addr,
        cluster = %running.cluster_addr,
        "O11y is serving"
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let sig = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        e = running.join_failure() => {
            tracing::error!(error = %e, "cannot join the cluster; shutting down");
            running.shutdown().await?;
            return Err(e.into());
        }
    };
    tracing::info!(signal = sig, "shutting down");
    running.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(duration("").is_err());
        assert!(duration("5").is_err());
        assert!(duration("m").is_err());
        assert!(duration("99999999999999999y").is_err());
    }

    #[test]
    fn flags_are_checked() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (cfg, level, json) = parse(&a(&[
            "--data-dir",
            "/tmp/x",
            "--node-id",
            "2",
            "--log.format",
            "json",
        ]))
        .unwrap();
        assert_eq!(cfg.data_dir, std::path::PathBuf::from("/tmp/x"));
        assert_eq!(cfg.node_id, 2);
        assert_eq!(level, "info");
        assert!(json);
        assert!(parse(&a(&["--bogus"])).is_err());
        assert!(parse(&a(&["--node-id"])).is_err());
        assert!(parse(&a(&["--node-id", "0"])).is_err());
        let (cfg, _, _) = parse(&a(&[
            "--join",
            "http://a:9090, http://b:9090",
            "--join",
            "c:1",
        ]))
        .unwrap();
        assert_eq!(cfg.join, ["http://a:9090", "http://b:9090", "c:1"]);
    }
}
