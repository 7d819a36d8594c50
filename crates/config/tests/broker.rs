//! Loading the broker configuration: sources, precedence, validation, describe, dynamic.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use gregor_config::*;

fn write_file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    let mut f = std::fs::File::create(&path).expect("create temp file");
    f.write_all(text.as_bytes()).expect("write temp file");
    path
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn map(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs(items).into_iter().collect()
}

fn describe_key(config: &BrokerConfig, name: &str) -> DescribedConfig {
    config.describe().into_iter().find(|d| d.name == name).expect("described key")
}

#[test]
fn defaults_are_gregors_single_node() {
    let c = BrokerConfig::defaults();
    assert_eq!(c.listeners, vec![Listener { name: "PLAINTEXT".into(), host: "127.0.0.1".into(), port: 9092 }]);
    assert!(c.bind_ipv6_loopback);
    assert_eq!(c.advertised_listeners, c.listeners);
    assert_eq!(c.node_id, 1);
    assert_eq!(c.process_roles, ProcessRoles { broker: true, controller: true });
    assert!(c.is_single_node_local());
    assert_eq!(c.controller_listener_names, vec!["CONTROLLER".to_string()]);
    assert!(c.controller_listener().is_none());
    assert_eq!(c.log_dirs, vec![PathBuf::from("./gregor-data")]);
    assert_eq!(c.num_partitions, 1);
    assert_eq!(c.default_replication_factor, 1);
    assert!(c.auto_create_topics_enable && c.delete_topic_enable);
    assert_eq!(c.log_segment_bytes, 1 << 30);
    assert_eq!(c.log_roll_ms, 168 * 3_600_000);
    assert_eq!(c.log_retention_ms, 168 * 3_600_000);
    assert_eq!(c.log_retention_bytes, -1);
    assert_eq!(c.log_flush_interval_messages, i64::MAX);
    assert_eq!(c.log_flush_interval_ms, i64::MAX);
    assert_eq!(c.message_max_bytes, 1_048_588);
    assert_eq!(c.socket_request_max_bytes, 104_857_600);
    assert_eq!(c.max_connections, i32::MAX);
    assert_eq!(c.compression_type, CompressionType::Producer);
    assert_eq!(c.fetch_max_bytes, 57_671_680);
    assert_eq!(c.connections_max_idle_ms, 600_000);
    assert_eq!(c.offsets_topic_num_partitions, 50);
    assert_eq!(c.offsets_topic_replication_factor, 3);
    assert_eq!(c.group_initial_rebalance_delay_ms, 3000);
    assert_eq!(c.transaction_max_timeout_ms, 900_000);
    assert_eq!(c.producer_id_expiration_ms, 86_400_000);
    assert_eq!(c.log_message_timestamp_after_max_ms, 3_600_000);
    assert_eq!(c.log_cleanup_policy, CleanupPolicy { delete: true, compact: false });
    assert_eq!(c.log_message_timestamp_type, TimestampType::CreateTime);
}

#[test]
fn every_default_passes_its_own_validator() {
    for def in broker_config_defs().iter().chain(topic_config_defs()) {
        if let Some(d) = def.default {
            def.validate(d).unwrap_or_else(|e| panic!("default of {} is invalid: {e}", def.name));
        }
        assert!(!def.documentation.is_empty(), "{} has no documentation", def.name);
    }
    let mut names: Vec<_> = broker_config_defs().iter().map(|d| d.name).collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a broker key is defined twice");
}

#[test]
fn kerberos_listener_keys_are_dynamic_as_in_kafka() {
    // Kafka reconfigures these per listener, so AlterConfigs on a broker accepts them.
    let relogin = broker_config_def("sasl.kerberos.min.time.before.relogin").expect("a known key");
    assert!(!relogin.read_only);
    assert_eq!(relogin.default, Some("60000"));
    assert!(relogin.validate("58000").is_ok());
    assert!(relogin.validate("soon").is_err());
    let factor = broker_config_def("sasl.kerberos.ticket.renew.window.factor").expect("a known key");
    assert!(!factor.read_only && factor.validate("0.5").is_ok());
}

