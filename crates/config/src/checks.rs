//! Rules that involve more than one broker key; each key alone was already validated.

use std::collections::BTreeMap;

use crate::broker::BrokerConfig;
use crate::error::ConfigError;

fn conflict(reason: String) -> ConfigError {
    ConfigError::Conflict { reason }
}

fn ordered(low_key: &str, low: i64, high_key: &str, high: i64) -> Result<(), ConfigError> {
    if low > high {
        return Err(conflict(format!("{low_key} ({low}) must not exceed {high_key} ({high})")));
    }
    Ok(())
}

pub(crate) fn check_broker(c: &BrokerConfig) -> Result<(), ConfigError> {
    if let (Some(broker_id), true) = (c.value("broker.id"), c.layers.is_set("node.id")) {
        if broker_id.trim() != c.node_id.to_string() {
            return Err(conflict(format!("broker.id ({broker_id}) and node.id ({}) must be equal", c.node_id)));
        }
    }
    check_listeners(c)?;
    check_security_protocols(c)?;
    check_connection_limits(c)?;
    ordered(
        "replica.fetch.wait.max.ms",
        c.replica_fetch_wait_max_ms.into(),
        "replica.lag.time.max.ms",
        c.replica_lag_time_max_ms,
    )?;
    ordered(
        "group.min.session.timeout.ms",
        c.group_min_session_timeout_ms.into(),
        "group.max.session.timeout.ms",
        c.group_max_session_timeout_ms.into(),
    )?;
    ordered(
        "group.consumer.min.session.timeout.ms",
        c.group_consumer_min_session_timeout_ms.into(),
        "group.consumer.session.timeout.ms",
        c.group_consumer_session_timeout_ms.into(),
    )?;
    ordered(
        "group.consumer.session.timeout.ms",
        c.group_consumer_session_timeout_ms.into(),
        "group.consumer.max.session.timeout.ms",
        c.group_consumer_max_session_timeout_ms.into(),
    )?;
    ordered(
        "group.consumer.min.heartbeat.interval.ms",
        c.group_consumer_min_heartbeat_interval_ms.into(),
        "group.consumer.heartbeat.interval.ms",
        c.group_consumer_heartbeat_interval_ms.into(),
    )?;
    ordered(
        "group.consumer.heartbeat.interval.ms",
        c.group_consumer_heartbeat_interval_ms.into(),
        "group.consumer.max.heartbeat.interval.ms",
        c.group_consumer_max_heartbeat_interval_ms.into(),
    )?;
    // A member must be able to heartbeat at least once within its session.
    if c.group_consumer_heartbeat_interval_ms >= c.group_consumer_session_timeout_ms {
        return Err(conflict(format!(
            "group.consumer.heartbeat.interval.ms ({}) must be less than group.consumer.session.timeout.ms ({})",
            c.group_consumer_heartbeat_interval_ms, c.group_consumer_session_timeout_ms
        )));
    }
    ordered(
        "log.cleaner.min.compaction.lag.ms",
        c.log_cleaner_min_compaction_lag_ms,
        "log.cleaner.max.compaction.lag.ms",
        c.log_cleaner_max_compaction_lag_ms,
    )?;
    // The broker keys are also the defaults of every topic; a value that no topic could
    // take (log.roll.ms=0, say) is refused here rather than at the first topic creation.
    crate::topic::TopicConfig::resolve(c, &BTreeMap::new())?;
    Ok(())
}

/// Gregor speaks PLAINTEXT only: a listener configured for TLS or SASL must not start
/// and answer without the handshake its clients rely on.
fn check_security_protocols(c: &BrokerConfig) -> Result<(), ConfigError> {
    let unsupported = |key: &str, reason: String| ConfigError::Unsupported { key: key.to_string(), reason };
    for (key, listeners) in [("listeners", &c.listeners), ("advertised.listeners", &c.advertised_listeners)] {
        for l in listeners {
            // check_listeners has made sure every listener has a protocol.
            let protocol = c.security_protocol(&l.name).unwrap_or("PLAINTEXT");
            if protocol != "PLAINTEXT" {
                let source = match c.layers.is_set("listener.security.protocol.map") {
                    true => "listener.security.protocol.map",
                    false => "its name (the default listener.security.protocol.map)",
                };
                return Err(unsupported(
                    key,
                    format!(
                        "listener {l} has security protocol {protocol} (from {source}), which Gregor does not \
                         implement yet; only PLAINTEXT listeners can be served"
                    ),
                ));
            }
        }
    }
    if c.security_inter_broker_protocol != "PLAINTEXT" {
        return Err(unsupported(
            "security.inter.broker.protocol",
            format!(
                "{} is not implemented yet; only PLAINTEXT can be used between brokers",
                c.security_inter_broker_protocol
            ),
        ));
    }
    Ok(())
}

fn check_connection_limits(c: &BrokerConfig) -> Result<(), ConfigError> {
    // As Kafka: a limit of zero is only useful to admit nothing but the overridden hosts.
    if c.max_connections_per_ip == 0 && c.max_connections_per_ip_overrides.is_empty() {
        return Err(conflict(
            "max.connections.per.ip can be 0 only when max.connections.per.ip.overrides is set".into(),
        ));
    }
    // As Kafka: a request as large as socket.request.max.bytes must fit the budget of
    // queued request bytes, or it could never be read.
    if c.queued_max_request_bytes > 0 && c.queued_max_request_bytes < i64::from(c.socket_request_max_bytes) {
        return Err(conflict(format!(
            "queued.max.request.bytes ({}) must be at least socket.request.max.bytes ({})",
            c.queued_max_request_bytes, c.socket_request_max_bytes
        )));
    }
    Ok(())
}

fn check_listeners(c: &BrokerConfig) -> Result<(), ConfigError> {
    if c.listeners.is_empty() {
        return Err(ConfigError::invalid("listeners", "", "at least one listener is required"));
    }
    let names: Vec<&str> = c.listeners.iter().map(|l| l.name.as_str()).collect();
    for l in &c.listeners {
        if c.security_protocol(&l.name).is_none() {
            return Err(conflict(format!("listener {} has no entry in listener.security.protocol.map", l.name)));
        }
    }
    for l in &c.advertised_listeners {
        if !names.contains(&l.name.as_str()) {
            return Err(conflict(format!("advertised listener {} is not one of listeners", l.name)));
        }
        // Clients cannot connect to a wildcard address.
        if l.host == "0.0.0.0" || l.host == "::" {
            return Err(ConfigError::invalid(
                "advertised.listeners",
                &l.to_string(),
                "a wildcard address cannot be advertised",
            ));
        }
    }
    if let Some(name) = &c.inter_broker_listener_name {
        if c.layers.is_set("security.inter.broker.protocol") {
            return Err(conflict(
                "only one of inter.broker.listener.name and security.inter.broker.protocol may be set".into(),
            ));
        }
        // A broker must serve it (checked with the KRaft rules); a controller alone only
        // needs its protocol, as in Kafka.
        if c.security_protocol(name).is_none() {
            return Err(conflict(format!(
                "inter.broker.listener.name {name} has no entry in listener.security.protocol.map"
            )));
        }
    }
    crate::kraft::check_kraft(c)
}
