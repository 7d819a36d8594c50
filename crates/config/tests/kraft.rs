//! The KRaft keys: roles, quorum, controller listeners, their defaults and the rules
//! between them.

use gregor_config::*;

fn load(pairs: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
    BrokerConfig::from_pairs(pairs).map(|loaded| loaded.config)
}

fn refused(pairs: &[(&str, &str)], needle: &str) {
    let error = load(pairs).expect_err("must be refused");
    assert!(error.to_string().contains(needle), "{error} should mention {needle:?}");
}

const COMBINED_3: &[(&str, &str)] = &[
    ("node.id", "2"),
    ("listeners", "PLAINTEXT://127.0.0.1:9093,CONTROLLER://127.0.0.1:9096"),
    ("controller.quorum.voters", "1@127.0.0.1:9095,2@127.0.0.1:9096,3@127.0.0.1:9097"),
];

fn with(
    base: &[(&'static str, &'static str)],
    extra: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<_> = base.iter().filter(|(k, _)| !extra.iter().any(|(e, _)| e == k)).copied().collect();
    out.extend_from_slice(extra);
    out
}

#[test]
fn kraft_defaults_are_kafkas() {
    let c = BrokerConfig::defaults();
    assert_eq!(c.process_roles, ProcessRoles { broker: true, controller: true });
    assert!(c.process_roles.is_combined());
    assert!(c.controller_quorum_voters.is_empty());
    assert!(c.controller_quorum_bootstrap_servers.is_empty());
    assert_eq!(c.controller_listener_names, vec!["CONTROLLER".to_string()]);
    assert_eq!(c.broker_rack, None);
    assert_eq!(c.broker_session_timeout_ms, 9000);
    assert_eq!(c.broker_heartbeat_interval_ms, 2000);
    assert_eq!(c.controller_quorum_election_timeout_ms, 1000);
    assert_eq!(c.controller_quorum_fetch_timeout_ms, 2000);
    assert_eq!(c.controller_quorum_election_backoff_max_ms, 1000);
    assert_eq!(c.controller_quorum_request_timeout_ms, 2000);
    assert_eq!(c.controller_quorum_retry_backoff_ms, 20);
    assert_eq!(c.metadata_log_max_record_bytes_between_snapshots, 20_971_520);
    assert_eq!(c.metadata_log_max_snapshot_interval_ms, 3_600_000);
    assert_eq!(c.metadata_max_idle_interval_ms, 500);
    assert!(c.auto_leader_rebalance_enable);
    assert_eq!(c.leader_imbalance_check_interval_seconds, 300);
    assert_eq!(c.leader_imbalance_per_broker_percentage, 10);
    assert_eq!(c.inter_broker_listener_name, None);
    // No keys at all: one node, both roles, its own quorum, no controller listener.
    assert!(c.is_single_node_local());
    assert!(c.controller_listener().is_none());
    assert_eq!(c.client_listeners(), c.listeners.iter().collect::<Vec<_>>());
}

