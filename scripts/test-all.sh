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
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1) ||
    echo "could not install ${missing[*]}; the tests that need them skip or fail with a message"
fi

# The OTLP tests run the OpenTelemetry Python SDK's own exporters (server/tests/clients/); tests
# needing external clients fail instead of skipping when O11Y_REQUIRE_CLIENTS=1.
export O11Y_REQUIRE_CLIENTS="${O11Y_REQUIRE_CLIENTS:-1}"
python3 -m pip install --quiet --disable-pip-version-check \
  opentelemetry-sdk opentelemetry-exporter-otlp-proto-grpc opentelemetry-exporter-otlp-proto-http ||
  echo "could not install the OpenTelemetry Python packages; the OTLP client test will fail"

cargo test --workspace --all-targets
cargo test --workspace --doc
# The fuzz crate lives outside the workspace (cargo-fuzz needs nightly to run it); make sure its
# targets still compile against the current APIs.
cargo check --manifest-path fuzz/Cargo.toml --bins
