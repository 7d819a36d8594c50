//! The broker's configuration: loading from its sources, typed fields, dynamic updates.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::defs::broker::{broker_config_def, DEFAULT_PROTOCOL_MAP};
use crate::error::ConfigError;
use crate::layers::Layers;
use crate::listener::{
    parse_connection_overrides, parse_host_ports, parse_listeners, parse_protocol_map, parse_voters, HostPort,
    Listener, QuorumVoter,
};
use crate::sources::{env_var_to_key, parse_properties, parse_yaml};
use crate::values::{CleanupPolicy, CompressionType, ProcessRoles, TimestampType, Typed};

/// Where [`BrokerConfig::load`] reads from, weakest first after the defaults.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// A `.properties` file, or YAML when the name ends in `.yaml`/`.yml`.
    pub file: Option<PathBuf>,
    /// Environment variables (all of them; only `KAFKA_*` broker keys are used).
    pub env: Vec<(String, String)>,
    /// `--override key=value` pairs, strongest of all.
    pub overrides: Vec<(String, String)>,
}

/// A loaded configuration and what was ignored on the way.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: BrokerConfig,
    /// One line per ignored key, naming it and where it came from.
    pub warnings: Vec<String>,
}

/// Every broker key resolved to its typed value. Synonyms are folded (e.g.
/// `log_retention_ms` already weighs `.ms` over `.minutes` over `.hours`); the raw
/// values and their sources stay inside for [`BrokerConfig::describe`].
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    pub(crate) layers: Layers,
    // identity and KRaft
    pub node_id: i32,
    /// `process.roles`; both when unset (Gregor's single-node default).
    pub process_roles: ProcessRoles,
    /// Upper-cased; `CONTROLLER` when unset.
    pub controller_listener_names: Vec<String>,
    /// `controller.quorum.voters` (static quorum), ids distinct; empty when unset.
    pub controller_quorum_voters: Vec<QuorumVoter>,
    /// `controller.quorum.bootstrap.servers` as (host, port), hosts without brackets.
    pub controller_quorum_bootstrap_servers: Vec<(String, u16)>,
    pub controller_quorum_election_timeout_ms: i32,
    pub controller_quorum_fetch_timeout_ms: i32,
    pub controller_quorum_election_backoff_max_ms: i32,
    pub controller_quorum_append_linger_ms: i32,
    pub controller_quorum_request_timeout_ms: i32,
    pub controller_quorum_retry_backoff_ms: i32,
    pub metadata_log_dir: Option<PathBuf>,
    pub metadata_log_segment_bytes: i32,
    pub metadata_log_segment_ms: i64,
    pub metadata_max_retention_bytes: i64,
    pub metadata_max_retention_ms: i64,
    pub metadata_max_idle_interval_ms: i32,
    pub metadata_log_max_record_bytes_between_snapshots: i64,
    pub metadata_log_max_snapshot_interval_ms: i64,
    pub broker_heartbeat_interval_ms: i32,
    pub broker_session_timeout_ms: i32,
    pub initial_broker_registration_timeout_ms: i32,
    pub broker_rack: Option<String>,
    // network
    pub listeners: Vec<Listener>,
    /// True while `listeners` is Gregor's loopback default: the broker should then also
    /// bind `[::1]` on the same port, so `localhost` works whichever way it resolves.
    pub bind_ipv6_loopback: bool,
    /// `advertised.listeners`, or `listeners` when unset.
    pub advertised_listeners: Vec<Listener>,
    /// Listener name → security protocol, both upper-case.
    pub listener_security_protocol_map: BTreeMap<String, String>,
    pub inter_broker_listener_name: Option<String>,
    pub security_inter_broker_protocol: String,
    pub socket_send_buffer_bytes: i32,
    pub socket_receive_buffer_bytes: i32,
    pub socket_request_max_bytes: i32,
    pub socket_listen_backlog_size: i32,
    pub max_connections: i32,
    pub max_connections_per_ip: i32,
    pub max_connections_per_ip_overrides: BTreeMap<String, i32>,
    pub max_connection_creation_rate: i32,
    pub connections_max_idle_ms: i64,
    pub connection_failed_authentication_delay_ms: i32,
    pub num_network_threads: i32,
    pub num_io_threads: i32,
    pub background_threads: i32,
    pub queued_max_requests: i32,
    pub queued_max_request_bytes: i64,
    // topics and logs
    pub num_partitions: i32,
    pub default_replication_factor: i32,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    /// `log.dirs`, or `log.dir` when unset.
    pub log_dirs: Vec<PathBuf>,
    pub log_segment_bytes: i32,
    /// `log.roll.ms`, or `log.roll.hours` in ms.
    pub log_roll_ms: i64,
    /// `log.roll.jitter.ms`, or `log.roll.jitter.hours` in ms.
    pub log_roll_jitter_ms: i64,
    /// `log.retention.ms` over `.minutes` over `.hours`; any negative becomes -1 (forever).
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    pub log_retention_check_interval_ms: i64,
    pub log_cleanup_policy: CleanupPolicy,
    pub log_index_size_max_bytes: i32,
    pub log_index_interval_bytes: i32,
    pub log_flush_interval_messages: i64,
    /// `log.flush.interval.ms`, or `log.flush.scheduler.interval.ms` when unset (as Kafka).
    pub log_flush_interval_ms: i64,
    pub log_flush_scheduler_interval_ms: i64,
    pub log_flush_offset_checkpoint_interval_ms: i32,
    pub log_flush_start_offset_checkpoint_interval_ms: i32,
    pub log_segment_delete_delay_ms: i64,
    pub log_preallocate: bool,
    pub log_message_timestamp_type: TimestampType,
    pub log_message_timestamp_before_max_ms: i64,
    pub log_message_timestamp_after_max_ms: i64,
    pub log_local_retention_ms: i64,
    pub log_local_retention_bytes: i64,
    pub log_dir_failure_timeout_ms: i64,
    pub num_recovery_threads_per_data_dir: i32,
    pub log_cleaner_enable: bool,
    pub log_cleaner_threads: i32,
    pub log_cleaner_dedupe_buffer_size_bytes: i64,
    pub log_cleaner_io_buffer_size_bytes: i32,
    pub log_cleaner_io_buffer_load_factor: f64,
    pub log_cleaner_io_max_bytes_per_second: f64,
    pub log_cleaner_backoff_ms: i64,
    pub log_cleaner_min_cleanable_ratio: f64,
    pub log_cleaner_delete_retention_ms: i64,
    pub log_cleaner_min_compaction_lag_ms: i64,
    pub log_cleaner_max_compaction_lag_ms: i64,
    pub message_max_bytes: i32,
    pub compression_type: CompressionType,
    pub compression_gzip_level: i32,
    pub compression_lz4_level: i32,
    pub compression_zstd_level: i32,
    pub min_insync_replicas: i32,
    // replication
    pub unclean_leader_election_enable: bool,
    pub replica_lag_time_max_ms: i64,
    pub replica_socket_timeout_ms: i32,
    pub replica_socket_receive_buffer_bytes: i32,
    pub replica_fetch_max_bytes: i32,
    pub replica_fetch_wait_max_ms: i32,
    pub replica_fetch_min_bytes: i32,
    pub replica_fetch_response_max_bytes: i32,
    pub replica_fetch_backoff_ms: i32,
    pub num_replica_fetchers: i32,
    pub replica_high_watermark_checkpoint_interval_ms: i64,
    pub fetch_purgatory_purge_interval_requests: i32,
    pub producer_purgatory_purge_interval_requests: i32,
    pub fetch_max_bytes: i32,
    pub auto_leader_rebalance_enable: bool,
    pub leader_imbalance_per_broker_percentage: i32,
    pub leader_imbalance_check_interval_seconds: i64,
    // group coordinator
    pub offsets_topic_num_partitions: i32,
    /// Kafka's value (3 by default); the broker clamps it to the live brokers at use.
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_segment_bytes: i32,
    pub offsets_topic_compression_codec: i32,
    pub offsets_load_buffer_size_bytes: i32,
    pub offsets_retention_minutes: i32,
    pub offsets_retention_check_interval_ms: i64,
    pub offsets_commit_timeout_ms: i32,
    pub offset_metadata_max_bytes: i32,
    pub group_initial_rebalance_delay_ms: i32,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_max_size: i32,
    pub group_coordinator_rebalance_protocols: Vec<String>,
    pub group_consumer_session_timeout_ms: i32,
    pub group_consumer_min_session_timeout_ms: i32,
    pub group_consumer_max_session_timeout_ms: i32,
    pub group_consumer_heartbeat_interval_ms: i32,
    pub group_consumer_min_heartbeat_interval_ms: i32,
    pub group_consumer_max_heartbeat_interval_ms: i32,
    pub group_consumer_max_size: i32,
    pub group_consumer_assignors: Vec<String>,
    /// Lower-case: disabled, downgrade, upgrade or bidirectional.
    pub group_consumer_migration_policy: String,
    // transactions and producer ids
    pub transactional_id_expiration_ms: i32,
    pub transaction_max_timeout_ms: i32,
    pub transaction_state_log_num_partitions: i32,
    /// Kafka's value (3 by default); the broker clamps it to the live brokers at use.
    pub transaction_state_log_replication_factor: i16,
    pub transaction_state_log_segment_bytes: i32,
    pub transaction_state_log_min_isr: i32,
    pub transaction_state_log_load_buffer_size_bytes: i32,
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: i32,
    pub transaction_remove_expired_transaction_cleanup_interval_ms: i32,
    pub transaction_partition_verification_enable: bool,
    pub producer_id_expiration_ms: i32,
    pub producer_id_expiration_check_interval_ms: i32,
    // authorization
    /// Whether `authorizer.class.name` names the StandardAuthorizer.
    pub authorizer_enabled: bool,
    /// `super.users`, split at semicolons, blanks dropped.
    pub super_users: Vec<String>,
    pub allow_everyone_if_no_acl_found: bool,
}