#[test]
fn kraft_keys_parse() {
    let c = load(&[
        ("broker.rack", "eu-1a"),
        ("broker.session.timeout.ms", "18000"),
        ("broker.heartbeat.interval.ms", "3000"),
        ("controller.quorum.election.timeout.ms", "1500"),
        ("controller.quorum.fetch.timeout.ms", "2500"),
        ("controller.quorum.election.backoff.max.ms", "900"),
        ("controller.quorum.request.timeout.ms", "3000"),
        ("controller.quorum.retry.backoff.ms", "50"),
        ("metadata.log.max.record.bytes.between.snapshots", "1048576"),
        ("metadata.log.max.snapshot.interval.ms", "0"),
        ("metadata.max.idle.interval.ms", "0"),
        ("auto.leader.rebalance.enable", "false"),
        ("leader.imbalance.check.interval.seconds", "30"),
        ("leader.imbalance.per.broker.percentage", "5"),
    ])
    .expect("loads");
    assert_eq!(c.broker_rack.as_deref(), Some("eu-1a"));
    assert_eq!((c.broker_session_timeout_ms, c.broker_heartbeat_interval_ms), (18000, 3000));
    assert_eq!(c.controller_quorum_election_timeout_ms, 1500);
    assert_eq!(c.controller_quorum_fetch_timeout_ms, 2500);
    assert_eq!(c.controller_quorum_election_backoff_max_ms, 900);
    assert_eq!(c.controller_quorum_request_timeout_ms, 3000);
    assert_eq!(c.controller_quorum_retry_backoff_ms, 50);
    assert_eq!(c.metadata_log_max_record_bytes_between_snapshots, 1_048_576);
    assert_eq!(c.metadata_log_max_snapshot_interval_ms, 0);
    assert_eq!(c.metadata_max_idle_interval_ms, 0);
    assert!(!c.auto_leader_rebalance_enable);
    assert_eq!(c.leader_imbalance_check_interval_seconds, 30);
    assert_eq!(c.leader_imbalance_per_broker_percentage, 5);
    // Kafka's lower bounds.
    for (key, value) in [
        ("metadata.log.max.record.bytes.between.snapshots", "0"),
        ("metadata.log.max.snapshot.interval.ms", "-1"),
        ("metadata.max.idle.interval.ms", "-1"),
        ("leader.imbalance.check.interval.seconds", "0"),
        ("broker.session.timeout.ms", "x"),
    ] {
        let error = load(&[(key, value)]).expect_err(key);
        assert_eq!(error.key(), Some(key), "{error}");
    }
}

#[test]
fn process_roles_values() {
    let roles = |value| load(&[("process.roles", value)]).map(|c| c.process_roles);
    assert_eq!(roles("broker,controller").expect("both"), ProcessRoles { broker: true, controller: true });
    assert_eq!(roles("controller, broker").expect("both"), ProcessRoles { broker: true, controller: true });
    assert_eq!(ProcessRoles { broker: true, controller: true }.to_string(), "broker,controller");
    for bad in ["", "broker,broker", "zookeeper", "Broker"] {
        let error = roles(bad).expect_err(bad);
        assert_eq!(error.key(), Some("process.roles"), "{error}");
    }
}

#[test]
fn voters_and_bootstrap_servers_parse() {
    let c = load(COMBINED_3).expect("three voters");
    assert_eq!(c.controller_quorum_voters.len(), 3);
    assert_eq!(c.controller_quorum_voters[1], QuorumVoter { id: 2, host: "127.0.0.1".into(), port: 9096 });
    assert!(!c.is_single_node_local());
    let c = load(&[
        ("process.roles", "broker"),
        ("node.id", "4"),
        ("controller.quorum.bootstrap.servers", "c1:9093,[::1]:9094"),
    ])
    .expect("bootstrap servers");
    assert_eq!(c.controller_quorum_bootstrap_servers, vec![("c1".to_string(), 9093), ("::1".to_string(), 9094)]);
    assert!(!c.is_single_node_local());
    for bad in ["1@h:1,1@h:2", "1@h", "x@h:1", "1:h:1", "1@h:99999"] {
        let error = load(&[("controller.quorum.voters", bad)]).expect_err(bad);
        assert_eq!(error.key(), Some("controller.quorum.voters"), "{bad}: {error}");
    }
    refused(&with(COMBINED_3, &[("controller.quorum.voters", "1@0.0.0.0:9095,2@127.0.0.1:9096")]), "non-routable");
    let error = load(&[("controller.quorum.bootstrap.servers", "nohost")]).expect_err("host:port");
    assert_eq!(error.key(), Some("controller.quorum.bootstrap.servers"));
}

