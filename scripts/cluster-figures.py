#!/usr/bin/env python3
"""Measures a Gregor cluster on this machine and writes docs/cluster-figures.md:
start to ready for one node and for three, controller failover over repeated
kill -9 of the active controller (p50/p99), metadata propagation delay from the
controller to the other nodes, and resident memory per node.

Usage: scripts/cluster-figures.py [--binary target/release/gregor] [--kills 20]
Needs confluent-kafka (the test venv has it: target/venv/bin/python).
"""

import argparse
import os
import pathlib
import random
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

from confluent_kafka.admin import AdminClient, NewTopic

REPO = pathlib.Path(__file__).resolve().parents[1]
CLUSTER_ID = "RmlndXJlc0NsdXN0ZXJJZA"


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Node:
    def __init__(self, binary, node_id, overrides, data_dir):
        self.node_id = node_id
        self.args = [binary, "serve"]
        for key, value in overrides.items():
            self.args += ["--override", f"{key}={value}"]
        self.args += ["--override", f"log.dirs={data_dir}"]
        self.log_path = data_dir + ".log"
        self.proc = None

    def start(self):
        started = time.monotonic()
        env = {**os.environ, "CLUSTER_ID": CLUSTER_ID, "GREGOR_LOG": os.environ.get("GREGOR_LOG", "warn")}
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=log, env=env)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("gregor ready"):
            raise RuntimeError(f"node {self.node_id} did not start: {line!r}")
        return time.monotonic() - started, int(line.split("ready in ")[1].split(" ms")[0])

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def cluster(binary, root, count):
    ports = free_ports(2 * count)
    client_ports, controller_ports = ports[:count], ports[count:]
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(controller_ports))
    nodes = []
    for i in range(count):
        overrides = {
            "node.id": i + 1,
            "listeners": f"PLAINTEXT://127.0.0.1:{client_ports[i]},CONTROLLER://127.0.0.1:{controller_ports[i]}",
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.voters": voters,
            "broker.session.timeout.ms": 3000,
            "broker.heartbeat.interval.ms": 300,
        }
        nodes.append(Node(binary, i + 1, overrides, os.path.join(root, f"node-{i + 1}")))
    return nodes, client_ports


def live_metadata(port, timeout=2):
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "log_level": 0})
    return admin.list_topics(timeout=timeout)


def wait_registered(port, count, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            md = live_metadata(port)
            if len(md.brokers) == count:
                return md
        except Exception:
            pass
        time.sleep(0.01)
    raise RuntimeError("brokers did not register")


def create(port, name, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "log_level": 0})
        try:
            admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)],
                                request_timeout=10)[name].result(15)
            return
        except Exception:
            time.sleep(0.01)
    raise RuntimeError(f"could not create {name}")


def active_controller(port):
    """The quorum leader as node `port` reports it: DescribeQuorum v0, raw (the
    Python clients have no call for it). Metadata's controller id is any live
    broker in a cluster (KIP-590), so it cannot say."""
    name = b"__cluster_metadata"
    body = (bytes([2, len(name) + 1]) + name + bytes([2]) + (0).to_bytes(4, "big") + bytes([0, 0, 0]))
    client = b"figures"
    header = (55).to_bytes(2, "big") + (0).to_bytes(2, "big") + (7).to_bytes(4, "big")
    header += len(client).to_bytes(2, "big") + client + bytes([0])
    frame = header + body
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(len(frame).to_bytes(4, "big") + frame)
        size = int.from_bytes(s.recv(4), "big")
        data = b""
        while len(data) < size:
            data += s.recv(size - len(data))
    # correlation id, header tags, error code, topics, name, partitions, index, error code, leader
    at = 4 + 1 + 2 + 1 + 1 + len(name) + 1 + 4 + 2
    return int.from_bytes(data[at:at + 4], "big", signed=True)


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(REPO / "target" / "release" / "gregor"))
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--out", default=str(REPO / "docs" / "cluster-figures.md"))
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="gregor-figures-")
    rows = []
    try:
        # One node, five fresh starts.
        single = []
        for run in range(5):
            port = free_ports(1)[0]
            node = Node(args.binary, 1, {"listeners": f"PLAINTEXT://127.0.0.1:{port}"}, os.path.join(root, f"single-{run}"))
            wall, reported = node.start()
            single.append((wall * 1000, reported))
            node.stop()
        rows.append(("start to ready, 1 node (ready line, median of 5)", f"{statistics.median(r for _, r in single):.0f} ms"))
        rows.append(("start to ready, 1 node (process spawn to ready line, median of 5)", f"{statistics.median(w for w, _ in single):.0f} ms"))

        # Three nodes: started together; ready when every broker is registered and unfenced.
        nodes, ports = cluster(args.binary, os.path.join(root, "three"), 3)
        started = time.monotonic()
        for node in nodes:
            node.start()
        wait_registered(ports[0], 3)
        rows.append(("start to ready, 3 nodes (all registered and unfenced)", f"{(time.monotonic() - started) * 1000:.0f} ms"))

        # Metadata propagation: a topic created on the controller, seen by the others.
        delays = []
        for index in range(10):
            controller = active_controller(ports[0])
            others = [ports[i] for i in range(3) if i + 1 != controller]
            name = f"propagation-{index}"
            create(ports[controller - 1], name)
            created = time.monotonic()
            for port in others:
                while name not in live_metadata(port).topics:
                    time.sleep(0.001)
            delays.append((time.monotonic() - created) * 1000)
        rows.append(("metadata propagation to the other nodes (p50 of 10, incl. client round trips)", f"{percentile(delays, 0.5):.1f} ms"))

        rss = [node.rss_kib() / 1024 for node in nodes]
        rows.append(("RSS per node after these (MiB)", ", ".join(f"{value:.1f}" for value in rss)))

        # Failover: kill -9 the active controller, time until a survivor decides.
        failovers = []
        for kill in range(args.kills):
            wait_registered(ports[0] if nodes[0].proc.poll() is None else ports[1], 3)
            controller = -1
            while controller < 1:
                controller = active_controller(ports[0] if nodes[0].proc.poll() is None else ports[1])
                time.sleep(0.05)
            survivor = next(i for i in range(3) if i + 1 != controller)
            nodes[controller - 1].kill9()
            killed = time.monotonic()
            create(ports[survivor], f"failover-{kill}")
            failovers.append((time.monotonic() - killed) * 1000)
            print(f"failover {kill}: controller {controller}, {failovers[-1]:.0f} ms", flush=True)
            nodes[controller - 1].start()
        rows.append((f"controller failover, kill -9 to the next CreateTopics (p50 of {args.kills})", f"{percentile(failovers, 0.5):.0f} ms"))
        rows.append((f"controller failover (p99 of {args.kills})", f"{percentile(failovers, 0.99):.0f} ms"))
        for node in nodes:
            node.stop()
    except Exception:
        print(f"failed; node logs kept in {root}")
        raise
    shutil.rmtree(root, ignore_errors=True)

    cpus = os.cpu_count()
    lines = [
        "# Cluster figures",
        "",
        f"Measured by `scripts/cluster-figures.py` with `{os.path.relpath(args.binary, REPO)}` on this project's",
        f"machine ({cpus} cores, every node on 127.0.0.1), {time.strftime('%Y-%m-%d')}. Nodes have both roles;",
        "`controller.quorum.election.timeout.ms` is Kafka's default 1000.",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    lines += [f"| {name} | {value} |" for name, value in rows]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
