//! The broker settings the coordinator obeys, copied out of the broker config so this
//! crate does not depend on it.

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
            consumer_max_size: i32::MAX,
            consumer_assignors: vec!["uniform".to_string(), "range".to_string()],
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offset_metadata_max_bytes: 4096,
            classic_enabled: true,
            consumer_enabled: true,
        }
    }
}
