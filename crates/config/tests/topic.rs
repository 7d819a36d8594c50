//! Topic configs: validation, resolution over broker defaults, describe.

use std::collections::BTreeMap;

use gregor_config::*;

fn map(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn broker(items: &[(&str, &str)]) -> BrokerConfig {
    BrokerConfig::from_pairs(items).expect("broker config loads").config
}

fn describe_key(b: &BrokerConfig, o: &BTreeMap<String, String>, name: &str) -> DescribedConfig {
    TopicConfig::describe(b, o).into_iter().find(|d| d.name == name).expect("described key")
}

#[test]
fn validate_single_keys() {
    assert!(validate_topic_config("retention.ms", "-1").is_ok());
    assert!(validate_topic_config("retention.ms", "-2").is_err());
    assert!(validate_topic_config("segment.bytes", "1048575").is_err());
    assert!(validate_topic_config("segment.bytes", "1048576").is_ok());
    assert!(validate_topic_config("cleanup.policy", "compact, delete").is_ok());
    assert!(validate_topic_config("cleanup.policy", "compact,archive").is_err());
    assert!(validate_topic_config("message.timestamp.type", "LogAppendTime").is_ok());
    assert!(validate_topic_config("min.insync.replicas", "0").is_err());
    assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
    assert!(validate_topic_config("preallocate", "True").is_ok());
    assert!(validate_topic_config("remote.storage.enable", "false").is_ok());
    assert!(validate_topic_config("remote.storage.enable", "true").is_err());
    assert!(validate_topic_config("compression.gzip.level", "0").is_err());
    assert!(validate_topic_config("leader.replication.throttled.replicas", "0:1,1:2").is_ok());
    assert!(validate_topic_config("leader.replication.throttled.replicas", "x").is_err());
    assert!(matches!(
        validate_topic_config("message.downconversion.enable", "true"),
        Err(ConfigError::UnknownKey { .. })
    ));
}

#[test]
fn resolve_over_broker_defaults() {
    let b = broker(&[("log.retention.hours", "2"), ("log.segment.bytes", "2097152"), ("message.max.bytes", "5000")]);
    let t = TopicConfig::resolve(&b, &BTreeMap::new()).expect("resolves");
    assert_eq!(t.retention_ms, 7_200_000);
    assert_eq!(t.segment_bytes, 2_097_152);
    assert_eq!(t.max_message_bytes, 5000);
    assert_eq!(t.segment_ms, 604_800_000);
    assert_eq!(t.flush_ms, i64::MAX);
    assert_eq!(t.message_timestamp_after_max_ms, 3_600_000);
    assert!(!t.remote_storage_enable);
    assert!(t.overridden.is_empty());

    let o = map(&[
        ("retention.ms", "1000"),
        ("cleanup.policy", "compact,delete"),
        ("message.timestamp.type", "LogAppendTime"),
    ]);
    let t = TopicConfig::resolve(&b, &o).expect("resolves");
    assert_eq!(t.retention_ms, 1000);
    assert_eq!(t.cleanup_policy, CleanupPolicy { delete: true, compact: true });
    assert_eq!(t.message_timestamp_type, TimestampType::LogAppendTime);
    assert!(t.overridden.contains("retention.ms"));

    let infinite = broker(&[("log.retention.ms", "-7")]);
    assert_eq!(TopicConfig::resolve(&infinite, &BTreeMap::new()).expect("resolves").retention_ms, -1);

    assert!(matches!(TopicConfig::resolve(&b, &map(&[("bogus", "1")])), Err(ConfigError::UnknownKey { .. })));
    let err = TopicConfig::resolve(&b, &map(&[("segment.ms", "0")])).expect_err("invalid");
    assert_eq!(err.key(), Some("segment.ms"));
    assert!(TopicConfig::resolve(&b, &map(&[("min.compaction.lag.ms", "10"), ("max.compaction.lag.ms", "5")])).is_err());
}

#[test]
fn describe_sources_and_synonyms() {
    let b = broker(&[("log.retention.minutes", "30")]);
    let d = b.with_dynamic(&BTreeMap::new(), &map(&[("log.segment.bytes", "2097152")])).expect("applies");
    let none = BTreeMap::new();
    let all = TopicConfig::describe(&d, &none);
    assert_eq!(all.len(), topic_config_defs().len());

    let retention = describe_key(&d, &none, "retention.ms");
    assert_eq!(retention.value.as_deref(), Some("1800000"));
    assert_eq!(retention.source, ConfigSource::StaticBroker);
    let names: Vec<_> = retention.synonyms.iter().map(|s| (s.name.as_str(), s.source)).collect();
    assert_eq!(
        names,
        vec![("log.retention.minutes", ConfigSource::StaticBroker), ("log.retention.hours", ConfigSource::Default)]
    );

    let segment = describe_key(&d, &none, "segment.bytes");
    assert_eq!(segment.value.as_deref(), Some("2097152"));
    assert_eq!(segment.source, ConfigSource::DynamicDefaultBroker);

    let untouched = describe_key(&d, &none, "segment.index.bytes");
    assert_eq!(untouched.source, ConfigSource::Default);
    assert!(untouched.is_default);

    let o = map(&[("retention.ms", "5")]);
    let overridden = describe_key(&d, &o, "retention.ms");
    assert_eq!(overridden.value.as_deref(), Some("5"));
    assert_eq!(overridden.source, ConfigSource::DynamicTopic);
    assert_eq!(overridden.synonyms[0].name, "retention.ms");
    assert_eq!(overridden.synonyms[0].source, ConfigSource::DynamicTopic);
    assert_eq!(overridden.synonyms[1].name, "log.retention.minutes");

    let no_broker_key = describe_key(&d, &none, "remote.log.copy.disable");
    assert_eq!(no_broker_key.value.as_deref(), Some("false"));
    assert!(no_broker_key.synonyms.is_empty());
    assert_eq!(
        topic_broker_synonyms("retention.ms"),
        vec!["log.retention.ms", "log.retention.minutes", "log.retention.hours"]
    );
}
