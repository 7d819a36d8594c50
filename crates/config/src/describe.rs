//! DescribeConfigs views of the broker's keys.

use crate::broker::BrokerConfig;
use crate::defs::broker::{broker_config_defs, broker_synonyms};
use crate::types::{ConfigDef, ConfigSource, ConfigType};

/// One key as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribedConfig {
    pub name: String,
    /// `None` when the key has no value or is sensitive.
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub sensitive: bool,
    /// True when the value is the built-in default (the v0 `is_default` flag).
    pub is_default: bool,
    /// Every value that competes for this key, strongest first.
    pub synonyms: Vec<ConfigSynonym>,
    pub config_type: ConfigType,
    pub documentation: Option<String>,
}

/// One competing value of a key: the same key from another source, or a synonym key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    pub name: String,
    /// `None` when sensitive.
    pub value: Option<String>,
    pub source: ConfigSource,
}

pub(crate) fn redact(def: &ConfigDef, value: Option<String>) -> Option<String> {
    if def.sensitive {
        None
    } else {
        value
    }
}

/// The synonyms of a broker key: each key of its group with every source that sets it.
pub(crate) fn broker_key_synonyms(config: &BrokerConfig, names: &[&'static str]) -> Vec<ConfigSynonym> {
    let mut out = Vec::new();
    for name in names {
        let def = crate::defs::broker::broker_config_def(name);
        for (value, source) in config.layers.entries(name) {
            let value = match def {
                Some(d) => redact(d, Some(value)),
                None => Some(value),
            };
            out.push(ConfigSynonym { name: name.to_string(), value, source });
        }
    }
    out
}

impl BrokerConfig {
    /// Every broker key, sorted by name, with its value, source and synonyms.
    pub fn describe(&self) -> Vec<DescribedConfig> {
        let mut out: Vec<DescribedConfig> = broker_config_defs().iter().map(|def| self.describe_key(def)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// One broker key as DescribeConfigs reports it, `None` for an unknown key.
    pub fn describe_one(&self, name: &str) -> Option<DescribedConfig> {
        crate::defs::broker::broker_config_def(name).map(|def| self.describe_key(def))
    }

    fn describe_key(&self, def: &'static ConfigDef) -> DescribedConfig {
        let (value, source) = match self.layers.effective(def.name) {
            Some((v, s)) => (Some(v), s),
            None => (None, ConfigSource::Default),
        };
        DescribedConfig {
            name: def.name.to_string(),
            value: redact(def, value),
            source,
            read_only: def.read_only,
            sensitive: def.sensitive,
            is_default: source == ConfigSource::Default,
            synonyms: broker_key_synonyms(self, &broker_synonyms(def.name)),
            config_type: def.config_type,
            documentation: Some(def.documentation.to_string()),
        }
    }
}
