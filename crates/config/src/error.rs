//! The one error type of the crate.

use std::path::PathBuf;

/// Why a configuration could not be loaded, validated or altered.
///
/// Every variant that concerns one key names it, so the broker can report it to an
/// operator or map it to `INVALID_CONFIG` without further context.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The value does not parse as the key's type or breaks its validity rule.
    #[error("invalid value {value:?} for configuration {key}: {reason}")]
    InvalidValue { key: String, value: String, reason: String },
    /// The key is not a configuration Gregor knows (topic configs and dynamic alters
    /// reject these; static sources only warn).
    #[error("unknown configuration {key}")]
    UnknownKey { key: String },
    /// The key exists but cannot be changed while the broker runs.
    #[error("configuration {key} cannot be updated dynamically")]
    ReadOnly { key: String },
    /// Two or more keys are valid alone but contradict each other.
    #[error("conflicting configuration: {reason}")]
    Conflict { reason: String },
    /// A valid Kafka configuration that asks for something Gregor does not implement (a
    /// TLS or SASL listener): refused rather than served with less than it asks for.
    #[error("unsupported configuration {key}: {reason}")]
    Unsupported { key: String, reason: String },
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid properties or YAML. `line` is 1-based, or 0
    /// when the YAML parser cannot tell (a problem found after parsing, in a nested map).
    #[error("configuration file syntax error at line {line}: {reason}")]
    Parse { line: usize, reason: String },
}

impl ConfigError {
    /// The key the error is about, when there is exactly one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::InvalidValue { key, .. }
            | ConfigError::UnknownKey { key }
            | ConfigError::ReadOnly { key }
            | ConfigError::Unsupported { key, .. } => Some(key),
            _ => None,
        }
    }

    pub(crate) fn invalid(key: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError::InvalidValue { key: key.to_string(), value: value.to_string(), reason: reason.into() }
    }
}
