#!/usr/bin/env python3
"""The few Kafka requests scripts/bench.sh needs, on the wire, standard library only.

    kafka.py wait-ready HOST:PORT [--timeout-s 60]
        prints "armed", then polls ApiVersions v0 every millisecond and prints the
        wall-clock time (ns since the epoch) of the first answer
    kafka.py create-topic HOST:PORT TOPIC PARTITIONS [--config KEY=VALUE]...
        CreateTopics v2 (replication factor 1), then waits until Metadata v1 shows a
        leader for every partition
    kafka.py delete-topic HOST:PORT TOPIC
    kafka.py partitions HOST:PORT TOPIC       prints the partition count

The versions (ApiVersions v0, Metadata v1, CreateTopics v2, DeleteTopics v1) are
served by Gregor and by every Kafka from 1.0 to 4.x, so the same calls work against
the broker compared with.
"""

import argparse
import socket
import struct
import sys
import time

API_METADATA, API_VERSIONS, API_CREATE_TOPICS, API_DELETE_TOPICS = 3, 18, 19, 20
CLIENT_ID = b"gregor-bench"


def parse_address(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def string(value):
    data = value.encode()
    return struct.pack(">h", len(data)) + data


def nullable_string(value):
    return struct.pack(">h", -1) if value is None else string(value)


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def int16(self):
        return self.take(">h")

    def int32(self):
        return self.take(">i")

    def string(self):
        length = self.int16()
        if length < 0:
            return None
        value = self.data[self.pos : self.pos + length].decode()
        self.pos += length
        return value

    def array(self, item):
        return [item() for _ in range(self.int32())]


class Connection:
    def __init__(self, address, timeout_s=30.0):
        self.sock = socket.create_connection(parse_address(address), timeout=timeout_s)
        self.correlation_id = 0

    def close(self):
        self.sock.close()

    def request(self, api_key, api_version, body):
        self.correlation_id += 1
        header = struct.pack(">hhi", api_key, api_version, self.correlation_id) + string(CLIENT_ID.decode())
        frame = header + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        (size,) = struct.unpack(">i", self.recv_exactly(4))
        reader = Reader(self.recv_exactly(size))
        if reader.int32() != self.correlation_id:
            raise RuntimeError("correlation id mismatch")
        return reader

    def recv_exactly(self, size):
        chunks, remaining = [], size
        while remaining:
            chunk = self.sock.recv(remaining)
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def metadata(self, topic):
        """Metadata v1 for one topic: (error_code, [(partition, error_code, leader)])."""
        reader = self.request(API_METADATA, 1, struct.pack(">i", 1) + string(topic))
        reader.array(lambda: (reader.int32(), reader.string(), reader.int32(), reader.string()))
        reader.int32()  # controller id

        def partition():
            error, index, leader = reader.int16(), reader.int32(), reader.int32()
            reader.array(reader.int32)
            reader.array(reader.int32)
            return index, error, leader

        def topic_entry():
            error, name = reader.int16(), reader.string()
            reader.take(">b")  # is_internal
            return name, error, reader.array(partition)

        for name, error, partitions in reader.array(topic_entry):
            if name == topic:
                return error, partitions
        return -1, []


def wait_ready(args):
    print("armed", flush=True)
    deadline = time.monotonic() + args.timeout_s
    address = parse_address(args.bootstrap)
    while time.monotonic() < deadline:
        try:
            sock = socket.create_connection(address, timeout=5)
        except OSError:
            time.sleep(0.001)
            continue
        try:
            header = struct.pack(">hhi", API_VERSIONS, 0, 1) + string(CLIENT_ID.decode())
            sock.sendall(struct.pack(">i", len(header)) + header)
            if len(sock.recv(4)) == 4:
                print(time.time_ns(), flush=True)
                return 0
        except OSError:
            pass
        finally:
            sock.close()
        time.sleep(0.001)
    print(f"no ApiVersions answer from {args.bootstrap} in {args.timeout_s} s", file=sys.stderr)
    return 1


def create_topic(args):
    configs = [pair.split("=", 1) for pair in args.config]
    body = struct.pack(">i", 1) + string(args.topic) + struct.pack(">ihi", args.partitions, 1, 0)
    body += struct.pack(">i", len(configs)) + b"".join(string(k) + nullable_string(v) for k, v in configs)
    body += struct.pack(">ib", 30000, 0)
    conn = Connection(args.bootstrap)
    try:
        reader = conn.request(API_CREATE_TOPICS, 2, body)
        reader.int32()  # throttle
        for name, error, message in reader.array(lambda: (reader.string(), reader.int16(), reader.string())):
            if error not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS
                raise SystemExit(f"CreateTopics {name}: error {error} {message or ''}")
        deadline = time.monotonic() + 60
        while True:
            error, partitions = conn.metadata(args.topic)
            ready = [p for p in partitions if p[1] == 0 and p[2] >= 0]
            if error == 0 and len(ready) == args.partitions:
                return 0
            if time.monotonic() > deadline:
                raise SystemExit(f"{args.topic}: {len(ready)} of {args.partitions} partitions have a leader")
            time.sleep(0.05)
    finally:
        conn.close()


def delete_topic(args):
    conn = Connection(args.bootstrap, timeout_s=60)
    try:
        reader = conn.request(API_DELETE_TOPICS, 1, struct.pack(">i", 1) + string(args.topic) + struct.pack(">i", 30000))
        reader.int32()  # throttle
        for name, error in reader.array(lambda: (reader.string(), reader.int16())):
            if error not in (0, 3):  # 3: UNKNOWN_TOPIC_OR_PARTITION
                raise SystemExit(f"DeleteTopics {name}: error {error}")
    finally:
        conn.close()
    return 0


def partitions(args):
    conn = Connection(args.bootstrap)
    try:
        error, parts = conn.metadata(args.topic)
    finally:
        conn.close()
    if error:
        raise SystemExit(f"Metadata {args.topic}: error {error}")
    print(len(parts))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("wait-ready")
    p.add_argument("bootstrap")
    p.add_argument("--timeout-s", type=float, default=60)
    p.set_defaults(func=wait_ready)
    p = sub.add_parser("create-topic")
    p.add_argument("bootstrap")
    p.add_argument("topic")
    p.add_argument("partitions", type=int)
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=create_topic)
    p = sub.add_parser("delete-topic")
    p.add_argument("bootstrap")
    p.add_argument("topic")
    p.set_defaults(func=delete_topic)
    p = sub.add_parser("partitions")
    p.add_argument("bootstrap")
    p.add_argument("topic")
    p.set_defaults(func=partitions)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
