//! Group config resources (resource type 32, Kafka 4.0, KIP-848): per-group overrides
//! of the consumer protocol's session timeout and heartbeat interval. A group without
//! an override uses the broker's `group.consumer.*` value; an override must stay within
//! the broker's bounds, and the heartbeat interval below the session timeout.
//!
//! Kafka's `share.*` and `streams.*` group keys are not here: Gregor has no share or
//! streams groups, so such keys are refused as unknown rather than stored to no effect.

use std::collections::BTreeMap;

use crate::broker::BrokerConfig;
use crate::describe::{ConfigSynonym, DescribedConfig};
use crate::types::{ConfigSource, ConfigType};

pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";

/// Every group key with its documentation, sorted by name.
const GROUP_KEYS: &[(&str, &str)] = &[
    (
        CONSUMER_HEARTBEAT_INTERVAL_MS,
        "The heartbeat interval given to the members of this consumer group (consumer protocol).",
    ),
    (
        CONSUMER_SESSION_TIMEOUT_MS,
        "How long the coordinator waits for a heartbeat before it removes a member of this consumer group.",
    ),
];

/// The broker's value for a group key: the default a group without an override uses.
fn broker_default(broker: &BrokerConfig, name: &str) -> Option<i32> {
    match name {
        CONSUMER_SESSION_TIMEOUT_MS => Some(broker.group_consumer_session_timeout_ms),
        CONSUMER_HEARTBEAT_INTERVAL_MS => Some(broker.group_consumer_heartbeat_interval_ms),
        _ => None,
    }
}

/// A group's effective consumer-protocol timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupTiming {
    pub consumer_session_timeout_ms: i32,
    pub consumer_heartbeat_interval_ms: i32,
}

/// The value of one override, parsed; `Err` is the INVALID_CONFIG message.
fn parse_override(name: &str, value: &str) -> Result<i32, String> {
    value
        .trim()
        .parse::<i32>()
        .map_err(|_| format!("Invalid value {value} for configuration {name}: Not a number of type INT"))
}

/// The timing of a group with these overrides (unparseable ones fall back to the
/// broker's value; the controller never stores one).
pub fn group_timing(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> GroupTiming {
    let value = |name: &str, default: i32| {
        overrides.get(name).and_then(|value| parse_override(name, value).ok()).unwrap_or(default)
    };
    GroupTiming {
        consumer_session_timeout_ms: value(CONSUMER_SESSION_TIMEOUT_MS, broker.group_consumer_session_timeout_ms),
        consumer_heartbeat_interval_ms: value(
            CONSUMER_HEARTBEAT_INTERVAL_MS,
            broker.group_consumer_heartbeat_interval_ms,
        ),
    }
}

/// Checks a group's complete set of overrides after a change, as Kafka does: known
/// keys, integers, within the broker's bounds, heartbeat below session timeout.
pub fn validate_group_configs(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Result<(), String> {
    for (name, value) in overrides {
        if broker_default(broker, name).is_none() {
            return Err(format!("Unknown group config name: {name}"));
        }
        parse_override(name, value)?;
    }
    let timing = group_timing(broker, overrides);
    let session = timing.consumer_session_timeout_ms;
    let heartbeat = timing.consumer_heartbeat_interval_ms;
    if session < broker.group_consumer_min_session_timeout_ms {
        return Err(format!(
            "{CONSUMER_SESSION_TIMEOUT_MS} must be greater than or equal to group.consumer.min.session.timeout.ms"
        ));
    }
    if session > broker.group_consumer_max_session_timeout_ms {
        return Err(format!(
            "{CONSUMER_SESSION_TIMEOUT_MS} must be less than or equal to group.consumer.max.session.timeout.ms"
        ));
    }
    if heartbeat < broker.group_consumer_min_heartbeat_interval_ms {
        return Err(format!(
            "{CONSUMER_HEARTBEAT_INTERVAL_MS} must be greater than or equal to group.consumer.min.heartbeat.interval.ms"
        ));
    }
    if heartbeat > broker.group_consumer_max_heartbeat_interval_ms {
        return Err(format!(
            "{CONSUMER_HEARTBEAT_INTERVAL_MS} must be less than or equal to group.consumer.max.heartbeat.interval.ms"
        ));
    }
    if heartbeat >= session {
        return Err(format!("{CONSUMER_HEARTBEAT_INTERVAL_MS} must be less than {CONSUMER_SESSION_TIMEOUT_MS}"));
    }
    Ok(())
}

/// Every group key of one group as DescribeConfigs reports it: the override, or the
/// broker's value as the default.
pub fn describe_group_configs(broker: &BrokerConfig, overrides: &BTreeMap<String, String>) -> Vec<DescribedConfig> {
    GROUP_KEYS
        .iter()
        .map(|(name, documentation)| {
            let (value, source) = match overrides.get(*name) {
                Some(value) => (value.clone(), ConfigSource::DynamicGroup),
                None => (broker_default(broker, name).unwrap_or_default().to_string(), ConfigSource::Default),
            };
            DescribedConfig {
                name: name.to_string(),
                value: Some(value.clone()),
                source,
                read_only: false,
                sensitive: false,
                is_default: source == ConfigSource::Default,
                synonyms: vec![ConfigSynonym { name: name.to_string(), value: Some(value), source }],
                config_type: ConfigType::Int,
                documentation: Some(documentation.to_string()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::ConfigSources;

    fn broker() -> BrokerConfig {
        BrokerConfig::load(&ConfigSources::default()).expect("defaults load").config
    }

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    #[test]
    fn overrides_are_checked_against_the_broker_bounds_and_each_other() {
        let broker = broker();
        assert_eq!(validate_group_configs(&broker, &overrides(&[(CONSUMER_SESSION_TIMEOUT_MS, "50000")])), Ok(()));
        for bad in [
            overrides(&[(CONSUMER_SESSION_TIMEOUT_MS, "1000")]),
            overrides(&[(CONSUMER_SESSION_TIMEOUT_MS, "x")]),
            overrides(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "1")]),
            overrides(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "16000")]),
            overrides(&[("share.session.timeout.ms", "45000")]),
        ] {
            assert!(validate_group_configs(&broker, &bad).is_err(), "{bad:?}");
        }
        let timing = group_timing(&broker, &overrides(&[(CONSUMER_HEARTBEAT_INTERVAL_MS, "3000")]));
        assert_eq!(timing, GroupTiming { consumer_session_timeout_ms: 45_000, consumer_heartbeat_interval_ms: 3_000 });
    }

    #[test]
    fn describe_reports_overrides_and_broker_defaults() {
        let described = describe_group_configs(&broker(), &overrides(&[(CONSUMER_SESSION_TIMEOUT_MS, "50000")]));
        let names: Vec<&str> = described.iter().map(|config| config.name.as_str()).collect();
        assert_eq!(names, vec![CONSUMER_HEARTBEAT_INTERVAL_MS, CONSUMER_SESSION_TIMEOUT_MS]);
        assert_eq!(described[0].value.as_deref(), Some("5000"));
        assert_eq!(described[0].source, ConfigSource::Default);
        assert_eq!(described[1].value.as_deref(), Some("50000"));
        assert_eq!(described[1].source.code(), 8);
    }
}
