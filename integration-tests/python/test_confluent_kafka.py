"""confluent-kafka-python (librdkafka bundled in the wheel) against the real broker."""

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from conftest import wait_for

TIMEOUT = 30


def admin_for(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 3})


def consumer_for(broker):
    return Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "gregor-pytest-unused",  # required by the Python binding; no subscribe, no commits
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "check.crcs": True,
            "log_level": 3,
        }
    )


def create(admin, topic, partitions=1, config=None):
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})])
    futures[topic].result(TIMEOUT)


def day_ago_ms():
    return int(time.time() * 1000) - 24 * 3600 * 1000


def produce_plain(broker, topic, count, partition=0, timestamps=None):
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(count):
        kwargs = {"timestamp": timestamps[i]} if timestamps else {}
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=partition, **kwargs)
    assert producer.flush(TIMEOUT) == 0


def consume(consumer, count, timeout=60):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        assert msg.error() is None, msg.error()
        got.append(msg)
    return got


def test_idempotent_producer_across_partitions_and_assign_seek(broker, topic_name):
    admin = admin_for(broker)
    create(admin, topic_name, partitions=4)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 5, "log_level": 3})
    delivered = []

    def on_delivery(err, msg):
        delivered.append((err, msg.partition(), msg.offset(), msg.key(), msg.value()))

    base_ts = day_ago_ms()
    sent = {p: [] for p in range(4)}
    for i in range(4000):
        p = i % 4
        key, value = b"key-%05d" % i, b"value-%d-" % i + bytes(range(i % 200))
        headers = [("i", str(i).encode())] if i % 2 else []
        producer.produce(topic_name, key=key, value=value, partition=p, headers=headers, timestamp=base_ts + i, on_delivery=on_delivery)
        sent[p].append((key, value, headers, base_ts + i))
        if i % 500 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    assert len(delivered) == 4000
    assert all(err is None for err, *_ in delivered), [d for d in delivered if d[0] is not None][:3]
    for p in range(4):
        offsets = sorted(o for _, part, o, _, _ in delivered if part == p)
        assert offsets == list(range(1000)), f"partition {p}: delivered offsets are not 0..999"

    consumer = consumer_for(broker)
    consumer.assign([TopicPartition(topic_name, p, OFFSET_BEGINNING) for p in range(4)])
    got = consume(consumer, 4000)
    assert len(got) == 4000
    for p in range(4):
        msgs = sorted((m for m in got if m.partition() == p), key=lambda m: m.offset())
        assert [m.offset() for m in msgs] == list(range(1000))
        for m, (key, value, headers, ts) in zip(msgs, sent[p]):
            assert (m.key(), m.value(), m.headers() or [], m.timestamp()) == (key, value, headers, (1, ts))

    consumer.seek(TopicPartition(topic_name, 2, 500))
    consumer.pause([TopicPartition(topic_name, p) for p in (0, 1, 3)])
    got = consume(consumer, 500)
    assert [m.offset() for m in got] == list(range(500, 1000))
    assert [m.key() for m in got] == [k for k, *_ in sent[2][500:]]
    consumer.close()


def test_create_topics_with_configs_validate_only_and_mixed_results(broker, topic_name):
    admin = admin_for(broker)
    # validate_only creates nothing
    futures = admin.create_topics([NewTopic(topic_name, 3, 1)], validate_only=True)
    futures[topic_name].result(TIMEOUT)
    assert topic_name not in admin.list_topics(timeout=TIMEOUT).topics

    # a mix of valid and invalid topics gets per-topic results
    good = topic_name + "-good"
    bad_name = "bad/name"
    bad_config = topic_name + "-badconfig"
    unknown_config = topic_name + "-unknownconfig"
    bad_partitions = topic_name + "-zeroparts"
    futures = admin.create_topics(
        [
            NewTopic(good, 2, 1, config={"retention.ms": "123456", "cleanup.policy": "compact"}),
            NewTopic(bad_name, 1, 1),
            NewTopic(bad_config, 1, 1, config={"retention.ms": "not-a-number"}),
            NewTopic(unknown_config, 1, 1, config={"no.such.config": "1"}),
            NewTopic(bad_partitions, 0, 1),
        ]
    )
    futures[good].result(TIMEOUT)
    expected_errors = (
        (bad_name, KafkaError.TOPIC_EXCEPTION),
        (bad_config, KafkaError.INVALID_CONFIG),
        (unknown_config, KafkaError.INVALID_CONFIG),
        (bad_partitions, KafkaError.INVALID_PARTITIONS),
    )
    for name, code in expected_errors:
        with pytest.raises(KafkaException) as raised:
            futures[name].result(TIMEOUT)
        assert raised.value.args[0].code() == code, f"{name}: {raised.value}"
    topics = admin.list_topics(timeout=TIMEOUT).topics
    assert good in topics and len(topics[good].partitions) == 2
    for name, _ in expected_errors:
        assert name not in topics, f"{name} was created"

    entries = admin.describe_configs([ConfigResource(ResourceType.TOPIC, good)])[ConfigResource(ResourceType.TOPIC, good)].result(TIMEOUT)
    assert entries["retention.ms"].value == "123456"
    assert entries["cleanup.policy"].value == "compact"

    # an existing topic
    futures = admin.create_topics([NewTopic(good, 1, 1)])
    with pytest.raises(KafkaException) as raised:
        futures[good].result(TIMEOUT)
    assert raised.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS


