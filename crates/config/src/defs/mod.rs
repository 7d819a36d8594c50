//! The tables of every key: broker keys in `broker`, topic keys and their broker
//! synonyms in `topic`, and the small builders both use.

pub(crate) mod broker;
mod coordinator;
pub(crate) mod topic;

use crate::types::{ConfigDef, ConfigType, Validator};

pub(crate) const LONG_MAX: &str = "9223372036854775807";
pub(crate) const INT_MAX: &str = "2147483647";
pub(crate) const DOUBLE_MAX: &str = "1.7976931348623157E308";

/// Values `compression.type` accepts (broker and topic alike).
pub(crate) const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
pub(crate) const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
pub(crate) const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// A read-only key; chain `.dynamic()` for keys AlterConfigs may change.
pub(crate) const fn def(
    name: &'static str,
    config_type: ConfigType,
    default: Option<&'static str>,
    validator: Validator,
    documentation: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        config_type,
        default,
        documentation,
        read_only: true,
        // Passwords are the only secrets Kafka's type system knows of.
        sensitive: matches!(config_type, ConfigType::Password),
        validator,
    }
}

impl ConfigDef {
    pub(crate) const fn dynamic(self) -> ConfigDef {
        ConfigDef { read_only: false, ..self }
    }
}

pub(crate) const fn at_least(min: i64) -> Validator {
    Validator::Range { min, max: i64::MAX }
}

pub(crate) const fn between(min: i64, max: i64) -> Validator {
    Validator::Range { min, max }
}

pub(crate) const ANY: Validator = Validator::Any;

/// gzip accepts -1 (the library default) or 1..=9.
pub(crate) fn validate_gzip_level(value: &str) -> Result<(), String> {
    match crate::types::parse_int::<i32>(value)? {
        -1 | 1..=9 => Ok(()),
        _ => Err("must be -1 or between 1 and 9".into()),
    }
}

/// Tiered storage is not implemented: the switch exists so Kafka configs parse, but only
/// `false` is honest.
pub(crate) fn validate_false_only(value: &str) -> Result<(), String> {
    if crate::types::parse_bool(value)? {
        Err("tiered storage is not supported by Gregor".into())
    } else {
        Ok(())
    }
}
