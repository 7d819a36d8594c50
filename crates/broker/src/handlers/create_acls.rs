//! CreateAcls (key 30), v1-v3 (Kafka 4 removed v0).
//!
//! Adds ACLs through the controller, each succeeding or failing on its own; an ACL
//! that exists already succeeds without a second copy. Needs ALTER on the cluster (else every creation is
//! CLUSTER_AUTHORIZATION_FAILED); with no authorizer every creation is
//! SECURITY_DISABLED. An invalid ACL (unknown or filter-only codes, empty name, a
//! cluster name other than kafka-cluster, a principal without a type) is
//! INVALID_REQUEST.

use crate::broker::Broker;
use crate::handlers::describe_acls::NO_AUTHORIZER;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type, AclBinding, CLUSTER_RESOURCE_NAME};
use gregor_metadata::controller::create_acls;
use gregor_protocol::messages::create_acls_request::CreateAclsRequest;
use gregor_protocol::messages::create_acls_response::{AclCreationResult, CreateAclsResponse};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

fn result(error: ErrorCode, message: Option<String>) -> AclCreationResult {
    AclCreationResult { error_code: error.code(), error_message: message, ..AclCreationResult::default() }
}

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: CreateAclsRequest,
) -> CreateAclsResponse {
    let refuse_all = |error: ErrorCode, message: &str| CreateAclsResponse {
        results: request.creations.iter().map(|_| result(error, Some(message.to_string()))).collect(),
        ..CreateAclsResponse::default()
    };
    if !broker.authorize(context, operation::ALTER, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME) {
        return refuse_all(ErrorCode::ClusterAuthorizationFailed, "Cluster authorization failed.");
    }
    if broker.authorizer().is_none() {
        return refuse_all(ErrorCode::SecurityDisabled, NO_AUTHORIZER);
    }
    let bindings: Vec<AclBinding> = request
        .creations
        .iter()
        .map(|creation| AclBinding {
            resource_type: creation.resource_type,
            resource_name: creation.resource_name.clone(),
            pattern_type: creation.resource_pattern_type,
            principal: creation.principal.clone(),
            host: creation.host.clone(),
            operation: creation.operation,
            permission: creation.permission_type,
        })
        .collect();
    let count = bindings.len();
    let outcomes = broker.decide(move |image, context| create_acls(image, &bindings, context.new_uuid)).await;
    let results = match outcomes {
        Ok(outcomes) => outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Ok(()) => result(ErrorCode::None, None),
                Err(error) => result(error.code, error.message),
            })
            .collect(),
        Err(error) => (0..count).map(|_| result(error.error_code(), Some(error.to_string()))).collect(),
    };
    CreateAclsResponse { results, ..CreateAclsResponse::default() }
}