#[test]
fn sources_take_precedence_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write_file(&dir, "b.properties", "num.partitions=2\nnum.io.threads=2\nnum.network.threads=2\n");
    let sources = ConfigSources {
        file: Some(file),
        env: pairs(&[("KAFKA_NUM_IO_THREADS", "3"), ("KAFKA_NUM_NETWORK_THREADS", "3"), ("PATH", "/bin")]),
        overrides: pairs(&[("num.network.threads", "4")]),
    };
    let loaded = BrokerConfig::load(&sources).expect("loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.num_partitions, 2, "file over default");
    assert_eq!(c.num_io_threads, 3, "env over file");
    assert_eq!(c.num_network_threads, 4, "override over env");
    assert_eq!(c.num_recovery_threads_per_data_dir, 2, "default");
    assert_eq!(describe_key(&c, "num.partitions").source, ConfigSource::StaticBroker);
    assert_eq!(describe_key(&c, "num.recovery.threads.per.data.dir").source, ConfigSource::Default);
}

#[test]
fn env_names_follow_the_docker_image() {
    let sources = ConfigSources {
        env: pairs(&[
            ("KAFKA_LOG_DIRS", "/data/a,/data/b"),
            ("KAFKA_HEAP_OPTS", "-Xmx1G"),
            ("KAFKA_JMX_PORT", "9999"),
            ("KAFKA_LOG4J_LOGGERS", "x=INFO"),
            ("KAFKA_NODE_ID", "7"),
        ]),
        ..Default::default()
    };
    let loaded = BrokerConfig::load(&sources).expect("loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config.log_dirs, vec![PathBuf::from("/data/a"), PathBuf::from("/data/b")]);
    assert_eq!(loaded.config.node_id, 7);
}

#[test]
fn yaml_file_flat_and_nested() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write_file(
        &dir,
        "gregor.yaml",
        "node.id: 3\nlog:\n  retention:\n    hours: 1\n  dirs:\n    - /x\n    - /y\nauto.create.topics.enable: false\n",
    );
    let c = BrokerConfig::load(&ConfigSources { file: Some(file), ..Default::default() }).expect("loads").config;
    assert_eq!(c.node_id, 3);
    assert_eq!(c.log_retention_ms, 3_600_000);
    assert_eq!(c.log_dirs.len(), 2);
    assert!(!c.auto_create_topics_enable);
}

#[test]
fn properties_file_syntax() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = "# comment\n! other comment\nlisteners = PLAINTEXT://127.0.0.1:19092,\\\n    \
                INTERNAL://127.0.0.1:19093\nlistener.security.protocol.map: PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT\n\
                log.dirs /tmp/a\\ b\n";
    let file = write_file(&dir, "server.properties", text);
    let c = BrokerConfig::load(&ConfigSources { file: Some(file), ..Default::default() }).expect("loads").config;
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.listeners[1].port, 19093);
    assert!(!c.bind_ipv6_loopback, "explicit listeners turn the [::1] companion off");
    assert_eq!(c.log_dirs, vec![PathBuf::from("/tmp/a b")]);
}

#[test]
fn missing_file_is_an_io_error() {
    let sources = ConfigSources { file: Some("/nonexistent/gregor.properties".into()), ..Default::default() };
    assert!(matches!(BrokerConfig::load(&sources), Err(ConfigError::Io { .. })));
}

#[test]
fn unknown_keys_warn_with_their_name() {
    let loaded = BrokerConfig::from_pairs(&[("no.such.key", "1"), ("num.partitions", "3")]).expect("loads");
    assert_eq!(loaded.config.num_partitions, 3);
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].contains("no.such.key"));
}

