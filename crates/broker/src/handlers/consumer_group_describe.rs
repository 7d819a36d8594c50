//! ConsumerGroupDescribe (key 69), v0-v1.
//!
//! KIP-848 groups: epochs, assignor, members with their current and target
//! assignments (`gregor_group::consumer`), each from the shard owning the group.
//!
//! With an authorizer, a group the client may not DESCRIBE is GROUP_AUTHORIZATION_FAILED.

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use crate::request_context::RequestContext;
use crate::topics::AUTHORIZED_OPERATIONS_OMITTED;
use gregor_metadata::acl::{operation, resource_type};
use gregor_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use gregor_protocol::messages::consumer_group_describe_response::{ConsumerGroupDescribeResponse, DescribedGroup};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let client = ClientSource::new(header, context.client_address());
    let with_operations = request.include_authorized_operations;
    let access = broker.access(context);
    let mut groups = Vec::with_capacity(request.group_ids.len());
    for group_id in request.group_ids {
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
            .read(broker, &client.context(), &group_id, move |shard, context, topics| {
                shard.consumer_group_describe(context, &id, topics)
            })
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
    ConsumerGroupDescribeResponse { groups, ..ConsumerGroupDescribeResponse::default() }
}
