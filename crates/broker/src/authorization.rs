//! Who a connection is, and what the configured authorizer lets it do.
//!
//! The principal and host come from the request's [`RequestContext`] (today every
//! client is `User:ANONYMOUS` at its address, as on Kafka's PLAINTEXT listeners).
//! Without `authorizer.class.name` every operation is allowed and the ACL APIs
//! answer SECURITY_DISABLED; with the StandardAuthorizer the ACLs of
//! the current metadata image decide (rules in [`gregor_metadata::acl`]).
//!
//! A handler takes one [`Access`] per request: with no authorizer it is a flag and
//! every check is free; with one it holds the image the whole request is judged by.

use crate::broker::Broker;
pub use crate::request_context::{RequestContext, ANONYMOUS};
use gregor_metadata::acl::{self, resource_type, AuthorizerSettings, Requester};
use gregor_metadata::MetadataImage;
use std::sync::Arc;

/// The authorizer's view of one request.
pub struct Access {
    judge: Option<Judge>,
}

struct Judge {
    image: Arc<MetadataImage>,
    settings: AuthorizerSettings,
    principal: String,
    host: String,
}

impl Judge {
    fn requester(&self) -> Requester<'_> {
        Requester { principal: &self.principal, host: &self.host }
    }
}

impl Access {
    /// Access with no authorizer: everything is allowed.
    pub fn open() -> Self {
        Self { judge: None }
    }

    /// Whether every check passes without looking (no authorizer is configured).
    pub fn is_open(&self) -> bool {
        self.judge.is_none()
    }

    /// Whether the request may do `operation` on the resource; always, with no authorizer.
    pub fn allows(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        match &self.judge {
            None => true,
            Some(judge) => acl::authorize(
                judge.image.acls().values(),
                &judge.settings,
                &judge.requester(),
                operation,
                resource_type,
                name,
            ),
        }
    }

    pub fn allows_topic(&self, operation: i8, topic: &str) -> bool {
        self.allows(operation, resource_type::TOPIC, topic)
    }

    pub fn allows_group(&self, operation: i8, group: &str) -> bool {
        self.allows(operation, resource_type::GROUP, group)
    }

    pub fn allows_cluster(&self, operation: i8) -> bool {
        self.allows(operation, resource_type::CLUSTER, acl::CLUSTER_RESOURCE_NAME)
    }

    pub fn allows_transactional_id(&self, operation: i8, transactional_id: &str) -> bool {
        self.allows(operation, resource_type::TRANSACTIONAL_ID, transactional_id)
    }

    /// Whether some resource of `resource_type` may be the object of `operation`
    /// (Kafka's `authorizeByResourceType`, which KIP-679 uses to let an idempotent
    /// producer in when it may write to some topic); rules in
    /// [`acl::authorize_by_resource_type`].
    pub fn allows_some(&self, wanted: i8, resource_type: i8) -> bool {
        let Some(judge) = &self.judge else { return true };
        acl::authorize_by_resource_type(
            judge.image.acls().values(),
            &judge.settings,
            &judge.requester(),
            wanted,
            resource_type,
        )
    }

    /// The authorized-operations bit field of a resource: every operation the type
    /// supports when there is no authorizer.
    pub fn operations(&self, resource_type: i8, name: &str) -> i32 {
        let supported = acl::supported_operations(resource_type).iter().copied();
        acl::operations_bit_field(supported.filter(|operation| self.allows(*operation, resource_type, name)))
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

    /// What the request's principal, from its host, may do, judged against the current ACLs.
    pub fn access(&self, context: &RequestContext) -> Access {
        let judge = self.authorizer().map(|settings| Judge {
            image: self.image(),
            settings,
            principal: context.principal().to_owned(),
            host: context.host(),
        });
        Access { judge }
    }

    /// Whether the request may do `operation` on the resource; always with no authorizer.
    pub fn authorize(&self, context: &RequestContext, operation: i8, resource_type: i8, name: &str) -> bool {
        self.access(context).allows(operation, resource_type, name)
    }

    /// The authorized-operations bit field of a resource for the request.
    pub fn authorized_operations(&self, context: &RequestContext, resource_type: i8, name: &str) -> i32 {
        self.access(context).operations(resource_type, name)
    }
}
