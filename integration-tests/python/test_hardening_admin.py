"""Admin requests that used to take the broker down or destroy its state, driven by
real clients: oversized partition counts, and every admin path into the
coordinators' internal topics. After each refusal the broker must still serve, and
committed offsets must still be there after a restart.
"""

import os
import struct

import kafka
import kafka.admin
import kafka.errors
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from conftest import Broker, wait_for

TIMEOUT_S = 30
OFFSETS_TOPIC = "__consumer_offsets"
TXN_TOPIC = "__transaction_state"


@pytest.fixture
def fresh_broker():
    b = Broker({"num.partitions": "1", "offsets.topic.num.partitions": "3"})
    yield b
    b.close()


def admin_for(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def error_of(future):
    with pytest.raises(KafkaException) as raised:
        future.result(timeout=TIMEOUT_S)
    return raised.value.args[0]


def broker_rss_bytes(broker):
    with open(f"/proc/{broker.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def commit_offset(broker, topic, group, offset):
    """Produces a record to `topic` and commits `offset` for `group`, so that
    `__consumer_offsets` exists and holds something to lose."""
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce(topic, b"v")
    assert producer.flush(TIMEOUT_S) == 0
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()


def committed_offset(broker, topic, group):
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        (committed,) = consumer.committed([TopicPartition(topic, 0)], timeout=TIMEOUT_S)
        return committed.offset
    finally:
        consumer.close()


def kafka_python_error(call):
    """The broker's error code for a kafka-python admin call that must fail."""
    with pytest.raises(kafka.errors.BrokerResponseError) as raised:
        call()
    return raised.value.errno


def test_huge_partition_counts_are_refused_before_allocating(fresh_broker, topic_name):
    # librdkafka refuses counts over 100,000 itself; kafka-python sends what it is given.
    admin = kafka.KafkaAdminClient(bootstrap_servers=fresh_broker.bootstrap, request_timeout_ms=30000)
    policy_violation = kafka.errors.PolicyViolationError.errno
    try:
        for count in (2**31 - 1, 100_000_000, 10_001):
            topic = kafka.admin.NewTopic(f"{topic_name}-{count}", num_partitions=count, replication_factor=1)
            assert kafka_python_error(lambda: admin.create_topics([topic])) == policy_violation
        # The total of one request counts, not each topic alone.
        halves = [kafka.admin.NewTopic(f"{topic_name}-half-{i}", num_partitions=5_001, replication_factor=1) for i in range(2)]
        assert kafka_python_error(lambda: admin.create_topics(halves)) == policy_violation

        admin.create_topics([kafka.admin.NewTopic(topic_name, num_partitions=2, replication_factor=1)])
        for count in (2**31 - 1, 20_000):
            grow = {topic_name: kafka.admin.NewPartitions(total_count=count)}
            assert kafka_python_error(lambda: admin.create_partitions(grow)) == policy_violation
    finally:
        admin.close()
    assert broker_rss_bytes(fresh_broker) < 200 * 1024 * 1024
    # Nothing was half-created, and the broker still creates what is reasonable.
    admin = admin_for(fresh_broker)
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    assert len(metadata.topics[topic_name].partitions) == 2
    assert not [name for name in metadata.topics if name.startswith(f"{topic_name}-")]
    admin.create_partitions([NewPartitions(topic_name, 4)])[topic_name].result(timeout=TIMEOUT_S)
    assert len(admin.list_topics(topic=topic_name, timeout=TIMEOUT_S).topics[topic_name].partitions) == 4


def test_internal_topics_cannot_be_deleted_trimmed_grown_or_made_unsafe(fresh_broker, topic_name):
    admin = admin_for(fresh_broker)
    admin.create_topics([NewTopic(topic_name, num_partitions=1, replication_factor=1)])[topic_name].result(
        timeout=TIMEOUT_S
    )
    commit_offset(fresh_broker, topic_name, "kept-group", 1)
    # A transactional producer makes __transaction_state exist too.
    producer = Producer({"bootstrap.servers": fresh_broker.bootstrap, "transactional.id": f"{topic_name}-txn"})
    producer.init_transactions(TIMEOUT_S)

    for internal in (OFFSETS_TOPIC, TXN_TOPIC):
        error = error_of(admin.delete_topics([internal], operation_timeout=10)[internal])
        assert error.code() == KafkaError.TOPIC_EXCEPTION, error
        error = error_of(admin.create_partitions([NewPartitions(internal, 60)])[internal])
        assert error.code() == KafkaError.INVALID_REQUEST, error
        for policy in ("delete", "compact,delete"):
            resource_ = ConfigResource(
                ResourceType.TOPIC,
                internal,
                incremental_configs=[ConfigEntry("cleanup.policy", policy, incremental_operation=AlterConfigOpType.SET)],
            )
            error = error_of(admin.incremental_alter_configs([resource_])[resource_])
            assert error.code() == KafkaError.INVALID_CONFIG, error
        # Dropping the override would fall back to the broker's default, `delete`.
        resource_ = ConfigResource(
            ResourceType.TOPIC,
            internal,
            incremental_configs=[ConfigEntry("cleanup.policy", None, incremental_operation=AlterConfigOpType.DELETE)],
        )
        error = error_of(admin.incremental_alter_configs([resource_])[resource_])
        assert error.code() == KafkaError.INVALID_CONFIG, error
    # A harmless config change on an internal topic is still allowed.
    resource_ = ConfigResource(
        ResourceType.TOPIC,
        OFFSETS_TOPIC,
        incremental_configs=[ConfigEntry("segment.bytes", "104857600", incremental_operation=AlterConfigOpType.SET)],
    )
    admin.incremental_alter_configs([resource_])[resource_].result(timeout=TIMEOUT_S)

    trimmed = admin.delete_records([TopicPartition(OFFSETS_TOPIC, p, -1) for p in range(3)])
    for future in trimmed.values():
        assert error_of(future).code() == KafkaError.TOPIC_EXCEPTION

    metadata = admin.list_topics(timeout=TIMEOUT_S)
    assert len(metadata.topics[OFFSETS_TOPIC].partitions) == 3
    assert TXN_TOPIC in metadata.topics
    assert committed_offset(fresh_broker, topic_name, "kept-group") == 1
    fresh_broker.stop()
    fresh_broker.start_again()
    assert committed_offset(fresh_broker, topic_name, "kept-group") == 1


def test_a_new_internal_topic_must_be_compacted(fresh_broker):
    admin = admin_for(fresh_broker)
    topic = NewTopic(OFFSETS_TOPIC, num_partitions=1, replication_factor=1, config={"cleanup.policy": "delete"})
    error = error_of(admin.create_topics([topic])[OFFSETS_TOPIC])
    assert error.code() == KafkaError.INVALID_CONFIG, error


def test_a_partition_the_metadata_log_forgot_is_kept_aside(fresh_broker, topic_name):
    """A torn tail of the metadata log that loses a topic's creation must not
    delete the topic's data: the directory is renamed `-stray`, the broker warns,
    and the README's procedure brings the records back."""
    admin = admin_for(fresh_broker)
    admin.create_topics([NewTopic(topic_name, num_partitions=1, replication_factor=1)])[topic_name].result(
        timeout=TIMEOUT_S
    )
    producer = Producer({"bootstrap.servers": fresh_broker.bootstrap})
    for i in range(500):
        producer.produce(topic_name, f"record-{i}".encode())
    assert producer.flush(TIMEOUT_S) == 0
    # A crash, so that start-up runs recovery over the metadata log's tail.
    fresh_broker.kill9()

    data = os.path.join(fresh_broker.dir, "data")
    metadata_log = os.path.join(data, "__cluster_metadata-0", "00000000000000000000.log")
    tear_last_batch(metadata_log)
    fresh_broker.start_again()

    strays = [name for name in os.listdir(data) if name.startswith(f"{topic_name}-0.") and name.endswith("-stray")]
    assert len(strays) == 1, os.listdir(data)
    assert not os.path.exists(os.path.join(data, f"{topic_name}-0"))
    assert "does not place it" in fresh_broker.stderr_tail(200)
    assert topic_name not in admin_for(fresh_broker).list_topics(timeout=TIMEOUT_S).topics

    # The README's way back: recreate the topic, stop, swap the directory in
    # without its partition.metadata, start.
    admin = admin_for(fresh_broker)
    admin.create_topics([NewTopic(topic_name, num_partitions=1, replication_factor=1)])[topic_name].result(
        timeout=TIMEOUT_S
    )
    fresh_broker.stop()
    restored = os.path.join(data, f"{topic_name}-0")
    for name in os.listdir(restored):
        os.remove(os.path.join(restored, name))
    os.rmdir(restored)
    os.rename(os.path.join(data, strays[0]), restored)
    os.remove(os.path.join(restored, "partition.metadata"))
    fresh_broker.start_again()

    consumer = Consumer(
        {"bootstrap.servers": fresh_broker.bootstrap, "group.id": "restore", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic_name])
    values = []
    try:
        while len(values) < 500:
            message = consumer.poll(TIMEOUT_S)
            assert message is not None, f"only {len(values)} of 500 records came back"
            assert message.error() is None, message.error()
            values.append(message.value())
    finally:
        consumer.close()
    assert values == [f"record-{i}".encode() for i in range(500)]


def tear_last_batch(path):
    """Flips four bytes inside the last record batch of a log segment, so that its
    CRC no longer matches and recovery truncates it."""
    with open(path, "r+b") as segment:
        data = segment.read()
        position, last = 0, None
        while position + 12 <= len(data):
            (length,) = struct.unpack(">i", data[position + 8 : position + 12])
            last = position
            position += 12 + length
        assert last is not None, "empty metadata log"
        segment.seek(last + 61 + 4)
        segment.write(b"\xde\xad\xbe\xef")



def test_expired_records_leave_a_quiet_topic_as_in_kafka(topic_name):
    """retention.ms applies to the active segment too: a topic nobody writes to any
    more loses its expired records without waiting for segment.ms to roll it."""
    b = Broker({"num.partitions": "1", "log.retention.check.interval.ms": "300"})
    try:
        admin = admin_for(b)
        topic = NewTopic(topic_name, num_partitions=1, replication_factor=1, config={"retention.ms": "1500"})
        admin.create_topics([topic])[topic_name].result(timeout=TIMEOUT_S)
        producer = Producer({"bootstrap.servers": b.bootstrap})
        for i in range(10):
            producer.produce(topic_name, f"old-{i}".encode())
        assert producer.flush(TIMEOUT_S) == 0
        consumer = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "watermarks"})
        try:
            assert consumer.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=TIMEOUT_S) == (0, 10)
            wait_for(
                lambda: consumer.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=TIMEOUT_S) == (10, 10),
                timeout=20,
                what="the expired active segment to be deleted",
            )
        finally:
            consumer.close()
        # Offsets go on from where they were (the record itself expires 1.5 s later).
        delivered = []
        producer.produce(topic_name, b"new", on_delivery=lambda error, message: delivered.append((error, message)))
        assert producer.flush(TIMEOUT_S) == 0
        ((error, message),) = delivered
        assert error is None and message.offset() == 10
    finally:
        b.close()


