#!/usr/bin/env bash
# Issue 6's benchmark, in one run on one machine: this machine's ceilings, then a
# fixed matrix of produce / consume / both-at-once / latency-at-half-the-maximum-rate /
# latency-at-10,000-records/s cells against a fresh Gregor (and, if given, a second
# Kafka-compatible broker), driven by `gregor perf` and by librdkafka's rdkafka_performance;
# a table of every figure, also as a share of the machine's ceiling, on stdout and in
# docs/benchmarks.md.
#
#   scripts/bench.sh --quick                 # a handful of cells, 1 run each (< 3 minutes)
#   scripts/bench.sh                         # the full matrix: median, min and max of 3 runs
#   scripts/bench.sh --runs 5 --cells base,durable
#   scripts/bench.sh --other-bootstrap 127.0.0.1:9092 [--other-pid PID]   # a running broker too
#   scripts/bench.sh --other-cmd 'bin/kafka-server-start.sh config/server.properties' \
#       --other-bootstrap 127.0.0.1:9092 --other-name kafka-4.1   # started, pinned, stopped by us
#   scripts/bench.sh --clients rdkafka       # only rdkafka_performance (or gregor-perf)
#   scripts/bench.sh --list                  # print the matrix and exit
#
# Options: --quick, --runs N (3; 1 with --quick), --cells a,b, --clients gregor-perf,rdkafka
#   (default: both; rdkafka alone while `gregor perf` is missing), --other-bootstrap HOST:PORT,
#   --other-cmd CMD (runs in the foreground until we stop it; --other-bootstrap defaults to
#   127.0.0.1:9092), --other-name NAME, --other-pid PID, --out FILE (docs/benchmarks.md; with
#   --quick the run directory's benchmarks.md), --data-dir DIR (where brokers keep data; default
#   in the run directory), --port N (Gregor's, 19192; N+1 for gregor perf sink), --prefault-mib N (1024; 0 = off), --keep.
# Environment: CARGO_TARGET_DIR (default <repo>/target), CARGO_BUILD_JOBS (default 2), GREGOR_BIN
#   (use this binary instead of building one; the tests point it at a stub).
#
# Method: the broker runs on CPU 0 (taskset), the clients and this script on CPU 1; a new
# topic per measurement; a fresh Gregor (new data directory) per group of cells per run;
# memory pre-faulted before every measurement and a warm-up produce after every broker
# start (scripts/bench/proc.py says why); half-random payloads; the broker's user+system
# CPU read from /proc/PID/stat around every measurement. The fixed-rate latency runs twice:
# as is, and with a SCHED_IDLE spinner on each CPU so that no vCPU goes idle (waking an
# idle vCPU costs this kind of VM milliseconds, more than the broker's share of a p99 at
# low rates); the spinners' CPU is not the broker's. With a second broker, both
# brokers run each cell back to back in every run, so their ratio comes from one run.
# Results stay in $CARGO_TARGET_DIR/bench/runs/<date>/ (results.jsonl, brokers.jsonl,
# client and broker logs); `scripts/bench/report.py render DIR [--out FILE]` renders them,
# also those of a run that was stopped. Tests: python3 scripts/bench/test_report.py.
#
# Needs: cargo, python3 (standard library), taskset and setsid (util-linux), a C toolchain,
# make and patch for rdkafka_performance (built from the librdkafka sources bundled in the
# rdkafka-sys crate that Cargo.lock pins, into $CARGO_TARGET_DIR/bench/); as root, missing
# Debian packages are installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
HERE=scripts/bench
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

QUICK=0 RUNS="" CELLS="" CLIENTS="" OUT="" DATA_PARENT="" PORT=19192 PREFAULT_MIB=1024 KEEP=0 LIST=0
OTHER_BOOTSTRAP="" OTHER_CMD="" OTHER_NAME="" OTHER_PID=""
# The same producer settings for every client: batches up to 1,000,000 bytes (librdkafka's
# default, under the brokers' 1 MiB message.max.bytes), 5 ms linger, 5 requests in flight.
BATCH_BYTES=1000000 LINGER_MS=5 MAX_IN_FLIGHT=5 RANDOM_RATIO=0.5 FETCH_WAIT_MS=500
WARMUP_RECORDS=200000
LATENCY_SECONDS=10
# The target's fixed rate. Its producer does not linger: the ack latency is then a request's
# send-to-response time, not the time a record waits for its batch to close.
FIXED_RATE=10000 FIXED_RATE_LINGER_MS=0

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit "${1:-0}"; }
while (($#)); do
    case $1 in
        --quick) QUICK=1 ;;
        --runs) RUNS=$2; shift ;;
        --cells) CELLS=$2; shift ;;
        --clients) CLIENTS=$2; shift ;;
        --other-bootstrap) OTHER_BOOTSTRAP=$2; shift ;;
        --other-cmd) OTHER_CMD=$2; shift ;;
        --other-name) OTHER_NAME=$2; shift ;;
        --other-pid) OTHER_PID=$2; shift ;;
        --out) OUT=$2; shift ;;
        --data-dir) DATA_PARENT=$2; shift ;;
        --port) PORT=$2; shift ;;
        --prefault-mib) PREFAULT_MIB=$2; shift ;;
        --keep) KEEP=1 ;;
        --list) LIST=1 ;;
        -h | --help) usage ;;
        *) echo "unknown option $1" >&2; usage 2 ;;
    esac
    shift
