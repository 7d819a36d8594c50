//! Endpoints written in configs: listeners, quorum voters, bootstrap servers.

use std::collections::BTreeSet;

/// One `NAME://host:port` endpoint of `listeners` or `advertised.listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The listener name, upper-cased as Kafka normalises it (`PLAINTEXT`, `CONTROLLER`...).
    pub name: String,
    /// Host or address without brackets; empty means every interface.
    pub host: String,
    /// 0 asks the OS for a free port.
    pub port: u16,
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // IPv6 literals need their brackets back to be read again.
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

/// A `host:port` pair (`controller.quorum.bootstrap.servers`, voter addresses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

/// One `id@host:port` entry of `controller.quorum.voters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumVoter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

/// The security protocols a listener may map to; Gregor serves only PLAINTEXT today but
/// accepts the names so Kafka configs parse.
pub const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// Parses `host:port`, with `[v6]:port` for IPv6 literals.
pub fn parse_host_port(text: &str) -> Result<HostPort, String> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| format!("{text:?}: missing ']'"))?;
        let port = after.strip_prefix(':').ok_or_else(|| format!("{text:?}: missing port"))?;
        (host, port)
    } else {
        text.rsplit_once(':').ok_or_else(|| format!("{text:?}: expected host:port"))?
    };
    if host.contains(':') && !text.starts_with('[') {
        return Err(format!("{text:?}: IPv6 addresses need brackets, as [::1]:9092"));
    }
    let port = port.parse::<u16>().map_err(|_| format!("{text:?}: port must be a number from 0 to 65535"))?;
    Ok(HostPort { host: host.to_string(), port })
}

/// Parses a comma-separated listener list; names must be unique and so must non-zero ports.
pub fn parse_listeners(value: &str) -> Result<Vec<Listener>, String> {
    let mut out: Vec<Listener> = Vec::new();
    for item in crate::types::parse_list(value) {
        let (name, rest) = item.split_once("://").ok_or_else(|| format!("{item:?}: expected NAME://host:port"))?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("{item:?}: listener name must be letters, digits, '_' or '-'"));
        }
        let hp = parse_host_port(rest)?;
        let listener = Listener { name: name.to_ascii_uppercase(), host: hp.host, port: hp.port };
        if out.iter().any(|l| l.name == listener.name) {
            return Err(format!("listener name {} is used twice", listener.name));
        }
        if listener.port != 0 && out.iter().any(|l| l.port == listener.port && l.host == listener.host) {
            return Err(format!("two listeners bind {}:{}", listener.host, listener.port));
        }
        out.push(listener);
    }
    Ok(out)
}

/// Validator form of [`parse_listeners`].
pub(crate) fn validate_listeners(value: &str) -> Result<(), String> {
    parse_listeners(value).map(|_| ())
}

/// Parses `controller.quorum.voters`: `id@host:port` entries with distinct ids.
pub fn parse_voters(value: &str) -> Result<Vec<QuorumVoter>, String> {
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for item in crate::types::parse_list(value) {
        let (id, addr) = item.split_once('@').ok_or_else(|| format!("{item:?}: expected id@host:port"))?;
        let id: i32 = id.trim().parse().map_err(|_| format!("{item:?}: voter id must be an integer"))?;
        if id < 0 {
            return Err(format!("{item:?}: voter id must not be negative"));
        }
        if !ids.insert(id) {
            return Err(format!("voter id {id} is listed twice"));
        }
        let hp = parse_host_port(addr)?;
        out.push(QuorumVoter { id, host: hp.host, port: hp.port });
    }
    Ok(out)
}

pub(crate) fn validate_voters(value: &str) -> Result<(), String> {
    parse_voters(value).map(|_| ())
}

/// Parses a comma-separated `host:port` list.
pub fn parse_host_ports(value: &str) -> Result<Vec<HostPort>, String> {
    crate::types::parse_list(value).iter().map(|s| parse_host_port(s)).collect()
}

pub(crate) fn validate_host_ports(value: &str) -> Result<(), String> {
    parse_host_ports(value).map(|_| ())
}

/// Parses `listener.security.protocol.map`: `NAME:PROTOCOL` pairs, upper-cased.
pub fn parse_protocol_map(value: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in crate::types::parse_list(value) {
        let (name, proto) = item.split_once(':').ok_or_else(|| format!("{item:?}: expected NAME:PROTOCOL"))?;
        let (name, proto) = (name.trim().to_ascii_uppercase(), proto.trim().to_ascii_uppercase());
        if name.is_empty() {
            return Err(format!("{item:?}: empty listener name"));
        }
        if !SECURITY_PROTOCOLS.contains(&proto.as_str()) {
            return Err(format!("{item:?}: protocol must be one of {}", SECURITY_PROTOCOLS.join(", ")));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("listener name {name} is mapped twice"));
        }
        out.push((name, proto));
    }
    Ok(out)
}

pub(crate) fn validate_protocol_map(value: &str) -> Result<(), String> {
    parse_protocol_map(value).map(|_| ())
}

/// Parses `max.connections.per.ip.overrides`: `host:count` pairs.
pub fn parse_connection_overrides(value: &str) -> Result<Vec<(String, i32)>, String> {
    let mut out = Vec::new();
    for item in crate::types::parse_list(value) {
        // rsplit: the host may be an IPv6 literal full of colons.
        let (host, count) = item.rsplit_once(':').ok_or_else(|| format!("{item:?}: expected host:count"))?;
        let count: i32 = count.trim().parse().map_err(|_| format!("{item:?}: count must be an integer"))?;
        if count < 0 {
            return Err(format!("{item:?}: count must not be negative"));
        }
        out.push((host.trim().to_string(), count));
    }
    Ok(out)
}

pub(crate) fn validate_connection_overrides(value: &str) -> Result<(), String> {
    parse_connection_overrides(value).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_parse() {
        let ls = parse_listeners("PLAINTEXT://127.0.0.1:9092, internal://[::1]:9093,EXT://:0").unwrap();
        assert_eq!(ls[0], Listener { name: "PLAINTEXT".into(), host: "127.0.0.1".into(), port: 9092 });
        assert_eq!(ls[1].name, "INTERNAL");
        assert_eq!(ls[1].host, "::1");
        assert_eq!(ls[1].to_string(), "INTERNAL://[::1]:9093");
        assert_eq!(ls[2].host, "");
        assert!(parse_listeners("PLAINTEXT://h:1,PLAINTEXT://h:2").is_err());
        assert!(parse_listeners("A://h:1,B://h:1").is_err());
        assert!(parse_listeners("A://h:70000").is_err());
        assert!(parse_listeners("h:9092").is_err());
        assert!(parse_listeners("A://::1:9092").is_err());
    }

    #[test]
    fn voters_and_maps_parse() {
        let v = parse_voters("1@localhost:9093,2@[::1]:9094").unwrap();
        assert_eq!(v[1], QuorumVoter { id: 2, host: "::1".into(), port: 9094 });
        assert!(parse_voters("1@a:1,1@b:2").is_err());
        assert!(parse_voters("x@a:1").is_err());
        assert_eq!(parse_protocol_map("controller:plaintext").unwrap()[0].0, "CONTROLLER");
        assert!(parse_protocol_map("A:TLS").is_err());
        assert_eq!(parse_connection_overrides("::1:5,h:2").unwrap()[0], ("::1".to_string(), 5));
    }
}
