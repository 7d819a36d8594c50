//! SyncGroup (key 14), v0-v5.
//!
//! The leader hands in the assignment; every member's answer is parked until the
//! leader's assignment is written to `__consumer_offsets`, then each gets exactly the
//! bytes the leader gave it. Logic in `gregor_group::classic`.

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use gregor_protocol::messages::sync_group_request::SyncGroupRequest;
use gregor_protocol::messages::sync_group_response::SyncGroupResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ResponseBody;
use std::net::SocketAddr;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    peer: SocketAddr,
    request: SyncGroupRequest,
) -> ResponseBody {
    let client = ClientSource::new(header, peer);
    let group_id = request.group_id.clone();
    let decided = broker
        .groups
        .decide(broker, &client.context(), &group_id, move |shard, context, _| shard.sync_group(context, request))
        .await;
    decided.unwrap_or_else(|code| {
        ResponseBody::SyncGroup(SyncGroupResponse { error_code: code.code(), ..SyncGroupResponse::default() })
    })
}
