#!/usr/bin/env python3
"""`gregor perf produce|consume` on librdkafka's rdkafka_performance.

Takes the same options as `gregor perf produce` and `gregor perf consume` (the subset
scripts/bench.sh uses), runs rdkafka_performance with the matching librdkafka settings
and, with --json, prints one JSON object as the last stdout line in gregor perf's
shape: {"mode","records","bytes","seconds","records_per_s","mb_per_s","errors",
"latency_ms":{"p50","p99","p999","max"}} (MB = 10^6 bytes).

    rdkafka_perf.py --bin PATH produce --bootstrap HOST:PORT --topic T [--acks -1|0|1] ...
    rdkafka_perf.py --bin PATH consume --bootstrap HOST:PORT --topic T --num-records N ...

Latency: the producer always runs with -l, which stamps each payload with the wall
clock and reports the delivery-report latency (produce to acknowledgement); the
consumer runs with -l too and reports now minus the stamp (end to end), which only
means something while a producer runs at the same time. rdkafka_performance is built
with scripts/bench/rdkafka_performance-bench.patch: BENCH_RANDOM_RATIO makes that share
of every payload random (--random-ratio), and -r (--throughput) keeps to an absolute
schedule (unpatched, the time spent producing adds to every interval and a producer
asked for 150k records/s sends about 85k).

The binary comes from --bin or $RDKAFKA_PERFORMANCE. SIGTERM or SIGINT is passed on
to rdkafka_performance as SIGINT, which makes it print its summary; the adapter then
prints what was done and exits 1.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import kafka  # noqa: E402

PRODUCED = re.compile(
    r"^% (\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset -?\d+, (\d+) failed\) in (\d+)ms"
)
CONSUMED = re.compile(r"^% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms")


def percentiles(values_us):
    """p50/p99/p999/max in ms of a list of microsecond samples (nearest rank)."""
    if not values_us:
        return None
    values = sorted(values_us)

    def rank(q):
        return values[min(len(values) - 1, max(0, int(q * len(values) + 0.999999) - 1))] / 1000.0

    return {"p50": rank(0.50), "p99": rank(0.99), "p999": rank(0.999), "max": values[-1] / 1000.0}


def read_latencies(path):
    try:
        with open(path) as f:
            return [int(line) for line in f.read().split() if line.lstrip("-").isdigit()]
    except FileNotFoundError:
        return []


def run(cmd, env):
    """Runs rdkafka_performance, passing SIGTERM/SIGINT on as SIGINT; returns (rc, stdout, interrupted)."""
    # Its own process group: a signal to ours (timeout, Ctrl-C, scripts/bench.sh's
    # clean-up) reaches it only as the SIGINT below, so it still prints its summary.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                            start_new_session=True)
    interrupted = []

    def forward(signum, _frame):
        interrupted.append(signum)
        try:
            proc.send_signal(signal.SIGINT)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    out, err = proc.communicate()
    for line in err.splitlines():
        if "CONFWARN" not in line:
            print(line, file=sys.stderr)
    return proc.returncode, out, bool(interrupted)


def result(mode, records, nbytes, seconds, errors, latency):
    seconds = max(seconds, 1e-6)
    return {
        "mode": mode,
        "records": records,
        "bytes": nbytes,
        "seconds": round(seconds, 6),
        "records_per_s": round(records / seconds, 1),
        "mb_per_s": round(nbytes / seconds / 1e6, 3),
        "errors": errors,
        "latency_ms": latency,
        "client": "rdkafka_performance",
    }


def produce(args, binary):
    if args.producers != 1:
        raise SystemExit("rdkafka_perf.py: only --producers 1")
    if args.num_records is None:
        raise SystemExit("rdkafka_perf.py: produce needs --num-records")
    acks = {"all": "-1"}.get(args.acks, args.acks)
    with tempfile.TemporaryDirectory(prefix="rdkperf-") as tmp:
        latency_file = os.path.join(tmp, "latency")
        cmd = [binary, "-P", "-t", args.topic, "-b", args.bootstrap,
               "-s", str(args.record_size_bytes), "-c", str(args.num_records), "-a", acks,
               "-z", args.compression,
               "-X", f"linger.ms={args.linger_ms}",
               "-X", f"batch.size={args.batch_size_bytes}",
               "-X", "batch.num.messages=1000000",
               "-X", f"max.in.flight.requests.per.connection={args.max_in_flight}",
               "-l", "-A", latency_file]
        if args.throughput and args.throughput > 0:
            cmd += ["-r", str(args.throughput)]
        env = dict(os.environ, BENCH_RANDOM_RATIO=str(args.random_ratio))
        rc, out, interrupted = run(cmd, env)
        latencies = read_latencies(latency_file)
    if not args.json:
        sys.stdout.write(out)
    matches = [PRODUCED.match(line) for line in out.splitlines()]
    matches = [m for m in matches if m]
    if not matches:
        sys.stdout.write(out)
        raise SystemExit(f"rdkafka_performance exited {rc} without a summary")
    _, _, delivered, failed, ms = (int(x) for x in matches[-1].groups())
    errors = failed + max(0, args.num_records - delivered - failed)
    res = result("produce", delivered, delivered * args.record_size_bytes, ms / 1000.0, errors,
                 percentiles(latencies))
    print(json.dumps(res) if args.json else res)
    return 1 if interrupted or errors else 0


def consume(args, binary):
    if args.consumers != 1:
        raise SystemExit("rdkafka_perf.py: only --consumers 1")
    if args.num_records is None:
        raise SystemExit("rdkafka_perf.py: consume needs --num-records")
    with tempfile.TemporaryDirectory(prefix="rdkperf-") as tmp:
        latency_file = os.path.join(tmp, "latency")
        cmd = [binary, "-C", "-t", args.topic, "-b", args.bootstrap,
               "-o", {"earliest": "beginning", "latest": "end"}[args.from_],
               "-c", str(args.num_records),
               "-X", f"fetch.wait.max.ms={args.fetch_max_wait_ms}",
               "-l", "-A", latency_file]
        if args.group:
            cmd[1] = "-G" + args.group
        else:
            count = partition_count(args.bootstrap, args.topic)
            for partition in range(count):
                cmd += ["-p", str(partition)]
        rc, out, interrupted = run(cmd, dict(os.environ))
        latencies = read_latencies(latency_file)
    if not args.json:
        sys.stdout.write(out)
    matches = [CONSUMED.match(line) for line in out.splitlines()]
    matches = [m for m in matches if m]
    if not matches:
        sys.stdout.write(out)
        raise SystemExit(f"rdkafka_performance exited {rc} without a summary")
    records, nbytes, ms = (int(x) for x in matches[-1].groups())
    errors = max(0, args.num_records - records)
    res = result("consume", records, nbytes, ms / 1000.0, errors, percentiles(latencies))
    print(json.dumps(res) if args.json else res)
    return 1 if interrupted or errors or rc else 0


def partition_count(bootstrap, topic):
    conn = kafka.Connection(bootstrap)
    try:
        error, partitions = conn.metadata(topic)
    finally:
        conn.close()
    if error or not partitions:
        raise SystemExit(f"rdkafka_perf.py: no partitions for {topic} (error {error})")
    return len(partitions)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.environ.get("RDKAFKA_PERFORMANCE"), help="rdkafka_performance")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("produce")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, help="ignored: scripts/bench.sh creates the topic")
    p.add_argument("--record-size-bytes", type=int, default=1024)
    p.add_argument("--num-records", type=int)
    p.add_argument("--throughput", type=float, default=0)
    p.add_argument("--acks", default="1", choices=["-1", "0", "1", "all"])
    p.add_argument("--compression", default="none", choices=["none", "gzip", "snappy", "lz4", "zstd"])
    p.add_argument("--batch-size-bytes", type=int, default=16384)
    p.add_argument("--linger-ms", type=int, default=0)
    p.add_argument("--producers", type=int, default=1)
    p.add_argument("--max-in-flight", type=int, default=5)
    p.add_argument("--random-ratio", type=float, default=0.5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=produce)

    p = sub.add_parser("consume")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group")
    p.add_argument("--consumers", type=int, default=1)
    p.add_argument("--num-records", type=int)
    p.add_argument("--fetch-max-wait-ms", type=int, default=500)
    p.add_argument("--from", dest="from_", default="earliest", choices=["earliest", "latest"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=consume)

    args = parser.parse_args(argv)
    if not args.bin:
        raise SystemExit("rdkafka_perf.py: --bin or $RDKAFKA_PERFORMANCE")
    return args.func(args, args.bin)


if __name__ == "__main__":
    sys.exit(main())
