//! The `o11y` binary: `o11y serve` runs a node (a one-member cluster by default, data in
//! `./data`). Settings come from defaults, then `--config FILE`, then the other flags.
//! `o11y cluster` inspects and changes a cluster's membership (`cluster_cli`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use o11y_server::config::{self, LogFormat, LogLevel};
use o11y_server::serve::{self, ServeConfig};

mod cluster_cli;

/// mimalloc instead of glibc's malloc: ingest allocates and frees many small label strings per
/// request from several threads, where glibc's arenas spent a third of the CPU (measured with
/// ingest-bench, benches/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 2's option enum (the version libmimalloc-sys builds by
/// default; its Rust bindings do not name this option).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc return freed pages to the OS at once instead of after a delay: a server that
/// has just absorbed a burst of writes then holds only what is live (about 40% less RSS per
/// series at the same CPU in ingest-bench).
fn tune_allocator() {
    // SAFETY: called first thing in main, before any other thread exists (the function is not
    // thread safe); it only changes an allocator setting.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}

const USAGE: &str = "\
usage: o11y serve [flags]
       o11y cluster status|add|remove [flags]   (see o11y cluster --help)

Runs an O11y node: a one-member cluster unless told otherwise, data in --data-dir.

flags (each overrides the same setting in --config):
  --config FILE              YAML configuration file (see deploy/o11y.example.yaml)
  --print-config             print the effective configuration as YAML and exit
  --data-dir DIR             where data lives (default ./data)
  --http-listen HOST:PORT    Prometheus API, remote_write, /metrics (default 0.0.0.0:9090)
  --cluster-listen HOST:PORT node-to-node gRPC (default 0.0.0.0:9095)
  --cluster-advertise HOST:PORT
                             address other nodes reach this one on (default: the bound
                             --cluster-listen address)
  --otlp-grpc-listen HOST:PORT
                             OTLP metrics over gRPC (default 0.0.0.0:4317)
  --otlp-http-listen HOST:PORT
                             OTLP metrics over HTTP, POST /v1/metrics (default
                             0.0.0.0:4318; also served on --http-listen)
  --node-id N                this node's id in the cluster (default 1)
  --no-bootstrap             do not make this node a one-member cluster (it waits to be added)
  --storage.tsdb.retention.time DUR
                             delete data older than this (default 15d; 0: keep forever)
  --storage.tsdb.retention.size SIZE
                             delete the oldest blocks above this size, e.g. 512MB, 1GiB
                             (units are powers of two; default 0: no limit)
  --storage.tsdb.out-of-order-window DUR
                             accept samples this far behind a series' newest one
                             (default 10m, at most half the 2h block range)
  --join URL[,URL...]        join the cluster of these members (HTTP URLs, e.g.
                             http://node1:9090): never bootstrap, ask them to add this node
                             as a voter (retried for up to 10 minutes; nothing to do when it
                             already is one); needs a reachable --cluster-advertise
  --query.lookback-delta DUR how far back an instant selector looks (default 5m)
  --query.timeout DUR        maximum query time (default 2m)
  --query.max-samples N      maximum samples one query holds (default 50000000)
  --log.level LEVEL          error, warn, info, debug, trace (default info)
  --log.format FORMAT        text or json (default text)
  -h, --help                 this text
";

fn main() -> ExitCode {
    tune_allocator();
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
    config::parse_duration(s).map_err(|e| anyhow!(e))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The settings of `o11y serve` and whether to print them instead of serving.
fn parse(args: &[String]) -> Result<(ServeConfig, bool)> {
    let mut cfg = ServeConfig::default();
    // The file first, wherever --config stands: flags override it.
    let files: Vec<usize> = (0..args.len()).filter(|&i| args[i] == "--config").collect();
    if files.len() > 1 {
        bail!("--config given more than once");
    }
    if let Some(&i) = files.first() {
        let path = std::path::PathBuf::from(
            args.get(i + 1)
                .ok_or_else(|| anyhow!("--config needs a value"))?,
        );
        config::load(&path)?.apply(&mut cfg);
        cfg.config_file = Some(path);
    }
    let mut print_config = false;
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let mut v = || {
            it.next()
                .cloned()
                .ok_or_else(|| anyhow!("{k} needs a value"))
        };
        match k.as_str() {
            "--config" => {
                v()?;
            }
            "--print-config" => print_config = true,
            "--data-dir" => cfg.data_dir = v()?.into(),
            "--http-listen" => cfg.http_listen = v()?,
            "--cluster-listen" => cfg.cluster_listen = v()?,
            "--cluster-advertise" => cfg.cluster_advertise = Some(v()?),
            "--otlp-grpc-listen" => cfg.otlp_grpc_listen = v()?,
            "--otlp-http-listen" => cfg.otlp_http_listen = v()?,
            "--node-id" => cfg.node_id = v()?.parse().context("--node-id")?,
            "--no-bootstrap" => cfg.bootstrap = false,
            "--storage.tsdb.retention.time" => {
                let d = duration(&v()?).context("--storage.tsdb.retention.time")?;
                cfg.tsdb.retention_ms = (!d.is_zero()).then(|| ms(d));
            }
            "--storage.tsdb.retention.size" => {
                let b = config::parse_size(&v()?)
                    .map_err(|e| anyhow!(e))
                    .context("--storage.tsdb.retention.size")?;
                cfg.tsdb.retention_bytes = (b != 0).then_some(b);
            }
            "--storage.tsdb.out-of-order-window" => {
                cfg.tsdb.ooo_window_ms =
                    ms(duration(&v()?).context("--storage.tsdb.out-of-order-window")?)
            }
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
            "--log.level" => {
                cfg.log.level = LogLevel::parse(&v()?)
                    .map_err(|e| anyhow!(e))
                    .context("--log.level")?
            }
            "--log.format" => {
                cfg.log.format = LogFormat::parse(&v()?)
                    .map_err(|e| anyhow!(e))
                    .context("--log.format")?
            }
            other => bail!("unknown flag {other:?} (see o11y serve --help)"),
        }
    }
    config::validate(&cfg).map_err(|e| anyhow!(e))?;
    Ok((cfg, print_config))
}

async fn run(args: &[String]) -> Result<()> {
    let (cfg, print_config) = parse(args)?;
    if print_config {
        print!("{}", config::effective(&cfg).to_yaml());
        return Ok(());
    }
    let level = cfg.log.level.as_str();
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "warn,o11y={level},o11y_server={level},o11y_raft={level},o11y_tsdb={level}"
    ))
    .with_context(|| format!("--log.level {level:?}"))?;
    let sub = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cfg.log.format == LogFormat::Json {
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
        otlp_grpc = %running.otlp_grpc_addr,
        otlp_http = %running.otlp_http_addr,
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
        assert!(duration("30m1h").is_err());
        assert_eq!(duration("0").unwrap(), Duration::ZERO);
        assert!(duration("m").is_err());
        assert!(duration("99999999999999999y").is_err());
    }

    #[test]
    fn flags_are_checked() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (cfg, print) = parse(&a(&[
            "--data-dir",
            "/tmp/x",
            "--node-id",
            "2",
            "--log.format",
            "json",
            "--otlp-grpc-listen",
            "127.0.0.1:14317",
            "--otlp-http-listen",
            "127.0.0.1:14318",
        ]))
        .unwrap();
        assert_eq!(cfg.data_dir, std::path::PathBuf::from("/tmp/x"));
        assert_eq!(cfg.node_id, 2);
        assert_eq!(cfg.log.level, LogLevel::Info);
        assert_eq!(cfg.log.format, LogFormat::Json);
        assert!(!print);
        assert_eq!(cfg.otlp_grpc_listen, "127.0.0.1:14317");
        assert_eq!(cfg.otlp_http_listen, "127.0.0.1:14318");
        assert!(parse(&a(&["--bogus"])).is_err());
        assert!(parse(&a(&["--storage.tsdb.out-of-order-window", "3h"])).is_err());
        assert!(parse(&a(&["--storage.tsdb.retention.size", "1.5GB"])).is_err());
        assert!(parse(&a(&["--log.level", "loud"])).is_err());
        assert!(parse(&a(&["--node-id"])).is_err());
        assert!(parse(&a(&["--node-id", "0"])).is_err());
        let (cfg, _) = parse(&a(&[
            "--join",
            "http://a:9090, http://b:9090",
            "--join",
            "c:1",
        ]))
        .unwrap();
        assert_eq!(cfg.join, ["http://a:9090", "http://b:9090", "c:1"]);
    }

    #[test]
    fn flags_override_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o11y.yaml");
        std::fs::write(
            &path,
            "storage:\n  retention_time: 30d\n  out_of_order_window: 5m\n\
             limits:\n  query_max_samples: 1000\nlogging:\n  level: debug\n",
        )
        .unwrap();
        let p = path.display().to_string();
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // The flag wins even when it comes before --config.
        let (cfg, _) = parse(&a(&[
            "--storage.tsdb.retention.time",
            "7d",
            "--config",
            &p,
            "--storage.tsdb.retention.size",
            "512MB",
        ]))
        .unwrap();
        assert_eq!(cfg.tsdb.retention_ms, Some(7 * 86_400_000));
        assert_eq!(cfg.tsdb.retention_bytes, Some(512 << 20));
        assert_eq!(cfg.tsdb.ooo_window_ms, 5 * 60_000);
        assert_eq!(cfg.engine.max_samples, 1000);
        assert_eq!(cfg.log.level, LogLevel::Debug);
        assert_eq!(cfg.config_file.as_deref(), Some(path.as_path()));
        let (cfg, print) = parse(&a(&["--config", &p, "--print-config"])).unwrap();
        assert!(print);
        assert_eq!(cfg.tsdb.retention_ms, Some(30 * 86_400_000));

        // Errors in the file name it, with the line.
        std::fs::write(&path, "storage:\n  retention_tme: 30d\n").unwrap();
        let e = format!("{:#}", parse(&a(&["--config", &p])).unwrap_err());
        assert!(e.contains(&format!("{p}:2:3")), "{e}");
        assert!(e.contains("retention_tme"), "{e}");
        assert!(parse(&a(&["--config"])).is_err());
        assert!(parse(&a(&["--config", &p, "--config", &p])).is_err());
    }
}
