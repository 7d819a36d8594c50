//! ListGroups (key 16), v0-v5.
//!
//! Every group of every shard on this node, classic and consumer. v4 filters by state,
//! v5 by type (case-insensitive). While a shard is still loading the answer carries
//! COORDINATOR_LOAD_IN_PROGRESS with the groups of the shards that are ready.
//!
//! With an authorizer: every group with DESCRIBE on the cluster, else only the groups
//! the client may DESCRIBE.

use crate::authorization::Session;
use crate::broker::Broker;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::list_groups_request::ListGroupsRequest;
use gregor_protocol::messages::list_groups_response::ListGroupsResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    session: &Session,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let (mut groups, error) =
        broker.groups.visit_all(|shard| shard.list_groups(&request.states_filter, &request.types_filter));
    let access = broker.access(session);
    if !access.allows_cluster(operation::DESCRIBE) {
        groups.retain(|group| access.allows_group(operation::DESCRIBE, &group.group_id));
    }
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    ListGroupsResponse { error_code: error.unwrap_or(ErrorCode::None).code(), groups, ..ListGroupsResponse::default() }
}
