//! Typed values the rest of the broker reads, and the reader that turns validated text
//! into them.

use crate::error::ConfigError;
use crate::types::{parse_bool, parse_double, parse_int, parse_list};

/// `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// `compression.type`: what the broker stores; `Producer` keeps the producer's codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    Producer,
    Uncompressed,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// `cleanup.policy`: either, both or (an empty list) neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

/// `process.roles`: which of the two KRaft roles this node plays. Gregor's default
/// (the key unset) is both, its single-node mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    pub broker: bool,
    pub controller: bool,
}

impl ProcessRoles {
    /// Both roles in one process (Kafka's "combined" mode).
    pub fn is_combined(&self) -> bool {
        self.broker && self.controller
    }

    /// Only the broker role.
    pub fn is_broker_only(&self) -> bool {
        self.broker && !self.controller
    }

    /// Only the controller role.
    pub fn is_controller_only(&self) -> bool {
        self.controller && !self.broker
    }
}

impl std::fmt::Display for ProcessRoles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.broker, self.controller) {
            (true, true) => f.write_str("broker,controller"),
            (true, false) => f.write_str("broker"),
            (false, true) => f.write_str("controller"),
            (false, false) => Ok(()),
        }
    }
}

/// Validator of `process.roles`: Kafka's rules (known roles, no duplicates), and not
/// empty, since an empty list meant ZooKeeper mode, which Gregor (as Kafka 4) lacks.
pub(crate) fn validate_process_roles(value: &str) -> Result<(), String> {
    let roles = parse_list(value);
    if roles.is_empty() {
        return Err("must name broker, controller or both (there is no ZooKeeper mode)".into());
    }
    for (index, role) in roles.iter().enumerate() {
        if role != "broker" && role != "controller" {
            return Err(format!("unknown process role {role:?}; only broker and controller are roles"));
        }
        if roles[..index].contains(role) {
            return Err(format!("role {role} is listed twice"));
        }
    }
    Ok(())
}

/// Reads keys through `lookup` (effective value, default included) and parses them.
/// Values were validated when they entered, so failures here mean a key with no value
/// was read as required; they still surface as errors, never panics.
pub(crate) struct Typed<F: Fn(&'static str) -> Option<String>> {
    pub(crate) lookup: F,
}

impl<F: Fn(&'static str) -> Option<String>> Typed<F> {
    fn required(&self, key: &'static str) -> Result<String, ConfigError> {
        (self.lookup)(key).ok_or_else(|| ConfigError::invalid(key, "", "a value is required"))
    }

    fn parsed<T>(&self, key: &'static str, f: impl Fn(&str) -> Result<T, String>) -> Result<T, ConfigError> {
        let raw = self.required(key)?;
        f(&raw).map_err(|reason| ConfigError::invalid(key, &raw, reason))
    }

    pub(crate) fn int(&self, key: &'static str) -> Result<i32, ConfigError> {
        self.parsed(key, parse_int::<i32>)
    }

    pub(crate) fn short(&self, key: &'static str) -> Result<i16, ConfigError> {
        self.parsed(key, parse_int::<i16>)
    }

    pub(crate) fn long(&self, key: &'static str) -> Result<i64, ConfigError> {
        self.parsed(key, parse_int::<i64>)
    }

    pub(crate) fn double(&self, key: &'static str) -> Result<f64, ConfigError> {
        self.parsed(key, parse_double)
    }

    pub(crate) fn bool(&self, key: &'static str) -> Result<bool, ConfigError> {
        self.parsed(key, parse_bool)
    }

    pub(crate) fn string(&self, key: &'static str) -> Result<String, ConfigError> {
        self.required(key)
    }

    pub(crate) fn list(&self, key: &'static str) -> Result<Vec<String>, ConfigError> {
        Ok((self.lookup)(key).map(|v| parse_list(&v)).unwrap_or_default())
    }

    pub(crate) fn opt_string(&self, key: &'static str) -> Option<String> {
        (self.lookup)(key)
    }

    pub(crate) fn opt_long(&self, key: &'static str) -> Result<Option<i64>, ConfigError> {
        match (self.lookup)(key) {
            Some(_) => self.long(key).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn opt_int(&self, key: &'static str) -> Result<Option<i32>, ConfigError> {
        match (self.lookup)(key) {
            Some(_) => self.int(key).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn timestamp_type(&self, key: &'static str) -> Result<TimestampType, ConfigError> {
        self.parsed(key, |v| match v {
            "CreateTime" => Ok(TimestampType::CreateTime),
            "LogAppendTime" => Ok(TimestampType::LogAppendTime),
            _ => Err("must be CreateTime or LogAppendTime".into()),
        })
    }

    pub(crate) fn compression(&self, key: &'static str) -> Result<CompressionType, ConfigError> {
        self.parsed(key, |v| match v {
            "producer" => Ok(CompressionType::Producer),
            "uncompressed" => Ok(CompressionType::Uncompressed),
            "gzip" => Ok(CompressionType::Gzip),
            "snappy" => Ok(CompressionType::Snappy),
            "lz4" => Ok(CompressionType::Lz4),
            "zstd" => Ok(CompressionType::Zstd),
            _ => Err("unknown compression type".into()),
        })
    }

    pub(crate) fn process_roles(&self, key: &'static str) -> Result<ProcessRoles, ConfigError> {
        let roles = self.list(key)?;
        Ok(ProcessRoles {
            broker: roles.iter().any(|r| r == "broker"),
            controller: roles.iter().any(|r| r == "controller"),
        })
    }

    pub(crate) fn cleanup_policy(&self, key: &'static str) -> Result<CleanupPolicy, ConfigError> {
        let items = self.list(key)?;
        Ok(CleanupPolicy { delete: items.iter().any(|i| i == "delete"), compact: items.iter().any(|i| i == "compact") })
    }
}
