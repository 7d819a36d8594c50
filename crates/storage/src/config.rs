//! Partition names and the per-topic log configuration.

use std::fmt;

use gregor_protocol::records::TimestampType;

/// One partition of a topic; its directory is named `<topic>-<partition>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self { topic: topic.into(), partition }
    }

    /// Parses a partition directory name. Topic names may contain '-', so the
    /// partition is what follows the last one. Names of directories being
    /// deleted (`<tp>.<id>-delete`) or other suffixed directories do not parse.
    pub fn parse_dir_name(name: &str) -> Option<Self> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let partition: i32 = partition.parse().ok()?;
        Some(Self { topic: topic.to_string(), partition })
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A topic's log settings, resolved by the broker from Kafka's topic configs.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`
    pub segment_bytes: u64,
    /// `segment.ms`: age of the segment's first batch (or of the segment) that rolls it.
    pub segment_ms: i64,
    /// `segment.index.bytes`: a segment rolls when either index reaches this size.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`
    pub index_interval_bytes: u64,
    /// `retention.ms`, -1 keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes`, -1 is unlimited.
    pub retention_bytes: i64,
    /// `flush.messages`: 1 fsyncs before acknowledging.
    pub flush_interval_messages: i64,
    /// `flush.ms`
    pub flush_interval_ms: i64,
    /// `max.message.bytes`, per batch.
    pub max_message_bytes: usize,
    /// `message.timestamp.type`
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`
    pub message_timestamp_after_max_ms: i64,
    /// `cleanup.policy` contains `compact`
    pub cleanup_policy_compact: bool,
    /// `cleanup.policy` contains `delete`
    pub cleanup_policy_delete: bool,
    /// `file.delete.delay.ms`
    pub file_delete_delay_ms: i64,
    /// `producer.id.expiration.ms` (a broker setting, carried here so each log
    /// can expire its own producers).
    pub producer_id_expiration_ms: i64,
    /// `delete.retention.ms`: how long the cleaner keeps tombstones.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: dirty records older than this force a cleaning.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`
    pub min_cleanable_dirty_ratio: f64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            flush_interval_messages: i64::MAX,
            flush_interval_ms: i64::MAX,
            max_message_bytes: 1024 * 1024 + 12,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            // Kafka 4.0 lowered this from Long.MAX_VALUE to one hour.
            message_timestamp_after_max_ms: 60 * 60 * 1000,
            cleanup_policy_compact: false,
            cleanup_policy_delete: true,
            file_delete_delay_ms: 60 * 1000,
            producer_id_expiration_ms: 24 * 60 * 60 * 1000,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_round_trip_with_dashes_in_the_topic() {
        let tp = TopicPartition::new("my-topic-v2", 13);
        assert_eq!(tp.to_string(), "my-topic-v2-13");
        assert_eq!(TopicPartition::parse_dir_name("my-topic-v2-13"), Some(tp));
    }

    #[test]
    fn non_partition_dir_names_do_not_parse() {
        for name in ["topic", "-3", "t-", "t-x", "t-0.abc-delete", "t-0-future", "t-+1", "t-99999999999"] {
            assert_eq!(TopicPartition::parse_dir_name(name), None, "{name}");
        }
    }

    #[test]
    fn defaults_are_kafkas() {
        let c = LogConfig::default();
        assert_eq!(c.segment_bytes, 1 << 30);
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert_eq!(c.retention_ms, 604_800_000);
        assert_eq!(c.message_timestamp_after_max_ms, 3_600_000);
        assert!(c.cleanup_policy_delete && !c.cleanup_policy_compact);
    }
}