def test_a_damaged_metadata_log_refuses_the_start_and_keeps_every_byte(fresh_broker, topic_name):
    """After a clean stop no recovery scans the metadata log; a damaged batch in it must
    stop the start with a message that names it, and must not cost any data."""
    admin = admin_for(fresh_broker)
    for suffix in ("a", "b", "c"):
        name = f"{topic_name}-{suffix}"
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=TIMEOUT_S)
    fresh_broker.stop()
    data = os.path.join(fresh_broker.dir, "data")
    metadata_log = os.path.join(data, "__cluster_metadata-0", "00000000000000000000.log")
    before = open(metadata_log, "rb").read()
    with open(metadata_log, "r+b") as segment:
        (first_length,) = struct.unpack(">i", before[8:12])
        segment.seek(12 + first_length + 70)
        segment.write(b"\xde\xad\xbe\xef")
    damaged = open(metadata_log, "rb").read()
    with pytest.raises(RuntimeError):
        fresh_broker.start_again()
    stderr = fresh_broker.stderr_tail(400)
    assert "the metadata log" in stderr and "is damaged at offset" in stderr, stderr
    assert open(metadata_log, "rb").read() == damaged
    for suffix in ("a", "b", "c"):
        assert os.path.isdir(os.path.join(data, f"{topic_name}-{suffix}-0"))
