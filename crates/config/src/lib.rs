//! # gregor-config
//!
//! Broker and topic configuration under Kafka's own names and defaults.
//!
//! **Owns:** the definition of every config key Gregor understands (type, default,
//! validity, synonyms between topic keys and broker keys), parsing the sources a value
//! can come from (Java properties files, YAML, environment variables in the apache/kafka
//! image's convention, `--override key=value`), and the typed, resolved view the rest of
//! the broker reads.
//!
//! **Never:** I/O beyond reading the file it is handed, logging set-up, or knowing about
//! sockets, storage or metadata records.
//!
//! ## Precedence
//! Built-in defaults < the file < `KAFKA_*` environment variables < overrides give the
//! static configuration ([`BrokerConfig::load`]). At run time AlterConfigs may add
//! dynamic values: cluster defaults, then per-broker values, both above the static ones
//! ([`BrokerConfig::with_dynamic`]). A topic's own overrides sit above all of it
//! ([`TopicConfig::resolve`]).
//!
//! ```
//! use std::collections::BTreeMap;
//! use gregor_config::{BrokerConfig, ConfigSource, ConfigSources, TopicConfig};
//!
//! let sources = ConfigSources {
//!     env: vec![("KAFKA_LOG_RETENTION_HOURS".into(), "1".into())],
//!     overrides: vec![("num.partitions".into(), "3".into())],
//!     ..Default::default()
//! };
//! let loaded = BrokerConfig::load(&sources)?;
//! assert_eq!(loaded.config.log_retention_ms, 3_600_000);
//! assert_eq!(loaded.config.num_partitions, 3);
//!
//! let overrides = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
//! let topic = TopicConfig::resolve(&loaded.config, &overrides)?;
//! assert!(topic.cleanup_policy.compact && !topic.cleanup_policy.delete);
//! assert_eq!(topic.retention_ms, 3_600_000);
//! let described = TopicConfig::describe(&loaded.config, &overrides);
//! let retention = described.iter().find(|d| d.name == "retention.ms").unwrap();
//! assert_eq!(retention.source, ConfigSource::StaticBroker);
//! # Ok::<(), gregor_config::ConfigError>(())
//! ```
//!
//! ## Where Gregor's defaults differ from Kafka's
//! A laptop-first broker must start with no file at all, so: `listeners` is
//! `PLAINTEXT://127.0.0.1:9092` (with [`BrokerConfig::bind_ipv6_loopback`] asking for
//! `[::1]` too), `log.dir` is `./gregor-data`, `node.id` is 1 and `process.roles` is
//! `broker,controller`. Tiered storage keys parse but accept only `false`.

mod broker;
mod checks;
mod defs;
mod describe;
mod error;
mod group;
mod kraft;
mod layers;
mod listener;
mod sources;
mod topic;
mod types;
mod values;

pub use broker::{BrokerConfig, ConfigSources, LoadedConfig};
pub use defs::broker::{broker_config_def, broker_config_defs, STANDARD_AUTHORIZER};
pub use defs::topic::{is_list_config, topic_broker_synonyms, topic_config_def, topic_config_defs};
pub use describe::{ConfigSynonym, DescribedConfig};
pub use error::ConfigError;
pub use group::{
    describe_group_configs, group_timing, validate_group_configs, GroupTiming, CONSUMER_HEARTBEAT_INTERVAL_MS,
    CONSUMER_SESSION_TIMEOUT_MS,
};
pub use listener::{
    parse_host_port, parse_listeners, parse_voters, HostPort, Listener, QuorumVoter, SECURITY_PROTOCOLS,
};
pub use sources::{env_var_to_key, parse_properties, parse_yaml};
pub use topic::{validate_topic_config, TopicConfig};
pub use types::{ConfigDef, ConfigSource, ConfigType, Validator};
pub use values::{CleanupPolicy, CompressionType, ProcessRoles, TimestampType};
