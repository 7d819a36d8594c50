"""Commits COMMITS offsets of 8 partitions from one consumer, as fast as the
client goes (async, a synchronous commit every 100), and prints the rate."""
import os
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = f"127.0.0.1:{os.environ.get('PORT', '19092')}"
commits = int(os.environ.get("COMMITS", "20000"))
admin = AdminClient({"bootstrap.servers": bootstrap})
for future in admin.create_topics([NewTopic("commit-bench", 8, 1)]).values():
    future.result()
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "commit-bench", "enable.auto.commit": False})
started = time.time()
for i in range(commits):
    offsets = [TopicPartition("commit-bench", p, i) for p in range(8)]
    consumer.commit(offsets=offsets, asynchronous=(i % 100 != 0))
consumer.commit(offsets=[TopicPartition("commit-bench", p, commits) for p in range(8)], asynchronous=False)
elapsed = time.time() - started
committed = consumer.committed([TopicPartition("commit-bench", p) for p in range(8)], timeout=10)
assert all(tp.offset == commits for tp in committed), committed
print(f"{commits} commits of 8 partitions in {elapsed:.1f} s: {commits / elapsed:.0f} commits/s")
consumer.close()
