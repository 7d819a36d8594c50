//! JoinGroup (key 11), v0-v9.
//!
//! Classic group membership: the answer is parked until the join phase of the
//! rebalance ends (every known member rejoined, or the rebalance timeout passed), so
//! this handler can wait for seconds. The group logic (member-id-required step of v4+,
//! static members, protocol selection, initial rebalance delay) is
//! `gregor_group::classic`; here the request goes to the shard owning the group.
//!
//! With an authorizer, READ on the group is needed (else GROUP_AUTHORIZATION_FAILED).

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type};
use gregor_protocol::messages::join_group_request::JoinGroupRequest;
use gregor_protocol::messages::join_group_response::JoinGroupResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use gregor_protocol::ResponseBody;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: JoinGroupRequest,
) -> ResponseBody {
    let client = ClientSource::new(header, context.client_address());
    let group_id = request.group_id.clone();
    let member_id = request.member_id.clone();
    // Every classic-group request needs READ on the group.
    let allowed = broker.authorize(context, operation::READ, resource_type::GROUP, &group_id);
    let decided = if !allowed {
        Err(ErrorCode::GroupAuthorizationFailed)
    } else {
        broker
            .groups
            .decide(broker, &client.context(), &group_id, move |shard, context, _| shard.join_group(context, request))
            .await
    };
    decided.unwrap_or_else(|code| {
        ResponseBody::JoinGroup(JoinGroupResponse {
            error_code: code.code(),
            generation_id: -1,
            member_id,
            ..JoinGroupResponse::default()
        })
    })
}
