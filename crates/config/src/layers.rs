//! The stacked values of the broker keys: defaults < static < cluster default < per broker.

use std::collections::BTreeMap;

use crate::defs::broker::broker_config_def;
use crate::types::ConfigSource;

/// Explicit values by source; every value here was validated against its key's definition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layers {
    pub(crate) static_broker: BTreeMap<String, String>,
    pub(crate) dynamic_default: BTreeMap<String, String>,
    pub(crate) dynamic_broker: BTreeMap<String, String>,
}

impl Layers {
    /// Every value a key has, strongest first, its built-in default last (Kafka's order of
    /// synonyms for one key).
    pub(crate) fn entries(&self, key: &str) -> Vec<(String, ConfigSource)> {
        let mut out = Vec::new();
        for (map, source) in [
            (&self.dynamic_broker, ConfigSource::DynamicBroker),
            (&self.dynamic_default, ConfigSource::DynamicDefaultBroker),
            (&self.static_broker, ConfigSource::StaticBroker),
        ] {
            if let Some(v) = map.get(key) {
                out.push((v.clone(), source));
            }
        }
        if let Some(d) = broker_config_def(key).and_then(|d| d.default) {
            out.push((d.to_string(), ConfigSource::Default));
        }
        out
    }

    /// The value in effect and where it came from; `None` when unset without a default.
    pub(crate) fn effective(&self, key: &str) -> Option<(String, ConfigSource)> {
        self.entries(key).into_iter().next()
    }

    /// Whether some source set the key (its default does not count).
    pub(crate) fn is_set(&self, key: &str) -> bool {
        self.effective(key).is_some_and(|(_, s)| s != ConfigSource::Default)
    }
}
