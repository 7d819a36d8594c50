//! LeaveGroup (key 13), v0-v5.
//!
//! v0-v2 name one member; v3+ a batch of members (by member id or group instance id)
//! with an error per member. Logic in `gregor_group::classic`.
//!
//! With an authorizer, READ on the group is needed (else GROUP_AUTHORIZATION_FAILED).

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type};
use gregor_protocol::messages::leave_group_request::LeaveGroupRequest;
use gregor_protocol::messages::leave_group_response::LeaveGroupResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use gregor_protocol::ResponseBody;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: LeaveGroupRequest,
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
            .decide(broker, &client.context(), &group_id, move |shard, context, _| shard.leave_group(context, request))
            .await
    };
    decided.unwrap_or_else(|code| {
        ResponseBody::LeaveGroup(LeaveGroupResponse { error_code: code.code(), ..LeaveGroupResponse::default() })
    })
}
