//! DescribeGroups (key 15), v0-v6.
//!
//! Classic groups: state, protocol, members (metadata and assignment in Stable), each
//! from the shard that owns the group (`gregor_group::admin`). v3+ may ask for the
//! authorized operations, which without an authorizer are every group operation.
//!
//! With an authorizer, a group the client may not DESCRIBE is GROUP_AUTHORIZATION_FAILED.

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use crate::request_context::RequestContext;
use crate::topics::AUTHORIZED_OPERATIONS_OMITTED;
use gregor_metadata::acl::{operation, resource_type};
use gregor_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use gregor_protocol::messages::describe_groups_response::{DescribeGroupsResponse, DescribedGroup};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let client = ClientSource::new(header, context.client_address());
    let with_operations = request.include_authorized_operations && header.request_api_version >= 3;
    let access = broker.access(context);
    let mut groups = Vec::with_capacity(request.groups.len());
    for group_id in request.groups {
        if !access.allows_group(operation::DESCRIBE, &group_id) {
            groups.push(DescribedGroup {
                error_code: ErrorCode::GroupAuthorizationFailed.code(),
                group_id,
                authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
                ..DescribedGroup::default()
            });
            continue;
        }
        let id = group_id.clone();
        let read = broker
            .groups
            .read(broker, &client.context(), &group_id, move |shard, context, _| shard.describe_group(context, &id))
            .await;
        let mut described = read.unwrap_or_else(|code| DescribedGroup {
            error_code: code.code(),
            group_id: group_id.clone(),
            ..DescribedGroup::default()
        });
        described.authorized_operations = if with_operations {
            access.operations(resource_type::GROUP, &group_id)
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
        groups.push(described);
    }
    DescribeGroupsResponse { groups, ..DescribeGroupsResponse::default() }
}
