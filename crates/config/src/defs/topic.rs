//! Every topic key of Kafka 4.x, and the broker keys that supply its default.

use super::*;
use crate::types::ConfigType as T;
use crate::types::Validator::{DoubleRange, ListOf, OneOf};

/// `leader/follower.replication.throttled.replicas`: `*` or `partition:broker` pairs.
fn validate_throttled_replicas(value: &str) -> Result<(), String> {
    let items = crate::types::parse_list(value);
    if items.len() == 1 && items[0] == "*" {
        return Ok(());
    }
    for item in &items {
        let ok = item
            .split_once(':')
            .is_some_and(|(p, b)| p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok());
        if !ok {
            return Err(format!("{item:?}: expected * or partition:broker pairs"));
        }
    }
    Ok(())
}

static TOPIC_DEFS: &[ConfigDef] = &[
    def(
        "cleanup.policy",
        T::List,
        Some("delete"),
        ListOf(CLEANUP_POLICIES),
        "delete removes old segments, compact keeps the last record of each key; both may be set.",
    ),
    def(
        "compression.gzip.level",
        T::Int,
        Some("-1"),
        Validator::Custom(validate_gzip_level),
        "gzip level when this topic's batches are recompressed.",
    ),
    def("compression.lz4.level", T::Int, Some("9"), between(1, 17), "lz4 level when batches are recompressed."),
    def(
        "compression.type",
        T::String,
        Some("producer"),
        OneOf(COMPRESSION_TYPES),
        "Compression of stored batches; producer keeps what the producer used.",
    ),
    def("compression.zstd.level", T::Int, Some("3"), between(-131072, 22), "zstd level when batches are recompressed."),
    def(
        "delete.retention.ms",
        T::Long,
        Some("86400000"),
        at_least(0),
        "How long tombstones stay readable after compaction.",
    ),
    def(
        "file.delete.delay.ms",
        T::Long,
        Some("60000"),
        at_least(0),
        "Wait before a deleted segment's files are removed.",
    ),
    def("flush.messages", T::Long, Some(LONG_MAX), at_least(1), "Messages appended before a forced flush."),
    def("flush.ms", T::Long, Some(LONG_MAX), at_least(0), "Longest time appended data stays unflushed."),
    def(
        "follower.replication.throttled.replicas",
        T::List,
        Some(""),
        Validator::Custom(validate_throttled_replicas),
        "Replicas whose follower-side replication is throttled: * or partition:broker pairs.",
    ),
    def("index.interval.bytes", T::Int, Some("4096"), at_least(0), "Bytes appended between two offset index entries."),
    def(
        "leader.replication.throttled.replicas",
        T::List,
        Some(""),
        Validator::Custom(validate_throttled_replicas),
        "Replicas whose leader-side replication is throttled: * or partition:broker pairs.",
    ),
    def(
        "local.retention.bytes",
        T::Long,
        Some("-2"),
        at_least(-2),
        "Local size limit with tiered storage; -2 follows retention.bytes.",
    ),
    def(
        "local.retention.ms",
        T::Long,
        Some("-2"),
        at_least(-2),
        "Local time limit with tiered storage; -2 follows retention.ms.",
    ),
    def(
        "max.compaction.lag.ms",
        T::Long,
        Some(LONG_MAX),
        at_least(1),
        "Greatest age of a record before its segment must be compacted.",
    ),
    def("max.message.bytes", T::Int, Some("1048588"), at_least(0), "Largest record batch this topic accepts."),
    def(
        "message.timestamp.after.max.ms",
        T::Long,
        Some("3600000"),
        at_least(0),
        "How far in the future a CreateTime timestamp may be.",
    ),
    def(
        "message.timestamp.before.max.ms",
        T::Long,
        Some(LONG_MAX),
        at_least(0),
        "How far in the past a CreateTime timestamp may be.",
    ),
    def(
        "message.timestamp.type",
        T::String,
        Some("CreateTime"),
        OneOf(TIMESTAMP_TYPES),
        "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime).",
    ),
    def(
        "min.cleanable.dirty.ratio",
        T::Double,
        Some("0.5"),
        DoubleRange { min: 0.0, max: 1.0 },
        "Share of uncompacted data needed before the log is compacted.",
    ),
    def("min.compaction.lag.ms", T::Long, Some("0"), at_least(0), "Least age of a record before it may be compacted."),
    def(
        "min.insync.replicas",
        T::Int,
        Some("1"),
        at_least(1),
        "Replicas that must have a write before an acks=all produce succeeds.",
    ),
    def("preallocate", T::Boolean, Some("false"), ANY, "Allocate segment files at full size."),
    def(
        "remote.log.copy.disable",
        T::Boolean,
        Some("false"),
        ANY,
        "Stop copying to tiered storage while keeping what is there.",
    ),
    def(
        "remote.log.delete.on.disable",
        T::Boolean,
        Some("false"),
        ANY,
        "Delete tiered data when tiered storage is turned off for the topic.",
    ),
    def(
        "remote.storage.enable",
        T::Boolean,
        Some("false"),
        Validator::Custom(validate_false_only),
        "Tiered storage for this topic; Gregor accepts only false.",
    ),
    def("retention.bytes", T::Long, Some("-1"), ANY, "Partition size beyond which old segments go; -1 no limit."),
    def("retention.ms", T::Long, Some("604800000"), at_least(-1), "How long data is kept; -1 keeps it forever."),
    def(
        "segment.bytes",
        T::Int,
        Some("1073741824"),
        at_least(1024 * 1024),
        "Size at which a segment is closed and a new one begun.",
    ),
    def("segment.index.bytes", T::Int, Some("10485760"), at_least(4), "Largest size of a segment's offset index."),
    def("segment.jitter.ms", T::Long, Some("0"), at_least(0), "Most random time taken off segment.ms."),
    def("segment.ms", T::Long, Some("604800000"), at_least(1), "Age at which a segment is rolled."),
    def(
        "unclean.leader.election.enable",
        T::Boolean,
        Some("false"),
        ANY,
        "Let an out-of-sync replica become leader, at the risk of losing data.",
    ),
];

