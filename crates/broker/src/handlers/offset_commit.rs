//! OffsetCommit (key 8), v0-v10.
//!
//! Each committed partition becomes one record in `__consumer_offsets`; the answer is
//! sent once they are appended. Generation/member checks (classic) and member-epoch
//! checks (KIP-848, v9+) are `gregor_group::offsets`. v10 names topics by id.

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use gregor_protocol::messages::offset_commit_request::OffsetCommitRequest;
use gregor_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, ResponseBody};
use std::net::SocketAddr;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    peer: SocketAddr,
    request: OffsetCommitRequest,
) -> ResponseBody {
    let client = ClientSource::new(header, peer);
    let group_id = request.group_id.clone();
    let failed = every_partition(&request);
    let decided = broker
        .groups
        .decide(broker, &client.context(), &group_id, move |shard, context, topics| {
            shard.offset_commit(context, request, topics)
        })
        .await;
    decided.unwrap_or_else(|code| ResponseBody::OffsetCommit(failed(code)))
}

/// The answer that gives every requested partition `code`.
fn every_partition(request: &OffsetCommitRequest) -> impl FnOnce(ErrorCode) -> OffsetCommitResponse {
    let shape: Vec<_> = request
        .topics
        .iter()
        .map(|topic| {
            (topic.name.clone(), topic.topic_id, topic.partitions.iter().map(|p| p.partition_index).collect::<Vec<_>>())
        })
        .collect();
    move |code| OffsetCommitResponse {
        topics: shape
            .into_iter()
            .map(|(name, topic_id, partitions)| OffsetCommitResponseTopic {
                name,
                topic_id,
                partitions: partitions
                    .into_iter()
                    .map(|partition_index| OffsetCommitResponsePartition {
                        partition_index,
                        error_code: code.code(),
                        ..OffsetCommitResponsePartition::default()
                    })
                    .collect(),
                ..OffsetCommitResponseTopic::default()
            })
            .collect(),
        ..OffsetCommitResponse::default()
    }
}