impl BrokerConfig {
    /// Loads defaults < file < environment < overrides. Unknown keys become warnings; an
    /// invalid value (or a contradiction between keys) is an error naming the key.
    pub fn load(sources: &ConfigSources) -> Result<LoadedConfig, ConfigError> {
        let mut pairs: Vec<(String, String, String)> = Vec::new();
        if let Some(path) = &sources.file {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.clone(), source })?;
            let is_yaml = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e == "yaml" || e == "yml");
            let parsed = if is_yaml { parse_yaml(&text)? } else { parse_properties(&text)? };
            let origin = format!("file {}", path.display());
            pairs.extend(parsed.into_iter().map(|(k, v)| (k, v, origin.clone())));
        }
        for (name, value) in &sources.env {
            if let Some(key) = env_var_to_key(name) {
                pairs.push((key, value.clone(), format!("environment variable {name}")));
            }
        }
        for (k, v) in &sources.overrides {
            pairs.push((k.trim().to_string(), v.clone(), "override".to_string()));
        }
        Self::from_origin_pairs(pairs)
    }

    /// Builds a configuration from `key, value` pairs as if they were overrides (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<LoadedConfig, ConfigError> {
        Self::from_origin_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string(), "pairs".into())).collect())
    }

    /// Every key at its default (Gregor's single-node defaults).
    pub fn defaults() -> BrokerConfig {
        // The built-in table is checked by the test suite to resolve; failing here is a
        // bug in this crate, not bad input.
        Self::from_layers(Layers::default()).expect("built-in broker defaults are valid")
    }

    fn from_origin_pairs(pairs: Vec<(String, String, String)>) -> Result<LoadedConfig, ConfigError> {
        let mut warnings = Vec::new();
        let mut layers = Layers::default();
        for (key, value, origin) in pairs {
            if broker_config_def(&key).is_some() {
                layers.static_broker.insert(key, value);
            } else {
                warnings.push(format!("ignoring unknown configuration {key} (from {origin})"));
            }
        }
        for (key, value) in &layers.static_broker {
            if let Some(def) = broker_config_def(key) {
                def.validate(value)?;
            }
        }
        Ok(LoadedConfig { config: Self::from_layers(layers)?, warnings })
    }

    /// Applies the dynamic broker configs of AlterConfigs: `per_broker` for this broker,
    /// `cluster_default` for every broker. Both replace any dynamic values this config had,
    /// so a key left out returns to its static value. Unknown and read-only keys are errors.
    pub fn with_dynamic(
        &self,
        per_broker: &BTreeMap<String, String>,
        cluster_default: &BTreeMap<String, String>,
    ) -> Result<BrokerConfig, ConfigError> {
        for (key, value) in per_broker.iter().chain(cluster_default) {
            let def = broker_config_def(key).ok_or_else(|| ConfigError::UnknownKey { key: key.clone() })?;
            if def.read_only {
                return Err(ConfigError::ReadOnly { key: key.clone() });
            }
            def.validate(value)?;
        }
        let layers = Layers {
            static_broker: self.layers.static_broker.clone(),
            dynamic_default: cluster_default.clone(),
            dynamic_broker: per_broker.clone(),
        };
        Self::from_layers(layers)
    }

    /// The text value in effect for a broker key (its default included), if any.
    pub fn value(&self, key: &str) -> Option<String> {
        self.layers.effective(key).map(|(v, _)| v)
    }

    /// The dynamic per-broker values in effect.
    pub fn dynamic_per_broker(&self) -> &BTreeMap<String, String> {
        &self.layers.dynamic_broker
    }

    /// The dynamic cluster-default values in effect.
    pub fn dynamic_cluster_default(&self) -> &BTreeMap<String, String> {
        &self.layers.dynamic_default
    }

    /// The security protocol of a listener; controller listeners absent from a default
    /// map are PLAINTEXT, as in Kafka.
    pub fn security_protocol(&self, listener_name: &str) -> Option<&str> {
        let name = listener_name.to_ascii_uppercase();
        if let Some(p) = self.listener_security_protocol_map.get(&name) {
            return Some(p);
        }
        let map_is_default = !self.layers.is_set("listener.security.protocol.map");
        (map_is_default && self.controller_listener_names.contains(&name)).then_some("PLAINTEXT")
    }

    /// The broker-wide budget of request bytes read and not yet handled:
    /// `queued.max.request.bytes` when positive; otherwise (Kafka's -1, "no limit") twice
    /// `socket.request.max.bytes`, so that memory stays bounded by configuration while
    /// a largest request can be read while another is being handled.
    pub fn queued_request_bytes_budget(&self) -> u64 {
        match u64::try_from(self.queued_max_request_bytes) {
            Ok(bytes) if bytes > 0 => bytes,
            _ => u64::try_from(self.socket_request_max_bytes).unwrap_or(0).saturating_mul(2),
        }
    }

    fn from_layers(layers: Layers) -> Result<BrokerConfig, ConfigError> {
        let t = Typed { lookup: |k: &'static str| layers.effective(k).map(|(v, _)| v) };
        fn parse<T>(key: &str, raw: String, r: Result<T, String>) -> Result<T, ConfigError> {
            r.map_err(|reason| ConfigError::invalid(key, &raw, reason))
        }

        let listeners_raw = t.string("listeners")?;
        let listeners = parse("listeners", listeners_raw.clone(), parse_listeners(&listeners_raw))?;
        let advertised_listeners = match t.opt_string("advertised.listeners") {
            Some(raw) => parse("advertised.listeners", raw.clone(), parse_listeners(&raw))?,
            None => listeners.clone(),
        };
        let map_raw = t.opt_string("listener.security.protocol.map").unwrap_or_else(|| DEFAULT_PROTOCOL_MAP.into());
        let protocol_map = parse("listener.security.protocol.map", map_raw.clone(), parse_protocol_map(&map_raw))?;
        let voters_raw = t.string("controller.quorum.voters")?;
        let bootstrap_raw = t.string("controller.quorum.bootstrap.servers")?;
        let overrides_raw = t.string("max.connections.per.ip.overrides")?;
        let process_roles = t.process_roles("process.roles")?;
        let log_dirs = match layers.is_set("log.dirs") {
            true => t.list("log.dirs")?,
            false => t.list("log.dir")?,
        };
        let node_id = match (layers.is_set("node.id"), t.opt_int("broker.id")?) {
            (false, Some(broker_id)) => broker_id,
            _ => t.int("node.id")?,
        };
        let log_retention_ms = match t.opt_long("log.retention.ms")? {
            Some(ms) => ms,
            None => match t.opt_int("log.retention.minutes")? {
                Some(min) => i64::from(min) * 60_000,
                None => i64::from(t.int("log.retention.hours")?) * 3_600_000,
            },
        };
        let log_flush_scheduler_interval_ms = t.long("log.flush.scheduler.interval.ms")?;

        let config = BrokerConfig {
            node_id,
            process_roles,
            controller_listener_names: t
                .list("controller.listener.names")?
                .iter()
                .map(|n| n.to_ascii_uppercase())
                .collect(),
            controller_quorum_voters: parse("controller.quorum.voters", voters_raw.clone(), parse_voters(&voters_raw))?,
            controller_quorum_bootstrap_servers: parse(
                "controller.quorum.bootstrap.servers",
                bootstrap_raw.clone(),
                parse_host_ports(&bootstrap_raw),
            )?
            .into_iter()
            .map(|HostPort { host, port }| (host, port))
            .collect(),
            controller_quorum_election_timeout_ms: t.int("controller.quorum.election.timeout.ms")?,
            controller_quorum_fetch_timeout_ms: t.int("controller.quorum.fetch.timeout.ms")?,
            controller_quorum_election_backoff_max_ms: t.int("controller.quorum.election.backoff.max.ms")?,
            controller_quorum_append_linger_ms: t.int("controller.quorum.append.linger.ms")?,
            controller_quorum_request_timeout_ms: t.int("controller.quorum.request.timeout.ms")?,
            controller_quorum_retry_backoff_ms: t.int("controller.quorum.retry.backoff.ms")?,
            metadata_log_dir: t.opt_string("metadata.log.dir").map(PathBuf::from),
            metadata_log_segment_bytes: t.int("metadata.log.segment.bytes")?,
            metadata_log_segment_ms: t.long("metadata.log.segment.ms")?,
            metadata_max_retention_bytes: t.long("metadata.max.retention.bytes")?,
            metadata_max_retention_ms: t.long("metadata.max.retention.ms")?,
            metadata_max_idle_interval_ms: t.int("metadata.max.idle.interval.ms")?,
            metadata_log_max_record_bytes_between_snapshots: t
                .long("metadata.log.max.record.bytes.between.snapshots")?,
            metadata_log_max_snapshot_interval_ms: t.long("metadata.log.max.snapshot.interval.ms")?,
            broker_heartbeat_interval_ms: t.int("broker.heartbeat.interval.ms")?,
            broker_session_timeout_ms: t.int("broker.session.timeout.ms")?,
            initial_broker_registration_timeout_ms: t.int("initial.broker.registration.timeout.ms")?,
            broker_rack: t.opt_string("broker.rack"),
            bind_ipv6_loopback: !layers.is_set("listeners"),
            listeners,
            advertised_listeners,
            listener_security_protocol_map: protocol_map.into_iter().collect(),
            inter_broker_listener_name: t.opt_string("inter.broker.listener.name").map(|n| n.to_ascii_uppercase()),
            security_inter_broker_protocol: t.string("security.inter.broker.protocol")?,
            socket_send_buffer_bytes: t.int("socket.send.buffer.bytes")?,
            socket_receive_buffer_bytes: t.int("socket.receive.buffer.bytes")?,
            socket_request_max_bytes: t.int("socket.request.max.bytes")?,
            socket_listen_backlog_size: t.int("socket.listen.backlog.size")?,
            max_connections: t.int("max.connections")?,
            max_connections_per_ip: t.int("max.connections.per.ip")?,
            max_connections_per_ip_overrides: parse(
                "max.connections.per.ip.overrides",
                overrides_raw.clone(),
                parse_connection_overrides(&overrides_raw),
            )?
            .into_iter()
            .collect(),
            max_connection_creation_rate: t.int("max.connection.creation.rate")?,
            connections_max_idle_ms: t.long("connections.max.idle.ms")?,
            connection_failed_authentication_delay_ms: t.int("connection.failed.authentication.delay.ms")?,
            num_network_threads: t.int("num.network.threads")?,
            num_io_threads: t.int("num.io.threads")?,
            background_threads: t.int("background.threads")?,
            queued_max_requests: t.int("queued.max.requests")?,
            queued_max_request_bytes: t.long("queued.max.request.bytes")?,
            num_partitions: t.int("num.partitions")?,
            default_replication_factor: t.int("default.replication.factor")?,
            auto_create_topics_enable: t.bool("auto.create.topics.enable")?,
            authorizer_enabled: !t.string("authorizer.class.name")?.is_empty(),
            super_users: t
                .string("super.users")?
                .split(';')
                .map(str::trim)
                .filter(|user| !user.is_empty())
                .map(String::from)
                .collect(),
            allow_everyone_if_no_acl_found: t.bool("allow.everyone.if.no.acl.found")?,
            delete_topic_enable: t.bool("delete.topic.enable")?,
            log_dirs: log_dirs.into_iter().map(PathBuf::from).collect(),
            log_segment_bytes: t.int("log.segment.bytes")?,
            log_roll_ms: match t.opt_long("log.roll.ms")? {
                Some(ms) => ms,
                None => i64::from(t.int("log.roll.hours")?) * 3_600_000,
            },
            log_roll_jitter_ms: match t.opt_long("log.roll.jitter.ms")? {
                Some(ms) => ms,
                None => i64::from(t.int("log.roll.jitter.hours")?) * 3_600_000,
            },
            // Kafka reads every negative retention as "keep forever".
            log_retention_ms: if log_retention_ms < 0 { -1 } else { log_retention_ms },
            log_retention_bytes: t.long("log.retention.bytes")?,
            log_retention_check_interval_ms: t.long("log.retention.check.interval.ms")?,
            log_cleanup_policy: t.cleanup_policy("log.cleanup.policy")?,
            log_index_size_max_bytes: t.int("log.index.size.max.bytes")?,
            log_index_interval_bytes: t.int("log.index.interval.bytes")?,
            log_flush_interval_messages: t.long("log.flush.interval.messages")?,
            log_flush_interval_ms: t.opt_long("log.flush.interval.ms")?.unwrap_or(log_flush_scheduler_interval_ms),
            log_flush_scheduler_interval_ms,
            log_flush_offset_checkpoint_interval_ms: t.int("log.flush.offset.checkpoint.interval.ms")?,
            log_flush_start_offset_checkpoint_interval_ms: t.int("log.flush.start.offset.checkpoint.interval.ms")?,
            log_segment_delete_delay_ms: t.long("log.segment.delete.delay.ms")?,
            log_preallocate: t.bool("log.preallocate")?,
            log_message_timestamp_type: t.timestamp_type("log.message.timestamp.type")?,
            log_message_timestamp_before_max_ms: t.long("log.message.timestamp.before.max.ms")?,
            log_message_timestamp_after_max_ms: t.long("log.message.timestamp.after.max.ms")?,
            log_local_retention_ms: t.long("log.local.retention.ms")?,
            log_local_retention_bytes: t.long("log.local.retention.bytes")?,
            log_dir_failure_timeout_ms: t.long("log.dir.failure.timeout.ms")?,
            num_recovery_threads_per_data_dir: t.int("num.recovery.threads.per.data.dir")?,
            log_cleaner_enable: t.bool("log.cleaner.enable")?,
            log_cleaner_threads: t.int("log.cleaner.threads")?,
            log_cleaner_dedupe_buffer_size_bytes: t.long("log.cleaner.dedupe.buffer.size")?,
            log_cleaner_io_buffer_size_bytes: t.int("log.cleaner.io.buffer.size")?,
            log_cleaner_io_buffer_load_factor: t.double("log.cleaner.io.buffer.load.factor")?,
            log_cleaner_io_max_bytes_per_second: t.double("log.cleaner.io.max.bytes.per.second")?,
            log_cleaner_backoff_ms: t.long("log.cleaner.backoff.ms")?,
            log_cleaner_min_cleanable_ratio: t.double("log.cleaner.min.cleanable.ratio")?,
            log_cleaner_delete_retention_ms: t.long("log.cleaner.delete.retention.ms")?,
            log_cleaner_min_compaction_lag_ms: t.long("log.cleaner.min.compaction.lag.ms")?,
            log_cleaner_max_compaction_lag_ms: t.long("log.cleaner.max.compaction.lag.ms")?,
            message_max_bytes: t.int("message.max.bytes")?,
            compression_type: t.compression("compression.type")?,
            compression_gzip_level: t.int("compression.gzip.level")?,
            compression_lz4_level: t.int("compression.lz4.level")?,
            compression_zstd_level: t.int("compression.zstd.level")?,
            min_insync_replicas: t.int("min.insync.replicas")?,
            unclean_leader_election_enable: t.bool("unclean.leader.election.enable")?,
            replica_lag_time_max_ms: t.long("replica.lag.time.max.ms")?,
            replica_socket_timeout_ms: t.int("replica.socket.timeout.ms")?,
            replica_socket_receive_buffer_bytes: t.int("replica.socket.receive.buffer.bytes")?,
            replica_fetch_max_bytes: t.int("replica.fetch.max.bytes")?,
            replica_fetch_wait_max_ms: t.int("replica.fetch.wait.max.ms")?,
            replica_fetch_min_bytes: t.int("replica.fetch.min.bytes")?,
            replica_fetch_response_max_bytes: t.int("replica.fetch.response.max.bytes")?,
            replica_fetch_backoff_ms: t.int("replica.fetch.backoff.ms")?,
            num_replica_fetchers: t.int("num.replica.fetchers")?,
            replica_high_watermark_checkpoint_interval_ms: t.long("replica.high.watermark.checkpoint.interval.ms")?,
            fetch_purgatory_purge_interval_requests: t.int("fetch.purgatory.purge.interval.requests")?,
            producer_purgatory_purge_interval_requests: t.int("producer.purgatory.purge.interval.requests")?,
            fetch_max_bytes: t.int("fetch.max.bytes")?,
            auto_leader_rebalance_enable: t.bool("auto.leader.rebalance.enable")?,
            leader_imbalance_per_broker_percentage: t.int("leader.imbalance.per.broker.percentage")?,
            leader_imbalance_check_interval_seconds: t.long("leader.imbalance.check.interval.seconds")?,
            offsets_topic_num_partitions: t.int("offsets.topic.num.partitions")?,
            offsets_topic_replication_factor: t.short("offsets.topic.replication.factor")?,
            offsets_topic_segment_bytes: t.int("offsets.topic.segment.bytes")?,
            offsets_topic_compression_codec: t.int("offsets.topic.compression.codec")?,
            offsets_load_buffer_size_bytes: t.int("offsets.load.buffer.size")?,
            offsets_retention_minutes: t.int("offsets.retention.minutes")?,
            offsets_retention_check_interval_ms: t.long("offsets.retention.check.interval.ms")?,
            offsets_commit_timeout_ms: t.int("offsets.commit.timeout.ms")?,
            offset_metadata_max_bytes: t.int("offset.metadata.max.bytes")?,
            group_initial_rebalance_delay_ms: t.int("group.initial.rebalance.delay.ms")?,
            group_min_session_timeout_ms: t.int("group.min.session.timeout.ms")?,
            group_max_session_timeout_ms: t.int("group.max.session.timeout.ms")?,
            group_max_size: t.int("group.max.size")?,
            group_coordinator_rebalance_protocols: t.list("group.coordinator.rebalance.protocols")?,
            group_consumer_session_timeout_ms: t.int("group.consumer.session.timeout.ms")?,
            group_consumer_min_session_timeout_ms: t.int("group.consumer.min.session.timeout.ms")?,
            group_consumer_max_session_timeout_ms: t.int("group.consumer.max.session.timeout.ms")?,
            group_consumer_heartbeat_interval_ms: t.int("group.consumer.heartbeat.interval.ms")?,
            group_consumer_min_heartbeat_interval_ms: t.int("group.consumer.min.heartbeat.interval.ms")?,
            group_consumer_max_heartbeat_interval_ms: t.int("group.consumer.max.heartbeat.interval.ms")?,
            group_consumer_max_size: t.int("group.consumer.max.size")?,
            group_consumer_assignors: t.list("group.consumer.assignors")?,
            group_consumer_migration_policy: t.string("group.consumer.migration.policy")?.to_ascii_lowercase(),
            transactional_id_expiration_ms: t.int("transactional.id.expiration.ms")?,
            transaction_max_timeout_ms: t.int("transaction.max.timeout.ms")?,
            transaction_state_log_num_partitions: t.int("transaction.state.log.num.partitions")?,
            transaction_state_log_replication_factor: t.short("transaction.state.log.replication.factor")?,
            transaction_state_log_segment_bytes: t.int("transaction.state.log.segment.bytes")?,
            transaction_state_log_min_isr: t.int("transaction.state.log.min.isr")?,
            transaction_state_log_load_buffer_size_bytes: t.int("transaction.state.log.load.buffer.size")?,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: t
                .int("transaction.abort.timed.out.transaction.cleanup.interval.ms")?,
            transaction_remove_expired_transaction_cleanup_interval_ms: t
                .int("transaction.remove.expired.transaction.cleanup.interval.ms")?,
            transaction_partition_verification_enable: t.bool("transaction.partition.verification.enable")?,
            producer_id_expiration_ms: t.int("producer.id.expiration.ms")?,
            producer_id_expiration_check_interval_ms: t.int("producer.id.expiration.check.interval.ms")?,
            layers,
        };
        crate::checks::check_broker(&config)?;
        Ok(config)
    }
}