done
((QUICK)) && LATENCY_SECONDS=4
RUNS=${RUNS:-$((QUICK ? 1 : 3))}
[[ -n $OTHER_CMD && -z $OTHER_BOOTSTRAP ]] && OTHER_BOOTSTRAP=127.0.0.1:9092
if [[ -n $OTHER_BOOTSTRAP ]]; then
    OTHER_NAME=${OTHER_NAME:-other}
    OTHER_NAME=${OTHER_NAME//[^A-Za-z0-9._-]/-}
fi
matrix_args=()
((QUICK)) && matrix_args+=(--quick)
[[ -n $CELLS ]] && matrix_args+=(--cells "$CELLS")
# The interpreter itself, not a version manager's shim: the script starts it often.
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
MATRIX="$("$PYTHON" "$HERE/report.py" matrix "${matrix_args[@]}")"
if ((LIST)); then
    echo "group cell size acks codec partitions records workloads"
    echo "$MATRIX"
    exit 0
fi

log() { printf '\n== %s\n' "$*" >&2; }
say() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------------------
# Processes: everything long-lived starts in its own session (setsid), so a Ctrl-C
# reaches only this script, whose EXIT trap stops each of them, group and all.
CHILDREN=()
WORK=""
DATA_DIRS=()

alive() {
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}
# spawn OUT CMD...: starts CMD in a new session with stdout in OUT and stderr in OUT.err.
spawn() {
    local out=$1
    shift
    setsid "$@" >"$out" 2>"$out.err" </dev/null &
    SPAWNED=$!
    CHILDREN+=("$SPAWNED")
}
forget() {
    local keep=() pid
    for pid in "${CHILDREN[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
    CHILDREN=("${keep[@]}")
}
# reap PID: waits for a spawned process; sets REAPED to its exit status.
reap() {
    REAPED=0
    wait "$1" || REAPED=$?
    forget "$1"
}
# stop_group PID [GRACE_S]: SIGTERM to its process group, SIGKILL after GRACE_S seconds.
stop_group() {
    local pid=$1 grace=${2:-20} i
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget "$pid"
}
cleanup() {
    local status=$? pid
    trap - EXIT INT TERM
    for pid in "${CHILDREN[@]}"; do stop_group "$pid" 5; done
    if ((!KEEP)); then
        for dir in "${DATA_DIRS[@]}"; do rm -rf "$dir"; done
    fi
    [[ -n $WORK && $status != 0 ]] && say "stopped (status $status); what was recorded is in $WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# awake_start / awake_stop: a busy loop at SCHED_IDLE on CPU 0 and CPU 1 (the broker's and
# the clients'), so that neither vCPU halts. At low rates a p99 on a VM like this one is
# mostly the host waking a halted vCPU (the guest does not poll before halting:
# haltpoll.guest_halt_poll_ns=0). SCHED_IDLE runs only when nothing else wants the CPU, so
# the broker and the clients lose nothing to it, and the broker's CPU figure, read from its
# own /proc/PID/stat, does not include it. The spinners are children like any other: the
# EXIT trap stops them if the script ends in between.
AWAKE=()
awake_start() {
    local c
    for c in 0 1; do
        spawn "$WORK/logs/awake-cpu$c.out" taskset -c "$c" chrt -i 0 sh -c 'while :; do :; done'
        AWAKE+=("$SPAWNED")
    done
}
awake_stop() {
    local pid
    for pid in "${AWAKE[@]}"; do stop_group "$pid" 2; done
    AWAKE=()
}

# ---------------------------------------------------------------------------
# Builds

# install_missing COMMAND=DEBIAN_PACKAGE...: installs the packages of missing commands
# (as root, with apt-get), or says what is missing.
install_missing() {
    local missing=() pair
    for pair in "$@"; do command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}"); done
    ((${#missing[@]})) || return 0
    if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
        log "installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        say "missing: ${missing[*]} (install them, or run this as root on Debian)"
        exit 1
    fi
}

build_gregor() {
    if [[ -n ${GREGOR_BIN:-} ]]; then
        BIN=$GREGOR_BIN
        return
    fi
    log "cargo build --release -p gregor-broker --bin gregor"
    cargo build --release -p gregor-broker --bin gregor
    BIN="$TARGET_DIR/release/gregor"
}

# rdkafka_performance from the librdkafka that rdkafka-sys (at the version Cargo.lock
# pins) bundles, with scripts/bench/rdkafka_performance-bench.patch (half-random payloads,
# and -r on an absolute schedule so that it reaches the rate asked), built once per
# version and patch.
build_rdkafka() {
    local crate_version lib_version src dest stamp patch=$HERE/rdkafka_performance-bench.patch
    crate_version=$(awk '/^name = "rdkafka-sys"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
    [[ -n $crate_version ]] || { say "no rdkafka-sys in Cargo.lock"; exit 1; }
    lib_version=${crate_version#*+}
    dest="$TARGET_DIR/bench/librdkafka-$lib_version"
    stamp="$dest/.built-$(cksum <"$patch" | cut -d' ' -f1)"
    RDKAFKA_BIN="$dest/examples/rdkafka_performance"
    RDKAFKA_VERSION="$lib_version (bundled in rdkafka-sys $crate_version; rdkafka_performance with scripts/bench/rdkafka_performance-bench.patch)"
    [[ -x $RDKAFKA_BIN && -e $stamp ]] && return
    local sources=("${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"rdkafka-sys-$crate_version"/librdkafka)
    if [[ ! -d ${sources[0]} ]]; then
        log "cargo fetch (for the librdkafka sources in rdkafka-sys $crate_version)"
        cargo fetch --locked
        sources=("${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"rdkafka-sys-$crate_version"/librdkafka)
        [[ -d ${sources[0]} ]] || { say "no librdkafka sources for rdkafka-sys $crate_version"; exit 1; }
    fi
    src=${sources[0]}
    install_missing gcc=gcc g++=g++ make=make patch=patch
    log "building rdkafka_performance (librdkafka $lib_version from rdkafka-sys $crate_version) in $dest"
    rm -rf "$dest" "$dest.tmp"
    mkdir -p "$(dirname "$dest")"
    cp -a "$src" "$dest.tmp"
    (
        cd "$dest.tmp"
        patch -p1 --quiet <"$ROOT/$patch"
        # Minimal features: no TLS, SASL, HTTP, zstd or zlib; lz4 and snappy are built in.
        # (The log is not named configure.*: mklove would take it for one of its modules.)
        ./configure --disable-ssl --disable-gssapi --disable-curl --disable-zstd --disable-zlib \
            --disable-lz4-ext --disable-syslog >bench-configure.log 2>&1 || { cat bench-configure.log >&2; exit 1; }
        make -j"$CARGO_BUILD_JOBS" -C src librdkafka.a >bench-make.log 2>&1 || { tail -40 bench-make.log >&2; exit 1; }
        make -C examples rdkafka_performance >>bench-make.log 2>&1 || { tail -40 bench-make.log >&2; exit 1; }
    )
    mv "$dest.tmp" "$dest"
    touch "$stamp"
}

# ---------------------------------------------------------------------------
# Helpers

py() { "$PYTHON" "$HERE/$1" "${@:2}"; }
kafka() { py kafka.py "$@"; }
cpu_of() { if [[ -n $1 ]]; then py proc.py cpu "$1" 2>/dev/null || echo null; else echo null; fi; }
# json_last FILE: its last line if that is a JSON object, else null.
json_last() {
    "$PYTHON" -c 'import json, sys
lines = open(sys.argv[1]).read().splitlines()
try:
    value = json.loads(lines[-1])
    print(json.dumps(value) if isinstance(value, dict) else "null")
except (IndexError, ValueError):
    print("null")' "$1"
}
# records_per_s JSON: records / seconds of a client's result (empty when it has none).
records_per_s() {
    "$PYTHON" -c 'import json, sys
r = json.loads(sys.argv[1]) or {}
print(r["records"] / r["seconds"] if r.get("records") and r.get("seconds") else "")' "$1" 2>/dev/null || true
}
elapsed_ms() { awk -v ns="$1" -v us="$2" 'BEGIN { printf "%.1f\n", (ns / 1000 - us) / 1000 }'; }

# client_spawn OUT LIMIT_S NAME ARGS...: starts a load generator (gregor perf's command
# line; rdkafka_perf.py speaks it too) in its own session, pinned to CPU 1, under a time limit.
client_spawn() {
    local out=$1 limit=$2 name=$3 cmd
    shift 3
    case $name in
        gregor-perf) cmd=("$BIN" perf) ;;
        rdkafka) cmd=("$PYTHON" "$ROOT/$HERE/rdkafka_perf.py" --bin "$RDKAFKA_BIN") ;;
    esac
    spawn "$out" taskset -c 1 timeout -k 10 "$limit" "${cmd[@]}" "$@"
}
# run_client OUT LIMIT_S NAME ARGS...: the same, to the end; sets REAPED.
run_client() {
    client_spawn "$@"
    reap "$SPAWNED"
}

produce_args() { # bootstrap topic partitions size acks codec records [throughput [linger_ms]]
    echo --bootstrap "$1" --topic "$2" --partitions "$3" --record-size-bytes "$4" --acks "$5" \
        --compression "$6" --num-records "$7" --throughput "${8:-0}" --batch-size-bytes "$BATCH_BYTES" \
        --linger-ms "${9:-$LINGER_MS}" --max-in-flight "$MAX_IN_FLIGHT" --producers 1 \
        --random-ratio "$RANDOM_RATIO" --json
}
consume_args() { # bootstrap topic records
    echo --bootstrap "$1" --topic "$2" --num-records "$3" --fetch-max-wait-ms "$FETCH_WAIT_MS" \
        --from earliest --consumers 1 --json
}
limit_for() { # records size [rate]: a generous time limit in seconds (at least 20 MB/s)
    local rate=${3:-0}
    if ((rate > 0)); then echo $(($1 / rate + 120)); else echo $(($1 * $2 / 20000000 + 120)); fi
}

# record RUN GROUP CELL WORKLOAD BROKER CLIENT ROLE RC CPU_S RATE OUTFILE
record() {
    local result
    result=$(json_last "${11}")
    printf '{"run":%d,"group":"%s","cell":"%s","workload":"%s","broker":"%s","client":"%s","role":"%s","rc":%d,"broker_cpu_s":%s,"rate":%s,"result":%s}\n' \
        "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "${10:-null}" "$result" >>"$WORK/results.jsonl"
    LAST_RESULT=$result
    if [[ $result == null || $8 != 0 ]]; then
        say "    $7: FAILED (exit $8; see ${11} and ${11}.err)"
    else
        "$PYTHON" -c 'import json, sys
r, cpu, role = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
s = r.get("seconds") or 1e-9
text = "    %s: %.1f MB/s, %.0f records/s, %s errors" % (role, r.get("bytes", 0) / s / 1e6, r.get("records", 0) / s,
                                                     r.get("errors"))
lat = r.get("latency_ms") or {}
if lat.get("p50") is not None and lat.get("p99") is not None:
    text += ", latency p50 %.1f ms, p99 %.1f ms" % (lat["p50"], lat["p99"])
if cpu != "null":
    text += ", broker CPU %.2f s" % float(cpu)
print(text)' "$result" "$9" "$7" >&2 || true
    fi
}

# cpu_snapshot: "machine_busy_s steal_s own_s": all CPUs' busy and steal time (/proc/stat)
# and the CPU time of this script and every child it has waited for (bash's `times`), so
# that the report can say how much CPU other processes took during the benchmark. Call it
# in this shell (`cpu_snapshot >FILE`), not in a subshell, whose `times` would be its own.
cpu_snapshot() {
    local own
    times >"$WORK/times"
    own=$(tr '\n' ' ' <"$WORK/times")
    "$PYTHON" -c 'import os, re, sys
hz = os.sysconf("SC_CLK_TCK")
cpu = [int(x) for x in open("/proc/stat").readline().split()[1:]]
busy = (cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6]) / hz
own = sum(int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", sys.argv[1]))
print(round(busy, 2), round(cpu[7] / hz, 2), round(own, 2))' "$own"
}

prefault() { ((PREFAULT_MIB > 0)) && py proc.py prefault "$PREFAULT_MIB" >/dev/null; return 0; }

topic_config() { [[ $1 == durable ]] && echo --config flush.messages=1; return 0; }

# ---------------------------------------------------------------------------
# Brokers

# probe_start: a prober polling ApiVersions, armed before the broker starts.
probe_start() {
    spawn "$WORK/probe.out" "$PYTHON" "$HERE/kafka.py" wait-ready "$1" --timeout-s "$2"
    PROBE=$SPAWNED
    local i
    for ((i = 0; i < 500; i++)); do
        grep -q armed "$WORK/probe.out" 2>/dev/null && return
        sleep 0.01
    done
    say "the ApiVersions prober did not start"
    exit 1
}
# probe_wait T0 (EPOCHREALTIME): sets FIRST_ANSWER_MS or fails.
probe_wait() {
    reap "$PROBE"
    if ((REAPED != 0)); then
        FIRST_ANSWER_MS=null
        return 1
    fi
    FIRST_ANSWER_MS=$(elapsed_ms "$(tail -1 "$WORK/probe.out")" "${1//[.,]/}")
}

warm_up() { # broker-label bootstrap
    local topic="bench-warmup-$RANDOM$RANDOM" out="$WORK/logs/warmup-$1-$SECONDS.out"
    kafka create-topic "$2" "$topic" 1
    # shellcheck disable=SC2046
    run_client "$out" 300 "${CLIENT_LIST[0]}" produce $(produce_args "$2" "$topic" 1 1024 1 none "$WARMUP_RECORDS")
    ((REAPED == 0)) || say "warm-up produce against $1 failed (exit $REAPED, $out)"
    kafka delete-topic "$2" "$topic" || true
}

start_gregor() { # run group
    local data="$DATA_PARENT/gregor-r$1-$2" t0 out="$WORK/logs/gregor-r$1-$2.out" i ready=null rss
    rm -rf "$data"
    mkdir -p "$data"
    DATA_DIRS+=("$data")
    local args=(serve --override "listeners=PLAINTEXT://127.0.0.1:$PORT" --override "log.dirs=$data"
        --override group.initial.rebalance.delay.ms=0)
    [[ $2 == durable ]] && args+=(--override log.flush.interval.messages=1)
    probe_start "127.0.0.1:$PORT" 60
    t0=$EPOCHREALTIME
    spawn "$out" taskset -c 0 "$BIN" "${args[@]}"
    GREGOR_PID=$SPAWNED
    if ! probe_wait "$t0"; then
        say "gregor did not answer on 127.0.0.1:$PORT"
        cat "$out.err" >&2
        exit 1
    fi
    for ((i = 0; i < 100; i++)); do
        ready=$(sed -n 's/^gregor ready in \([0-9]*\) ms.*/\1/p' "$out" | head -1)
        [[ -n $ready ]] && break
        sleep 0.05
    done
    sleep 1
    read -r rss _ < <(py proc.py mem "$GREGOR_PID")
    printf '{"broker":"gregor","event":"start","run":%d,"group":"%s","ready_line_ms":%s,"first_answer_ms":%s,"idle_rss_kib":%s}\n' \
        "$1" "$2" "${ready:-null}" "$FIRST_ANSWER_MS" "${rss:-null}" >>"$WORK/brokers.jsonl"
    say "gregor ($2 group) ready: ${ready:-?} ms by its own line, first ApiVersions answer after $FIRST_ANSWER_MS ms, idle RSS $((${rss:-0} / 1024)) MiB"
    warm_up gregor "127.0.0.1:$PORT"
}

stop_broker() { # label pid run group
    local rss hwm
    read -r rss hwm < <(py proc.py mem "$2")
    printf '{"broker":"%s","event":"stop","run":%d,"group":"%s","rss_kib":%s,"hwm_kib":%s}\n' \
        "$1" "$3" "$4" "${rss:-null}" "${hwm:-null}" >>"$WORK/brokers.jsonl"
    stop_group "$2" 30
}

start_other() {
    local t0 out="$WORK/logs/$OTHER_NAME.out" rss
    probe_start "$OTHER_BOOTSTRAP" 300
    t0=$EPOCHREALTIME
    spawn "$out" taskset -c 0 bash -c "$OTHER_CMD"
    OTHER_PID=$SPAWNED
    if ! probe_wait "$t0"; then
        say "$OTHER_NAME did not answer on $OTHER_BOOTSTRAP within 300 s"
        tail -20 "$out" "$out.err" >&2
        exit 1
    fi
    sleep 1
    read -r rss _ < <(py proc.py mem "$OTHER_PID")
    printf '{"broker":"%s","event":"start","run":0,"group":"all","ready_line_ms":null,"first_answer_ms":%s,"idle_rss_kib":%s}\n' \
        "$OTHER_NAME" "$FIRST_ANSWER_MS" "${rss:-null}" >>"$WORK/brokers.jsonl"
    say "$OTHER_NAME ready: first ApiVersions answer after $FIRST_ANSWER_MS ms"
}

# sink_start / sink_stop: `gregor perf sink`, a fake broker that answers Produce at once
# without keeping anything, on CPU 0 where the broker would run; sink_start fails if it
# does not answer.
sink_start() {
    local port=$((PORT + 1))
    probe_start "127.0.0.1:$port" 30
    spawn "$WORK/logs/sink.out" taskset -c 0 "$BIN" perf sink --listen "127.0.0.1:$port"
    SINK=$SPAWNED
    if ! probe_wait "$EPOCHREALTIME"; then
        say "    gregor perf sink did not answer on 127.0.0.1:$port"
        stop_group "$SINK" 5
        return 1
    fi
}
sink_stop() { stop_group "$SINK" 10; }

# The load generators' own ceiling: each client producing the baseline cell to the sink,
# once per run ($1). Recorded as cell "sink"; the report puts it beside the machine's
# ceilings, with the base cell's ratio to it run by run.
measure_sink() {
    local run=$1 port=$((PORT + 1)) cl out records
    local quick=()
    ((QUICK)) && quick=(--quick)
    records=$("$PYTHON" "$HERE/report.py" matrix "${quick[@]}" --cells base | awk '{ print $7 }')
    for cl in "${CLIENT_LIST[@]}"; do
        # librdkafka asks for APIs the sink does not answer and only times out.
        [[ $cl == rdkafka ]] && continue
        out="$WORK/logs/r$run-sink-$cl"
        say "  run $run: the load generator's ceiling: $cl producing to gregor perf sink"
        sink_start || return 0
        prefault
        # shellcheck disable=SC2046
        run_client "$out" "$(limit_for "$records" 1024)" "$cl" produce \
            $(produce_args "127.0.0.1:$port" bench-sink 1 1024 1 none "$records")
        record "$run" default sink produce sink "$cl" produce "$REAPED" null null "$out"
        sink_stop
    done
}

# The floor under the fixed-rate latency: `gregor perf produce` at FIXED_RATE to the sink,
# as is and awake, once per run, recorded as cell "sink" with the lat-10k workloads; what a
# broker adds to the ack latency is the difference. (rdkafka_performance cannot take part:
# the sink answers too few of the APIs librdkafka asks for.)
measure_sink_latency() {
    local port=$((PORT + 1)) run w out n=$((FIXED_RATE * LATENCY_SECONDS))
    for ((run = 1; run <= RUNS; run++)); do
        for w in latency-10k latency-10k-awake; do
            out="$WORK/logs/r$run-sink-$w-gregor-perf"
            say "  run $run: the latency floor: gregor-perf at $FIXED_RATE records/s to gregor perf sink ($w)"
            sink_start || return 0
            prefault
            [[ $w == *-awake ]] && awake_start
            # shellcheck disable=SC2046
            run_client "$out" "$(limit_for "$n" 1024 "$FIXED_RATE")" gregor-perf produce \
                $(produce_args "127.0.0.1:$port" bench-sink 1 1024 1 none "$n" "$FIXED_RATE" "$FIXED_RATE_LINGER_MS")
            awake_stop
            record "$run" default sink "$w" sink gregor-perf produce "$REAPED" null "$FIXED_RATE" "$out"
            sink_stop
        done
    done
}

# ---------------------------------------------------------------------------
# One cell on one broker with one client, every workload of the cell in order.

run_cell() { # run group cell size acks codec partitions records workloads broker bootstrap bpid client
    local run=$1 group=$2 cell=$3 size=$4 acks=$5 codec=$6 parts=$7 records=$8 workloads=$9
    local broker=${10} bootstrap=${11} bpid=${12} cl=${13}
    local base="bench-$cell-r$run-$broker-$cl-$RANDOM" produced="" max_rate="" w topic out cpu0 cpu1 cpu
    local prc crc pout cout rate n linger
    local cfg
    cfg=$(topic_config "$group")
    IFS=, read -r -a wl <<<"$workloads"
    for w in "${wl[@]}"; do
        out="$WORK/logs/r$run-$cell-$w-$broker-$cl"
        say "  run $run: $cell $w on $broker with $cl"
        case $w in
            produce)
                topic="$base-p"
                # shellcheck disable=SC2086
                kafka create-topic "$bootstrap" "$topic" "$parts" $cfg
                prefault
                cpu0=$(cpu_of "$bpid")
                # shellcheck disable=SC2046
                run_client "$out" "$(limit_for "$records" "$size")" "$cl" produce \
                    $(produce_args "$bootstrap" "$topic" "$parts" "$size" "$acks" "$codec" "$records")
                cpu1=$(cpu_of "$bpid")
                cpu=$(cpu_delta "$cpu0" "$cpu1")
                record "$run" "$group" "$cell" produce "$broker" "$cl" produce "$REAPED" "$cpu" null "$out"
                if [[ $REAPED == 0 && $LAST_RESULT != null ]]; then
                    max_rate=$(records_per_s "$LAST_RESULT")
                    produced=$topic
                else
                    kafka delete-topic "$bootstrap" "$topic" || true
                fi
                ;;
            consume)
                if [[ -n $produced ]]; then
                    topic=$produced
                else
                    topic="$base-c"
                    # shellcheck disable=SC2086
                    kafka create-topic "$bootstrap" "$topic" "$parts" $cfg
                    # shellcheck disable=SC2046
                    run_client "$out.preload" "$(limit_for "$records" "$size")" "$cl" produce \
                        $(produce_args "$bootstrap" "$topic" "$parts" "$size" 1 "$codec" "$records")
                fi
                prefault
                cpu0=$(cpu_of "$bpid")
                # shellcheck disable=SC2046
                run_client "$out" "$(limit_for "$records" "$size")" "$cl" consume \
                    $(consume_args "$bootstrap" "$topic" "$records")
                cpu1=$(cpu_of "$bpid")
                record "$run" "$group" "$cell" consume "$broker" "$cl" consume "$REAPED" "$(cpu_delta "$cpu0" "$cpu1")" null "$out"
                kafka delete-topic "$bootstrap" "$topic" || true
                produced=""
                ;;
            both | latency | latency-10k | latency-10k-awake)
                n=$records rate=0 linger=$LINGER_MS topic="$base-${w:0:1}"
                if [[ $w == latency ]]; then
                    if [[ -z $max_rate ]]; then
                        say "    skipped: no produce rate measured in this cell"
                        continue
                    fi
                    rate=$(awk -v r="$max_rate" 'BEGIN { r = int(r / 2); print (r < 1 ? 1 : r) }')
                    n=$((rate * LATENCY_SECONDS))
                elif [[ $w == latency-10k* ]]; then
                    rate=$FIXED_RATE linger=$FIXED_RATE_LINGER_MS n=$((FIXED_RATE * LATENCY_SECONDS)) topic="$base-$w"
                fi
                # shellcheck disable=SC2086
                kafka create-topic "$bootstrap" "$topic" "$parts" $cfg
                prefault
                [[ $w == *-awake ]] && awake_start
                cpu0=$(cpu_of "$bpid")
                cout="$out.consume" pout="$out.produce"
                # shellcheck disable=SC2046
                client_spawn "$cout" "$(limit_for "$n" "$size" "$rate")" "$cl" consume \
                    $(consume_args "$bootstrap" "$topic" "$n")
                local consumer=$SPAWNED
                sleep 1
                # shellcheck disable=SC2046
                run_client "$pout" "$(limit_for "$n" "$size" "$rate")" "$cl" produce \
                    $(produce_args "$bootstrap" "$topic" "$parts" "$size" "$acks" "$codec" "$n" "$rate" "$linger")
                prc=$REAPED
                if ((prc != 0)); then # the consumer cannot get its records: stop it now
                    stop_group "$consumer" 10
                    crc=1
                else
                    reap "$consumer"
                    crc=$REAPED
                fi
                cpu1=$(cpu_of "$bpid")
                awake_stop
                cpu=$(cpu_delta "$cpu0" "$cpu1")
                local rate_json=null
                [[ $w == latency* ]] && rate_json=$rate
                record "$run" "$group" "$cell" "$w" "$broker" "$cl" produce "$prc" "$cpu" "$rate_json" "$pout"
                record "$run" "$group" "$cell" "$w" "$broker" "$cl" consume "$crc" "$cpu" "$rate_json" "$cout"
                kafka delete-topic "$bootstrap" "$topic" || true
                ;;
        esac
    done
    if [[ -n $produced ]]; then kafka delete-topic "$bootstrap" "$produced" || true; fi
}
cpu_delta() { if [[ $1 == null || $2 == null ]]; then echo null; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", b - a }'; fi; }

# ---------------------------------------------------------------------------
# Main

main() {
    (($(nproc --all) >= 2)) || { say "needs at least 2 CPUs (the broker on CPU 0, the clients on CPU 1)"; exit 1; }
    install_missing taskset=util-linux setsid=util-linux chrt=util-linux timeout=coreutils awk=gawk
    build_gregor
    HAS_PERF=0
    "$BIN" perf --help >/dev/null 2>&1 && HAS_PERF=1
    if [[ -z $CLIENTS ]]; then
        if ((HAS_PERF)); then CLIENTS=gregor-perf,rdkafka; else
            CLIENTS=rdkafka
            say "note: this gregor has no 'perf' command: rdkafka_performance only, ceilings by scripts/bench/ceilings.py"
        fi
    fi
    IFS=, read -r -a CLIENT_LIST <<<"$CLIENTS"
    local c
    for c in "${CLIENT_LIST[@]}"; do
        case $c in
            gregor-perf) ((HAS_PERF)) || { say "$BIN has no 'perf' command"; exit 1; } ;;
            rdkafka) ;;
            *) say "unknown client $c (gregor-perf, rdkafka)"; exit 2 ;;
        esac
    done
    [[ ,$CLIENTS, == *,rdkafka,* ]] && build_rdkafka

    WORK="$TARGET_DIR/bench/runs/$(date -u +%Y%m%d-%H%M%S)"
    mkdir -p "$WORK/logs"
    DATA_PARENT=${DATA_PARENT:-$WORK/data}
    mkdir -p "$DATA_PARENT"
    DATA_PARENT=$(cd "$DATA_PARENT" && pwd)
    if [[ -z $OUT ]]; then
        if ((QUICK)); then OUT="$WORK/benchmarks.md"; else OUT=docs/benchmarks.md; fi
    fi
    if "$PYTHON" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)' "$PORT" 2>/dev/null; then
        say "port $PORT is in use: stop what listens there or pass --port"
        exit 1
    fi

    # From here on this script and the clients it starts run on CPU 1.
    taskset -cp 1 $$ >/dev/null

    local brokers=gregor
    [[ -n $OTHER_BOOTSTRAP ]] && brokers+=",$OTHER_NAME"
    local gregor_version librdkafka_version=""
    gregor_version=$("$BIN" --version 2>/dev/null || echo "?")
    [[ -n ${RDKAFKA_BIN:-} ]] && librdkafka_version="$RDKAFKA_VERSION"
    py report.py config --out "$WORK/config.json" "quick=$QUICK" "runs=$RUNS" "clients=$CLIENTS" "has_perf=$HAS_PERF" \
        "brokers=$brokers" "gregor_version=$gregor_version" "librdkafka_version=$librdkafka_version" \
        "other_broker=${OTHER_CMD:-$OTHER_BOOTSTRAP}" "other_cmd=$([[ -n $OTHER_CMD ]] && echo true || echo false)" \
        "prefault_mib=$PREFAULT_MIB" "warmup_records=$WARMUP_RECORDS" "batch_bytes=$BATCH_BYTES" \
        "linger_ms=$LINGER_MS" "max_in_flight=$MAX_IN_FLIGHT" "latency_seconds=$LATENCY_SECONDS" \
        "fixed_rate=$FIXED_RATE" "fixed_rate_linger_ms=$FIXED_RATE_LINGER_MS" \
        "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    local busy0 steal0 own0 wall0=$SECONDS
    cpu_snapshot >"$WORK/cpu-start"
    read -r busy0 steal0 own0 <"$WORK/cpu-start"
    py report.py machine --data-dir "$DATA_PARENT" >"$WORK/machine.json"

    log "ceilings"
    if ((HAS_PERF)); then
        taskset -c 0,1 "$BIN" perf ceilings --dir "$DATA_PARENT" --json >"$WORK/logs/ceilings.out" 2>"$WORK/logs/ceilings.err" || true
    else
        py ceilings.py --dir "$DATA_PARENT" --seconds "$((QUICK ? 1 : 3))" >"$WORK/logs/ceilings.out" \
            2>"$WORK/logs/ceilings.err" || true
    fi
    json_last "$WORK/logs/ceilings.out" >"$WORK/ceilings.json"
    say "$(cat "$WORK/ceilings.json")"
    if ((HAS_PERF)) && [[ $MATRIX == *latency-10k* ]]; then measure_sink_latency; fi

    if [[ -n $OTHER_CMD ]]; then
        log "starting $OTHER_NAME: $OTHER_CMD"
        start_other
    fi
    if [[ -n $OTHER_BOOTSTRAP ]]; then
        warm_up "$OTHER_NAME" "$OTHER_BOOTSTRAP"
    fi

    local run group cell size acks codec parts records workloads broker cl
    for ((run = 1; run <= RUNS; run++)); do
        # In every run, so that the base cell's ratio to it comes from one run.
        if ((HAS_PERF)) && grep -q "^default base " <<<"$MATRIX"; then measure_sink "$run"; fi
        for group in default durable; do
            grep -q "^$group " <<<"$MATRIX" || continue
            log "run $run of $RUNS, $group group"
            start_gregor "$run" "$group"
            while read -r -u 3 g cell size acks codec parts records workloads; do
                [[ $g == "$group" ]] || continue
                for broker in gregor ${OTHER_BOOTSTRAP:+"$OTHER_NAME"}; do
                    for cl in "${CLIENT_LIST[@]}"; do
                        if [[ $broker == gregor ]]; then
                            run_cell "$run" "$group" "$cell" "$size" "$acks" "$codec" "$parts" "$records" "$workloads" \
                                gregor "127.0.0.1:$PORT" "$GREGOR_PID" "$cl"
                        else
                            run_cell "$run" "$group" "$cell" "$size" "$acks" "$codec" "$parts" "$records" "$workloads" \
                                "$OTHER_NAME" "$OTHER_BOOTSTRAP" "$OTHER_PID" "$cl"
                        fi
                    done
                done
            done 3<<<"$MATRIX"
            stop_broker gregor "$GREGOR_PID" "$run" "$group"
            ((KEEP)) || rm -rf "$DATA_PARENT/gregor-r$run-$group"
        done
    done
    if [[ -n $OTHER_PID ]]; then
        if [[ -n $OTHER_CMD ]]; then
            stop_broker "$OTHER_NAME" "$OTHER_PID" 0 all
        else
            read -r rss hwm < <(py proc.py mem "$OTHER_PID")
            printf '{"broker":"%s","event":"stop","run":0,"group":"all","rss_kib":%s,"hwm_kib":%s}\n' \
                "$OTHER_NAME" "${rss:-null}" "${hwm:-null}" >>"$WORK/brokers.jsonl"
        fi
    fi

    local busy1 steal1 own1
    cpu_snapshot >"$WORK/cpu-end"
    read -r busy1 steal1 own1 <"$WORK/cpu-end"
    py report.py config --out "$WORK/config.json" --update "wall_s=$((SECONDS - wall0))" \
        "others_cpu_s=$(awk -v b0="$busy0" -v b1="$busy1" -v o0="$own0" -v o1="$own1" \
            'BEGIN { x = (b1 - b0) - (o1 - o0); printf "%.1f\n", (x < 0 ? 0 : x) }')" \
        "steal_s=$(awk -v a="$steal0" -v b="$steal1" 'BEGIN { printf "%.1f\n", b - a }')"
    log "report ($OUT)"
    mkdir -p "$(dirname "$OUT")"
    py report.py render "$WORK" --out "$OUT"
    say ""
    say "written: $OUT; raw results: $WORK"
}

main
