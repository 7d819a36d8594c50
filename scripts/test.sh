#!/usr/bin/env bash
# The whole test suite, from a fresh clone: formatting, lints, every crate's tests
# (property tests, golden client bytes, the kafka-protocol cross-check, the spec
# conformance check against ../shared/kafka-reference when it is present, and the
# check that generated code is fresh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! command -v rustfmt >/dev/null || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
# The fuzz targets' code, replayed over seed inputs on stable so it cannot rot; the
# shared target directory reuses the workspace's compiled dependencies.
cargo test --manifest-path fuzz/Cargo.toml --target-dir target
