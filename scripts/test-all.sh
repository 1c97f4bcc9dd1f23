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

cargo test --workspace --all-targets
cargo test --workspace --doc
# The fuzz crate lives outside the workspace (cargo-fuzz needs nightly to run it); make sure its
# targets still compile against the current APIs.
cargo check --manifest-path fuzz/Cargo.toml --bins
