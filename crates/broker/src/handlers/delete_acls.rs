//! DeleteAcls (key 31), v1-v3 (Kafka 4 removed v0).
//!
//! Removes every ACL each filter selects, through the controller, and reports the
//! removed ACLs per filter (an ACL two filters select is reported by both). Needs ALTER on the cluster (else every
//! filter is CLUSTER_AUTHORIZATION_FAILED); with no authorizer every filter is
//! SECURITY_DISABLED; a filter with an UNKNOWN element is INVALID_REQUEST.

use crate::broker::Broker;
use crate::handlers::describe_acls::NO_AUTHORIZER;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type, AclFilter, CLUSTER_RESOURCE_NAME};
use gregor_metadata::controller::delete_acls;
use gregor_protocol::messages::delete_acls_request::DeleteAclsRequest;
use gregor_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl, DeleteAclsResponse,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

fn failed(error: ErrorCode, message: Option<String>) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult { error_code: error.code(), error_message: message, ..DeleteAclsFilterResult::default() }
}

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let refuse_all = |error: ErrorCode, message: &str| DeleteAclsResponse {
        filter_results: request.filters.iter().map(|_| failed(error, Some(message.to_string()))).collect(),
        ..DeleteAclsResponse::default()
    };
    if !broker.authorize(context, operation::ALTER, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME) {
        return refuse_all(ErrorCode::ClusterAuthorizationFailed, "Cluster authorization failed.");
    }
    if broker.authorizer().is_none() {
        return refuse_all(ErrorCode::SecurityDisabled, NO_AUTHORIZER);
    }
    let filters: Vec<AclFilter> = request
        .filters
        .iter()
        .map(|filter| AclFilter {
            resource_type: filter.resource_type_filter,
            resource_name: filter.resource_name_filter.clone(),
            pattern_type: filter.pattern_type_filter,
            principal: filter.principal_filter.clone(),
            host: filter.host_filter.clone(),
            operation: filter.operation,
            permission: filter.permission_type,
        })
        .collect();
    let count = filters.len();
    let outcomes = broker.decide(move |image, _context| delete_acls(image, &filters)).await;
    let filter_results = match outcomes {
        Ok(outcomes) => outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Err(error) => failed(error.code, error.message),
                Ok(removed) => DeleteAclsFilterResult {
                    matching_acls: removed
                        .into_iter()
                        .map(|acl| DeleteAclsMatchingAcl {
                            error_code: ErrorCode::None.code(),
                            error_message: None,
                            resource_type: acl.resource_type,
                            resource_name: acl.resource_name,
                            pattern_type: acl.pattern_type,
                            principal: acl.principal,
                            host: acl.host,
                            operation: acl.operation,
                            permission_type: acl.permission,
                            ..DeleteAclsMatchingAcl::default()
                        })
                        .collect(),
                    ..failed(ErrorCode::None, None)
                },
            })
            .collect(),
        Err(error) => (0..count).map(|_| failed(error.error_code(), Some(error.to_string()))).collect(),
    };
    DeleteAclsResponse { filter_results, ..DeleteAclsResponse::default() }
}
