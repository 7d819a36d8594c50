#!/usr/bin/env python3
"""The matrix, the machine description and the report of scripts/bench.sh.
Standard library only.

    report.py matrix [--quick] [--cells a,b]   one line per cell, in the order to run them:
                                               group cell size acks codec partitions records workloads
    report.py machine --data-dir DIR           the machine description (JSON)
    report.py config --out FILE [--update] KEY=VALUE...   writes the run's settings (JSON)
    report.py render WORK_DIR [--out FILE]     prints the tables; writes the markdown to FILE

WORK_DIR holds what scripts/bench.sh recorded: config.json, machine.json,
ceilings.json, results.jsonl (one line per client process) and brokers.jsonl (one
line per broker start and stop).
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from collections import OrderedDict, defaultdict

# ---------------------------------------------------------------------------
# The matrix

BASE = {"size": 1024, "acks": "1", "codec": "none", "partitions": 1}

# (name, broker group, changes from BASE, workloads of the full run, workloads of --quick, why)
# Groups share one fresh broker: "default", or "durable" (log.flush.interval.messages=1,
# and the topic config flush.messages=1 so that a second broker syncs the same way).
CELLS = [
    ("base", "default", {}, ["produce", "consume", "both", "latency"], ["produce", "consume", "both", "latency"],
     "the baseline every other cell changes one or a few dimensions of"),
    ("size-100", "default", {"size": 100}, ["produce", "consume", "both"], ["produce"],
     "per-record cost: small records"),
    ("size-16k", "default", {"size": 16384}, ["produce", "consume"], [],
     "per-byte cost: large records"),
    ("acks-0", "default", {"acks": "0"}, ["produce"], [], "no acknowledgement"),
    ("acks-all", "default", {"acks": "all"}, ["produce"], [], "acks=all on one node (the purgatory path)"),
    ("lz4", "default", {"codec": "lz4"}, ["produce", "consume"], [], "compressed batches"),
    ("parts-16", "default", {"partitions": 16}, ["produce", "consume", "both"], [],
     "batches spread over partitions"),
    ("parts-256", "default", {"partitions": 256}, ["produce", "consume"], ["produce"],
     "per-partition overhead: thin batches, many fetch partitions"),
    ("small-lz4-16", "default", {"size": 100, "codec": "lz4", "partitions": 16}, ["produce", "consume", "both"], [],
     "telemetry-like: many small compressed records over partitions"),
    ("small-256", "default", {"size": 100, "partitions": 256}, ["produce"], [],
     "the worst per-partition case: small records over 256 partitions"),
    ("lat-10k", "default", {}, ["latency-10k", "latency-10k-awake"], ["latency-10k", "latency-10k-awake"],
     "the latency target's fixed rate: 10,000 records/s, as is and with both CPUs kept awake"),
    ("typical", "default", {"acks": "all", "codec": "lz4", "partitions": 16},
     ["produce", "consume", "both", "latency"], [],
     "a common production producer: acks=all, lz4, 16 partitions"),
    ("durable", "durable", {"acks": "all"}, ["produce", "latency"], ["produce"],
     "fsync before every acknowledgement (durable mode)"),
    ("durable-16k", "durable", {"acks": "all", "size": 16384}, ["produce"], [],
     "durable mode against the disk's fdatasync ceiling"),
    ("durable-16", "durable", {"acks": "all", "partitions": 16}, ["produce"], [],
     "durable mode with appends to 16 partitions sharing syncs"),
]
WORKLOADS = ["produce", "consume", "both", "latency", "latency-10k", "latency-10k-awake"]
# The fixed-rate latency workloads and what the report calls them.
FIXED_RATE_WORKLOADS = {"latency-10k": "as is", "latency-10k-awake": "awake"}
# Issue 6's latency target at 10,000 records/s of 1 KiB: p99 in ms.
TARGET_ACK_P99_MS, TARGET_E2E_P99_MS = 2.0, 10.0
# Its throughput target: the base cell's produce at least this share of the same client against the sink.
TARGET_SINK_RATIO = 0.8
# Its efficiency target at 1 KiB records: MB (10^6 bytes) per broker CPU-second.
TARGET_MB_PER_CPU_S = {"produce": 2000.0, "consume": 3000.0}
# The kernel's own cost of each path, measured without a broker by `gregor perf ceilings`.
KERNEL_FLOOR_KEYS = {"produce": "socket_to_file_mb_per_cpu_s", "consume": "sendfile_mb_per_cpu_s"}
GROUPS = ["default", "durable"]

# Records per produce (and consume) in one run: about 1 GiB (full) or 256-400 MB (quick)
# of payload, which the machines this was written on move in 2-10 s.
RECORDS = {False: {100: 4_000_000, 1024: 1_000_000, 16384: 64_000},
           True: {100: 1_500_000, 1024: 400_000, 16384: 24_000}}


def cells(quick=False, only=None):
    out = []
    for name, group, change, full, quick_workloads, why in CELLS:
        if only and name not in only:
            continue
        shape = dict(BASE, **change)
        workloads = quick_workloads if quick else full
        if workloads:
            out.append({"name": name, "group": group, "shape": shape, "workloads": workloads, "why": why})
    return out


def cmd_matrix(args):
    only = set(filter(None, (args.cells or "").split(",")))
    unknown = only - {c[0] for c in CELLS}
    if unknown:
        print(f"unknown cells: {', '.join(sorted(unknown))}; known: {', '.join(c[0] for c in CELLS)}",
              file=sys.stderr)
        return 2
    for group in GROUPS:
        for cell in cells(args.quick, only):
            if cell["group"] == group:
                s = cell["shape"]
                print(group, cell["name"], s["size"], s["acks"], s["codec"], s["partitions"],
                      RECORDS[args.quick][s["size"]], ",".join(cell["workloads"]))
    return 0


# ---------------------------------------------------------------------------
# The machine


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def run(cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def mount_of(path):
    path = os.path.realpath(path)
    best = None
    for line in read("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        mount_point = fields[4].replace("\\040", " ")
        if path == mount_point or path.startswith(mount_point.rstrip("/") + "/") or mount_point == "/":
            if best is None or len(mount_point) >= len(best[0]):
                options = fields[5].split(",") + (rest[2].split(",") if len(rest) > 2 else [])
                best = (mount_point, rest[0], rest[1], ",".join(dict.fromkeys(options)))
    return best


def block_device(source):
    name = os.path.basename(os.path.realpath(source)) if source.startswith("/dev/") else ""
    if not name:
        return {}
    base = name
    while base and not os.path.exists(f"/sys/block/{base}"):
        base = base[:-1]
    if not base:
        return {"device": source}
    info = {"device": source}
    model = read(f"/sys/block/{base}/device/model")
    if not model and os.path.exists(f"/sys/block/{base}/device/driver"):
        model = os.path.basename(os.path.realpath(f"/sys/block/{base}/device/driver"))
    if model:
        info["model"] = model
    rotational = read(f"/sys/block/{base}/queue/rotational")
    info["rotational (as reported)"] = {"0": "no", "1": "yes"}.get(rotational, rotational or "?")
    sectors = read(f"/sys/block/{base}/size")
    if sectors.isdigit():
        info["size_gb"] = round(int(sectors) * 512 / 1e9)
    info["scheduler"] = read(f"/sys/block/{base}/queue/scheduler")
    return info


def machine(data_dir):
    cpuinfo = read("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or "?")
    flags = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "")
    meminfo = {line.split(":")[0]: line.split()[1] for line in read("/proc/meminfo").splitlines() if ":" in line}
    os_name = next((line.split("=", 1)[1].strip('"') for line in read("/etc/os-release").splitlines()
                    if line.startswith("PRETTY_NAME=")), "?")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    info = OrderedDict()
    info["cpu"] = model
    info["cores"] = os.cpu_count()
    info["virtualized"] = (run(["systemd-detect-virt", "--vm"]) or "yes") if " hypervisor" in flags else "no"
    info["ram_gib"] = round(int(meminfo.get("MemTotal", "0")) / 2**20, 1)
    info["os"] = os_name
    info["kernel"] = platform.release()
    driver = read("/sys/devices/system/cpu/cpuidle/current_driver")
    if driver:
        # How an idle CPU waits decides what a wake-up costs, the bulk of a p99 at low rates.
        idle = f"{driver} driver, {read('/sys/devices/system/cpu/cpuidle/current_governor', '?')} governor"
        poll = read("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
        if poll:
            idle += f", guest_halt_poll_ns={poll}"
        info["cpuidle"] = idle
    balloon = "/sys/bus/virtio/drivers/virtio_balloon"
    if os.path.isdir(balloon):
        feats = [read(os.path.join(balloon, d, "features")) for d in os.listdir(balloon) if d.startswith("virtio")]
        # VIRTIO_BALLOON_F_REPORTING is feature bit 5.
        info["free_page_reporting"] = "yes" if any(len(f) > 5 and f[5] == "1" for f in feats) else "no"
    mount = mount_of(data_dir)
    info["data_dir"] = os.path.realpath(data_dir)
    if mount:
        info["data_fs"] = {"mount_point": mount[0], "type": mount[1], "source": mount[2], "options": mount[3]}
        info["data_disk"] = block_device(mount[2])
    info["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = run(["git", "rev-parse", "HEAD"], cwd=repo)
    dirty = bool(run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo))
    info["git_commit"] = (commit or "?") + (" (with uncommitted changes)" if dirty else "")
    info["git_branch"] = run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=repo)
    info["rustc"] = run(["rustc", "--version"])
    return info


def cmd_machine(args):
    print(json.dumps(machine(args.data_dir), indent=1))
    return 0


def cmd_config(args):
    config = load_json(args.out, {}) if args.update else {}
    for pair in args.pairs:
        key, _, value = pair.partition("=")
        try:
            config[key] = json.loads(value)
        except ValueError:
            config[key] = value
    with open(args.out, "w") as f:
        json.dump(config, f, indent=1)
        f.write("\n")
    return 0


# ---------------------------------------------------------------------------
# The report


def load_jsonl(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                print(f"{path}:{number}: not JSON, skipped: {line[:200]}", file=sys.stderr)
    return rows


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def mbps(result):
    """MB/s (10^6 bytes) from the bytes and seconds a client reports, whatever its own mb_per_s means."""
    seconds = result.get("seconds") or 0
    return result.get("bytes", 0) / seconds / 1e6 if seconds > 0 else None


def rps(result):
    seconds = result.get("seconds") or 0
    return result.get("records", 0) / seconds if seconds > 0 else None


def ok(row):
    result = row.get("result")
    return bool(result) and row.get("rc", 0) == 0 and not result.get("errors") and (result.get("seconds") or 0) > 0


def spread(values, fmt, runs):
    """median, with (min-max) when there is more than one run."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    text = fmt(statistics.median(values))
    if runs > 1 and len(values) > 1:
        text += f" ({fmt(min(values))}-{fmt(max(values))})"
    if len(values) < runs:
        text += f" [{len(values)}/{runs}]"
    return text


