use std::path::Path;
use std::time::Duration;

use super::*;

const FILE: &str = "o11y.yaml";

fn parse_ok(text: &str) -> ConfigFile {
    parse(text, Path::new(FILE)).unwrap()
}

fn parse_err(text: &str) -> (usize, usize, String, String) {
    let e = parse(text, Path::new(FILE)).unwrap_err();
    let shown = e.to_string();
    match e {
        ConfigError::Syntax {
            path,
            line,
            column,
            message,
        } => {
            assert_eq!(path, Path::new(FILE));
            (line, column, message, shown)
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn durations_and_sizes() {
    assert_eq!(
        parse_duration("15d").unwrap(),
        Duration::from_secs(15 * 86400)
    );
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(
        parse_duration("1y2w").unwrap().as_secs(),
        (365 + 14) * 86400
    );
    assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    for bad in [
        "",
        "5",
        "d",
        "1x",
        "30m1h",
        "1h1h",
        "-5m",
        "1.5h",
        "999999999999y",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
    }
    assert_eq!(format_duration(Duration::from_secs(15 * 86400)), "15d");

    assert_eq!(parse_size("512MB").unwrap(), 512 << 20);
    assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
    assert_eq!(parse_size("1GB").unwrap(), 1 << 30);
    assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
    assert_eq!(parse_size("1000").unwrap(), 1000);
    assert_eq!(parse_size("1000B").unwrap(), 1000);
    assert_eq!(parse_size("2KB").unwrap(), 2048);
    for bad in [
        "",
        "MB",
        "1mb",
        "1 GB",
        "1.5GB",
        "16EB",
        "99999999999999999999",
    ] {
        assert!(parse_size(bad).is_err(), "{bad:?} parsed");
    }
    assert_eq!(format_size(512 << 20), "512MiB");
    assert_eq!(format_size(3 << 30), "3GiB");
    assert_eq!(format_size(1000), "1000B");
    assert_eq!(format_size(0), "0B");
}

#[test]
fn a_full_file_flows_into_the_server_config() {
    let f = parse_ok(
        "\
server:
  data_dir: /var/lib/o11y
  http_listen: 127.0.0.1:9999
storage:
  retention_time: 30d
  retention_size: 1GB
  out_of_order_window: 30m
  block_range: 4h
  max_block_range: 10d
  future_grace: 1m
limits:
  label_limit: 10
  label_name_length_limit: 100
  label_value_length_limit: 200
  metric_name_validation_scheme: legacy
  query_timeout: 30s
  query_max_samples: 1000
  query_lookback_delta: 1m
cluster:
  node_id: 3
  listen: 127.0.0.1:9096
  advertise: node3:9096
  join: [node1:9095, 'node2:9095']
  bootstrap: false
logging:
  level: debug
  format: json
",
    );
    let mut cfg = ServeConfig::default();
    f.apply(&mut cfg);
    assert_eq!(cfg.data_dir, Path::new("/var/lib/o11y"));
    assert_eq!(cfg.http_listen, "127.0.0.1:9999");
    assert_eq!(cfg.tsdb.retention_ms, Some(30 * 86_400_000));
    assert_eq!(cfg.tsdb.retention_bytes, Some(1 << 30));
    assert_eq!(cfg.tsdb.ooo_window_ms, 30 * 60_000);
    assert_eq!(cfg.tsdb.block_range_ms, 4 * 3_600_000);
    assert_eq!(cfg.tsdb.max_block_range_ms, 10 * 86_400_000);
    assert_eq!(cfg.tsdb.future_grace_ms, 60_000);
    assert_eq!(cfg.tsdb.limits.max_label_count, 10);
    assert_eq!(cfg.tsdb.limits.max_name_len, 100);
    assert_eq!(cfg.tsdb.limits.max_value_len, 200);
    assert_eq!(cfg.tsdb.limits.validation, NameValidation::Legacy);
    assert_eq!(cfg.engine.timeout, Duration::from_secs(30));
    assert_eq!(cfg.engine.max_samples, 1000);
    assert_eq!(cfg.engine.lookback_delta_ms, 60_000);
    assert_eq!(cfg.node_id, 3);
    assert_eq!(cfg.cluster_listen, "127.0.0.1:9096");
    assert_eq!(cfg.cluster_advertise.as_deref(), Some("node3:9096"));
    assert_eq!(cfg.join, vec!["node1:9095", "node2:9095"]);
    assert!(!cfg.bootstrap);
    assert_eq!(cfg.log.level, LogLevel::Debug);
    assert_eq!(cfg.log.format, LogFormat::Json);
    validate(&cfg).unwrap();

    // The effective configuration says the same, and reads back to it.
    let eff = effective(&cfg);
    let again = parse_ok(&eff.to_yaml());
    assert_eq!(again, eff);
    let mut cfg2 = ServeConfig::default();
    again.apply(&mut cfg2);
    assert_eq!(effective(&cfg2), eff);
    let fl = flags(&cfg);
    assert_eq!(fl["storage.tsdb.retention.time"], "30d");
    assert_eq!(fl["storage.tsdb.retention.size"], "1GiB");
    assert_eq!(fl["storage.tsdb.out-of-order-window"], "30m");
    assert_eq!(fl["query.timeout"], "30s");
    assert_eq!(fl["node-id"], "3");
}

#[test]
fn zero_retention_means_no_limit() {
    let mut cfg = ServeConfig::default();
    parse_ok("storage:\n  retention_time: 0\n  retention_size: 0\n").apply(&mut cfg);
    assert_eq!(cfg.tsdb.retention_ms, None);
    assert_eq!(cfg.tsdb.retention_bytes, None);
    let mut cfg = ServeConfig::default();
    parse_ok("storage:\n  retention_time: 0s\n").apply(&mut cfg);
    assert_eq!(cfg.tsdb.retention_ms, None);
}

#[test]
fn empty_files_and_absent_keys_keep_defaults() {
    for text in ["", "# nothing\n", "storage: {}\n", "---\n"] {
        let f = parse_ok(text);
        assert_eq!(f, ConfigFile::default(), "{text:?}");
        let mut cfg = ServeConfig::default();
        f.apply(&mut cfg);
        assert_eq!(effective(&cfg), effective(&ServeConfig::default()));
    }
}

#[test]
fn unknown_keys_are_errors_with_their_position() {
    let (line, column, msg, shown) =
        parse_err("storage:\n  retention_time: 15d\n  retention: 30d\n");
    assert_eq!((line, column), (3, 3), "{shown}");
    assert!(msg.contains("unknown field `retention`"), "{msg}");
    assert!(
        msg.contains("retention_time"),
        "the known keys are listed: {msg}"
    );
    assert!(shown.starts_with("o11y.yaml:3:3: "), "{shown}");
    assert!(!shown.contains("at line"), "position given once: {shown}");

    let (line, _, msg, _) = parse_err("server:\n  data_dir: x\nstorrage:\n  a: 1\n");
    assert_eq!(line, 3);
    assert!(msg.contains("unknown field `storrage`"), "{msg}");
}

#[test]
fn bad_values_are_errors_with_their_position() {
    let (line, column, msg, _) = parse_err("limits:\n  query_timeout: 5x\n");
    assert_eq!((line, column), (2, 18));
    assert!(msg.contains("unknown unit \"x\""), "{msg}");

    let (line, _, msg, _) = parse_err("storage:\n  out_of_order_window: 10\n");
    assert_eq!(line, 2);
    assert!(msg.contains("missing unit"), "{msg}");

    let (line, _, msg, _) = parse_err("storage:\n  retention_size: 1.5GB\n");
    assert_eq!(line, 2);
    assert!(msg.contains("invalid size"), "{msg}");

    let (line, _, msg, _) = parse_err("logging:\n  level: loud\n");
    assert_eq!(line, 2);
    assert!(msg.contains("unknown variant `loud`"), "{msg}");

    let (line, _, msg, _) = parse_err("cluster:\n  node_id: -1\n");
    assert_eq!(line, 2);
    assert!(msg.contains("cluster.node_id: invalid type"), "{msg}");

    let (line, _, _, _) = parse_err("server: [unclosed\n");
    assert!(line >= 1);

    // A non-mapping document.
    let (_, _, msg, _) = parse_err("- a\n- b\n");
    assert!(msg.contains("invalid type"), "{msg}");
}

#[test]
fn unusable_combinations_name_the_key() {
    let mut cfg = ServeConfig::default();
    parse_ok("storage:\n  out_of_order_window: 2h\n").apply(&mut cfg);
    let e = validate(&cfg).unwrap_err();
    assert!(e.contains("storage.out_of_order_window"), "{e}");
    assert!(e.contains("--storage.tsdb.out-of-order-window"), "{e}");

    let mut cfg = ServeConfig::default();
    parse_ok("cluster:\n  node_id: 0\n").apply(&mut cfg);
    assert!(validate(&cfg).unwrap_err().contains("node_id"));

    let mut cfg = ServeConfig::default();
    parse_ok("limits:\n  query_lookback_delta: 0\n").apply(&mut cfg);
    assert!(validate(&cfg).unwrap_err().contains("query_lookback_delta"));
}

#[test]
fn unreadable_file_is_named() {
    let e = load(Path::new("/nonexistent/o11y.yaml")).unwrap_err();
    let s = e.to_string();
    assert!(s.contains("/nonexistent/o11y.yaml"), "{s}");
    assert!(matches!(e, ConfigError::Read { .. }));
}

/// The committed example parses, and documents exactly the defaults.
#[test]
fn the_example_file_lists_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/o11y.example.yaml");
    let f = load(&path).unwrap();
    assert_eq!(f, effective(&ServeConfig::default()));
}

proptest::proptest! {
    /// Arbitrary text (and YAML-looking text) is either a configuration or an error with a
    /// position; nothing panics.
    #[test]
    fn any_text_parses_or_errors(
        text in "(storage|limits|cluster|server|logging|retention_time|join|[:\\- \\n\\[\\]{}'\"&*!#0-9a-zA-Z_.])*",
        raw in ".*",
    ) {
        for t in [&text, &raw] {
            match parse(t, Path::new(FILE)) {
                Ok(f) => {
                    let mut cfg = ServeConfig::default();
                    f.apply(&mut cfg);
                    let _ = validate(&cfg);
                }
                Err(ConfigError::Syntax { line, column, .. }) => {
                    proptest::prop_assert!(line >= 1 && column >= 1);
                }
                Err(e) => proptest::prop_assert!(false, "{e}"),
            }
        }
    }

    #[test]
    fn durations_and_sizes_never_panic(s in "[0-9]{0,22}(y|w|d|h|m|s|ms|B|KB|MiB|GB|EiB|x|)[0-9]{0,3}(m|s|ms|)") {
        if let Ok(d) = parse_duration(&s) {
            proptest::prop_assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        if let Ok(b) = parse_size(&s) {
            proptest::prop_assert_eq!(parse_size(&format_size(b)).unwrap(), b);
        }
    }
}
