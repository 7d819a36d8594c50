"""Kafka transactions (KIP-98/447) end to end with confluent-kafka (librdkafka) and
kafka-python against the real broker.

- an exactly-once copier (txn_copier.py: read_committed group consumer plus a
  transactional producer committing its input offsets in each transaction),
  killed with SIGKILL again and again and with one kill -9 of the broker under it,
  copies every input record exactly once, in order;
- two producers' transactions interleaved on the same partitions, some committed
  and some aborted: read_committed sees exactly the committed records, in log
  order, read_uncommitted sees them all;
- a second producer with the same transactional.id fences the first, whose open
  transaction is aborted and whose next operation fails fatally;
- a transaction left open past transaction.timeout.ms holds the last stable
  offset until the broker aborts it; a timeout above transaction.max.timeout.ms
  is refused;
- kafka-python's transactional KafkaProducer commits, aborts and commits consumer
  offsets in a transaction.

The transaction admin operations (ListTransactions, DescribeTransactions,
DescribeProducers, abort) are not tested here: neither client's AdminClient has them.
"""

import collections
import pathlib
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KpTopicPartition
from kafka.structs import OffsetAndMetadata

from conftest import Broker, wait_for

TIMEOUT = 30
COPIER = pathlib.Path(__file__).with_name("txn_copier.py")

TXN_OVERRIDES = {
    "num.partitions": "1",
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.num.partitions": "4",
    "transaction.state.log.num.partitions": "4",
    # The timeout test waits for the broker's abort of a timed-out transaction.
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
}


@pytest.fixture(scope="module")
def broker():
    b = Broker(TXN_OVERRIDES)
    yield b
    b.close()


@pytest.fixture(scope="module")
def crash_broker():
    """A broker of its own for the copier test, which kills it with SIGKILL."""
    b = Broker(TXN_OVERRIDES)
    yield b
    b.close()


def admin_for(broker, **extra):
    return AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 3, **extra})


def create(broker, topic, partitions):
    admin = admin_for(broker)  # the handle must outlive its futures
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    futures[topic].result(TIMEOUT)


def transactional_producer(broker, transactional_id, **extra):
    config = {
        "bootstrap.servers": broker.bootstrap,
        "transactional.id": transactional_id,
        "linger.ms": 5,
        "log_level": 3,
    }
    config.update(extra)
    return Producer(config)


def consumer_for(broker, isolation):
    return Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "gregor-pytest-unused",  # required by the Python binding; no subscribe, no commits
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "log_level": 3,
        }
    )


def high_watermark(consumer, topic, partition):
    """ListOffsets latest at the consumer's isolation level: the log end offset for
    read_uncommitted, the last stable offset for read_committed."""
    return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT, cached=False)[1]


def wait_no_open_transaction(broker, topic, partitions):
    """Waits until the last stable offset of every partition is its log end offset.
    A commit returns once the decision is durable, before the broker has written
    the markers that make the records visible (as in Kafka)."""
    committed_view, log_view = consumer_for(broker, "read_committed"), consumer_for(broker, "read_uncommitted")
    try:
        for p in range(partitions):
            wait_for(
                lambda: high_watermark(committed_view, topic, p) == high_watermark(log_view, topic, p),
                timeout=TIMEOUT,
                what=f"no open transaction in {topic} [{p}]",
            )
    finally:
        committed_view.close()
        log_view.close()


