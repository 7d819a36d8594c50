//! SyncGroup (key 14), v0-v5.
//!
//! The leader hands in the assignment; every member's answer is parked until the
//! leader's assignment is written to `__consumer_offsets`, then each gets exactly the
//! bytes the leader gave it. Logic in `gregor_group::classic`.
//!
//! With an authorizer, READ on the group is needed (else GROUP_AUTHORIZATION_FAILED).

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type};
use gregor_protocol::messages::sync_group_request::SyncGroupRequest;
use gregor_protocol::messages::sync_group_response::SyncGroupResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use gregor_protocol::ResponseBody;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: SyncGroupRequest,
) -> ResponseBody {
    let client = ClientSource::new(header, context.client_address());
    let group_id = request.group_id.clone();
    // Every classic-group request needs READ on the group.
    let allowed = broker.authorize(context, operation::READ, resource_type::GROUP, &group_id);
    let decided = if !allowed {
        Err(ErrorCode::GroupAuthorizationFailed)
    } else {
        broker
            .groups
            .decide(broker, &client.context(), &group_id, move |shard, context, _| shard.sync_group(context, request))
            .await
    };
    decided.unwrap_or_else(|code| {
        ResponseBody::SyncGroup(SyncGroupResponse { error_code: code.code(), ..SyncGroupResponse::default() })
    })
}
