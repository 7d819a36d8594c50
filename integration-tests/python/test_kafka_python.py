"""kafka-python (pure Python client) against the real broker."""

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from conftest import wait_for


def admin_for(broker):
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="gregor-pytest-admin", request_timeout_ms=30000)


def consumer_for(broker, **extra):
    return KafkaConsumer(
        bootstrap_servers=broker.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
        **extra,
    )


def record(topic, i, base_ts):
    key = f"key-{i:06d}".encode()
    value = f"{topic}:value-{i}:".encode() + bytes((i * 7 + j) % 256 for j in range(i % 97))
    headers = [("h-index", str(i).encode()), ("h-bin", bytes([i % 256, 0, 255]))][: i % 3]
    return key, value, headers, base_ts + i * 10


def create(admin, topic, partitions=1, configs=None):
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1, topic_configs=configs or {})])


def poll_all(consumer, count, timeout=60):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got.extend(records)
    return got


def day_ago_ms():
    return int(time.time() * 1000) - 24 * 3600 * 1000


def test_idempotent_producer_and_assign_seek_read_back_exactly(broker, topic_name):
    admin = admin_for(broker)
    create(admin, topic_name, partitions=3)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
    base_ts = day_ago_ms()
    sent = {p: [] for p in range(3)}
    futures = []
    for i in range(600):
        partition = i % 3
        key, value, headers, ts = record(topic_name, i, base_ts)
        futures.append((partition, (key, value, headers, ts),
                        producer.send(topic_name, key=key, value=value, headers=headers, partition=partition, timestamp_ms=ts)))
    producer.flush(timeout=60)
    for partition, rec, future in futures:
        metadata = future.get(timeout=30)
        assert metadata.partition == partition
        assert metadata.offset == len(sent[partition]), f"partition {partition}: offset {metadata.offset}"
        sent[partition].append(rec)
    producer.close()

    consumer = consumer_for(broker)
    tps = [TopicPartition(topic_name, p) for p in range(3)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    got = poll_all(consumer, 600)
    assert len(got) == 600
    by_partition = {p: sorted((m for m in got if m.partition == p), key=lambda m: m.offset) for p in range(3)}
    for p in range(3):
        msgs = by_partition[p]
        assert [m.offset for m in msgs] == list(range(len(sent[p])))
        for m, (key, value, headers, ts) in zip(msgs, sent[p]):
            assert (m.key, m.value, list(m.headers), m.timestamp, m.timestamp_type) == (key, value, headers, ts, 0)

    # seek into the middle of partition 1 and read on from there
    consumer.seek(tps[1], 77)
    consumer.pause(tps[0], tps[2])
    got = poll_all(consumer, len(sent[1]) - 77)
    assert [m.offset for m in got] == list(range(77, len(sent[1])))
    assert [(m.key, m.value) for m in got] == [(k, v) for k, v, _, _ in sent[1][77:]]
    consumer.close()
    admin.close()


def test_create_and_delete_topics(broker, topic_name):
    admin = admin_for(broker)
    create(admin, topic_name, partitions=2, configs={"retention.ms": "3600000"})
    assert topic_name in admin.list_topics()
    described = admin.describe_topics([topic_name])
    assert len(described) == 1 and described[0]["error_code"] == 0, described
    partitions = described[0]["partitions"]
    assert sorted(p.get("partition", p.get("partition_index")) for p in partitions) == [0, 1], partitions

    with pytest.raises(TopicAlreadyExistsError):
        create(admin, topic_name)

    admin.delete_topics([topic_name])
    wait_for(lambda: topic_name not in admin.list_topics(), what=f"{topic_name} to disappear")
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.delete_topics([topic_name])
    admin.close()


def config_entries(admin, topic):
    responses = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], include_synonyms=True)
    entries = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            assert resource["error_code"] == 0, resource
            if resource["resource_name"] == topic:
                for entry in resource["config_entries"]:
                    entries[entry["config_names"]] = entry
    return entries


def value_of(entry):
    return entry["config_value"]


def test_describe_and_alter_configs(broker, topic_name):
    admin = admin_for(broker)
    create(admin, topic_name, configs={"retention.ms": "7200000"})
    entries = config_entries(admin, topic_name)
    # every topic config, not only the overridden one
    for name in ("retention.ms", "cleanup.policy", "segment.bytes", "max.message.bytes", "min.insync.replicas"):
        assert name in entries, f"{name} missing from DescribeConfigs: {sorted(entries)}"
    assert value_of(entries["retention.ms"]) == "7200000"
    assert entries["retention.ms"]["config_source"] == 1  # TOPIC_CONFIG
    assert value_of(entries["cleanup.policy"]) == "delete"
    assert entries["cleanup.policy"]["config_source"] in (4, 5)  # static broker or default

    response = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic_name, configs={"retention.ms": "1800000", "max.message.bytes": "65536"})])
    for resource in response.to_object()["resources"]:
        assert resource["error_code"] == 0, resource
    entries = config_entries(admin, topic_name)
    assert value_of(entries["retention.ms"]) == "1800000"
    assert value_of(entries["max.message.bytes"]) == "65536"
    admin.close()


def test_create_partitions(broker, topic_name):
    admin = admin_for(broker)
    create(admin, topic_name, partitions=1)
    admin.create_partitions({topic_name: NewPartitions(total_count=4)})

    def partitions_now():
        fresh = consumer_for(broker)
        try:
            return fresh.partitions_for_topic(topic_name)
        finally:
            fresh.close()

    wait_for(lambda: partitions_now() == {0, 1, 2, 3}, what="4 partitions in metadata")
    # the new partitions take records
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for p in range(4):
        assert producer.send(topic_name, value=b"x", partition=p).get(timeout=30).offset == 0
    producer.close()
    admin.close()


def test_delete_records_moves_log_start(broker, topic_name):
    admin = admin_for(broker)
    create(admin, topic_name)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for i in range(100):
        producer.send(topic_name, key=b"k%d" % i, value=b"v%d" % i, partition=0)
    producer.flush(timeout=30)
    producer.close()
    tp = TopicPartition(topic_name, 0)
    result = admin.delete_records({tp: 40})
    assert result[tp]["low_watermark"] == 40
    consumer = consumer_for(broker)
    assert consumer.beginning_offsets([tp]) == {tp: 40}
    assert consumer.end_offsets([tp]) == {tp: 100}
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    got = poll_all(consumer, 60)
    assert [m.offset for m in got] == list(range(40, 100))
    assert got[0].value == b"v40"
    consumer.close()
    admin.close()


def test_list_offsets_by_time(broker, topic_name):
    admin = admin_for(broker)
    create(admin, topic_name)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    base_ts = day_ago_ms()
    for i in range(50):
        producer.send(topic_name, value=b"v%d" % i, partition=0, timestamp_ms=base_ts + i * 1000)
    producer.flush(timeout=30)
    producer.close()
    tp = TopicPartition(topic_name, 0)
    consumer = consumer_for(broker)
    assert consumer.beginning_offsets([tp]) == {tp: 0}
    assert consumer.end_offsets([tp]) == {tp: 50}
    found = consumer.offsets_for_times({tp: base_ts + 10_500})
    assert found[tp].offset == 11 and found[tp].timestamp == base_ts + 11_000
    found = consumer.offsets_for_times({tp: base_ts})
    assert found[tp].offset == 0 and found[tp].timestamp == base_ts
    found = consumer.offsets_for_times({tp: base_ts - 5})
    assert found[tp].offset == 0
    # after the last timestamp there is no such offset
    assert consumer.offsets_for_times({tp: base_ts + 50_000})[tp] is None
    consumer.close()
    admin.close()
