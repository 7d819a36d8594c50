//! The KRaft side of the broker configuration: which listeners serve the controller,
//! which serve clients, and the rules between `process.roles`, the quorum keys and the
//! listeners that Kafka's `KafkaConfig` enforces.
//!
//! Gregor differs from Kafka in one place on purpose: a node with both roles and neither
//! `controller.quorum.voters` nor `controller.quorum.bootstrap.servers` is a single node
//! that is its own quorum (Gregor's start-with-no-file mode), so it needs no CONTROLLER
//! listener. Kafka refuses such a configuration.

use crate::broker::BrokerConfig;
use crate::error::ConfigError;
use crate::listener::Listener;

fn conflict(reason: String) -> ConfigError {
    ConfigError::Conflict { reason }
}

impl BrokerConfig {
    /// True when neither `controller.quorum.voters` nor
    /// `controller.quorum.bootstrap.servers` is set: the node runs alone, as its own
    /// quorum, with the local metadata log (Gregor's default).
    pub fn is_single_node_local(&self) -> bool {
        self.controller_quorum_voters.is_empty() && self.controller_quorum_bootstrap_servers.is_empty()
    }

    /// Whether `listener_name` is one of `controller.listener.names`.
    pub fn is_controller_listener(&self, listener_name: &str) -> bool {
        let name = listener_name.to_ascii_uppercase();
        self.controller_listener_names.contains(&name)
    }

    /// The listener the controller serves: the first of `controller.listener.names`
    /// that `listeners` defines. `None` on a broker-only node (it only connects to the
    /// controllers) and on a single local node configured without one.
    pub fn controller_listener(&self) -> Option<&Listener> {
        self.controller_listener_names.iter().find_map(|name| self.listeners.iter().find(|l| &l.name == name))
    }

    /// The address other nodes reach the controller listener at: its entry in
    /// `advertised.listeners` when there is one, else the listener itself (Kafka's
    /// effective advertised controller listener).
    pub fn advertised_controller_listener(&self) -> Option<&Listener> {
        let listener = self.controller_listener()?;
        self.advertised_listeners.iter().find(|l| l.name == listener.name).or(Some(listener))
    }

    /// The listeners that serve clients (and other brokers): every listener that is not
    /// a controller listener.
    pub fn client_listeners(&self) -> Vec<&Listener> {
        self.listeners.iter().filter(|l| !self.is_controller_listener(&l.name)).collect()
    }

    /// The advertised endpoints a broker registers and returns in Metadata: the
    /// advertised listeners that are not controller listeners.
    pub fn advertised_broker_listeners(&self) -> Vec<&Listener> {
        self.advertised_listeners.iter().filter(|l| !self.is_controller_listener(&l.name)).collect()
    }
}

/// The rules Kafka's `KafkaConfig` applies between `process.roles`, `node.id`, the
/// quorum keys and the listeners.
pub(crate) fn check_kraft(c: &BrokerConfig) -> Result<(), ConfigError> {
    let roles = c.process_roles;
    let voter_ids: Vec<i32> = c.controller_quorum_voters.iter().map(|v| v.id).collect();
    for voter in &c.controller_quorum_voters {
        // As Kafka: the voters are where others connect, so a wildcard cannot be one.
        if voter.host == "0.0.0.0" || voter.host == "::" {
            return Err(ConfigError::invalid(
                "controller.quorum.voters",
                &c.value("controller.quorum.voters").unwrap_or_default(),
                format!(
                    "voter {} has the non-routable address {}; give an address others can reach",
                    voter.id, voter.host
                ),
            ));
        }
    }
    if (roles.is_broker_only() || roles.is_controller_only()) && c.is_single_node_local() {
        return Err(conflict(format!(
            "process.roles={roles} needs controller.quorum.voters (the static quorum, id@host:port,...) or \
             controller.quorum.bootstrap.servers (host:port,...) to find the controllers; only a node with \
             both roles may run alone without them"
        )));
    }
    if roles.broker && !roles.controller {
        check_broker_only(c, &voter_ids)?;
    }
    if roles.controller && !c.is_single_node_local() {
        check_controller(c, &voter_ids)?;
    }
    if roles.broker {
        check_broker_listeners(c)?;
    }
    Ok(())
}

