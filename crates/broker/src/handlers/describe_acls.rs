//! DescribeAcls (key 29), v1-v3 (Kafka 4 removed v0).
//!
//! Lists the ACLs one filter selects, grouped by resource pattern. Needs DESCRIBE on
//! the cluster; with no authorizer configured the answer is SECURITY_DISABLED, and a
//! filter with an UNKNOWN element is INVALID_REQUEST.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type, AclFilter, CLUSTER_RESOURCE_NAME};
use gregor_protocol::messages::describe_acls_request::DescribeAclsRequest;
use gregor_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource, DescribeAclsResponse};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The message Kafka sends with SECURITY_DISABLED from every ACL API.
pub const NO_AUTHORIZER: &str = "No Authorizer is configured.";

fn failed(error: ErrorCode, message: impl Into<String>) -> DescribeAclsResponse {
    DescribeAclsResponse {
        error_code: error.code(),
        error_message: Some(message.into()),
        ..DescribeAclsResponse::default()
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    if !broker.authorize(context, operation::DESCRIBE, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME) {
        return failed(ErrorCode::ClusterAuthorizationFailed, "Cluster authorization failed.");
    }
    if broker.authorizer().is_none() {
        return failed(ErrorCode::SecurityDisabled, NO_AUTHORIZER);
    }
    let filter = AclFilter {
        resource_type: request.resource_type_filter,
        resource_name: request.resource_name_filter,
        pattern_type: request.pattern_type_filter,
        principal: request.principal_filter,
        host: request.host_filter,
        operation: request.operation,
        permission: request.permission_type,
    };
    if let Err(message) = filter.validate() {
        return failed(ErrorCode::InvalidRequest, message);
    }
    let image = broker.image();
    let mut by_pattern: BTreeMap<(i8, &str, i8), Vec<AclDescription>> = BTreeMap::new();
    for acl in image.acls().values().filter(|acl| filter.matches(acl)) {
        by_pattern.entry((acl.resource_type, &acl.resource_name, acl.pattern_type)).or_default().push(AclDescription {
            principal: acl.principal.clone(),
            host: acl.host.clone(),
            operation: acl.operation,
            permission_type: acl.permission,
            ..AclDescription::default()
        });
    }
    let resources = by_pattern
        .into_iter()
        .map(|((resource_type, resource_name, pattern_type), acls)| DescribeAclsResource {
            resource_type,
            resource_name: resource_name.to_string(),
            pattern_type,
            acls,
            ..DescribeAclsResource::default()
        })
        .collect();
    DescribeAclsResponse { error_code: ErrorCode::None.code(), resources, ..DescribeAclsResponse::default() }
}
