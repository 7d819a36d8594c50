//! A topic's configuration: its overrides on top of the broker's defaults.

use std::collections::{BTreeMap, BTreeSet};

use crate::broker::BrokerConfig;
use crate::defs::topic::{synonym_units, topic_config_def, topic_config_defs};
use crate::describe::{broker_key_synonyms, ConfigSynonym, DescribedConfig};
use crate::error::ConfigError;
use crate::types::{ConfigDef, ConfigSource};
use crate::values::{CleanupPolicy, CompressionType, TimestampType, Typed};

/// Every topic key of Kafka 4.x resolved to its typed value.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    pub cleanup_policy: CleanupPolicy,
    pub compression_type: CompressionType,
    pub compression_gzip_level: i32,
    pub compression_lz4_level: i32,
    pub compression_zstd_level: i32,
    pub delete_retention_ms: i64,
    pub file_delete_delay_ms: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    /// `*` or `partition:broker` entries.
    pub follower_replication_throttled_replicas: Vec<String>,
    pub index_interval_bytes: i32,
    pub leader_replication_throttled_replicas: Vec<String>,
    /// -2 means "same as retention.bytes".
    pub local_retention_bytes: i64,
    /// -2 means "same as retention.ms".
    pub local_retention_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub max_message_bytes: i32,
    pub message_timestamp_after_max_ms: i64,
    pub message_timestamp_before_max_ms: i64,
    pub message_timestamp_type: TimestampType,
    pub min_cleanable_dirty_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub min_insync_replicas: i32,
    pub preallocate: bool,
    pub remote_log_copy_disable: bool,
    pub remote_log_delete_on_disable: bool,
    /// Always false: Gregor has no tiered storage.
    pub remote_storage_enable: bool,
    /// -1 means no size limit.
    pub retention_bytes: i64,
    /// -1 means keep forever.
    pub retention_ms: i64,
    pub segment_bytes: i32,
    pub segment_index_bytes: i32,
    pub segment_jitter_ms: i64,
    pub segment_ms: i64,
    pub unclean_leader_election_enable: bool,
    /// The keys the topic itself sets.
    pub overridden: BTreeSet<String>,
}

/// Checks one topic key and value (CreateTopics, AlterConfigs): an unknown key or a bad
/// value is an error the broker reports as INVALID_CONFIG.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), ConfigError> {
    let def = topic_config_def(name).ok_or_else(|| ConfigError::UnknownKey { key: name.to_string() })?;
    def.validate(value)
}

/// The value a topic key takes from the broker when the topic does not set it: the first
/// broker synonym with a value (its default included), in the topic key's unit, and the
/// source and broker key it came from; else the topic key's own default.
fn broker_derived(broker: &BrokerConfig, def: &ConfigDef) -> (Option<String>, ConfigSource, Option<&'static str>) {
    for (key, unit) in synonym_units(def.name) {
        if let Some((raw, source)) = broker.layers.effective(key) {
            let mut value = unit.convert(&raw);
            // The broker reads any negative retention as "forever"; the topic key's -1 says so.
            if def.name == "retention.ms" && crate::types::parse_int::<i64>(&value).is_ok_and(|v| v < 0) {
                value = "-1".into();
            }
            return (Some(value), source, Some(key));
        }
    }
    (def.default.map(str::to_string), ConfigSource::Default, None)
}

