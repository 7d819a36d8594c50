//! Who a connection is, and what the configured authorizer lets it do.
//!
//! Gregor's listeners are PLAINTEXT, so every client is `User:ANONYMOUS` at its
//! address, as in Kafka. Without `authorizer.class.name` every operation is allowed
//! and the ACL APIs answer SECURITY_DISABLED; with the StandardAuthorizer the ACLs of
//! the current metadata image decide (rules in [`gregor_metadata::acl`]).

use crate::broker::Broker;
use gregor_metadata::acl::{self, AuthorizerSettings, Requester};
use std::net::SocketAddr;

/// The principal of a connection that did not authenticate.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// The principal and host of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub principal: String,
    pub host: String,
}

impl Session {
    pub fn from_peer(peer: SocketAddr) -> Self {
        Self { principal: ANONYMOUS.to_string(), host: peer.ip().to_string() }
    }

    fn requester(&self) -> Requester<'_> {
        Requester { principal: &self.principal, host: &self.host }
    }
}

impl Broker {
    /// The authorizer's settings, or `None` when no authorizer is configured.
    pub fn authorizer(&self) -> Option<AuthorizerSettings> {
        let config = self.config();
        config.authorizer_enabled.then(|| AuthorizerSettings {
            super_users: config.super_users.clone(),
            allow_everyone_if_no_acl_found: config.allow_everyone_if_no_acl_found,
        })
    }

    /// Whether `session` may do `operation` on the resource; always with no authorizer.
    pub fn authorize(&self, session: &Session, operation: i8, resource_type: i8, name: &str) -> bool {
        match self.authorizer() {
            None => true,
            Some(settings) => {
                let image = self.image();
                acl::authorize(image.acls().values(), &settings, &session.requester(), operation, resource_type, name)
            }
        }
    }

    /// The authorized-operations bit field of a resource for `session`: every
    /// operation the resource type supports when there is no authorizer.
    pub fn authorized_operations(&self, session: &Session, resource_type: i8, name: &str) -> i32 {
        let supported = acl::supported_operations(resource_type).iter().copied();
        match self.authorizer() {
            None => acl::operations_bit_field(supported),
            Some(settings) => {
                let image = self.image();
                let requester = session.requester();
                acl::operations_bit_field(supported.filter(|operation| {
                    acl::authorize(image.acls().values(), &settings, &requester, *operation, resource_type, name)
                }))
            }
        }
    }
}
