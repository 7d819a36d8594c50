//! Broker keys of the replication, group and transaction machinery (Kafka 4.x names,
//! types, defaults and rules); the rest of the broker keys are in `broker`.

use super::*;
use crate::types::ConfigType as T;
use crate::types::Validator::OneOfIgnoreCase;

fn validate_rebalance_protocols(value: &str) -> Result<(), String> {
    let items = crate::types::parse_list(value);
    for item in &items {
        if !["classic", "consumer", "streams", "share"].contains(&item.as_str()) {
            return Err(format!("{item:?} is not one of classic, consumer, streams, share"));
        }
    }
    if !items.iter().any(|i| i == "classic") {
        return Err("must include classic".into());
    }
    Ok(())
}

fn validate_assignors(value: &str) -> Result<(), String> {
    let items = crate::types::parse_list(value);
    if items.is_empty() {
        return Err("must name at least one assignor".into());
    }
    for item in &items {
        // Short names, or Kafka's class names for the same two server-side assignors.
        let known = ["uniform", "range"].contains(&item.as_str())
            || item.ends_with(".UniformAssignor")
            || item.ends_with(".RangeAssignor");
        if !known {
            return Err(format!("{item:?} is not a known assignor (uniform, range)"));
        }
    }
    Ok(())
}

pub(crate) static COORDINATOR_DEFS: &[ConfigDef] = &[
    // ---- replication ----
    def(
        "unclean.leader.election.enable",
        T::Boolean,
        Some("false"),
        ANY,
        "Let an out-of-sync replica become leader, at the risk of losing data.",
    )
    .dynamic(),
    def(
        "replica.lag.time.max.ms",
        T::Long,
        Some("30000"),
        ANY,
        "How long a follower may lag before it leaves the in-sync set.",
    ),
    def("replica.socket.timeout.ms", T::Int, Some("30000"), ANY, "Socket timeout of follower fetches."),
    def("replica.socket.receive.buffer.bytes", T::Int, Some("65536"), ANY, "SO_RCVBUF of follower fetches."),
    def("replica.fetch.max.bytes", T::Int, Some("1048576"), at_least(0), "Bytes a follower asks for per partition."),
    def(
        "replica.fetch.wait.max.ms",
        T::Int,
        Some("500"),
        ANY,
        "Longest wait of a follower fetch; must stay below replica.lag.time.max.ms.",
    ),
    def("replica.fetch.min.bytes", T::Int, Some("1"), ANY, "Bytes a follower fetch waits for."),
    def(
        "replica.fetch.response.max.bytes",
        T::Int,
        Some("10485760"),
        at_least(0),
        "Bytes a follower asks for per fetch.",
    ),
    def("replica.fetch.backoff.ms", T::Int, Some("1000"), at_least(0), "Pause after a failed follower fetch."),
    def("num.replica.fetchers", T::Int, Some("1"), ANY, "Fetcher threads per source broker.").dynamic(),
    def(
        "replica.high.watermark.checkpoint.interval.ms",
        T::Long,
        Some("5000"),
        ANY,
        "How often high watermarks are saved.",
    ),
    def(
        "fetch.purgatory.purge.interval.requests",
        T::Int,
        Some("1000"),
        ANY,
        "Completed fetch waits kept before the waiting list is purged.",
    ),
    def(
        "producer.purgatory.purge.interval.requests",
        T::Int,
        Some("1000"),
        ANY,
        "Completed produce waits kept before the waiting list is purged.",
    ),
    def("fetch.max.bytes", T::Int, Some("57671680"), at_least(1024), "Most bytes one fetch response carries."),
    def(
        "auto.leader.rebalance.enable",
        T::Boolean,
        Some("true"),
        ANY,
        "Move leadership back to preferred replicas in the background.",
    ),
    def(
        "leader.imbalance.per.broker.percentage",
        T::Int,
        Some("10"),
        ANY,
        "Share of misplaced leaders per broker that triggers a rebalance.",
    ),
    def(
        "leader.imbalance.check.interval.seconds",
        T::Long,
        Some("300"),
        at_least(1),
        "How often leader placement is checked.",
    ),
    // ---- group coordinator ----
    def(
        "offsets.topic.num.partitions",
        T::Int,
        Some("50"),
        at_least(1),
        "Partitions of __consumer_offsets (fixed once the topic exists).",
    ),
    def(
        "offsets.topic.replication.factor",
        T::Short,
        Some("3"),
        at_least(1),
        "Replication factor of __consumer_offsets; Gregor uses at most the number of live brokers.",
    ),
    def("offsets.topic.segment.bytes", T::Int, Some("104857600"), at_least(1), "Segment size of __consumer_offsets."),
    def(
        "offsets.topic.compression.codec",
        T::Int,
        Some("0"),
        between(0, 4),
        "Compression of offset commits written to __consumer_offsets (0 none .. 4 zstd).",
    ),
    def(
        "offsets.load.buffer.size",
        T::Int,
        Some("5242880"),
        at_least(1),
        "Read batch size when loading __consumer_offsets.",
    ),
    def(
        "offsets.retention.minutes",
        T::Int,
        Some("10080"),
        at_least(1),
        "How long committed offsets of an empty group are kept.",
    ),
    def(
        "offsets.retention.check.interval.ms",
        T::Long,
        Some("600000"),
        at_least(1),
        "How often expired offsets are looked for.",
    ),
    def(
        "offsets.commit.timeout.ms",
        T::Int,
        Some("5000"),
        at_least(1),
        "How long an offset commit waits for its write to replicate.",
    ),
    def("offset.metadata.max.bytes", T::Int, Some("4096"), ANY, "Largest metadata string of a committed offset."),
    def(
        "group.initial.rebalance.delay.ms",
        T::Int,
        Some("3000"),
        ANY,
        "Wait for more members before the first rebalance of an empty classic group.",
    ),
    def("group.min.session.timeout.ms", T::Int, Some("6000"), ANY, "Least session timeout a classic member may ask."),
    def(
        "group.max.session.timeout.ms",
        T::Int,
        Some("1800000"),
        ANY,
        "Greatest session timeout a classic member may ask.",
    ),
    def("group.max.size", T::Int, Some(INT_MAX), at_least(1), "Most members of one classic group."),
    def(
        "group.coordinator.rebalance.protocols",
        T::List,
        Some("classic,consumer"),
        Validator::Custom(validate_rebalance_protocols),
        "Group protocols enabled; classic is required.",
    ),
    def(
        "group.consumer.session.timeout.ms",
        T::Int,
        Some("45000"),
        at_least(1),
        "Session timeout of consumer-protocol members.",
    ),
    def(
        "group.consumer.min.session.timeout.ms",
        T::Int,
        Some("45000"),
        at_least(1),
        "Least session timeout a consumer group may be given.",
    ),
    def(
        "group.consumer.max.session.timeout.ms",
        T::Int,
        Some("60000"),
        at_least(1),
        "Greatest session timeout a consumer group may be given.",
    ),
    def(
        "group.consumer.heartbeat.interval.ms",
        T::Int,
        Some("5000"),
        at_least(1),
        "Heartbeat interval of consumer-protocol members.",
    ),
    def(
        "group.consumer.min.heartbeat.interval.ms",
        T::Int,
        Some("5000"),
        at_least(1),
        "Least heartbeat interval a consumer group may be given.",
    ),
    def(
        "group.consumer.max.heartbeat.interval.ms",
        T::Int,
        Some("15000"),
        at_least(1),
        "Greatest heartbeat interval a consumer group may be given.",
    ),
    def("group.consumer.max.size", T::Int, Some(INT_MAX), at_least(1), "Most members of one consumer group."),
    def(
        "group.consumer.assignors",
        T::List,
        Some("uniform,range"),
        Validator::Custom(validate_assignors),
        "Server-side assignors, the first being the default.",
    ),
    def(
        "group.consumer.migration.policy",
        T::String,
        Some("bidirectional"),
        OneOfIgnoreCase(&["disabled", "downgrade", "upgrade", "bidirectional"]),
        "Whether groups may convert between the classic and consumer protocols.",
    ),
    // ---- transactions and producer ids ----
    def(
        "transactional.id.expiration.ms",
        T::Int,
        Some("604800000"),
        at_least(1),
        "Idle time after which a transactional id is forgotten.",
    ),
    def(
        "transaction.max.timeout.ms",
        T::Int,
        Some("900000"),
        at_least(1),
        "Greatest transaction timeout a producer may ask.",
    ),
    def(
        "transaction.state.log.num.partitions",
        T::Int,
        Some("50"),
        at_least(1),
        "Partitions of __transaction_state (fixed once the topic exists).",
    ),
    def(
        "transaction.state.log.replication.factor",
        T::Short,
        Some("3"),
        at_least(1),
        "Replication factor of __transaction_state; Gregor uses at most the number of live brokers.",
    ),
    def(
        "transaction.state.log.segment.bytes",
        T::Int,
        Some("104857600"),
        at_least(1),
        "Segment size of __transaction_state.",
    ),
    def("transaction.state.log.min.isr", T::Int, Some("2"), at_least(1), "min.insync.replicas of __transaction_state."),
    def(
        "transaction.state.log.load.buffer.size",
        T::Int,
        Some("5242880"),
        at_least(1),
        "Read batch size when loading __transaction_state.",
    ),
    def(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        T::Int,
        Some("10000"),
        at_least(1),
        "How often timed-out transactions are looked for and aborted.",
    ),
    def(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        T::Int,
        Some("3600000"),
        at_least(1),
        "How often expired transactional ids are removed.",
    ),
    def(
        "transaction.partition.verification.enable",
        T::Boolean,
        Some("true"),
        ANY,
        "Check that a partition joined the transaction before accepting transactional writes.",
    )
    .dynamic(),
    def(
        "producer.id.expiration.ms",
        T::Int,
        Some("86400000"),
        at_least(1),
        "Idle time after which an idempotent producer id's state is dropped.",
    )
    .dynamic(),
    def(
        "producer.id.expiration.check.interval.ms",
        T::Int,
        Some("600000"),
        at_least(1),
        "How often expired producer ids are looked for.",
    ),
];
