"""An exactly-once copier, run as a subprocess by test_transactions.py so it can be
killed with SIGKILL at any moment.

It reads INPUT as a member of GROUP (read_committed, no auto commit, a static
member so that a restarted instance takes the killed one's place without waiting
for its session to expire) and writes each record, key kept and value prefixed
with b"copied:", to the same partition of OUTPUT. Every batch is one transaction
that also commits the batch's input offsets (send_offsets_to_transaction), so the
output and the group's position move together or not at all.

Progress goes to stdout, one line per event, flushed: "ready" once the producer
holds its epoch (a previous instance's open transaction is aborted by then) and
"committed <records copied so far>" after each commit. With --stall-after-flush N
the copier flushes its N-th batch (the records are in the log, uncommitted), prints
"stalled <records in the batch>" and waits to be killed: a crash mid-transaction at
a known moment.

--pause-ms stands for processing time: the copier waits that long inside each
transaction, after producing the batch, so that a kill at a random moment often
finds records of an open transaction in the log.

Usage: txn_copier.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID [--batch N] [--pause-ms MS] [--stall-after-flush N]
"""

import argparse
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer

TXN_TIMEOUT = 30
IDLE_POLL_S = 0.2
# When every broker is down (the test restarts the only one), librdkafka (2.16
# here) re-bootstraps and decommissions the brokers it knew, but its coordinator
# cache keeps the decommissioned one, so send_offsets_to_transaction's
# TxnOffsetCommit waits for it forever, past its timeout (librdkafka issues #5511
# and #5456). Without re-bootstrap the client reconnects to the same broker
# object and carries on.
CLIENT_BASE = {"metadata.recovery.strategy": "none", "log_level": 3}


def say(line):
    print(line, flush=True)


def parse_args():
    parser = argparse.ArgumentParser()
    for name in ("bootstrap", "input", "output", "group", "transactional_id"):
        parser.add_argument(name)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--pause-ms", type=int, default=0)
    parser.add_argument("--stall-after-flush", type=int, default=0)
    return parser.parse_args()


class Rebalanced:
    """Set by the rebalance callbacks, which run inside consume(): a batch that
    straddles an assignment change must not be copied as one transaction."""

    def __init__(self):
        self.happened = False

    def on_change(self, consumer, partitions):
        self.happened = True


def rewind(consumer):
    """Positions every assigned partition at the group's committed offset, dropping
    what was consumed but not committed (after an abort or a rebalance)."""
    committed = consumer.committed(consumer.assignment(), timeout=TXN_TIMEOUT)
    for tp in committed:
        if tp.offset < 0:
            tp.offset = OFFSET_BEGINNING
        consumer.seek(tp)


def retrying(call):
    while True:
        try:
            return call()
        except KafkaException as e:
            if not e.args[0].retriable():
                raise


def commit(producer, consumer):
    """Commits the open transaction with the consumer's positions; False when it
    had to be aborted instead."""
    try:
        positions = consumer.position(consumer.assignment())
        metadata = consumer.consumer_group_metadata()
        retrying(lambda: producer.send_offsets_to_transaction(positions, metadata, TXN_TIMEOUT))
        retrying(lambda: producer.commit_transaction(TXN_TIMEOUT))
        return True
    except KafkaException as e:
        if not e.args[0].txn_requires_abort():
            raise
        say(f"aborting: {e.args[0]}")
        producer.abort_transaction(TXN_TIMEOUT)
        return False


def main():
    args = parse_args()
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "transactional.id": args.transactional_id,
            "linger.ms": 5,
            **CLIENT_BASE,
        }
    )
    # Before the consumer joins: fencing the previous instance aborts its open
    # transaction, pending offsets included, so the offsets fetched next are stable.
    producer.init_transactions(TXN_TIMEOUT)
    say("ready")

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "group.instance.id": args.transactional_id,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            **CLIENT_BASE,
        }
    )
    rebalanced = Rebalanced()
    consumer.subscribe([args.input], on_assign=rebalanced.on_change, on_revoke=rebalanced.on_change, on_lost=rebalanced.on_change)

    copied = 0
    batches = 0
    while True:
        messages = consumer.consume(args.batch, IDLE_POLL_S)
        if rebalanced.happened:
            rebalanced.happened = False
            rewind(consumer)
            continue
        if not messages:
            continue
        for m in messages:
            if m.error():
                raise KafkaException(m.error())
        producer.begin_transaction()
        for m in messages:
            producer.produce(args.output, key=m.key(), value=b"copied:" + m.value(), partition=m.partition())
        batches += 1
        if batches == args.stall_after_flush:
            if producer.flush(TXN_TIMEOUT) != 0:
                sys.exit("flush timed out")
            say(f"stalled {len(messages)}")
            while True:
                time.sleep(60)
        time.sleep(args.pause_ms / 1000)
        if commit(producer, consumer):
            copied += len(messages)
            say(f"committed {copied}")
        else:
            rewind(consumer)


if __name__ == "__main__":
    main()