impl TopicConfig {
    /// Resolves a topic's overrides on top of the broker's defaults. Unknown keys and bad
    /// values are errors naming the key.
    pub fn resolve(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Result<TopicConfig, ConfigError> {
        for (key, value) in overrides {
            validate_topic_config(key, value)?;
        }
        let mut values: BTreeMap<&'static str, String> = BTreeMap::new();
        for def in topic_config_defs() {
            let value = match overrides.get(def.name) {
                Some(v) => Some(v.clone()),
                None => {
                    let (value, _, from) = broker_derived(broker, def);
                    if let (Some(v), Some(broker_key)) = (&value, from) {
                        // A broker value outside the topic key's rules is reported under
                        // the broker key the operator actually set.
                        def.validate(v).map_err(|e| match e {
                            ConfigError::InvalidValue { value, reason, .. } => ConfigError::InvalidValue {
                                key: broker_key.to_string(),
                                value,
                                reason: format!("{reason} (as the default of topic config {})", def.name),
                            },
                            other => other,
                        })?;
                    }
                    value
                }
            };
            if let Some(v) = value {
                values.insert(def.name, v);
            }
        }
        let t = Typed { lookup: |k: &'static str| values.get(k).cloned() };
        let config = TopicConfig {
            cleanup_policy: t.cleanup_policy("cleanup.policy")?,
            compression_type: t.compression("compression.type")?,
            compression_gzip_level: t.int("compression.gzip.level")?,
            compression_lz4_level: t.int("compression.lz4.level")?,
            compression_zstd_level: t.int("compression.zstd.level")?,
            delete_retention_ms: t.long("delete.retention.ms")?,
            file_delete_delay_ms: t.long("file.delete.delay.ms")?,
            flush_messages: t.long("flush.messages")?,
            flush_ms: t.long("flush.ms")?,
            follower_replication_throttled_replicas: t.list("follower.replication.throttled.replicas")?,
            index_interval_bytes: t.int("index.interval.bytes")?,
            leader_replication_throttled_replicas: t.list("leader.replication.throttled.replicas")?,
            local_retention_bytes: t.long("local.retention.bytes")?,
            local_retention_ms: t.long("local.retention.ms")?,
            max_compaction_lag_ms: t.long("max.compaction.lag.ms")?,
            max_message_bytes: t.int("max.message.bytes")?,
            message_timestamp_after_max_ms: t.long("message.timestamp.after.max.ms")?,
            message_timestamp_before_max_ms: t.long("message.timestamp.before.max.ms")?,
            message_timestamp_type: t.timestamp_type("message.timestamp.type")?,
            min_cleanable_dirty_ratio: t.double("min.cleanable.dirty.ratio")?,
            min_compaction_lag_ms: t.long("min.compaction.lag.ms")?,
            min_insync_replicas: t.int("min.insync.replicas")?,
            preallocate: t.bool("preallocate")?,
            remote_log_copy_disable: t.bool("remote.log.copy.disable")?,
            remote_log_delete_on_disable: t.bool("remote.log.delete.on.disable")?,
            remote_storage_enable: t.bool("remote.storage.enable")?,
            retention_bytes: t.long("retention.bytes")?,
            retention_ms: t.long("retention.ms")?,
            segment_bytes: t.int("segment.bytes")?,
            segment_index_bytes: t.int("segment.index.bytes")?,
            segment_jitter_ms: t.long("segment.jitter.ms")?,
            segment_ms: t.long("segment.ms")?,
            unclean_leader_election_enable: t.bool("unclean.leader.election.enable")?,
            overridden: overrides.keys().cloned().collect(),
        };
        if config.min_compaction_lag_ms > config.max_compaction_lag_ms {
            return Err(ConfigError::Conflict {
                reason: format!(
                    "min.compaction.lag.ms ({}) must not exceed max.compaction.lag.ms ({})",
                    config.min_compaction_lag_ms, config.max_compaction_lag_ms
                ),
            });
        }
        Ok(config)
    }

    /// Every topic key as DescribeConfigs reports it: an override has source DynamicTopic,
    /// anything else the source of the broker synonym in effect, or Default. Synonyms
    /// come in Kafka's order: the topic override, then each broker key by strength.
    /// Overrides that are not topic keys are left out.
    pub fn describe(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Vec<DescribedConfig> {
        topic_config_defs()
            .iter()
            .map(|def| {
                let broker_keys: Vec<&'static str> = synonym_units(def.name).iter().map(|(n, _)| *n).collect();
                let mut synonyms = Vec::new();
                let (value, source) = match overrides.get(def.name) {
                    Some(v) => {
                        synonyms.push(ConfigSynonym {
                            name: def.name.to_string(),
                            value: Some(v.clone()),
                            source: ConfigSource::DynamicTopic,
                        });
                        (Some(v.clone()), ConfigSource::DynamicTopic)
                    }
                    None => {
                        let (value, source, _) = broker_derived(broker, def);
                        (value, source)
                    }
                };
                synonyms.extend(broker_key_synonyms(broker, &broker_keys));
                DescribedConfig {
                    name: def.name.to_string(),
                    value: crate::describe::redact(def, value),
                    source,
                    read_only: false,
                    sensitive: def.sensitive,
                    is_default: source == ConfigSource::Default,
                    synonyms,
                    config_type: def.config_type,
                    documentation: Some(def.documentation.to_string()),
                }
            })
            .collect()
    }
}
