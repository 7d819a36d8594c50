"""A three-node cluster started with the README's command, `gregor dev --nodes 3`,
driven by kafka-python and confluent-kafka (librdkafka): topics with replication
factor 3 are placed across the nodes, records reach each partition's leader
wherever it is, consumer groups and idempotent producers work from any node (the
internal topics and producer ids come from the active controller). The
Rust tests in integration-tests/tests/cluster.rs kill and restart nodes.
"""

import os
import random
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic as CkNewTopic
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from conftest import gregor_binary

READY_TIMEOUT_S = 60


def free_base_port(count):
    """A base port with `count` consecutive free ports after it."""
    for _ in range(200):
        base = random.randint(20000, 50000)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port range")


class DevCluster:
    def __init__(self, nodes=3):
        self.nodes = nodes
        self.dir = tempfile.mkdtemp(prefix="gregor-dev-")
        self.base = free_base_port(2 * nodes)
        self.stderr_path = os.path.join(self.dir, "dev.stderr")
        args = [
            gregor_binary(), "dev", "--nodes", str(nodes), "--base-port", str(self.base),
            "--dir", os.path.join(self.dir, "cluster"),
            "--override", "broker.session.timeout.ms=3000",
            "--override", "broker.heartbeat.interval.ms=300",
        ]
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr)
        deadline = time.monotonic() + READY_TIMEOUT_S
        self.ready_line = None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode(errors="replace")
            if not line:
                break
            if line.startswith("gregor dev cluster ready"):
                self.ready_line = line.strip()
                break
        if self.ready_line is None:
            self.stop()
            raise RuntimeError(f"no ready line from gregor dev{self.diag()}")
        self.bootstrap = self.ready_line.split("bootstrap ")[1].split(" ")[0]

    def diag(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return "\n--- gregor dev stderr ---\n" + f.read()[-8000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


@pytest.fixture(scope="module")
def cluster():
    c = DevCluster(3)
    yield c
    c.stop()


def wait_for_brokers(bootstrap, count, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        try:
            md = admin.list_topics(timeout=5)
        except Exception:
            # A partial answer while brokers are still registering.
            time.sleep(0.2)
            continue
        if len(md.brokers) == count:
            return md
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} brokers registered")


def test_the_dev_command_prints_a_bootstrap_of_every_node(cluster):
    assert cluster.bootstrap.count(",") == 2, cluster.ready_line
    md = wait_for_brokers(cluster.bootstrap, 3)
    assert sorted(md.brokers) == [1, 2, 3]
    assert md.controller_id in (1, 2, 3)


def test_kafka_python_creates_an_rf3_topic_and_reads_back_what_it_wrote(cluster):
    wait_for_brokers(cluster.bootstrap, 3)
    topic = f"kp-rf3-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=30000)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])
    described = admin.describe_topics([topic])[0]
    leaders = {p["leader"] for p in described["partitions"]}
    assert leaders == {1, 2, 3}, described
    for p in described["partitions"]:
        assert sorted(p["replicas"]) == [1, 2, 3]
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    sent = [f"r{i}".encode() for i in range(90)]
    for i, value in enumerate(sent):
        producer.send(topic, value=value, partition=i % 3)
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(
        topic, bootstrap_servers=cluster.bootstrap, group_id=f"g-{topic}",
        auto_offset_reset="earliest", consumer_timeout_ms=15000,
    )
    got = [m.value for m in consumer]
    consumer.commit()
    consumer.close()
    assert sorted(got) == sorted(sent)
    admin.close()


def test_librdkafka_creates_an_rf3_topic_and_an_idempotent_producer_works_from_any_node(cluster):
    wait_for_brokers(cluster.bootstrap, 3)
    topic = f"ck-rf3-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    for future in admin.create_topics([CkNewTopic(topic, num_partitions=6, replication_factor=3)]).values():
        future.result(30)
    md = admin.list_topics(topic, timeout=10)
    assert {p.leader for p in md.topics[topic].partitions.values()} == {1, 2, 3}
    # Each node in turn is the bootstrap: InitProducerId reaches whichever node,
    # and producer ids come from the active controller.
    for node in range(3):
        port = cluster.base + node
        producer = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "enable.idempotence": True})
        for i in range(60):
            producer.produce(topic, value=f"n{node}-{i}".encode(), partition=i % 6)
        assert producer.flush(30) == 0
    consumer = Consumer({
        "bootstrap.servers": cluster.bootstrap, "group.id": f"g-{topic}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 180 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            got.append(message.value())
    consumer.close()
    assert len(got) == 180 and len(set(got)) == 180