/// How a broker synonym's value converts to the topic key's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Same,
    MinutesToMs,
    HoursToMs,
}

impl Unit {
    /// Converts a broker value; non-numeric values pass through (only time keys convert).
    pub(crate) fn convert(self, value: &str) -> String {
        let factor = match self {
            Unit::Same => return value.to_string(),
            Unit::MinutesToMs => 60_000,
            Unit::HoursToMs => 3_600_000,
        };
        match crate::types::parse_int::<i64>(value) {
            Ok(v) => v.saturating_mul(factor).to_string(),
            Err(_) => value.to_string(),
        }
    }
}

/// Topic key → broker keys supplying its default, strongest first (Kafka's order).
pub(crate) const TOPIC_SYNONYMS: &[(&str, &[(&str, Unit)])] = &[
    ("segment.bytes", &[("log.segment.bytes", Unit::Same)]),
    ("segment.ms", &[("log.roll.ms", Unit::Same), ("log.roll.hours", Unit::HoursToMs)]),
    ("segment.jitter.ms", &[("log.roll.jitter.ms", Unit::Same), ("log.roll.jitter.hours", Unit::HoursToMs)]),
    ("segment.index.bytes", &[("log.index.size.max.bytes", Unit::Same)]),
    ("flush.messages", &[("log.flush.interval.messages", Unit::Same)]),
    ("flush.ms", &[("log.flush.interval.ms", Unit::Same), ("log.flush.scheduler.interval.ms", Unit::Same)]),
    ("retention.bytes", &[("log.retention.bytes", Unit::Same)]),
    (
        "retention.ms",
        &[
            ("log.retention.ms", Unit::Same),
            ("log.retention.minutes", Unit::MinutesToMs),
            ("log.retention.hours", Unit::HoursToMs),
        ],
    ),
    ("max.message.bytes", &[("message.max.bytes", Unit::Same)]),
    ("index.interval.bytes", &[("log.index.interval.bytes", Unit::Same)]),
    ("delete.retention.ms", &[("log.cleaner.delete.retention.ms", Unit::Same)]),
    ("min.compaction.lag.ms", &[("log.cleaner.min.compaction.lag.ms", Unit::Same)]),
    ("max.compaction.lag.ms", &[("log.cleaner.max.compaction.lag.ms", Unit::Same)]),
    ("file.delete.delay.ms", &[("log.segment.delete.delay.ms", Unit::Same)]),
    ("min.cleanable.dirty.ratio", &[("log.cleaner.min.cleanable.ratio", Unit::Same)]),
    ("cleanup.policy", &[("log.cleanup.policy", Unit::Same)]),
    ("unclean.leader.election.enable", &[("unclean.leader.election.enable", Unit::Same)]),
    ("min.insync.replicas", &[("min.insync.replicas", Unit::Same)]),
    ("compression.type", &[("compression.type", Unit::Same)]),
    ("compression.gzip.level", &[("compression.gzip.level", Unit::Same)]),
    ("compression.lz4.level", &[("compression.lz4.level", Unit::Same)]),
    ("compression.zstd.level", &[("compression.zstd.level", Unit::Same)]),
    ("preallocate", &[("log.preallocate", Unit::Same)]),
    ("message.timestamp.type", &[("log.message.timestamp.type", Unit::Same)]),
    ("message.timestamp.before.max.ms", &[("log.message.timestamp.before.max.ms", Unit::Same)]),
    ("message.timestamp.after.max.ms", &[("log.message.timestamp.after.max.ms", Unit::Same)]),
    ("local.retention.ms", &[("log.local.retention.ms", Unit::Same)]),
    ("local.retention.bytes", &[("log.local.retention.bytes", Unit::Same)]),
];

/// Every topic key Gregor understands.
pub fn topic_config_defs() -> &'static [ConfigDef] {
    TOPIC_DEFS
}

/// The definition of one topic key.
pub fn topic_config_def(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_DEFS.iter().find(|d| d.name == name)
}

/// The broker keys whose values default the topic key `name`, strongest first.
pub fn topic_broker_synonyms(name: &str) -> Vec<&'static str> {
    synonym_units(name).iter().map(|(n, _)| *n).collect()
}

pub(crate) fn synonym_units(name: &str) -> &'static [(&'static str, Unit)] {
    TOPIC_SYNONYMS.iter().find(|(t, _)| *t == name).map(|(_, s)| *s).unwrap_or(&[])
}

/// Whether a key holds a comma-separated list, so IncrementalAlterConfigs may APPEND or
/// SUBTRACT elements. Topic keys first, then broker keys.
pub fn is_list_config(name: &str) -> bool {
    topic_config_def(name)
        .or_else(|| crate::defs::broker::broker_config_def(name))
        .is_some_and(|d| d.config_type == ConfigType::List)
}
