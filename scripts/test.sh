#!/usr/bin/env bash
# The whole test suite, from a fresh clone: formatting, lints, every crate's tests
# (property tests, golden client bytes, the kafka-protocol cross-check, the spec
# conformance check against ../shared/kafka-reference when it is present, and the
# check that generated code is fresh), then the fuzz targets' code replayed on stable.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! command -v rustfmt >/dev/null || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace 2>&1 | tee -a "$log"
# The shared target directory reuses the workspace's compiled dependencies.
cargo test --manifest-path fuzz/Cargo.toml --target-dir target --tests 2>&1 | tee -a "$log"

# One closing line with the totals of every test binary above.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
