//! Every broker key: Kafka 4.x names, types, defaults and rules, with Gregor's own
//! defaults where a laptop-first broker needs them (marked "Gregor:" below).

use std::sync::LazyLock;

use super::*;
use crate::listener::{
    validate_connection_overrides, validate_host_ports, validate_listeners, validate_protocol_map, validate_voters,
};
use crate::types::ConfigType as T;
use crate::types::Validator::{DoubleRange, ListOf, NonEmptyList, OneOf};

/// Gregor: loopback only, so a fresh broker is not reachable from the network.
pub(crate) const DEFAULT_LISTENERS: &str = "PLAINTEXT://127.0.0.1:9092";
/// Gregor: data next to where the broker is started rather than under /tmp.
pub(crate) const DEFAULT_LOG_DIR: &str = "./gregor-data";
/// The one authorizer Gregor implements, under the class name Kafka's configs use.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
pub(crate) const DEFAULT_PROTOCOL_MAP: &str =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

static CORE_DEFS: &[ConfigDef] = &[
    // ---- identity and KRaft ----
    def(
        "node.id",
        T::Int,
        Some("1"),
        between(0, i32::MAX as i64),
        "Id of this node in the cluster. Gregor: defaults to 1 so a single node needs no setting.",
    ),
    def(
        "broker.id",
        T::Int,
        None,
        between(0, i32::MAX as i64),
        "Older name of node.id; when both are set they must agree.",
    ),
    def(
        "process.roles",
        T::List,
        Some("broker,controller"),
        Validator::Custom(crate::values::validate_process_roles),
        "Roles this node plays: broker, controller or both. Gregor: both by default (single-node mode).",
    ),
    def(
        "controller.listener.names",
        T::List,
        Some("CONTROLLER"),
        ANY,
        "Names of the listeners the controller serves; the first is the one brokers and voters \
         use. Gregor: CONTROLLER by default (Kafka has no default).",
    ),
    def(
        "controller.quorum.voters",
        T::List,
        Some(""),
        Validator::Custom(validate_voters),
        "Static controller quorum as id@host:port entries.",
    ),
    def(
        "controller.quorum.bootstrap.servers",
        T::List,
        Some(""),
        Validator::Custom(validate_host_ports),
        "host:port entries used to discover the controller quorum.",
    ),
    def(
        "controller.quorum.election.timeout.ms",
        T::Int,
        Some("1000"),
        at_least(0),
        "How long without a leader before a controller starts an election.",
    ),
    def(
        "controller.quorum.fetch.timeout.ms",
        T::Int,
        Some("2000"),
        at_least(0),
        "How long without a successful fetch before a voter suspects the leader.",
    ),
    def(
        "controller.quorum.election.backoff.max.ms",
        T::Int,
        Some("1000"),
        at_least(0),
        "Upper bound of the randomised wait between elections.",
    ),
    def(
        "controller.quorum.append.linger.ms",
        T::Int,
        Some("25"),
        at_least(0),
        "How long the quorum leader batches writes before appending them.",
    ),
    def(
        "controller.quorum.request.timeout.ms",
        T::Int,
        Some("2000"),
        at_least(0),
        "How long a quorum request may go unanswered before it is retried.",
    ),
    def(
        "controller.quorum.retry.backoff.ms",
        T::Int,
        Some("20"),
        at_least(0),
        "Pause before retrying a failed quorum request.",
    ),
    def(
        "metadata.log.dir",
        T::String,
        None,
        ANY,
        "Directory of the metadata log; when unset the first log directory holds it.",
    ),
    def(
        "metadata.log.segment.bytes",
        T::Int,
        Some("1073741824"),
        at_least(8 * 1024 * 1024),
        "Largest size of one metadata log segment.",
    ),
    def(
        "metadata.log.segment.ms",
        T::Long,
        Some("604800000"),
        at_least(1),
        "Longest time before a new metadata log segment is started.",
    ),
    def(
        "metadata.max.retention.bytes",
        T::Long,
        Some("104857600"),
        ANY,
        "Metadata log size beyond which old snapshots and segments are deleted; -1 means no limit.",
    ),
    def(
        "metadata.max.retention.ms",
        T::Long,
        Some("604800000"),
        ANY,
        "Age beyond which old metadata snapshots and segments are deleted; -1 means no limit.",
    ),
    def(
        "metadata.log.max.record.bytes.between.snapshots",
        T::Long,
        Some("20971520"),
        at_least(1),
        "Metadata log bytes written since the last snapshot after which a new snapshot is taken.",
    ),
    def(
        "metadata.log.max.snapshot.interval.ms",
        T::Long,
        Some("3600000"),
        at_least(0),
        "Longest time between metadata snapshots while the log grows; 0 disables time-based snapshots.",
    ),
    def(
        "metadata.max.idle.interval.ms",
        T::Int,
        Some("500"),
        at_least(0),
        "How often the controller writes a no-op record so followers see progress; 0 disables.",
    ),
    def(
        "broker.heartbeat.interval.ms",
        T::Int,
        Some("2000"),
        at_least(1),
        "Time between a broker's heartbeats to the controller.",
    ),
    def(
        "broker.session.timeout.ms",
        T::Int,
        Some("9000"),
        at_least(1),
        "How long a broker may miss heartbeats before it is fenced.",
    ),
    def(
        "initial.broker.registration.timeout.ms",
        T::Int,
        Some("60000"),
        at_least(1),
        "How long a starting broker waits to register with the controller.",
    ),
    def("broker.rack", T::String, None, ANY, "Rack (or zone) of this broker, for rack-aware placement."),
    // ---- network ----
    def(
        "listeners",
        T::String,
        Some(DEFAULT_LISTENERS),
        Validator::Custom(validate_listeners),
        "NAME://host:port endpoints to listen on; an empty host means every interface. Gregor: \
         loopback by default, and [::1] is bound too while the default is in effect.",
    ),
    def(
        "advertised.listeners",
        T::String,
        None,
        Validator::Custom(validate_listeners),
        "Endpoints clients are told to connect to; defaults to listeners.",
    ),
    def(
        "listener.security.protocol.map",
        T::String,
        Some(DEFAULT_PROTOCOL_MAP),
        Validator::Custom(validate_protocol_map),
        "Security protocol of each listener name, as NAME:PROTOCOL.",
    ),
    def("inter.broker.listener.name", T::String, None, ANY, "Listener brokers use to talk to each other."),
    def(
        "security.inter.broker.protocol",
        T::String,
        Some("PLAINTEXT"),
        OneOf(&["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]),
        "Protocol brokers use to talk to each other when no inter-broker listener is named.",
    ),
    def(
        "socket.send.buffer.bytes",
        T::Int,
        Some("102400"),
        ANY,
        "SO_SNDBUF of client sockets; -1 keeps the OS default.",
    ),
    def(
        "socket.receive.buffer.bytes",
        T::Int,
        Some("102400"),
        ANY,
        "SO_RCVBUF of client sockets; -1 keeps the OS default.",
    ),
    def("socket.request.max.bytes", T::Int, Some("104857600"), at_least(1), "Largest request the broker reads."),
    def("socket.listen.backlog.size", T::Int, Some("50"), at_least(1), "Pending-connection queue of each listener."),
    def("max.connections", T::Int, Some(INT_MAX), at_least(0), "Most client connections the broker accepts.").dynamic(),
    def("max.connections.per.ip", T::Int, Some(INT_MAX), at_least(0), "Most connections from one address.").dynamic(),
    def(
        "max.connections.per.ip.overrides",
        T::String,
        Some(""),
        Validator::Custom(validate_connection_overrides),
        "Per-address exceptions to max.connections.per.ip, as host:count pairs.",
    )
    .dynamic(),
    def(
        "max.connection.creation.rate",
        T::Int,
        Some(INT_MAX),
        at_least(0),
        "Most new connections accepted per second.",
    )
    .dynamic(),
    def("connections.max.idle.ms", T::Long, Some("600000"), ANY, "Idle time after which a connection is closed; negative never closes one."),
    def(
        "connection.failed.authentication.delay.ms",
        T::Int,
        Some("100"),
        at_least(0),
        "Delay before closing a connection whose authentication failed.",
    ),
    def("num.network.threads", T::Int, Some("3"), at_least(1), "Threads serving network I/O.").dynamic(),
    def("num.io.threads", T::Int, Some("8"), at_least(1), "Threads processing requests.").dynamic(),
    def("background.threads", T::Int, Some("10"), at_least(1), "Threads for background work.").dynamic(),
    def(
        "queued.max.requests",
        T::Int,
        Some("500"),
        at_least(1),
        "Requests that may wait for a processing thread before network reads pause.",
    ),
    def(
        "queued.max.request.bytes",
        T::Long,
        Some("-1"),
        ANY,
        "Bytes of queued requests before network reads pause; -1 leaves Gregor's bound, twice socket.request.max.bytes.",
    ),
    def("ssl.keystore.location", T::String, None, ANY, "Path of the key store for TLS listeners.").dynamic(),
    def("ssl.keystore.password", T::Password, None, ANY, "Password of the key store.").dynamic(),
    def("ssl.key.password", T::Password, None, ANY, "Password of the private key in the key store.").dynamic(),
    def("ssl.truststore.location", T::String, None, ANY, "Path of the trust store for TLS listeners.").dynamic(),
    def("ssl.truststore.password", T::Password, None, ANY, "Password of the trust store.").dynamic(),
    def(
        "ssl.client.auth",
        T::String,
        Some("none"),
        OneOf(&["required", "requested", "none"]),
        "Whether TLS clients must present a certificate.",
    )
    .dynamic(),
    // ---- authorization ----
    def(
        "authorizer.class.name",
        T::String,
        Some(""),
        OneOf(&["", STANDARD_AUTHORIZER]),
        "The authorizer: empty for none, or Kafka's StandardAuthorizer (ACLs kept in the metadata log).",
    ),
    def(
        "super.users",
        T::String,
        Some(""),
        ANY,
        "Principals the authorizer lets do anything, separated by semicolons (e.g. User:admin;User:ops).",
    ),
    def(
        "allow.everyone.if.no.acl.found",
        T::Boolean,
        Some("false"),
        ANY,
        "Whether the authorizer allows an operation on a resource that no ACL names.",
    ),
    // Kafka's reconfigurable SASL/Kerberos listener keys: AlterConfigs accepts them on a
    // broker as Kafka does; Gregor has no SASL listener yet, so they take effect with one.
    def("sasl.kerberos.service.name", T::String, None, ANY, "Kerberos principal name Kafka runs as.").dynamic(),
    def("sasl.kerberos.kinit.cmd", T::String, Some("/usr/bin/kinit"), ANY, "Kerberos kinit command path.").dynamic(),
    def(
        "sasl.kerberos.ticket.renew.window.factor",
        T::Double,
        Some("0.8"),
        ANY,
        "Share of a ticket's lifetime after which the login thread renews it.",
    )
    .dynamic(),
    def(
        "sasl.kerberos.ticket.renew.jitter",
        T::Double,
        Some("0.05"),
        ANY,
        "Random jitter added to the Kerberos renewal time, as a share of it.",
    )
    .dynamic(),
    def(
        "sasl.kerberos.min.time.before.relogin",
        T::Long,
        Some("60000"),
        ANY,
        "Login thread sleep time between refresh attempts, in milliseconds.",
    )
    .dynamic(),
    def(
        "sasl.kerberos.principal.to.local.rules",
        T::List,
        Some("DEFAULT"),
        ANY,
        "Rules that map principal names to short names.",
    )
    .dynamic(),
    // ---- topics and logs ----
    def("num.partitions", T::Int, Some("1"), at_least(1), "Partitions of a topic created without a count."),
    def(
        "default.replication.factor",
        T::Int,
        Some("1"),
        at_least(1),
        "Replication factor of a topic created without one.",
    ),
    def(
        "auto.create.topics.enable",
        T::Boolean,
        Some("true"),
        ANY,
        "Create a topic when a client asks for metadata of one that does not exist.",
    ),
    def("delete.topic.enable", T::Boolean, Some("true"), ANY, "Allow topics to be deleted."),
    def("log.dirs", T::List, None, NonEmptyList, "Directories holding partition data; defaults to log.dir."),
    def(
        "log.dir",
        T::List,
        Some(DEFAULT_LOG_DIR),
        NonEmptyList,
        "Data directories used when log.dirs is unset. Gregor: ./gregor-data by default.",
    ),
    def(
        "log.segment.bytes",
        T::Int,
        Some("1073741824"),
        at_least(1024 * 1024),
        "Size at which a segment file is closed and a new one begun.",
    )
    .dynamic(),
    def("log.roll.ms", T::Long, None, ANY, "Age at which a segment is rolled; overrides log.roll.hours.").dynamic(),
    def("log.roll.hours", T::Int, Some("168"), at_least(1), "Age in hours at which a segment is rolled.").dynamic(),
    def(
        "log.roll.jitter.ms",
        T::Long,
        None,
        ANY,
        "Most random time taken off the roll age, so segments do not roll together.",
    )
    .dynamic(),
    def("log.roll.jitter.hours", T::Int, Some("0"), at_least(0), "log.roll.jitter.ms in hours.").dynamic(),
    def(
        "log.retention.ms",
        T::Long,
        None,
        ANY,
        "How long data is kept; overrides .minutes and .hours; negative keeps it forever.",
    )
    .dynamic(),
    def("log.retention.minutes", T::Int, None, ANY, "log.retention.ms in minutes; overrides .hours.").dynamic(),
    def("log.retention.hours", T::Int, Some("168"), ANY, "log.retention.ms in hours.").dynamic(),
    def(
        "log.retention.bytes",
        T::Long,
        Some("-1"),
        ANY,
        "Partition size beyond which old segments are deleted; -1 means no limit.",
    )
    .dynamic(),
    def("log.retention.check.interval.ms", T::Long, Some("300000"), at_least(1), "How often retention is enforced."),
    def(
        "log.cleanup.policy",
        T::List,
        Some("delete"),
        ListOf(CLEANUP_POLICIES),
        "What happens to old segments: delete them, compact them, or both.",
    )
    .dynamic(),
    def("log.index.size.max.bytes", T::Int, Some("10485760"), at_least(4), "Largest size of a segment's offset index.")
        .dynamic(),
    def(
        "log.index.interval.bytes",
        T::Int,
        Some("4096"),
        at_least(0),
        "Bytes appended between two offset index entries.",
    )
    .dynamic(),
    def(
        "log.flush.interval.messages",
        T::Long,
        Some(LONG_MAX),
        at_least(1),
        "Messages appended to a partition before it is forced to disk.",
    )
    .dynamic(),
    def(
        "log.flush.interval.ms",
        T::Long,
        None,
        ANY,
        "Longest time appended data stays unflushed; defaults to log.flush.scheduler.interval.ms.",
    )
    .dynamic(),
    def(
        "log.flush.scheduler.interval.ms",
        T::Long,
        Some(LONG_MAX),
        ANY,
        "How often the flusher looks for partitions due a flush.",
    )
    .dynamic(),
    def(
        "log.flush.offset.checkpoint.interval.ms",
        T::Int,
        Some("60000"),
        at_least(0),
        "How often the recovery point of each partition is saved.",
    ),
    def(
        "log.flush.start.offset.checkpoint.interval.ms",
        T::Int,
        Some("60000"),
        at_least(0),
        "How often the log start offset of each partition is saved.",
    ),
    def(
        "log.segment.delete.delay.ms",
        T::Long,
        Some("60000"),
        at_least(0),
        "Wait before a deleted segment's files are removed.",
    )
    .dynamic(),
    def("log.preallocate", T::Boolean, Some("false"), ANY, "Allocate segment files at full size.").dynamic(),
    def(
        "log.message.timestamp.type",
        T::String,
        Some("CreateTime"),
        OneOf(TIMESTAMP_TYPES),
        "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime).",
    )
    .dynamic(),
    def(
        "log.message.timestamp.before.max.ms",
        T::Long,
        Some(LONG_MAX),
        at_least(0),
        "How far in the past a CreateTime timestamp may be before the batch is rejected.",
    )
    .dynamic(),
    def(
        "log.message.timestamp.after.max.ms",
        T::Long,
        Some("3600000"),
        at_least(0),
        "How far in the future a CreateTime timestamp may be before the batch is rejected.",
    )
    .dynamic(),
    def(
        "log.local.retention.ms",
        T::Long,
        Some("-2"),
        at_least(-2),
        "Local retention time with tiered storage; -2 follows log.retention.ms.",
    )
    .dynamic(),
    def(
        "log.local.retention.bytes",
        T::Long,
        Some("-2"),
        at_least(-2),
        "Local retention size with tiered storage; -2 follows log.retention.bytes.",
    )
    .dynamic(),
    def(
        "log.dir.failure.timeout.ms",
        T::Long,
        Some("30000"),
        at_least(1),
        "How long a failed log directory may go unreported before the broker stops.",
    ),
    def(
        "num.recovery.threads.per.data.dir",
        T::Int,
        Some("2"),
        at_least(1),
        "Threads per data directory for recovery at start and flushing at shutdown.",
    )
    .dynamic(),
    def(
        "remote.log.storage.system.enable",
        T::Boolean,
        Some("false"),
        Validator::Custom(validate_false_only),
        "Tiered storage switch; Gregor accepts only false.",
    ),
    def("log.cleaner.enable", T::Boolean, Some("true"), ANY, "Run the compaction cleaner."),
    def("log.cleaner.threads", T::Int, Some("1"), at_least(0), "Compaction threads.").dynamic(),
    def(
        "log.cleaner.dedupe.buffer.size",
        T::Long,
        Some("134217728"),
        ANY,
        "Memory for key deduplication across all cleaner threads.",
    )
    .dynamic(),
    def(
        "log.cleaner.io.buffer.size",
        T::Int,
        Some("524288"),
        at_least(0),
        "I/O buffer memory across all cleaner threads.",
    )
    .dynamic(),
    def("log.cleaner.io.buffer.load.factor", T::Double, Some("0.9"), ANY, "How full the dedupe buffer may get.")
        .dynamic(),
    def(
        "log.cleaner.io.max.bytes.per.second",
        T::Double,
        Some(DOUBLE_MAX),
        ANY,
        "Throttle on the cleaner's combined read and write rate.",
    )
    .dynamic(),
    def("log.cleaner.backoff.ms", T::Long, Some("15000"), at_least(0), "Sleep of a cleaner with nothing to clean.")
        .dynamic(),
    def(
        "log.cleaner.min.cleanable.ratio",
        T::Double,
        Some("0.5"),
        DoubleRange { min: 0.0, max: 1.0 },
        "Share of uncompacted data needed before a log is compacted.",
    )
    .dynamic(),
    def(
        "log.cleaner.delete.retention.ms",
        T::Long,
        Some("86400000"),
        at_least(0),
        "How long tombstones stay readable in compacted topics.",
    )
    .dynamic(),
    def(
        "log.cleaner.min.compaction.lag.ms",
        T::Long,
        Some("0"),
        at_least(0),
        "Least age of a record before it may be compacted.",
    )
    .dynamic(),
    def(
        "log.cleaner.max.compaction.lag.ms",
        T::Long,
        Some(LONG_MAX),
        at_least(1),
        "Greatest age of a record before its segment must be compacted.",
    )
    .dynamic(),
    def("message.max.bytes", T::Int, Some("1048588"), at_least(0), "Largest record batch the broker accepts.")
        .dynamic(),
    def(
        "compression.type",
        T::String,
        Some("producer"),
        OneOf(COMPRESSION_TYPES),
        "Compression of stored batches; producer keeps what the producer used.",
    )
    .dynamic(),
    def(
        "compression.gzip.level",
        T::Int,
        Some("-1"),
        Validator::Custom(validate_gzip_level),
        "gzip level when the broker compresses.",
    )
    .dynamic(),
    def("compression.lz4.level", T::Int, Some("9"), between(1, 17), "lz4 level when the broker compresses.").dynamic(),
    def("compression.zstd.level", T::Int, Some("3"), between(-131072, 22), "zstd level when the broker compresses.")
        .dynamic(),
    def(
        "min.insync.replicas",
        T::Int,
        Some("1"),
        at_least(1),
        "Replicas that must have a write before an acks=all produce succeeds.",
    )
    .dynamic(),
];

/// The core table followed by the coordinator table, built once.
static BROKER_DEFS: LazyLock<Vec<ConfigDef>> =
    LazyLock::new(|| CORE_DEFS.iter().chain(super::coordinator::COORDINATOR_DEFS).copied().collect());

/// Every broker key Gregor understands.
pub fn broker_config_defs() -> &'static [ConfigDef] {
    &BROKER_DEFS
}

/// The definition of one broker key.
pub fn broker_config_def(name: &str) -> Option<&'static ConfigDef> {
    BROKER_DEFS.iter().find(|d| d.name == name)
}

/// Broker keys that stand for the same setting, strongest first (Kafka lists the whole
/// group as the synonyms of each member).
pub(crate) const BROKER_SYNONYM_GROUPS: &[&[&str]] = &[
    &["log.roll.ms", "log.roll.hours"],
    &["log.roll.jitter.ms", "log.roll.jitter.hours"],
    &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
    &["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
    &["log.dirs", "log.dir"],
];

/// The synonym group of a broker key, or the key alone.
pub(crate) fn broker_synonyms(name: &'static str) -> Vec<&'static str> {
    BROKER_SYNONYM_GROUPS.iter().find(|g| g.contains(&name)).map(|g| g.to_vec()).unwrap_or_else(|| vec![name])
}
