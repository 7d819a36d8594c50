//! TxnOffsetCommit (key 28), v0-v5.
//!
//! A transactional producer's offsets for a group: the shard
//! (`gregor_group::offsets`) validates them (unknown topic or partition, metadata size,
//! and from v3 the KIP-447 group fields: generation, member id, instance id) and returns
//! OffsetCommit records that the coordinator runtime appends to the group's
//! `__consumer_offsets` partition as one transactional batch of the request's producer
//! id and epoch. They stay pending (OffsetFetch with require_stable answers
//! UNSTABLE_OFFSET_COMMIT) until the producer's COMMIT or ABORT marker is written to
//! that partition. A producer fenced on that partition answers INVALID_PRODUCER_EPOCH
//! on every partition.

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use gregor_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use gregor_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, ResponseBody};
use std::net::SocketAddr;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    peer: SocketAddr,
    request: TxnOffsetCommitRequest,
) -> ResponseBody {
    let client = ClientSource::new(header, peer);
    let group_id = request.group_id.clone();
    let failed = every_partition(&request);
    let decided = broker
        .groups
        .decide(broker, &client.context(), &group_id, move |shard, context, topics| {
            shard.txn_offset_commit(context, request, topics)
        })
        .await;
    decided.unwrap_or_else(|code| ResponseBody::TxnOffsetCommit(failed(code)))
}

/// The answer that gives every requested partition `code`.
fn every_partition(request: &TxnOffsetCommitRequest) -> impl FnOnce(ErrorCode) -> TxnOffsetCommitResponse {
    let shape: Vec<_> = request
        .topics
        .iter()
        .map(|topic| (topic.name.clone(), topic.partitions.iter().map(|p| p.partition_index).collect::<Vec<_>>()))
        .collect();
    move |code| TxnOffsetCommitResponse {
        topics: shape
            .into_iter()
            .map(|(name, partitions)| TxnOffsetCommitResponseTopic {
                name,
                partitions: partitions
                    .into_iter()
                    .map(|partition_index| TxnOffsetCommitResponsePartition {
                        partition_index,
                        error_code: code.code(),
                        ..TxnOffsetCommitResponsePartition::default()
                    })
                    .collect(),
                ..TxnOffsetCommitResponseTopic::default()
            })
            .collect(),
        ..TxnOffsetCommitResponse::default()
    }
}
