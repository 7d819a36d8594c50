//! DeleteGroups (key 42), v0-v2.
//!
//! Deletes empty groups and their committed offsets (tombstones in
//! `__consumer_offsets`): GROUP_ID_NOT_FOUND for an unknown group, NON_EMPTY_GROUP for
//! one with members. Each group is decided by the shard that owns it.
//!
//! With an authorizer, a group the client may not DELETE is GROUP_AUTHORIZATION_FAILED.

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use gregor_protocol::messages::delete_groups_response::{DeletableGroupResult, DeleteGroupsResponse};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let client = ClientSource::new(header, context.client_address());
    let access = broker.access(context);
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        if !access.allows_group(operation::DELETE, &group_id) {
            let error_code = ErrorCode::GroupAuthorizationFailed.code();
            results.push(DeletableGroupResult { group_id, error_code, ..DeletableGroupResult::default() });
            continue;
        }
        let id = group_id.clone();
        let decided = broker
            .groups
            .decide_value(broker, &client.context(), &group_id, move |shard, context| shard.delete_group(context, &id))
            .await;
        let error_code = match decided {
            Ok(code) | Err(code) => code.code(),
        };
        results.push(DeletableGroupResult { group_id, error_code, ..DeletableGroupResult::default() });
    }
    DeleteGroupsResponse { results, ..DeleteGroupsResponse::default() }
}
