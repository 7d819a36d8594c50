#!/usr/bin/env python3
"""This machine's ceilings, measured with the standard library: the stand-in that
scripts/bench.sh uses only when `gregor perf ceilings` is missing (the report says
which one measured). Prints one JSON object in `gregor perf ceilings --json`'s shape:

    {"loopback_tcp_mb_per_s", "write_mb_per_s", "write_fdatasync_1mib_mb_per_s",
     "fsync_p50_ms", "fsync_p99_ms"}                       (MB = 10^6 bytes)

    ceilings.py --dir DATA_DIR [--seconds 3]

- loopback_tcp: one connection on 127.0.0.1, a receiver process on CPU 0 and a
  sender on CPU 1 (the broker's and the load generator's cores), 1 MiB writes; the
  best of three tries (a VM's figure varies from try to try);
- write: 1 MiB buffered writes into a new file in --dir, then one fdatasync, timed
  together;
- write_fdatasync_1mib: 1 MiB writes each followed by fdatasync (what a broker that
  syncs every append of 1 MiB can reach);
- fsync: 4 KiB appends each followed by fdatasync, the latency of the fdatasync.
"""

import argparse
import json
import os
import socket
import sys
import time

MIB = 1 << 20


def pin(cpu):
    try:
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        pass


def loopback(seconds):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # receiver
        os.close(read_end)
        pin(0)
        conn, _ = listener.accept()
        buf = bytearray(MIB)
        view = memoryview(buf)
        total = 0
        while True:
            n = conn.recv_into(view)
            if not n:
                break
            total += n
        os.write(write_end, str(total).encode())
        os._exit(0)
    os.close(write_end)
    pin(1)
    sender = socket.create_connection(listener.getsockname())
    payload = os.urandom(MIB)
    start = time.monotonic()
    deadline = start + seconds
    while time.monotonic() < deadline:
        sender.sendall(payload)
    sender.shutdown(socket.SHUT_WR)
    received = int(os.read(read_end, 64) or b"0")
    elapsed = time.monotonic() - start
    sender.close()
    os.waitpid(pid, 0)
    listener.close()
    return received / elapsed / 1e6


def write(path, seconds, sync_each):
    payload = os.urandom(MIB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        written = 0
        start = time.monotonic()
        deadline = start + seconds
        while time.monotonic() < deadline and written < (4 << 30):
            os.write(fd, payload)
            written += MIB
            if sync_each:
                os.fdatasync(fd)
        os.fdatasync(fd)
        return written / (time.monotonic() - start) / 1e6
    finally:
        os.close(fd)
        os.unlink(path)


def fsync_latency(path, count):
    block = os.urandom(4096)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    samples = []
    try:
        for _ in range(count):
            os.write(fd, block)
            start = time.perf_counter()
            os.fdatasync(fd)
            samples.append((time.perf_counter() - start) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--json", action="store_true", help="accepted for gregor perf's CLI; always JSON")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    path = os.path.join(args.dir, f"ceilings-{os.getpid()}.tmp")
    result = {"loopback_tcp_mb_per_s": round(max(loopback(args.seconds / 3) for _ in range(3)), 1)}
    result["write_mb_per_s"] = round(write(path, args.seconds, False), 1)
    result["write_fdatasync_1mib_mb_per_s"] = round(write(path, args.seconds, True), 1)
    p50, p99 = fsync_latency(path, 500)
    result["fsync_p50_ms"], result["fsync_p99_ms"] = round(p50, 3), round(p99, 3)
    result["measured_by"] = "scripts/bench/ceilings.py"
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