def read_all(broker, topic, partitions, isolation):
    """Every record a consumer at `isolation` reads from the start up to the high
    watermark it sees, once no transaction is open: {partition: [(offset, key, value)]}."""
    wait_no_open_transaction(broker, topic, partitions)
    consumer = consumer_for(broker, isolation)
    try:
        ends = {p: high_watermark(consumer, topic, p) for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got = {p: [] for p in range(partitions)}

        def at_end():
            msg = consumer.poll(0.2)
            if msg is not None:
                assert msg.error() is None, msg.error()
                got[msg.partition()].append((msg.offset(), msg.key(), msg.value()))
            positions = consumer.position([TopicPartition(topic, p) for p in range(partitions)])
            # The position also moves over control batches and aborted records.
            return all(ends[tp.partition] == 0 or tp.offset >= ends[tp.partition] for tp in positions)

        wait_for(at_end, timeout=60, interval=0, what=f"{isolation} read of {topic} up to {ends}")
        return got
    finally:
        consumer.close()


def keys(records):
    return [key for _, key, _ in records]


# --- 1. the exactly-once copier under kill -9 ---------------------------------

INPUT_RECORDS = 10_000
COPY_PARTITIONS = 3
COPY_BATCH = 100


class CopierProcess:
    """One txn_copier.py process; its stdout and stderr go to a file."""

    def __init__(self, broker, log_dir, number, topics, group, transactional_id, *extra):
        self.log_path = log_dir / f"copier-{number}.log"
        args = [sys.executable, str(COPIER), broker.bootstrap, *topics, group, transactional_id, "--batch", str(COPY_BATCH), *extra]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def lines(self):
        return self.log_path.read_text(errors="replace").splitlines()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def exited(self):
        return self.proc.poll() is not None

    def diag(self):
        tail = "\n".join(self.lines()[-20:])
        return f"copier pid {self.proc.pid} exit {self.proc.poll()} ({self.log_path}):\n{tail}"


def produce_numbered(broker, topic, count, partitions):
    """Record i has key b"%05d" % i and goes to partition i % partitions; returns
    each partition's keys and values in offset order."""
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5, "log_level": 3})
    for i in range(count):
        producer.produce(topic, key=b"%05d" % i, value=b"record-%05d" % i, partition=i % partitions)
    assert producer.flush(TIMEOUT) == 0
    return {p: [(b"%05d" % i, b"record-%05d" % i) for i in range(p, count, partitions)] for p in range(partitions)}


def committed_offsets(admin, group, topic, partitions):
    """The group's committed offsets by partition (-1001 when none), or None while
    the broker cannot answer (it is being restarted)."""
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])
    try:
        result = admin.list_consumer_group_offsets([request], request_timeout=5)[group].result(10)
    except KafkaException:
        return None
    return {tp.partition: tp.offset for tp in result.topic_partitions}


@pytest.fixture
def copiers(request):
    """The copier processes a test starts, the last one current; none outlives the
    test, and their logs' tails show under a failure."""
    started = []
    yield started
    for copier in started:
        if not copier.exited():
            copier.kill9()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for copier in started:
            print(copier.diag())