fn check_broker_only(c: &BrokerConfig, voter_ids: &[i32]) -> Result<(), ConfigError> {
    if voter_ids.contains(&c.node_id) {
        return Err(conflict(format!(
            "node.id {} is one of controller.quorum.voters {voter_ids:?}, but process.roles=broker has no \
             controller role; give the broker an id of its own or add the controller role",
            c.node_id
        )));
    }
    if c.controller_listener_names.is_empty() {
        return Err(conflict(
            "controller.listener.names must name the listener of the controllers when process.roles=broker".into(),
        ));
    }
    if let Some(listener) = c.listeners.iter().find(|l| c.is_controller_listener(&l.name)) {
        return Err(conflict(format!(
            "listener {listener} is named in controller.listener.names, but process.roles=broker does not serve \
             the controller; remove it from listeners"
        )));
    }
    for name in &c.controller_listener_names {
        if c.security_protocol(name).is_none() {
            return Err(conflict(format!(
                "controller listener {name} (controller.listener.names) has no entry in the \
                 listener.security.protocol.map that is set; add {name}:PLAINTEXT to it"
            )));
        }
    }
    Ok(())
}

fn check_controller(c: &BrokerConfig, voter_ids: &[i32]) -> Result<(), ConfigError> {
    if !voter_ids.is_empty() && !voter_ids.contains(&c.node_id) {
        return Err(conflict(format!(
            "process.roles={} includes the controller role, so node.id {} must be one of \
             controller.quorum.voters {voter_ids:?}",
            c.process_roles, c.node_id
        )));
    }
    let names: Vec<&str> = c.listeners.iter().map(|l| l.name.as_str()).collect();
    if c.controller_listener().is_none() {
        return Err(conflict(format!(
            "controller.listener.names ({}) must name a listener of listeners ({}) on a node with the controller \
             role, for example listeners=PLAINTEXT://:9092,CONTROLLER://:9093",
            c.controller_listener_names.join(","),
            names.join(",")
        )));
    }
    if let Some(missing) = c.controller_listener_names.iter().find(|name| !names.contains(&name.as_str())) {
        return Err(conflict(format!(
            "controller listener {missing} (controller.listener.names) is not one of listeners ({}) on a node with \
             the controller role",
            names.join(",")
        )));
    }
    if c.process_roles.is_controller_only() {
        if let Some(listener) = c.listeners.iter().find(|l| !c.is_controller_listener(&l.name)) {
            return Err(conflict(format!(
                "listener {listener} is not named in controller.listener.names, but process.roles=controller \
                 serves only controller listeners"
            )));
        }
    }
    Ok(())
}

fn check_broker_listeners(c: &BrokerConfig) -> Result<(), ConfigError> {
    let broker_listeners = c.advertised_broker_listeners();
    if broker_listeners.is_empty() {
        return Err(conflict(
            "a broker needs at least one advertised listener that is not a controller listener; perhaps every \
             listener is named in controller.listener.names?"
                .into(),
        ));
    }
    let inter_broker = match &c.inter_broker_listener_name {
        Some(name) => name.clone(),
        // Alone there is no other broker to talk to: the default may name no listener.
        None if c.is_single_node_local() => return Ok(()),
        None => c.security_inter_broker_protocol.clone(),
    };
    if !broker_listeners.iter().any(|l| l.name == inter_broker) {
        let valid: Vec<&str> = broker_listeners.iter().map(|l| l.name.as_str()).collect();
        return Err(conflict(format!(
            "the inter-broker listener {inter_broker} (inter.broker.listener.name, or the name of \
             security.inter.broker.protocol) must be one of the advertised broker listeners: {}",
            valid.join(",")
        )));
    }
    Ok(())
}
