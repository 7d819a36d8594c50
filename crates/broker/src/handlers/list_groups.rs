//! ListGroups (key 16), v0-v5.
//!
//! Every group of every shard on this node, classic and consumer. v4 filters by state,
//! v5 by type (case-insensitive). While a shard is still loading the answer is
//! COORDINATOR_LOAD_IN_PROGRESS and no groups, as Kafka's group coordinator answers.
//!
//! With an authorizer: every group with DESCRIBE on the cluster, else only the groups
//! the client may DESCRIBE.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::list_groups_request::ListGroupsRequest;
use gregor_protocol::messages::list_groups_response::ListGroupsResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let (states_filter, types_filter) = (request.states_filter, request.types_filter);
    let visited = broker.groups.visit_all(move |shard| shard.list_groups(&states_filter, &types_filter)).await;
    let mut groups = match visited {
        Ok(groups) => groups,
        Err(code) => return ListGroupsResponse { error_code: code.code(), ..ListGroupsResponse::default() },
    };
    let access = broker.access(context);
    if !access.allows_cluster(operation::DESCRIBE) {
        groups.retain(|group| access.allows_group(operation::DESCRIBE, &group.group_id));
    }
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    ListGroupsResponse { error_code: ErrorCode::None.code(), groups, ..ListGroupsResponse::default() }
}