def test_exactly_once_copier_survives_kill9_of_itself_and_of_the_broker(crash_broker, copiers, topic_name, tmp_path):
    broker = crash_broker
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    print(f"random seed {seed}")
    source, sink = topic_name + "-in", topic_name + "-out"
    group = transactional_id = "copier-" + topic_name
    create(broker, source, COPY_PARTITIONS)
    create(broker, sink, COPY_PARTITIONS)
    expected = produce_numbered(broker, source, INPUT_RECORDS, COPY_PARTITIONS)
    # Outlives the broker's restart: no re-bootstrap, as in the copier (see there).
    admin = admin_for(broker, **{"metadata.recovery.strategy": "none"})
    unexpected_exits = []

    def start_copier(*extra):
        copiers.append(CopierProcess(broker, tmp_path, len(copiers), (source, sink), group, transactional_id, *extra))

    def copied():
        """Input records committed by the group so far (None while the broker is
        down). A copier that died on its own is restarted; the test fails on that
        at the end, with its log."""
        if copiers[-1].exited():
            unexpected_exits.append(copiers[-1].diag())
            start_copier("--pause-ms", "30")
        offsets = committed_offsets(admin, group, source, COPY_PARTITIONS)
        return None if offsets is None else sum(max(o, 0) for o in offsets.values())

    def wait_copied(at_least):
        wait_for(lambda: (copied() or 0) >= at_least, timeout=60, interval=0.05, what=f"{at_least} input records committed")

    # A crash at a known moment: the third batch is in the output log, its
    # transaction still open. The next copier's init_transactions aborts it.
    start_copier("--stall-after-flush", "3")

    def stalled():
        return copiers[-1].exited() or any(line.startswith("stalled ") for line in copiers[-1].lines())

    wait_for(stalled, timeout=TIMEOUT, what="the copier to stall mid-transaction")
    assert not copiers[-1].exited(), copiers[-1].diag()
    *_, last_commit, stall = copiers[-1].lines()
    stalled_batch = int(stall.split()[1])
    assert last_commit.startswith("committed "), copiers[-1].diag()
    two_batches = int(last_commit.split()[1])
    wait_for(lambda: copied() == two_batches, timeout=TIMEOUT, what=f"the group's offsets at the first two batches' end ({two_batches} records)")
    copiers[-1].kill9()
    kills = 1

    # Then crashes at random moments, the broker's in the middle.
    start_copier("--pause-ms", "30")
    for low, high, victim in ((800, 2000, "copier"), (2500, 4000, "broker"), (4500, 6000, "copier"), (6500, 7500, "copier"), (8000, 9000, "copier")):
        wait_copied(rng.randrange(low, high))
        time.sleep(rng.uniform(0, 0.05))  # anywhere in the transaction cycle, not just after a commit
        if victim == "broker":
            before = copied()
            broker.kill9()
            broker.start_again()
            # The same copier reconnects and goes on.
            wait_copied(before + 3 * COPY_BATCH)
        else:
            copiers[-1].kill9()
            kills += 1
            start_copier("--pause-ms", "30")
    wait_copied(INPUT_RECORDS)
    copiers[-1].kill9()
    assert not unexpected_exits, "copiers exited on their own:\n" + "\n".join(unexpected_exits)
    ends = {p: len(expected[p]) for p in expected}
    assert committed_offsets(admin, group, source, COPY_PARTITIONS) == ends, "the group's offsets are not at the input's end"

    committed = read_all(broker, sink, COPY_PARTITIONS, "read_committed")
    for p in range(COPY_PARTITIONS):
        copies = [(key, value) for _, key, value in committed[p]]
        want = [(key, b"copied:" + value) for key, value in expected[p]]
        counts = collections.Counter(key for key, _ in copies)
        duplicated = sorted(key for key, n in counts.items() if n > 1)
        missing = sorted({key for key, _ in want} - set(counts))
        assert not duplicated and not missing, (
            f"partition {p}: {len(duplicated)} records copied more than once (first {duplicated[:5]}), "
            f"{len(missing)} never (first {missing[:5]})"
        )
        assert copies == want, f"partition {p}: the copies are out of order or altered"

    everything = read_all(broker, sink, COPY_PARTITIONS, "read_uncommitted")
    in_log = sum(len(records) for records in everything.values())
    print(f"{kills} copier kills, {len(copiers)} copiers; {in_log} records in the output log for {INPUT_RECORDS} copies")
    assert in_log >= INPUT_RECORDS + stalled_batch, f"{in_log} records in the output log: the stalled batch's aborted records are missing"


# --- 2. interleaved commits and aborts -----------------------------------------

ROUNDS = 12
STEPS = 10


def outcome(producer, round_):
    """Whether `producer` commits its transaction of `round_`: every combination of
    the two producers' outcomes comes up."""
    return round_ % 2 == 0 if producer == "a" else round_ % 3 != 0


def test_interleaved_commits_and_aborts_on_shared_partitions(broker, topic_name):
    create(broker, topic_name, 2)
    producers = {name: transactional_producer(broker, f"{topic_name}-{name}") for name in ("a", "b")}
    for producer in producers.values():
        producer.init_transactions(TIMEOUT)
    committed = {}  # key -> whether its transaction committed
    for round_ in range(ROUNDS):
        for producer in producers.values():
            producer.begin_transaction()
        # Both transactions open at once, their records alternating in each
        # partition's log: flushed step by step.
        for step in range(STEPS):
            for name, producer in producers.items():
                key = b"%s-%02d-%02d" % (name.encode(), round_, step)
                producer.produce(topic_name, key=key, value=b"value of " + key, partition=step % 2)
                assert producer.flush(TIMEOUT) == 0
                committed[key] = outcome(name, round_)
        # The one opened first does not always end first.
        for name in ("a", "b") if round_ % 4 < 2 else ("b", "a"):
            if outcome(name, round_):
                producers[name].commit_transaction(TIMEOUT)
            else:
                producers[name].abort_transaction(TIMEOUT)

    everything = read_all(broker, topic_name, 2, "read_uncommitted")
    visible = read_all(broker, topic_name, 2, "read_committed")
    for p in range(2):
        logged = keys(everything[p])
        # Flushed one by one: the two transactions' records alternate.
        in_order = [b"%s-%02d-%02d" % (name, r, step) for r in range(ROUNDS) for step in range(p, STEPS, 2) for name in (b"a", b"b")]
        assert logged == in_order, f"partition {p}: read_uncommitted does not see every record in production order"
        want = [key for key in logged if committed[key]]
        assert keys(visible[p]) == want, f"partition {p}: read_committed is not the committed records in log order"
        assert [value for _, _, value in visible[p]] == [b"value of " + key for key in want]
    assert sum(committed.values()) == sum(len(visible[p]) for p in range(2))


