//! ConsumerGroupHeartbeat (key 68), v0-v1: the KIP-848 consumer group protocol.
//!
//! Joining, heartbeating and leaving are one request; the coordinator assigns
//! partitions server-side and reconciles each member towards its target assignment
//! (`gregor_group::consumer`). When `group.coordinator.rebalance.protocols` does not
//! list `consumer`, the answer is UNSUPPORTED_VERSION, as Kafka gives.

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use gregor_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use gregor_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, ResponseBody};
use std::net::SocketAddr;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    peer: SocketAddr,
    request: ConsumerGroupHeartbeatRequest,
) -> ResponseBody {
    let failed = |code: ErrorCode| {
        ResponseBody::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse {
            error_code: code.code(),
            ..ConsumerGroupHeartbeatResponse::default()
        })
    };
    let enabled = broker
        .config()
        .group_coordinator_rebalance_protocols
        .iter()
        .any(|protocol| protocol.eq_ignore_ascii_case("consumer"));
    if !enabled {
        return failed(ErrorCode::UnsupportedVersion);
    }
    let client = ClientSource::new(header, peer);
    let group_id = request.group_id.clone();
    let decided = broker
        .groups
        .decide(broker, &client.context(), &group_id, move |shard, context, topics| {
            shard.consumer_group_heartbeat(context, request, topics)
        })
        .await;
    decided.unwrap_or_else(failed)
}
