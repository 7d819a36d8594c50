//! OffsetDelete (key 47), v0.
//!
//! Deletes committed offsets of partitions the group is not subscribed to (those it is
//! subscribed to get GROUP_SUBSCRIBED_TO_TOPIC). Logic in `gregor_group::offsets`.

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use gregor_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use gregor_protocol::messages::offset_delete_response::OffsetDeleteResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ResponseBody;
use std::net::SocketAddr;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    peer: SocketAddr,
    request: OffsetDeleteRequest,
) -> ResponseBody {
    let client = ClientSource::new(header, peer);
    let group_id = request.group_id.clone();
    let decided = broker
        .groups
        .decide(broker, &client.context(), &group_id, move |shard, context, _| shard.offset_delete(context, request))
        .await;
    decided.unwrap_or_else(|code| {
        ResponseBody::OffsetDelete(OffsetDeleteResponse { error_code: code.code(), ..OffsetDeleteResponse::default() })
    })
}