#[test]
fn invalid_values_name_the_key() {
    for (key, value) in [
        ("num.partitions", "0"),
        ("num.partitions", "many"),
        ("log.segment.bytes", "1000"),
        ("auto.create.topics.enable", "yes"),
        ("log.cleanup.policy", "archive"),
        ("log.message.timestamp.type", "createtime"),
        ("min.insync.replicas", "0"),
        ("listeners", "PLAINTEXT//nohost"),
        ("compression.type", "brotli"),
        ("offsets.topic.replication.factor", "40000"),
        ("remote.log.storage.system.enable", "true"),
    ] {
        let err = BrokerConfig::from_pairs(&[(key, value)]).expect_err(key);
        assert_eq!(err.key(), Some(key), "{err}");
        assert!(err.to_string().contains(key));
    }
    // Booleans are case-insensitive, as Kafka's.
    assert!(!BrokerConfig::from_pairs(&[("delete.topic.enable", "FALSE")]).expect("loads").config.delete_topic_enable);
}

#[test]
fn cross_key_rules() {
    assert!(BrokerConfig::from_pairs(&[("node.id", "1"), ("broker.id", "2")]).is_err());
    assert_eq!(BrokerConfig::from_pairs(&[("broker.id", "5")]).expect("loads").config.node_id, 5);
    assert!(BrokerConfig::from_pairs(&[("advertised.listeners", "PLAINTEXT://0.0.0.0:9092")]).is_err());
    assert!(BrokerConfig::from_pairs(&[("advertised.listeners", "OTHER://h:9092")]).is_err());
    assert!(BrokerConfig::from_pairs(&[("listeners", "FOO://:9092")]).is_err());
    assert!(BrokerConfig::from_pairs(&[("group.min.session.timeout.ms", "9"), ("group.max.session.timeout.ms", "8")])
        .is_err());
    // A broker default no topic could take is reported under the broker key.
    let err = BrokerConfig::from_pairs(&[("log.roll.ms", "0")]).expect_err("segment.ms must be >= 1");
    assert_eq!(err.key(), Some("log.roll.ms"));
    let c = BrokerConfig::from_pairs(&[
        ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
        ("controller.listener.names", "CONTROLLER"),
        ("advertised.listeners", "PLAINTEXT://broker1:9092"),
    ])
    .expect("loads")
    .config;
    assert_eq!(c.security_protocol("controller"), Some("PLAINTEXT"));
    assert_eq!(c.advertised_listeners[0].host, "broker1");
}

