#!/usr/bin/env python3
"""Drive kafka-python against scripts/golden-capture/fake_broker.py.

Scenarios (each uses its own client_id, so every captured frame says which
scenario sent it; the fake broker's index.jsonl records the client id):

  kp-produce-<codec>  KafkaProducer(compression_type=<codec>) sends TEN records
                      (key-1/value-1 .. key-10/value-10, one header each) to
                      golden-topic partition 0 in one batch, codec in
                      none/gzip/snappy/lz4/zstd. Ten, not one: kafka-python sends a
                      batch uncompressed when compressing does not shrink it, which
                      is the case for a single tiny record.
  kp-fetch            KafkaConsumer without a group, assign([golden-topic/0]),
                      auto_offset_reset=earliest, polls until it gets the records
  kp-group            KafkaConsumer(group_id=golden-group) subscribes to
                      golden-topic, polls until records arrive, stays 2.5 s more
                      (heartbeats), commits, closes

The record values are the constants below; crates/protocol/tests/golden/README.md
lists them as the expected values for the tests.

Usage: capture_kafka_python.py --bootstrap 127.0.0.1:PORT
"""

import argparse
import logging
import sys
import time

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

TOPIC = "golden-topic"
PARTITION = 0
RECORDS = 10  # key-1/value-1 .. key-10/value-10
HEADERS = [("golden-header", b"header-value")]
TIMESTAMP_MS = 1700000000000  # 2023-11-14T22:13:20Z
GROUP = "golden-group"
CODECS = [None, "gzip", "snappy", "lz4", "zstd"]


def produce(bootstrap, codec):
    name = codec or "none"
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=f"kp-produce-{name}",
        compression_type=codec,
        acks="all",
        linger_ms=500,  # so all records go in one batch
        request_timeout_ms=10000,
    )
    futures = [producer.send(TOPIC, key=b"key-%d" % i, value=b"value-%d" % i, partition=PARTITION,
                             timestamp_ms=TIMESTAMP_MS + i - 1, headers=HEADERS)
               for i in range(1, RECORDS + 1)]
    producer.flush()
    offsets = [f.get(timeout=15).offset for f in futures]
    producer.close(timeout=5)
    print(f"produced codec={name}: partition={PARTITION} offsets={offsets}")


def fetch(bootstrap):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="kp-fetch",
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=200,
    )
    consumer.assign([TopicPartition(TOPIC, PARTITION)])
    got = poll_some(consumer)
    consumer.close()
    print(f"fetched {len(got)} records: {got[:1]}")
    return got


def group(bootstrap):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="kp-group",
        group_id=GROUP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=200,
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
    )
    consumer.subscribe([TOPIC])
    got = poll_some(consumer)
    # Stay in the group a little longer so the heartbeat thread sends a Heartbeat.
    deadline = time.time() + 2.5
    while time.time() < deadline:
        consumer.poll(timeout_ms=250)
    print(f"group consumer assignment={sorted(consumer.assignment())} records={len(got)}")
    if got:
        consumer.commit()
    consumer.close()
    return got


def poll_some(consumer, timeout_s=20):
    deadline = time.time() + timeout_s
    got = []
    while time.time() < deadline and not got:
        for _tp, records in consumer.poll(timeout_ms=500).items():
            got.extend((r.offset, r.key, r.value) for r in records)
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    print(f"kafka-python {kafka.__version__}")
    for codec in CODECS:
        produce(args.bootstrap, codec)
    ok = bool(fetch(args.bootstrap))
    ok = bool(group(args.bootstrap)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