#[test]
fn a_combined_node_of_a_quorum() {
    let c = load(COMBINED_3).expect("valid");
    let controller = c.controller_listener().expect("controller listener");
    assert_eq!((controller.name.as_str(), controller.port), ("CONTROLLER", 9096));
    assert_eq!(c.client_listeners().iter().map(|l| l.port).collect::<Vec<_>>(), vec![9093]);
    assert_eq!(c.advertised_broker_listeners().iter().map(|l| l.port).collect::<Vec<_>>(), vec![9093]);
    assert_eq!(c.advertised_controller_listener().map(|l| l.port), Some(9096));
    // The CONTROLLER listener is PLAINTEXT through the default map, so it is served.
    assert_eq!(c.security_protocol("CONTROLLER"), Some("PLAINTEXT"));
    // node.id must be a voter.
    refused(&with(COMBINED_3, &[("node.id", "7")]), "node.id 7 must be one of controller.quorum.voters");
    // The controller listener must be a listener.
    refused(
        &with(COMBINED_3, &[("listeners", "PLAINTEXT://127.0.0.1:9093")]),
        "controller.listener.names (CONTROLLER) must name a listener",
    );
    refused(&with(COMBINED_3, &[("controller.listener.names", "CONTROLLER,OTHER")]), "controller listener OTHER");
    // A controller listener may be advertised (Kafka 4): it is not a broker endpoint.
    let c = load(&with(COMBINED_3, &[("advertised.listeners", "PLAINTEXT://b2:9093,CONTROLLER://c2:9096")]))
        .expect("advertised controller listener");
    assert_eq!(c.advertised_controller_listener().map(|l| l.host.as_str()), Some("c2"));
    assert_eq!(c.advertised_broker_listeners().iter().map(|l| l.host.as_str()).collect::<Vec<_>>(), vec!["b2"]);
    // Every listener a controller listener: no broker endpoint is left.
    refused(
        &with(COMBINED_3, &[("listeners", "CONTROLLER://127.0.0.1:9096"), ("controller.listener.names", "CONTROLLER")]),
        "at least one advertised listener that is not a controller listener",
    );
    // An explicit map must name the controller listener, as in Kafka.
    refused(
        &with(COMBINED_3, &[("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT")]),
        "CONTROLLER has no entry in listener.security.protocol.map",
    );
    load(&with(COMBINED_3, &[("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT")]))
        .expect("explicit PLAINTEXT controller listener");
    refused(
        &with(COMBINED_3, &[("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL")]),
        "security protocol SSL",
    );
    // The inter-broker listener must be a broker listener.
    refused(&with(COMBINED_3, &[("inter.broker.listener.name", "CONTROLLER")]), "inter-broker listener CONTROLLER");
    refused(
        &with(
            COMBINED_3,
            &[
                ("listeners", "INTERNAL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9096"),
                ("listener.security.protocol.map", "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ],
        ),
        "inter-broker listener PLAINTEXT",
    );
    let c = load(&with(
        COMBINED_3,
        &[
            ("listeners", "INTERNAL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9096"),
            ("listener.security.protocol.map", "INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("inter.broker.listener.name", "internal"),
        ],
    ))
    .expect("named inter-broker listener");
    assert_eq!(c.inter_broker_listener_name.as_deref(), Some("INTERNAL"));
}

#[test]
fn a_broker_only_node() {
    let broker = [
        ("process.roles", "broker"),
        ("node.id", "4"),
        ("listeners", "PLAINTEXT://127.0.0.1:9092"),
        ("controller.quorum.voters", "1@127.0.0.1:9095,2@127.0.0.1:9096,3@127.0.0.1:9097"),
    ];
    let c = load(&broker).expect("valid broker");
    assert!(c.process_roles.is_broker_only());
    assert!(c.controller_listener().is_none());
    assert_eq!(c.client_listeners().len(), 1);
    refused(&[("process.roles", "broker")], "needs controller.quorum.voters");
    refused(&with(&broker, &[("node.id", "2")]), "node.id 2 is one of controller.quorum.voters");
    refused(
        &with(&broker, &[("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093")]),
        "process.roles=broker does not serve the controller",
    );
    refused(&with(&broker, &[("controller.listener.names", "")]), "controller.listener.names must name");
    refused(&with(&broker, &[("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT")]), "add CONTROLLER:PLAINTEXT");
}

#[test]
fn a_controller_only_node() {
    let controller = [
        ("process.roles", "controller"),
        ("node.id", "1"),
        ("listeners", "CONTROLLER://127.0.0.1:9093"),
        ("controller.quorum.voters", "1@127.0.0.1:9093"),
    ];
    let c = load(&controller).expect("valid controller");
    assert!(c.process_roles.is_controller_only());
    assert_eq!(c.controller_listener().map(|l| l.port), Some(9093));
    assert!(c.client_listeners().is_empty());
    refused(
        &[("process.roles", "controller"), ("listeners", "CONTROLLER://127.0.0.1:9093")],
        "needs controller.quorum.voters",
    );
    refused(
        &with(&controller, &[("listeners", "CONTROLLER://127.0.0.1:9093,PLAINTEXT://127.0.0.1:9092")]),
        "serves only controller listeners",
    );
    refused(&with(&controller, &[("node.id", "5")]), "node.id 5 must be one of controller.quorum.voters");
    // A dynamic quorum (bootstrap servers) has no static voter list to check node.id against.
    load(&[
        ("process.roles", "controller"),
        ("node.id", "5"),
        ("listeners", "CONTROLLER://127.0.0.1:9093"),
        ("controller.quorum.bootstrap.servers", "127.0.0.1:9093"),
    ])
    .expect("dynamic quorum controller");
}

#[test]
fn a_single_local_node_may_have_a_controller_listener() {
    let c = load(&[("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093")]).expect("valid");
    assert!(c.is_single_node_local());
    assert_eq!(c.controller_listener().map(|l| l.port), Some(9093));
    assert_eq!(c.client_listeners().iter().map(|l| l.port).collect::<Vec<_>>(), vec![9092]);
}

fn from_env(vars: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
    let env = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    BrokerConfig::load(&ConfigSources { env, ..Default::default() }).map(|loaded| loaded.config)
}

/// The environments of Kafka's own docker-compose examples (cluster/combined and
/// cluster/isolated, plaintext) load as they are.
#[test]
fn kafkas_docker_examples_load() {
    let combined = from_env(&[
        ("KAFKA_NODE_ID", "1"),
        ("KAFKA_PROCESS_ROLES", "broker,controller"),
        ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT"),
        ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"),
        ("KAFKA_LISTENERS", "PLAINTEXT://:19092,CONTROLLER://:9093,PLAINTEXT_HOST://:9092"),
        ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
        ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://kafka-1:19092,PLAINTEXT_HOST://localhost:29092"),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
        ("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw"),
        ("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs"),
    ])
    .expect("combined example");
    assert!(combined.process_roles.is_combined());
    assert_eq!(combined.controller_listener().map(|l| l.port), Some(9093));
    assert_eq!(combined.advertised_controller_listener().map(|l| l.host.as_str()), Some(""));
    assert_eq!(combined.client_listeners().len(), 2);
    let controller = from_env(&[
        ("KAFKA_NODE_ID", "1"),
        ("KAFKA_PROCESS_ROLES", "controller"),
        ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@controller-1:9093,2@controller-2:9093,3@controller-3:9093"),
        ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
        ("KAFKA_LISTENERS", "CONTROLLER://:9093"),
    ])
    .expect("isolated controller example");
    assert!(controller.process_roles.is_controller_only());
    let broker = from_env(&[
        ("KAFKA_NODE_ID", "4"),
        ("KAFKA_PROCESS_ROLES", "broker"),
        ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@controller-1:9093,2@controller-2:9093,3@controller-3:9093"),
        ("KAFKA_LISTENERS", "PLAINTEXT://:19092,PLAINTEXT_HOST://:9092"),
        ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT"),
        ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
        ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://kafka-1:19092,PLAINTEXT_HOST://localhost:29092"),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
    ])
    .expect("isolated broker example");
    assert!(broker.process_roles.is_broker_only());
    assert_eq!(broker.controller_quorum_voters[2], QuorumVoter { id: 3, host: "controller-3".into(), port: 9093 });
}
