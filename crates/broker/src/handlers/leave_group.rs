//! LeaveGroup (key 13), v0-v5.
//!
//! v0-v2 name one member; v3+ a batch of members (by member id or group instance id)
//! with an error per member. Logic in `gregor_group::classic`.

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use gregor_protocol::messages::leave_group_request::LeaveGroupRequest;
use gregor_protocol::messages::leave_group_response::LeaveGroupResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ResponseBody;
use std::net::SocketAddr;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    peer: SocketAddr,
    request: LeaveGroupRequest,
) -> ResponseBody {
    let client = ClientSource::new(header, peer);
    let group_id = request.group_id.clone();
    let decided = broker
        .groups
        .decide(broker, &client.context(), &group_id, move |shard, context, _| shard.leave_group(context, request))
        .await;
    decided.unwrap_or_else(|code| {
        ResponseBody::LeaveGroup(LeaveGroupResponse { error_code: code.code(), ..LeaveGroupResponse::default() })
    })
}
