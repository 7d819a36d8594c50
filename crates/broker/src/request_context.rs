//! Who sent a request and through which door: what Kafka's `RequestContext` carries.
//!
//! A [`ConnectionContext`] is built once, when a connection is accepted: the listener
//! it came in on (its name decides which endpoints Metadata and FindCoordinator
//! answer), the listener's security protocol, the authenticated principal and the
//! client's address; ApiVersions v3+ later adds the client's software name and version.
//! Every request gets a [`RequestContext`]: the connection's context and the fields of
//! its header, handed to its handler by the dispatch `match`.
//!
//! Authentication is one place: [`ConnectionContext::new`] gives every connection
//! `User:ANONYMOUS`, as Kafka does for PLAINTEXT listeners; a TLS or SASL listener
//! replaces the principal once its handshake has named the client.

use gregor_protocol::messages::RequestHeader;
use std::net::SocketAddr;
use std::sync::Arc;

/// The principal of a connection that did not authenticate.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// The software a client named in its ApiVersions request (v3+, KIP-511).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSoftware {
    pub name: String,
    pub version: String,
}

/// What a connection is, fixed once it is accepted (the client's software aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionContext {
    /// The name of the listener the connection came in on (`PLAINTEXT`, `EXTERNAL`...).
    pub listener_name: String,
    /// The listener's security protocol (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`).
    pub security_protocol: String,
    /// `type:name`, as ACLs name principals.
    pub principal: String,
    pub client_address: SocketAddr,
    /// Set by the client's ApiVersions request, when it names its software.
    pub client_software: Option<ClientSoftware>,
}

impl ConnectionContext {
    /// The context of a connection accepted on `listener_name`. Until the listeners
    /// authenticate, every client is `User:ANONYMOUS`.
    pub fn new(listener_name: &str, security_protocol: &str, client_address: SocketAddr) -> Self {
        Self {
            listener_name: listener_name.to_owned(),
            security_protocol: security_protocol.to_owned(),
            principal: ANONYMOUS.to_owned(),
            client_address,
            client_software: None,
        }
    }
}

/// One request's context: its connection's and its header's.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub connection: Arc<ConnectionContext>,
    pub client_id: Option<String>,
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl RequestContext {
    pub fn new(connection: Arc<ConnectionContext>, header: &RequestHeader) -> Self {
        Self {
            connection,
            client_id: header.client_id.clone(),
            api_key: header.request_api_key,
            api_version: header.request_api_version,
            correlation_id: header.correlation_id,
        }
    }

    /// A request from an unauthenticated client at `client_address` on the default
    /// PLAINTEXT listener, for calling handlers directly (tests, tools).
    pub fn plaintext(client_address: SocketAddr) -> Self {
        Self::new(Arc::new(ConnectionContext::new("PLAINTEXT", "PLAINTEXT", client_address)), &RequestHeader::default())
    }

    pub fn principal(&self) -> &str {
        &self.connection.principal
    }

    pub fn client_address(&self) -> SocketAddr {
        self.connection.client_address
    }

    /// The host ACLs match: the client's IP address.
    pub fn host(&self) -> String {
        self.connection.client_address.ip().to_string()
    }

    pub fn listener_name(&self) -> &str {
        &self.connection.listener_name
    }
}