def test_delete_topics(broker, topic_name):
    admin = admin_for(broker)
    create(admin, topic_name)
    admin.delete_topics([topic_name])[topic_name].result(TIMEOUT)
    wait_for(lambda: topic_name not in admin.list_topics(timeout=TIMEOUT).topics, what="topic gone")
    with pytest.raises(KafkaException) as raised:
        admin.delete_topics([topic_name])[topic_name].result(TIMEOUT)
    assert raised.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def describe(admin, topic):
    resource = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([resource])[resource].result(TIMEOUT)


def test_describe_configs_every_config_with_source_and_synonyms(broker, topic_name):
    admin = admin_for(broker)
    create(admin, topic_name, config={"retention.ms": "7200000"})
    entries = describe(admin, topic_name)
    for name in ("cleanup.policy", "compression.type", "max.message.bytes", "min.insync.replicas", "retention.bytes",
                 "retention.ms", "segment.bytes", "segment.ms", "message.timestamp.type"):
        assert name in entries, f"{name} missing from DescribeConfigs ({len(entries)} entries)"
    override = entries["retention.ms"]
    assert override.value == "7200000"
    assert override.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not override.is_default
    assert override.synonyms, "retention.ms has no synonyms"
    assert any(name.startswith("log.retention.") for name in override.synonyms), sorted(override.synonyms)
    default = entries["cleanup.policy"]
    assert default.value == "delete"
    assert default.source in (ConfigSource.DEFAULT_CONFIG.value, ConfigSource.STATIC_BROKER_CONFIG.value)
    assert "log.cleanup.policy" in default.synonyms, sorted(default.synonyms)

    # the broker resource too
    metadata = admin.list_topics(timeout=TIMEOUT)
    broker_resource = ConfigResource(ResourceType.BROKER, str(next(iter(metadata.brokers))))
    broker_entries = admin.describe_configs([broker_resource])[broker_resource].result(TIMEOUT)
    for name in ("num.partitions", "log.retention.hours", "auto.create.topics.enable", "log.segment.bytes"):
        assert name in broker_entries, f"broker config {name} missing"
    assert broker_entries["num.partitions"].value == "1"