# --- 3. fencing ------------------------------------------------------------------


def test_a_new_producer_instance_fences_the_old_one_and_aborts_its_transaction(broker, topic_name):
    create(broker, topic_name, 1)
    transactional_id = "fenced-" + topic_name
    old = transactional_producer(broker, transactional_id)
    old.init_transactions(TIMEOUT)
    old.begin_transaction()
    for i in range(5):
        old.produce(topic_name, key=b"old-%d" % i, value=b"from the old instance", partition=0)
    assert old.flush(TIMEOUT) == 0
    observer = consumer_for(broker, "read_committed")
    assert high_watermark(observer, topic_name, 0) == 0, "the open transaction must hold the last stable offset at its first record"

    new = transactional_producer(broker, transactional_id)
    new.init_transactions(TIMEOUT)
    # The old instance's transaction is aborted: its 5 records, then the marker.
    assert high_watermark(observer, topic_name, 0) == 6

    old.produce(topic_name, key=b"old-late", value=b"from the fenced instance", partition=0)
    with pytest.raises(KafkaException) as raised:
        old.flush(TIMEOUT)
    error = raised.value.args[0]
    assert (error.code(), error.fatal()) == (KafkaError._FENCED, True), f"produce after fencing: {error}"
    with pytest.raises(KafkaException) as raised:
        old.commit_transaction(TIMEOUT)
    error = raised.value.args[0]
    assert (error.code(), error.fatal()) == (KafkaError._FENCED, True), f"commit after fencing: {error}"

    new.begin_transaction()
    for i in range(3):
        new.produce(topic_name, key=b"new-%d" % i, value=b"from the new instance", partition=0)
    new.commit_transaction(TIMEOUT)
    assert keys(read_all(broker, topic_name, 1, "read_committed")[0]) == [b"new-0", b"new-1", b"new-2"]
    everything = read_all(broker, topic_name, 1, "read_uncommitted")[0]
    assert keys(everything) == [b"old-%d" % i for i in range(5)] + [b"new-0", b"new-1", b"new-2"], "the fenced produce reached the log"
    observer.close()


# --- 4. transaction timeout ------------------------------------------------------


def test_a_transaction_past_its_timeout_is_aborted_by_the_broker(broker, topic_name):
    create(broker, topic_name, 1)
    other = transactional_producer(broker, topic_name + "-other")
    other.init_transactions(TIMEOUT)
    other.begin_transaction()
    for i in range(3):
        other.produce(topic_name, key=b"before-%d" % i, value=b"committed", partition=0)
    other.commit_transaction(TIMEOUT)
    wait_no_open_transaction(broker, topic_name, 1)
    first = 4  # three records and a commit marker
    committed_view, log_view = consumer_for(broker, "read_committed"), consumer_for(broker, "read_uncommitted")
    assert high_watermark(committed_view, topic_name, 0) == high_watermark(log_view, topic_name, 0) == first

    forgotten = transactional_producer(broker, topic_name + "-forgotten", **{"transaction.timeout.ms": 2000})
    forgotten.init_transactions(TIMEOUT)
    started = time.monotonic()
    forgotten.begin_transaction()
    for i in range(5):
        forgotten.produce(topic_name, key=b"forgotten-%d" % i, value=b"never committed", partition=0)
    assert forgotten.flush(TIMEOUT) == 0
    assert high_watermark(log_view, topic_name, 0) == first + 5
    assert high_watermark(committed_view, topic_name, 0) == first, "the open transaction must hold the last stable offset"

    wait_for(lambda: high_watermark(committed_view, topic_name, 0) != first, timeout=15, interval=0.05, what="the broker to abort the transaction")
    waited = time.monotonic() - started
    # Integer milliseconds on the broker's side: a hair under 2 s is still on time.
    assert waited >= 1.95, f"the transaction was ended {waited:.2f} s after it began, before its 2 s timeout"
    end = first + 5 + 1  # and the abort marker
    assert high_watermark(committed_view, topic_name, 0) == high_watermark(log_view, topic_name, 0) == end
    print(f"aborted {waited:.2f} s after the transaction began")

    # The broker bumped the producer's epoch when it aborted: the instance is fenced.
    with pytest.raises(KafkaException) as raised:
        forgotten.commit_transaction(TIMEOUT)
    assert raised.value.args[0].fatal(), f"commit after the timeout: {raised.value.args[0]}"

    other.begin_transaction()
    for i in range(2):
        other.produce(topic_name, key=b"after-%d" % i, value=b"committed", partition=0)
    other.commit_transaction(TIMEOUT)
    want = [b"before-0", b"before-1", b"before-2", b"after-0", b"after-1"]
    assert keys(read_all(broker, topic_name, 1, "read_committed")[0]) == want
    everything = keys(read_all(broker, topic_name, 1, "read_uncommitted")[0])
    assert everything == want[:3] + [b"forgotten-%d" % i for i in range(5)] + want[3:]
    committed_view.close()
    log_view.close()