def f_mb(v):
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def f_rate(v):
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.0f}k" if v >= 1e4 else f"{v / 1e3:.1f}k"


def f_count(v):
    return f"{v:,.0f}"


def f_pct(v):
    return f"{v * 100:.0f}%" if v >= 0.1 else f"{v * 100:.1f}%"


def f_ms(v):
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def f_ratio(v):
    return f"{v:.2f}x"


def f_s(v):
    return f"{v:.2f}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def shape_text(shape):
    size = {100: "100 B", 1024: "1 KiB", 16384: "16 KiB"}.get(shape["size"], f"{shape['size']} B")
    return size, shape["acks"], shape["codec"], str(shape["partitions"])


CLIENT_NAMES = {"gregor-perf": "`gregor perf`", "rdkafka": "librdkafka `rdkafka_performance`"}


def render(work):
    config = load_json(os.path.join(work, "config.json"), {})
    mach = load_json(os.path.join(work, "machine.json"), {})
    ceilings = load_json(os.path.join(work, "ceilings.json"), {}) or {}
    results = load_jsonl(os.path.join(work, "results.jsonl"))
    sink_rows = [r for r in results if r.get("cell") == "sink" and r.get("workload", "produce") == "produce"]
    # The fixed-rate producer against the sink: the floor under the fixed-rate latency.
    floor_rows = [r for r in results if r.get("cell") == "sink" and r.get("workload", "produce") != "produce"]
    results = [r for r in results if r.get("cell") != "sink"]
    brokers_log = load_jsonl(os.path.join(work, "brokers.jsonl"))
    runs = int(config.get("runs", 1))
    quick = bool(config.get("quick"))
    brokers = [b for b in config.get("brokers", "gregor").split(",") if b]
    clients = [c for c in config.get("clients", "").split(",") if c]
    for row in results:  # clients and brokers seen but not announced still get reported
        if row.get("client") and row["client"] not in clients:
            clients.append(row["client"])
        if row.get("broker") and row["broker"] not in brokers:
            brokers.append(row["broker"])
    primary = brokers[0] if brokers else "gregor"
    other = brokers[1] if len(brokers) > 1 else None
    loopback = ceilings.get("loopback_tcp_mb_per_s")
    fsync_ceiling = ceilings.get("write_fdatasync_1mib_mb_per_s")
    cell_info = {c["name"]: c for c in cells(quick)}
    cell_info.update({c["name"]: c for c in cells(not quick) if c["name"] not in cell_info})
    cell_order = [c[0] for c in CELLS]

    # (cell, workload, client, broker) -> run -> {"produce": row, "consume": row}
    grid = defaultdict(lambda: defaultdict(dict))
    failures = []
    for row in results + floor_rows:
        key = (row["cell"], row["workload"], row["client"], row["broker"])
        grid[key][row["run"]][row.get("role", row["workload"])] = row
        if not ok(row):
            result = row.get("result") or {}
            why = f"exit {row.get('rc')}" if row.get("rc") else ""
            if result.get("errors"):
                why += f" {result['errors']} errors"
            if not result:
                why += " no result"
            failures.append((row["run"], row["cell"], row["workload"], row.get("role", ""), row["client"],
                             row["broker"], why.strip()))

    def ceiling_for(cell, role):
        if role == "produce" and cell_info.get(cell, {}).get("group") == "durable":
            return fsync_ceiling, "fdatasync"
        return loopback, "loopback"

    def per_run(key, fn):
        """fn(roles) for each run where every role succeeded."""
        values = {}
        for run_no, roles in grid.get(key, {}).items():
            if roles and all(ok(r) for r in roles.values()):
                values[run_no] = fn(roles)
        return values

    def broker_cpu_s(key):
        cpu = per_run(key, lambda r: next(iter(r.values())).get("broker_cpu_s"))
        return {k: v for k, v in cpu.items() if v is not None}

    def mb_per_cpu_s(key):
        """All payload moved per broker CPU-second, one value per run."""
        cpu = broker_cpu_s(key)
        moved = per_run(key, lambda r: sum(x["result"].get("bytes", 0) for x in r.values()))
        return [moved[k] / 1e6 / cpu[k] for k in cpu if k in moved and cpu[k] > 0]

    out = []
    title = "Quick benchmark" if quick else "Benchmarks"
    out.append(f"# {title}\n")
    out.append(
        f"Written by `scripts/bench.sh{' --quick' if quick else ''}` on {mach.get('date', '?')} at commit "
        f"`{mach.get('git_commit', '?')}`. "
        + (f"Each figure is the median of {runs} runs, with the minimum and maximum in parentheses. "
           if runs > 1 else "One run per figure. ")
        + "MB = 10^6 bytes of record payload (keys and headers are empty). "
        "'% of ceiling' divides a throughput by this machine's loopback TCP throughput, or, for "
        "durable produce, by its 1 MiB write+fdatasync throughput (see Ceilings).\n")

    # Machine and ceilings
    out.append("## Machine\n")
    fs = mach.get("data_fs", {})
    disk = mach.get("data_disk", {})
    items = [
        ("CPU", f"{mach.get('cpu', '?')}, {mach.get('cores', '?')} cores"
                + (f" (virtualized: {mach['virtualized']})" if mach.get("virtualized", "no") != "no" else "")),
        ("RAM", f"{mach.get('ram_gib', '?')} GiB"
                + (f"; free page reporting to the host: {mach['free_page_reporting']}"
                   if "free_page_reporting" in mach else "")),
        ("OS, kernel", f"{mach.get('os', '?')}, Linux {mach.get('kernel', '?')}"),
        *([("cpuidle", mach["cpuidle"])] if mach.get("cpuidle") else []),
        ("data directory", f"`{mach.get('data_dir', '?')}` on {fs.get('type', '?')} ({fs.get('source', '?')}, "
                           f"mounted at {fs.get('mount_point', '?')}, {fs.get('options', '')})"),
        ("disk", ", ".join(f"{k}: {v}" for k, v in disk.items()) or "?"),
        ("date", mach.get("date", "?")),
        ("git commit", f"`{mach.get('git_commit', '?')}` ({mach.get('git_branch', '?')})"),
        ("toolchain", mach.get("rustc", "?")),
    ]
    if config.get("loadavg_start"):
        items.append(("load average before the benchmark (1, 5, 15 min)", config["loadavg_start"]))
    if config.get("wall_s") is not None and config.get("others_cpu_s") is not None:
        share = config["others_cpu_s"] / max(1, config["wall_s"])
        # All CPUs' busy time minus what this benchmark's processes used: other processes, and
        # kernel threads (page writeback, for one) working for the benchmark too.
        items.append(("CPU used outside the benchmark's processes",
                      f"{config['others_cpu_s']} CPU-s in {config['wall_s']} s ({share * 100:.0f}% of one core; "
                      "kernel threads included)"
                      + (f", hypervisor steal {config['steal_s']} s" if config.get("steal_s") else "")
                      + (" **(not a quiet machine: figures are low and noisy)**" if share > 0.10 else "")))
    for key in ("gregor_version", "librdkafka_version", "other_broker"):
        if config.get(key):
            items.append((key.replace("_", " "), f"`{config[key]}`" if key == "other_broker" else config[key]))
    out.append("\n".join(f"- {k}: {v}" for k, v in items) + "\n")

    out.append("## Ceilings\n")
    if ceilings:
        by = ceilings.get("measured_by", "`gregor perf ceilings`")
        rows = [
            ("loopback TCP, one connection, CPU 0 to CPU 1", ceilings.get("loopback_tcp_mb_per_s"), "MB/s"),
            ("buffered write to the data directory", ceilings.get("write_mb_per_s"), "MB/s"),
            ("1 MiB write + fdatasync", ceilings.get("write_fdatasync_1mib_mb_per_s"), "MB/s"),
            ("fdatasync latency p50", ceilings.get("fsync_p50_ms"), "ms"),
            ("fdatasync latency p99", ceilings.get("fsync_p99_ms"), "ms"),
            ("socket to file: 1 MiB reads from a loopback peer on CPU 1, each written to a file (no sync)",
             ceilings.get("socket_to_file_mb_per_s"), "MB/s"),
            ("the same, per CPU-second of the process on CPU 0 (a produce's floor)",
             ceilings.get("socket_to_file_mb_per_cpu_s"), "MB/CPU-s"),
            ("file to socket: sendfile of 1 MiB pieces of a cached file to a peer on CPU 1",
             ceilings.get("sendfile_mb_per_s"), "MB/s"),
            ("the same, per CPU-second of the process on CPU 0 (a fetch's floor)",
             ceilings.get("sendfile_mb_per_cpu_s"), "MB/CPU-s"),
        ]
        out.append(table(["ceiling", "value"], [(n, f"{v} {u}" if v is not None else "-") for n, v, u in rows]))
        out.append(f"\nMeasured by {by}.\n")
    else:
        out.append("Not measured: the '% of ceiling' columns are empty.\n")
    if sink_rows:
        lines = []
        for client in dict.fromkeys(row["client"] for row in sink_rows):
            name = CLIENT_NAMES.get(client, client)
            rows_of = [row for row in sink_rows if row["client"] == client]
            good = {row["run"]: row for row in rows_of if ok(row)}
            if not good:
                lines.append(f"- {name}: failed (exit {rows_of[0].get('rc')})")
                continue
            sink_mb = {run_no: mbps(row["result"]) for run_no, row in good.items()}
            line = (f"- {name}: {spread(sink_mb.values(), f_mb, runs)} MB/s, "
                    f"{spread([rps(row['result']) for row in good.values()], f_rate, runs)} records/s")
            base = per_run(("base", "produce", client, primary), lambda r: mbps(r["produce"]["result"]))
            ratios = [base[run_no] / sink_mb[run_no] for run_no in base if sink_mb.get(run_no)]
            if ratios:
                verdict = "yes" if statistics.median(ratios) >= TARGET_SINK_RATIO else "**no**"
                line += (f"; the base cell's produce against {primary} in the same run is "
                         f"{spread(ratios, f_ratio, runs)} of it (target at least {TARGET_SINK_RATIO:g}: {verdict})")
            lines.append(line)
        out.append("The load generators' own ceiling: the baseline cell's produce (1 KiB records, acks=1, one "
                   "partition) against `gregor perf sink`, a fake broker on CPU 0 that discards what it "
                   "receives, once in every run. A produce figure near it is the client's limit rather than "
                   "the broker's.\n")
        if "rdkafka" in clients and not any(row["client"] == "rdkafka" for row in sink_rows):
            lines.append("- librdkafka `rdkafka_performance`: not measured (librdkafka needs APIs the sink does "
                         "not answer)")
        out.append("\n".join(lines) + "\n")

    # Throughput, one table per client
    out.append("## Throughput\n")
    text = ("Produce: records/s and MB/s acknowledged. Consume: records read from the start of a topic that "
            "holds them already. Both: a consumer reading while the producer writes (produce / consume; the "
            "two clients share CPU 1). 'broker CPU s' is the broker's user+system CPU over the measurement; "
            "'MB/CPU-s' divides all payload moved by it.")
    if other:
        text += (f" '{primary}/{other}' is the median over runs of the ratio of the two brokers' MB/s in the "
                 "same run (the brokers take turns cell by cell).")
    if "gregor-perf" not in clients:
        text += " `gregor perf` did not run" + (": this gregor has no `perf` command." if not config.get("has_perf")
                                                 else ".")
    out.append(text + "\n")
    for client in clients:
        keys_present = {(c, w) for (c, w, cl, _b) in grid
                        if cl == client and c != "sink" and w in ("produce", "consume", "both")}
        if not keys_present:
            continue
        header = ["cell", "workload", "size", "acks", "codec", "parts"]
        for broker in brokers:
            label = "" if not other else f" {broker}"
            header += [f"MB/s{label}", f"records/s{label}", f"% of ceiling{label}", f"broker CPU s{label}",
                       f"MB/CPU-s{label}"]
        if other:
            header.append(f"{primary}/{other}")
        rows = []
        for cell in cell_order:
            for workload in WORKLOADS:
                if (cell, workload) not in keys_present:
                    continue
                info = cell_info.get(cell)
                row = [cell, workload, *shape_text(info["shape"] if info else BASE)]
                medians = {}
                for broker in brokers:
                    key = (cell, workload, client, broker)
                    roles = ["produce", "consume"] if workload == "both" else [workload]
                    mb_cols, rate_cols, pct_cols = [], [], []
                    for role in roles:
                        mb = per_run(key, lambda r, role=role: mbps(r[role]["result"]))
                        rate = per_run(key, lambda r, role=role: rps(r[role]["result"]))
                        ceiling, _ = ceiling_for(cell, role)
                        mb_cols.append(spread(mb.values(), f_mb, runs))
                        rate_cols.append(spread(rate.values(), f_rate, runs))
                        pct_cols.append(spread([v / ceiling for v in mb.values()], f_pct, runs) if ceiling else "-")
                        medians[(broker, role)] = mb
                    cpu = broker_cpu_s(key)
                    per_cpu = mb_per_cpu_s(key)
                    row += [" / ".join(mb_cols), " / ".join(rate_cols), " / ".join(pct_cols),
                            spread(cpu.values(), f_s, runs), spread(per_cpu, f_mb, runs)]
                if other:
                    ratios = []
                    for role in (["produce", "consume"] if workload == "both" else [workload]):
                        a, b = medians.get((primary, role), {}), medians.get((other, role), {})
                        values = [a[r] / b[r] for r in a if r in b and b[r]]
                        ratios.append(spread(values, f_ratio, runs))
                    row.append(" / ".join(ratios))
                rows.append(row)
        out.append(f"### {CLIENT_NAMES.get(client, client)}\n")
        out.append(table(header, rows) + "\n")

    # Efficiency against the target and against the kernel's own cost of the same path
    efficiency_rows = []
    for client in clients:
        for cell in cell_order:
            info = cell_info.get(cell)
            shape = info["shape"] if info else BASE
            if not info or info.get("group") != "default" or shape["size"] != 1024 or shape["codec"] != "none":
                continue
            for workload in ("produce", "consume"):
                values = mb_per_cpu_s((cell, workload, client, primary))
                if not values:
                    continue
                median = statistics.median(values)
                floor = ceilings.get(KERNEL_FLOOR_KEYS[workload])
                target = TARGET_MB_PER_CPU_S[workload]
                efficiency_rows.append([
                    cell, workload, shape["acks"], str(shape["partitions"]), CLIENT_NAMES.get(client, client),
                    spread(values, f_mb, runs), f_mb(floor) if floor else "-",
                    f_pct(median / floor) if floor else "-", f_mb(target),
                    "yes" if median >= target else "**no**"])
    if efficiency_rows:
        out.append("## Broker efficiency\n")
        out.append(
            "The target: at 1 KiB records, at least 2 GB produced and 3 GB fetched per broker CPU-second. "
            "'MB/CPU-s' is the payload moved per second of the broker's user+system CPU (from the throughput "
            "tables: uncompressed 1 KiB cells of the default group). 'kernel floor' is what the kernel alone "
            "costs for the same bytes on this machine, without a broker (see Ceilings): a socket read and a "
            "file write per MiB for produce, a sendfile per MiB for fetch. A broker cannot do better than its "
            "floor, so '% of floor' near 100% means that what is left is the kernel's.\n")
        out.append(table(["cell", "workload", "acks", "parts", "client", f"MB/CPU-s {primary}", "kernel floor MB/CPU-s",
                          "% of floor", "target MB/CPU-s", "target met"], efficiency_rows) + "\n")

    # Latency
    latency_rows = []
    for cell in cell_order:
        for client in clients:
            for broker in brokers:
                key = (cell, "latency", client, broker)
                if key not in grid:
                    continue
                rate = per_run(key, lambda r: r["produce"].get("rate"))
                achieved = per_run(key, lambda r: rps(r["produce"]["result"]))
                row = [cell, CLIENT_NAMES.get(client, client), broker, spread(rate.values(), f_rate, runs),
                       spread(achieved.values(), f_rate, runs)]
                for role in ("produce", "consume"):
                    for q in ("p50", "p99", "p999", "max"):
                        v = per_run(key, lambda r, role=role, q=q: ((r[role]["result"].get("latency_ms") or {})
                                                                     .get(q)))
                        row.append(spread([x for x in v.values() if x is not None], f_ms, runs))
                latency_rows.append(row)
    if latency_rows:
        out.append("## Latency at half the maximum rate\n")
        out.append(
            "The producer runs at 50% of the records/s that the same client reached against the same broker "
            "in the cell's produce workload of the same run, while a consumer reads. 'ack' is produce to "
            "acknowledgement, 'e2e' is produce to the consumer's receipt, in milliseconds.\n")
        header = ["cell", "client", "broker", "records/s asked", "records/s sent", "ack p50", "ack p99", "ack p99.9", "ack max",
                  "e2e p50", "e2e p99", "e2e p99.9", "e2e max"]
        out.append(table(header, latency_rows) + "\n")

    # Latency at the target's fixed rate
    fixed_cells = [c for c in cell_order if any(key[:2] == (c, w) for key in grid for w in FIXED_RATE_WORKLOADS)]

    def latency_columns(key, roles):
        cols = []
        for role in ("produce", "consume"):
            for q in ("p50", "p99", "p999", "max"):
                v = per_run(key, lambda r, role=role, q=q: ((r[role]["result"].get("latency_ms") or {}).get(q)
                                                            if role in r else None))
                cols.append(spread([x for x in v.values() if x is not None], f_ms, runs) if role in roles else "-")
        return cols

    def verdict(key, role, target):
        """Whether the median p99 over runs is under the target, with how many runs were."""
        values = [v for v in per_run(key, lambda r: ((r[role]["result"].get("latency_ms") or {}).get("p99")
                                                     if role in r else None)).values() if v is not None]
        if not values:
            return "-"
        text = "yes" if statistics.median(values) < target else "**no**"
        if runs > 1 and len(values) > 1:
            text += f" ({sum(v < target for v in values)}/{len(values)} runs)"
        return text

    fixed_rows = []
    for cell in fixed_cells:
        for client in clients:
            for broker in brokers:
                for workload, variant in FIXED_RATE_WORKLOADS.items():
                    key = (cell, workload, client, broker)
                    if key not in grid:
                        continue
                    achieved = per_run(key, lambda r: rps(r["produce"]["result"]))
                    row = ([cell] if len(fixed_cells) > 1 else []) + [
                        CLIENT_NAMES.get(client, client), broker, variant, spread(achieved.values(), f_count, runs)]
                    row += latency_columns(key, ("produce", "consume"))
                    row += [verdict(key, "produce", TARGET_ACK_P99_MS), verdict(key, "consume", TARGET_E2E_P99_MS)]
                    fixed_rows.append(row)
    for client in clients:
        for workload, variant in FIXED_RATE_WORKLOADS.items():
            key = ("sink", workload, client, "sink")
            if key not in grid:
                continue
            achieved = per_run(key, lambda r: rps(r["produce"]["result"]))
            row = (["-"] if len(fixed_cells) > 1 else []) + [
                CLIENT_NAMES.get(client, client), "`gregor perf sink` (floor)", variant,
                spread(achieved.values(), f_count, runs)]
            row += latency_columns(key, ("produce",))
            row += [verdict(key, "produce", TARGET_ACK_P99_MS), "-"]
            fixed_rows.append(row)
    if fixed_rows:
        rate = config.get("fixed_rate", 10000)
        out.append(f"## Latency at {rate:,} records/s\n")
        out.append(
            f"The target: at 10,000 records/s of 1 KiB, produce acknowledgement p99 under "
            f"{TARGET_ACK_P99_MS:g} ms (acks=1), and end-to-end p99 under {TARGET_E2E_P99_MS:g} ms with the "
            "clients' default settings (fetch.wait.max.ms=500: a long-polling fetch must be answered as soon as "
            "data arrives).\n")
        out.append(
            f"The producer sends 1 KiB records at a fixed {rate:,} records/s for "
            f"{config.get('latency_seconds', '?')} s (acks=1, one partition, linger "
            f"{config.get('fixed_rate_linger_ms', 0)} ms, so that 'ack' is a produce request's send-to-response "
            "time in `gregor perf` and, near enough, the delivery-report latency in rdkafka_performance) while a "
            "consumer long-polls with a 500 ms fetch wait; 'e2e' is produce to the consumer's receipt, in "
            "milliseconds (`gregor perf` reads it off the batch's millisecond timestamp of its newest record, so "
            "its e2e comes in whole milliseconds and may read 0). 'as is' runs on the machine as it is; 'awake' keeps both CPUs from idling with a "
            "SCHED_IDLE busy loop on each (see Method). The `gregor perf sink` rows are the floor: the same "
            "producer against a fake broker that answers at once, so a broker's share of the ack latency is "
            "what it adds to the floor of the same variant. The last two columns say whether the p99 (the "
            "median over runs) meets the target.\n")
        header = (["cell"] if len(fixed_cells) > 1 else []) + [
            "client", "broker", "variant", "records/s sent", "ack p50", "ack p99", "ack p99.9", "ack max",
            "e2e p50", "e2e p99", "e2e p99.9", "e2e max", f"ack p99 < {TARGET_ACK_P99_MS:g} ms",
            f"e2e p99 < {TARGET_E2E_P99_MS:g} ms"]
        out.append(table(header, fixed_rows) + "\n")

    # Startup and memory
    out.append("## Startup and memory\n")
    out.append(
        "'ready line' is the broker's own `gregor ready in N ms`; 'first answer' is measured outside: from "
        "just before the process starts to the first ApiVersions response on its port. 'idle RSS' is VmRSS "
        "one second after start, before any client; 'RSS after' is VmRSS when the broker is stopped after "
        "its last cell (the end of the matrix), 'peak' the largest VmHWM.\n")
    rows = []
    for broker in brokers:
        starts = [b for b in brokers_log if b.get("broker") == broker and b.get("event") == "start"]
        stops = [b for b in brokers_log if b.get("broker") == broker and b.get("event") == "stop"]
        if not starts and not stops:
            continue

        def values(items, field):
            return [b[field] for b in items if b.get(field) is not None]

        def mib(v):
            return f"{v / 1024:.0f}" if v >= 10240 else f"{v / 1024:.1f}"

        def summary(items, fmt):
            return spread(items, fmt, len(items))

        rss_after = values(stops, "rss_kib")
        rows.append([broker, len(starts), summary(values(starts, "ready_line_ms"), f_ms),
                     summary(values(starts, "first_answer_ms"), f_ms),
                     summary(values(starts, "idle_rss_kib"), mib),
                     mib(rss_after[-1]) if rss_after else "-",
                     mib(max(values(stops, "hwm_kib"))) if values(stops, "hwm_kib") else "-"])
    if rows:
        out.append(table(["broker", "starts", "ready line ms", "first answer ms", "idle RSS MiB",
                          "RSS after MiB", "peak RSS MiB"], rows))
        out.append("\nWith several starts: median (min-max).\n")
    else:
        out.append("Not measured.\n")

    # Method
    out.append("## Method\n")
    prefault = config.get("prefault_mib", 0)
    other_desc = ""
    if other:
        other_desc = (f"- `{other}` (`{config.get('other_broker', '?')}`) ran with the same clients, topics and "
                      "settings, alternating with Gregor cell by cell within every run; "
                      + ("it was started by `--other-cmd`, pinned to CPU 0, once for the whole benchmark, and "
                         "its topics deleted after each measurement.\n" if config.get("other_cmd") else
                         "it was already running (`--other-bootstrap`): not pinned by the script, and its CPU "
                         "is recorded only with `--other-pid`.\n"))
    method = [
        f"- Matrix: {'`--quick`: a handful of cells' if quick else 'the full matrix'}; every cell changes one "
        "or a few dimensions of the baseline (1 KiB records, acks=1, no compression, 1 partition). Cells: "
        + "; ".join(f"`{name}` {cell_info[name]['why']}" for name in cell_order
                    if name in cell_info and any(key[0] == name for key in grid)) + ".",
        "- The broker runs pinned to CPU 0 (`taskset -c 0`), the load generator and the script to CPU 1.",
        f"- Before every measurement {prefault} MiB of memory is mapped, faulted in and freed "
        "(`scripts/bench/proc.py prefault`)" + (", because this VM reports freed pages to the host, so that "
                                              "the first touch of such memory costs a fault in the host as well"
                                              if mach.get("free_page_reporting") == "yes" else "")
        + "; after every broker start a warm-up produce of "
        f"{config.get('warmup_records', '?')} records of 1 KiB goes to a topic that is then deleted.",
        "- Payloads are half random (`--random-ratio 0.5`; rdkafka_performance is patched to do the same, "
        "see `scripts/bench/rdkafka_performance-bench.patch`), so lz4 compresses them to about half.",
        f"- Producer settings for every client: batch {config.get('batch_bytes', '?')} bytes, linger "
        f"{config.get('linger_ms', '?')} ms, {config.get('max_in_flight', '?')} requests in flight, one "
        "producer, no idempotence; consumers: fetch wait 500 ms, one consumer without a group (all "
        "partitions assigned).",
        "- Every measurement writes to a new topic, deleted afterwards. Gregor starts fresh (a new data "
        "directory) for each group of cells in every run: the default group, then the durable group "
        "(`log.flush.interval.messages=1`, topics with `flush.messages=1`, acks=all).",
        "- Consume reads the records the cell's produce workload has just written (or a preload by the same "
        "client when the cell has no produce workload); 'both' starts the consumer one second before the "
        "producer.",
    ]
    if fixed_rows:
        idle = mach.get("cpuidle", "")
        method.append(
            f"- Latency at {config.get('fixed_rate', 10000):,} records/s: the producer keeps to a fixed rate "
            f"without lingering (linger {config.get('fixed_rate_linger_ms', 0)} ms, batch size as above) for "
            f"{config.get('latency_seconds', '?')} s, the consumer starts one second before it, as in the other "
            "latency cells. Each client runs it twice: 'as is', and 'awake', with a busy loop at SCHED_IDLE "
            "(`chrt -i 0`) pinned to each of CPU 0 and CPU 1 for the length of the measurement. At this rate "
            "both CPUs are idle most of the time, and on a VM that halts an idle vCPU without polling first"
            + (f" (here: {idle})" if idle else "")
            + " the host takes milliseconds to wake it again: the request that waits for that wake-up, on the "
            "client's CPU or the broker's, carries it into the p99. A SCHED_IDLE task runs only when nothing "
            "else wants the CPU, so it keeps the vCPU from halting without taking time from the broker or "
            "the clients; the broker CPU figure is read from the broker's own /proc/PID/stat and does not "
            "include it. 'awake' is closer to what the broker and the clients cost; 'as is' adds this "
            "machine's wake-up cost. The floor rows run "
            "`gregor perf produce` the same way against `gregor perf sink` on CPU 0 (rdkafka_performance "
            "cannot: the sink answers too few of the APIs librdkafka needs).")
    out.append("\n".join(method) + ("\n" + other_desc if other_desc else "\n"))

    if failures:
        out.append("## Failed measurements\n")
        out.append(table(["run", "cell", "workload", "role", "client", "broker", "why"], failures) + "\n")
    return "\n".join(out)


def cmd_render(args):
    text = render(args.work)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text.rstrip("\n") + "\n")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("matrix")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--cells")
    p.set_defaults(func=cmd_matrix)
    p = sub.add_parser("machine")
    p.add_argument("--data-dir", required=True)
    p.set_defaults(func=cmd_machine)
    p = sub.add_parser("config")
    p.add_argument("--out", required=True)
    p.add_argument("--update", action="store_true", help="add to the file instead of replacing it")
    p.add_argument("pairs", nargs="*")
    p.set_defaults(func=cmd_config)
    p = sub.add_parser("render")
    p.add_argument("work")
    p.add_argument("--out")
    p.set_defaults(func=cmd_render)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