def test_alter_configs_and_incremental_alter_configs(broker, topic_name):
    admin = admin_for(broker)
    create(admin, topic_name, config={"retention.ms": "7200000"})
    resource = ConfigResource(ResourceType.TOPIC, topic_name, set_config={"max.message.bytes": "65536"})
    admin.alter_configs([resource])[resource].result(TIMEOUT)
    entries = describe(admin, topic_name)
    assert entries["max.message.bytes"].value == "65536"
    assert entries["max.message.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    # AlterConfigs replaces the whole set: retention.ms is back to its default
    assert entries["retention.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    def incremental(*ops):
        res = ConfigResource(ResourceType.TOPIC, topic_name, incremental_configs=[ConfigEntry(n, v, incremental_operation=o) for n, v, o in ops])
        admin.incremental_alter_configs([res])[res].result(TIMEOUT)
        return describe(admin, topic_name)

    entries = incremental(("retention.ms", "3600000", AlterConfigOpType.SET))
    assert entries["retention.ms"].value == "3600000"
    assert entries["max.message.bytes"].value == "65536", "incremental SET must keep other overrides"
    entries = incremental(("max.message.bytes", None, AlterConfigOpType.DELETE))
    assert entries["max.message.bytes"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    entries = incremental(("cleanup.policy", "compact", AlterConfigOpType.APPEND))
    assert sorted(entries["cleanup.policy"].value.split(",")) == ["compact", "delete"]
    entries = incremental(("cleanup.policy", "delete", AlterConfigOpType.SUBTRACT))
    assert entries["cleanup.policy"].value == "compact"
    assert entries["retention.ms"].value == "3600000"

    # an invalid value is rejected and changes nothing
    res = ConfigResource(ResourceType.TOPIC, topic_name, incremental_configs=[ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as raised:
        admin.incremental_alter_configs([res])[res].result(TIMEOUT)
    assert raised.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert describe(admin, topic_name)["retention.ms"].value == "3600000"


def test_create_partitions(broker, topic_name):
    admin = admin_for(broker)
    create(admin, topic_name, partitions=2)
    admin.create_partitions([NewPartitions(topic_name, 5)])[topic_name].result(TIMEOUT)
    wait_for(lambda: len(admin.list_topics(topic_name, timeout=TIMEOUT).topics[topic_name].partitions) == 5, what="5 partitions")
    # fewer partitions than now is an error
    with pytest.raises(KafkaException) as raised:
        admin.create_partitions([NewPartitions(topic_name, 3)])[topic_name].result(TIMEOUT)
    assert raised.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    produce_plain(broker, topic_name, 3, partition=4)


def test_delete_records_moves_log_start(broker, topic_name):
    admin = admin_for(broker)
    create(admin, topic_name)
    produce_plain(broker, topic_name, 100)
    deleted = admin.delete_records([TopicPartition(topic_name, 0, 30)])
    result = next(iter(deleted.values())).result(TIMEOUT)
    assert result.low_watermark == 30
    earliest = admin.list_offsets({TopicPartition(topic_name, 0): OffsetSpec.earliest()})
    assert next(iter(earliest.values())).result(TIMEOUT).offset == 30
    consumer = consumer_for(broker)
    consumer.assign([TopicPartition(topic_name, 0, OFFSET_BEGINNING)])
    got = consume(consumer, 70)
    assert [m.offset() for m in got] == list(range(30, 100))
    assert got[0].value() == b"v30"
    low, high = consumer.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=TIMEOUT)
    assert (low, high) == (30, 100)
    consumer.close()


def test_list_offsets(broker, topic_name):
    admin = admin_for(broker)
    create(admin, topic_name)
    base_ts = day_ago_ms()
    # timestamps rise, except record 20, which carries the largest
    timestamps = [base_ts + i * 1000 for i in range(40)]
    timestamps[20] = base_ts + 100_000
    produce_plain(broker, topic_name, 40, timestamps=timestamps)
    tp = TopicPartition(topic_name, 0)

    def offset_of(spec):
        return next(iter(admin.list_offsets({tp: spec}).values())).result(TIMEOUT)

    assert offset_of(OffsetSpec.earliest()).offset == 0
    assert offset_of(OffsetSpec.latest()).offset == 40
    newest = offset_of(OffsetSpec.max_timestamp())
    assert (newest.offset, newest.timestamp) == (20, base_ts + 100_000)
    at = offset_of(OffsetSpec.for_timestamp(base_ts + 5_500))
    assert (at.offset, at.timestamp) == (6, base_ts + 6_000)
    # the first offset whose timestamp is >= the one asked for
    at = offset_of(OffsetSpec.for_timestamp(base_ts + 50_000))
    assert (at.offset, at.timestamp) == (20, base_ts + 100_000)
    assert offset_of(OffsetSpec.for_timestamp(base_ts + 200_000)).offset == -1


def test_describe_cluster_topics_and_list_topics(broker, topic_name):
    admin = admin_for(broker)
    create(admin, topic_name, partitions=3)
    cluster = admin.describe_cluster(request_timeout=TIMEOUT).result(TIMEOUT)
    assert cluster.cluster_id
    assert len(cluster.nodes) == 1
    node = cluster.nodes[0]
    assert (node.host, node.port) == (broker.host, broker.port)
    assert cluster.controller is not None and cluster.controller.id == node.id

    from confluent_kafka import TopicCollection

    described = admin.describe_topics(TopicCollection([topic_name]), request_timeout=TIMEOUT)[topic_name].result(TIMEOUT)
    assert described.name == topic_name
    assert described.topic_id is not None
    assert len(described.partitions) == 3
    for p in described.partitions:
        assert p.leader.id == node.id and [r.id for r in p.replicas] == [node.id] and [r.id for r in p.isr] == [node.id]

    metadata = admin.list_topics(timeout=TIMEOUT)
    assert metadata.cluster_id == cluster.cluster_id
    assert topic_name in metadata.topics
    assert sorted(metadata.topics[topic_name].partitions) == [0, 1, 2]
    assert metadata.topics[topic_name].error is None
    # an unknown topic described explicitly is an error
    with pytest.raises(KafkaException):
        admin.describe_topics(TopicCollection([topic_name + "-missing"]), request_timeout=TIMEOUT)[topic_name + "-missing"].result(TIMEOUT)