def test_a_transaction_timeout_above_the_broker_maximum_is_refused(broker):
    # transaction.max.timeout.ms is 900000 by default.
    producer = transactional_producer(broker, "too-long", **{"transaction.timeout.ms": 900001})
    with pytest.raises(KafkaException) as raised:
        producer.init_transactions(TIMEOUT)
    assert raised.value.args[0].code() == KafkaError.INVALID_TRANSACTION_TIMEOUT, raised.value.args[0]


# --- 5. kafka-python ---------------------------------------------------------------


def bounded(call, timeout=TIMEOUT):
    """Runs `call` in a thread: kafka-python's transactional methods wait without a
    timeout, and a test must fail rather than hang."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as e:  # re-raised in the test's thread
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{call} did not return within {timeout} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def kafka_python_read_all(broker, topic, partitions, isolation):
    """kafka-python's view of the whole topic at `isolation`: {partition: [keys]}."""
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, isolation_level=isolation, enable_auto_commit=False, request_timeout_ms=30000)
    try:
        tps = [KpTopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(tps)
        got = {p: [] for p in range(partitions)}

        def at_end():
            for tp, records in consumer.poll(timeout_ms=200).items():
                got[tp.partition].extend(r.key for r in records)
            return all(consumer.position(tp) >= ends[tp] for tp in tps)

        wait_for(at_end, timeout=60, interval=0, what=f"kafka-python {isolation} read of {topic} up to {ends}")
        return got
    finally:
        consumer.close()


def test_kafka_python_transactional_producer(broker, topic_name):
    create(broker, topic_name, 2)
    group = "kafka-python-" + topic_name
    consumed = KpTopicPartition(topic_name + "-input", 0)
    # An error for the offsets' partition (UNKNOWN_TOPIC_OR_PARTITION if the topic
    # did not exist) makes kafka-python 2.2.21's TxnOffsetCommit handler raise
    # AttributeError (`errors.CoordinatorNotAvailableError`) and hang.
    create(broker, consumed.topic, 1)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id="kafka-python-" + topic_name, linger_ms=5)
    try:
        bounded(producer.init_transactions)

        def transaction(prefix, commit, offset=None):
            producer.begin_transaction()
            for i in range(4):
                producer.send(topic_name, key=b"%s-%d" % (prefix, i), value=b"v", partition=i % 2)
            if offset is not None:
                bounded(lambda: producer.send_offsets_to_transaction({consumed: OffsetAndMetadata(offset, "copied", -1)}, group))
            producer.flush(TIMEOUT)  # the records reach the log whatever the outcome
            bounded(producer.commit_transaction if commit else producer.abort_transaction)

        transaction(b"first", commit=True, offset=42)
        transaction(b"dropped", commit=False, offset=99)
        transaction(b"second", commit=True)
    finally:
        producer.close(timeout=5)

    committed = kafka_python_read_all(broker, topic_name, 2, "read_committed")
    assert committed == {p: [b"first-%d" % i for i in (p, p + 2)] + [b"second-%d" % i for i in (p, p + 2)] for p in (0, 1)}
    everything = kafka_python_read_all(broker, topic_name, 2, "read_uncommitted")
    assert everything == {p: [b"%s-%d" % (t, i) for t in (b"first", b"dropped", b"second") for i in (p, p + 2)] for p in (0, 1)}
    # librdkafka agrees.
    assert {p: keys(r) for p, r in read_all(broker, topic_name, 2, "read_committed").items()} == committed

    offsets = committed_offsets(admin_for(broker), group, consumed.topic, 1)
    assert offsets == {0: 42}, "the committed transaction's offset, not the aborted one's"
