//! The broker settings the coordinator obeys, copied out of the broker config so this
//! crate does not depend on it.

use std::collections::BTreeMap;
use std::sync::Arc;

/// A consumer group's own session timeout and heartbeat interval (group config
/// resources, Kafka 4.0), where it overrides the broker's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerTiming {
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
}

/// Group coordinator limits and defaults (Kafka's `group.*` and `offsets.*` keys).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty
    /// classic group waits for more members.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms` / `group.max.session.timeout.ms` (classic).
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `group.max.size` (classic).
    pub max_size: i32,
    /// `group.consumer.session.timeout.ms` and its bounds (KIP-848).
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (KIP-848).
    pub consumer_heartbeat_interval_ms: i32,
    /// Groups with their own timing, by group id.
    pub consumer_group_timing: Arc<BTreeMap<String, ConsumerTiming>>,
    /// `group.consumer.max.size` (KIP-848).
    pub consumer_max_size: i32,
    /// `group.consumer.assignors`: server-side assignor names, the first is the default.
    pub consumer_assignors: Vec<String>,
    /// `offsets.retention.minutes` in milliseconds.
    pub offsets_retention_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// `group.coordinator.rebalance.protocols` contains `classic` / `consumer`.
    pub classic_enabled: bool,
    pub consumer_enabled: bool,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_group_timing: Arc::default(),
            consumer_max_size: i32::MAX,
            consumer_assignors: vec!["uniform".to_string(), "range".to_string()],
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offset_metadata_max_bytes: 4096,
            classic_enabled: true,
            consumer_enabled: true,
        }
    }
}

impl GroupConfig {
    /// The session timeout of a member of `group_id` (consumer protocol).
    pub fn consumer_session_timeout_ms_of(&self, group_id: &str) -> i32 {
        self.consumer_group_timing
            .get(group_id)
            .map_or(self.consumer_session_timeout_ms, |timing| timing.session_timeout_ms)
    }

    /// The heartbeat interval given to the members of `group_id` (consumer protocol).
    pub fn consumer_heartbeat_interval_ms_of(&self, group_id: &str) -> i32 {
        self.consumer_group_timing
            .get(group_id)
            .map_or(self.consumer_heartbeat_interval_ms, |timing| timing.heartbeat_interval_ms)
    }
}