#[test]
fn listeners_gregor_cannot_secure_are_refused() {
    let refused = |pairs: &[(&str, &str)], key: &str, needle: &str| {
        let err = BrokerConfig::from_pairs(pairs).expect_err("a TLS or SASL listener must not load");
        assert!(matches!(err, ConfigError::Unsupported { .. }), "{err}");
        assert_eq!(err.key(), Some(key), "{err}");
        assert!(err.to_string().contains(needle), "{err:?} lacks {needle:?}");
    };
    // The protocol from the listener's name, through the default map.
    refused(
        &[("listeners", "PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9093")],
        "listeners",
        "SASL_PLAINTEXT://127.0.0.1:9093 has security protocol SASL_PLAINTEXT",
    );
    refused(&[("listeners", "SSL://127.0.0.1:9093")], "listeners", "security protocol SSL");
    // The protocol from an explicit map.
    refused(
        &[
            ("listeners", "PLAINTEXT://127.0.0.1:9092,INTERNAL://127.0.0.1:9093"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL"),
        ],
        "listeners",
        "INTERNAL://127.0.0.1:9093 has security protocol SASL_SSL (from listener.security.protocol.map)",
    );
    refused(&[("security.inter.broker.protocol", "SSL")], "security.inter.broker.protocol", "SSL is not implemented");
    // A map that makes every listener PLAINTEXT is served, even under another name.
    let c = BrokerConfig::from_pairs(&[
        ("listeners", "PLAINTEXT://127.0.0.1:9092,INTERNAL://127.0.0.1:9093"),
        ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,SSL:SSL"),
        ("inter.broker.listener.name", "INTERNAL"),
    ])
    .expect("PLAINTEXT listeners load")
    .config;
    assert_eq!(c.security_protocol("INTERNAL"), Some("PLAINTEXT"));
    // The default map names SSL and SASL protocols without any listener using them.
    assert!(BrokerConfig::from_pairs(&[]).is_ok());
}

#[test]
fn connection_and_queue_limits() {
    let c = BrokerConfig::defaults();
    assert_eq!(c.max_connections_per_ip, i32::MAX);
    assert_eq!(c.connections_max_idle_ms, 600_000);
    assert_eq!(c.queued_max_requests, 500);
    assert_eq!(c.queued_max_request_bytes, -1);
    // Kafka's -1 is unbounded; Gregor keeps a bound tied to the largest request.
    assert_eq!(c.queued_request_bytes_budget(), 2 * 104_857_600);
    let c = BrokerConfig::from_pairs(&[("queued.max.request.bytes", "209715200")]).expect("loads").config;
    assert_eq!(c.queued_request_bytes_budget(), 209_715_200);
    assert!(BrokerConfig::from_pairs(&[("queued.max.request.bytes", "1000")]).is_err());
    assert!(
        BrokerConfig::from_pairs(&[("queued.max.request.bytes", "1000"), ("socket.request.max.bytes", "1000")]).is_ok()
    );
    let c = BrokerConfig::from_pairs(&[
        ("max.connections.per.ip", "2"),
        ("max.connections.per.ip.overrides", "127.0.0.1:5, broker.example:7"),
    ])
    .expect("loads")
    .config;
    assert_eq!(c.max_connections_per_ip_overrides.get("127.0.0.1"), Some(&5));
    assert_eq!(c.max_connections_per_ip_overrides.get("broker.example"), Some(&7));
    assert!(BrokerConfig::from_pairs(&[("max.connections.per.ip", "0")]).is_err());
    assert!(BrokerConfig::from_pairs(&[("max.connections.per.ip", "0"), ("max.connections.per.ip.overrides", "h:1")])
        .is_ok());
    assert!(BrokerConfig::from_pairs(&[("max.connections.per.ip.overrides", "h:x")]).is_err());
}

#[test]
fn retention_ms_over_minutes_over_hours() {
    let ms = |p: &[(&str, &str)]| BrokerConfig::from_pairs(p).expect("loads").config.log_retention_ms;
    assert_eq!(ms(&[("log.retention.hours", "2")]), 7_200_000);
    assert_eq!(ms(&[("log.retention.hours", "2"), ("log.retention.minutes", "3")]), 180_000);
    assert_eq!(ms(&[("log.retention.hours", "2"), ("log.retention.minutes", "3"), ("log.retention.ms", "5")]), 5);
    assert_eq!(ms(&[("log.retention.ms", "-1")]), -1);
    assert_eq!(ms(&[("log.retention.hours", "-5")]), -1, "any negative is forever");
    let roll = BrokerConfig::from_pairs(&[("log.roll.hours", "1")]).expect("loads").config;
    assert_eq!(roll.log_roll_ms, 3_600_000);
    let flush = BrokerConfig::from_pairs(&[("log.flush.scheduler.interval.ms", "1000")]).expect("loads").config;
    assert_eq!(flush.log_flush_interval_ms, 1000);
}

#[test]
fn describe_covers_every_key_with_synonyms() {
    let c = BrokerConfig::from_pairs(&[("log.retention.minutes", "10"), ("ssl.keystore.password", "secret")])
        .expect("loads")
        .config;
    let all = c.describe();
    assert_eq!(all.len(), broker_config_defs().len());
    let ms = describe_key(&c, "log.retention.ms");
    assert_eq!(ms.value, None);
    let syn: Vec<_> = ms.synonyms.iter().map(|s| (s.name.as_str(), s.value.as_deref(), s.source)).collect();
    assert_eq!(
        syn,
        vec![
            ("log.retention.minutes", Some("10"), ConfigSource::StaticBroker),
            ("log.retention.hours", Some("168"), ConfigSource::Default),
        ]
    );
    let minutes = describe_key(&c, "log.retention.minutes");
    assert_eq!(minutes.value.as_deref(), Some("10"));
    assert!(!minutes.is_default && !minutes.read_only);
    assert_eq!(minutes.config_type, ConfigType::Int);
    let secret = describe_key(&c, "ssl.keystore.password");
    assert!(secret.sensitive);
    assert_eq!(secret.value, None);
    assert!(secret.synonyms.iter().all(|s| s.value.is_none()));
    let node = describe_key(&c, "node.id");
    assert!(node.read_only && node.is_default);
    assert!(node.documentation.is_some());
}

#[test]
fn dynamic_broker_configs() {
    let c = BrokerConfig::from_pairs(&[("num.io.threads", "4"), ("log.retention.hours", "10")]).expect("loads").config;
    let d = c
        .with_dynamic(&map(&[("num.io.threads", "6")]), &map(&[("num.io.threads", "5"), ("log.retention.ms", "1000")]))
        .expect("applies");
    assert_eq!(d.num_io_threads, 6, "per broker over cluster default");
    assert_eq!(d.log_retention_ms, 1000, "cluster default over static");
    let io = describe_key(&d, "num.io.threads");
    assert_eq!(io.source, ConfigSource::DynamicBroker);
    let sources: Vec<_> = io.synonyms.iter().map(|s| s.source).collect();
    assert_eq!(
        sources,
        vec![
            ConfigSource::DynamicBroker,
            ConfigSource::DynamicDefaultBroker,
            ConfigSource::StaticBroker,
            ConfigSource::Default
        ]
    );
    assert_eq!(describe_key(&d, "log.retention.ms").source, ConfigSource::DynamicDefaultBroker);
    // Dropping the dynamic values returns to the static ones.
    let back = d.with_dynamic(&BTreeMap::new(), &BTreeMap::new()).expect("applies");
    assert_eq!(back.num_io_threads, 4);
    assert_eq!(back.log_retention_ms, 36_000_000);

    assert!(matches!(c.with_dynamic(&map(&[("node.id", "2")]), &BTreeMap::new()), Err(ConfigError::ReadOnly { .. })));
    assert!(matches!(c.with_dynamic(&map(&[("bogus", "2")]), &BTreeMap::new()), Err(ConfigError::UnknownKey { .. })));
    let err = c.with_dynamic(&BTreeMap::new(), &map(&[("num.io.threads", "0")])).expect_err("invalid");
    assert_eq!(err.key(), Some("num.io.threads"));
}

#[test]
fn list_configs() {
    assert!(is_list_config("cleanup.policy"));
    assert!(is_list_config("leader.replication.throttled.replicas"));
    assert!(is_list_config("log.dirs"));
    assert!(!is_list_config("retention.ms"));
    assert!(!is_list_config("nope"));
}

#[test]
fn example_files_restate_the_defaults() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let defaults = BrokerConfig::defaults().describe();
    for name in ["gregor.properties", "gregor.yaml"] {
        let sources = ConfigSources { file: Some(root.join(name)), ..Default::default() };
        let loaded = BrokerConfig::load(&sources).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(loaded.warnings.is_empty(), "{name}: {:?}", loaded.warnings);
        assert!(loaded.config.bind_ipv6_loopback, "{name} must leave listeners at the default");
        for (got, want) in loaded.config.describe().iter().zip(&defaults) {
            assert_eq!(got.value, want.value, "{name}: {}", got.name);
        }
    }
}

#[test]
fn the_authorizer_is_kafkas_standard_one_or_none() {
    let load = |pairs: &[(&str, &str)]| {
        let overrides = pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
        BrokerConfig::load(&ConfigSources { overrides, ..Default::default() })
    };
    let off = load(&[]).expect("defaults").config;
    assert!(!off.authorizer_enabled && off.super_users.is_empty() && !off.allow_everyone_if_no_acl_found);
    let on = load(&[
        ("authorizer.class.name", gregor_config::STANDARD_AUTHORIZER),
        ("super.users", "User:admin; User:ops;"),
        ("allow.everyone.if.no.acl.found", "true"),
    ])
    .expect("standard authorizer")
    .config;
    assert!(on.authorizer_enabled && on.allow_everyone_if_no_acl_found);
    assert_eq!(on.super_users, vec!["User:admin".to_string(), "User:ops".to_string()]);
    // ZooKeeper's AclAuthorizer is gone from Kafka 4; naming it is a configuration error.
    assert!(load(&[("authorizer.class.name", "kafka.security.authorizer.AclAuthorizer")]).is_err());
}
