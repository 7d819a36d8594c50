#!/usr/bin/env bash
# The whole test suite, from a fresh clone: formatting, lints, every crate's tests
# (property tests, golden client bytes, the kafka-protocol cross-check, the spec
# conformance check against ../shared/kafka-reference when it is present, the
# check that generated code is fresh, and the black-box integration tests that
# start the real `gregor` binary and drive it with librdkafka), the fuzz targets'
# code replayed on stable, then the Python client tests (kafka-python and
# confluent-kafka from PyPI in a venv) against the same binary.
#
# Needs: cargo, a C toolchain and make (librdkafka is built from the sources in
# rdkafka-sys), python3 with venv; as root, missing Debian packages are installed.
# Environment: CARGO_TARGET_DIR (default <repo>/target), CARGO_BUILD_JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
VENV="$TARGET_DIR/venv"
PY_REQUIREMENTS=integration-tests/python/requirements.txt

log() { printf '\n== %s\n' "$*" >&2; }

# Debian packages for the native builds (librdkafka's configure + make, zlib,
# zstd) and the venv; installed only when missing, and only as root.
missing=()
for pkg in gcc g++ make pkg-config python3-venv; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})) && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    log "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v rustfmt >/dev/null || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

# The integration tests (Rust and Python) run this binary: build it first so no
# test has to run cargo itself.
log "building the gregor binary"
cargo build -p gregor-broker --bin gregor
export GREGOR_BIN="$TARGET_DIR/debug/gregor"

log "cargo test --workspace"
# --no-fail-fast: a failing test binary must not hide the results of the others.
cargo test --workspace --no-fail-fast 2>&1 | tee -a "$log" || status=1
# The shared target directory reuses the workspace's compiled dependencies.
cargo test --manifest-path fuzz/Cargo.toml --target-dir target --tests 2>&1 | tee -a "$log" || status=1

log "Python client tests ($VENV)"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
# Reinstall only when the pinned requirements changed since the last install.
if ! cmp -s "$PY_REQUIREMENTS" "$VENV/.installed-requirements.txt"; then
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$PY_REQUIREMENTS"
    cp "$PY_REQUIREMENTS" "$VENV/.installed-requirements.txt"
fi
# pytest's exit code 5 (no test collected) is a failure here too.
"$VENV/bin/python" -m pytest integration-tests/python -p no:cacheprovider -q -rfE 2>&1 | tee -a "$log" || status=1

log "librdkafka's own test suite: the allowlisted tests, three modes"
# The full suite, with every test not on integration-tests/librdkafka-allowlist, is
# `scripts/librdkafka-tests.py` without --allowlist.
python3 scripts/librdkafka-tests.py --allowlist 2>&1 | tee -a "$log" || status=1

# One closing line with the totals of every cargo test binary and of pytest
# (whose summary reads e.g. "3 failed, 12 passed, 1 error in 30.2s").
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }; next }
     / in [0-9.]+s/ && /(passed|failed|error)/ {
         line = $0; gsub(/[=,]/, " ", line); n = split(line, w, " ")
         for (i = 1; i < n; i++) { if (w[i+1] == "passed") p += w[i]; if (w[i+1] == "failed" || w[i+1] ~ /^errors?$/) f += w[i] }
     }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
