#!/usr/bin/env bash
# Runs every test of the project: the whole Cargo workspace, then a build check of the fuzz
# targets. Anything the tests need beyond the Rust toolchain is installed here, idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -d ../shared/conformance ]; then
  echo "conformance data: $(cd ../shared/conformance && pwd)"
else
  echo "conformance data: ../shared/conformance not found; conformance tests will skip"
fi

# Multi-process Raft tests signal their node processes with kill(1) (procps) and build network
# namespaces with ip(8) (iproute2); the partition test skips with a message without them.
missing=()
[ -x /bin/kill ] || [ -x /usr/bin/kill ] || missing+=(procps)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# promtool (Debian's prometheus package) lints the server's /metrics exposition.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1) ||
    echo "could not install ${missing[*]}; the tests that need them skip or fail with a message"
fi

# Real-client tests: Prometheus (with promtool) and node-exporter from Debian (remote_write,
# remote_read and promtool against o11y). Without them those tests skip, unless
# O11Y_REQUIRE_CLIENTS=1 (set below, so CI fails instead of skipping).
clients=()
[ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ] || clients+=(prometheus)
[ -x /usr/bin/prometheus-node-exporter ] || clients+=(prometheus-node-exporter)
if [ ${#clients[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y --no-install-recommends "${clients[@]}" >/dev/null 2>&1 ||
    (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "${clients[@]}" >/dev/null 2>&1) ||
    echo "could not install ${clients[*]}; the real-client tests will fail"
fi
export O11Y_REQUIRE_CLIENTS="${O11Y_REQUIRE_CLIENTS:-1}"
# The OTLP tests run the OpenTelemetry Python SDK's own exporters (server/tests/clients/).
python3 -m pip install --quiet --disable-pip-version-check \
  opentelemetry-sdk opentelemetry-exporter-otlp-proto-grpc opentelemetry-exporter-otlp-proto-http ||
  echo "could not install the OpenTelemetry Python packages; the OTLP client test will fail"

cargo test --workspace --all-targets
cargo test --workspace --doc
# The fuzz crate lives outside the workspace (cargo-fuzz needs nightly to run it); make sure its
# targets still compile against the current APIs.
cargo check --manifest-path fuzz/Cargo.toml --bins
