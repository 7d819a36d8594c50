//! DescribeQuorum (key 55), v0-v2, as `kafka-metadata-quorum.sh describe` uses it.
//!
//! The quorum of the `__cluster_metadata` partition as this node sees it: the
//! leader and its epoch (the Raft term), the high watermark (the commit index),
//! and every voter with how far the leader knows it has replicated. Answered by
//! the leader, as Kafka; elsewhere NOT_LEADER_OR_FOLLOWER. On a single node, the
//! node is the one voter and its log end is the high watermark.

use crate::broker::Broker;
use crate::controller::METADATA_TOPIC;
use gregor_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use gregor_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse, RequestHeader};
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let asks_for_metadata = request.topics.iter().any(|topic| {
        topic.topic_name == METADATA_TOPIC && topic.partitions.iter().any(|partition| partition.partition_index == 0)
    });
    if !asks_for_metadata {
        return DescribeQuorumResponse {
            error_code: ErrorCode::UnknownTopicOrPartition.code(),
            ..DescribeQuorumResponse::default()
        };
    }
    let now = crate::time::now_ms();
    let partition = match &broker.controller.quorum {
        // A broker-only node follows the quorum: it names the leader it knows.
        None if broker.controller.is_clustered() => PartitionData {
            partition_index: 0,
            error_code: ErrorCode::NotLeaderOrFollower.code(),
            leader_id: broker.active_controller_id().unwrap_or(-1),
            ..Default::default()
        },
        None => {
            let offset = broker.metadata_offset.load(std::sync::atomic::Ordering::Acquire) + 1;
            PartitionData {
                partition_index: 0,
                leader_id: broker.node_id,
                leader_epoch: 1,
                high_watermark: offset,
                current_voters: vec![ReplicaState {
                    replica_id: broker.node_id,
                    log_end_offset: offset,
                    last_fetch_timestamp: now,
                    last_caught_up_timestamp: now,
                    ..Default::default()
                }],
                ..Default::default()
            }
        }
        Some(quorum) => {
            let view = quorum.view();
            if !view.may_decide {
                return DescribeQuorumResponse {
                    topics: vec![TopicData {
                        topic_name: METADATA_TOPIC.to_owned(),
                        partitions: vec![PartitionData {
                            partition_index: 0,
                            error_code: ErrorCode::NotLeaderOrFollower.code(),
                            leader_id: view.leader_id.unwrap_or(-1),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..DescribeQuorumResponse::default()
                };
            }
            let high_watermark = i64::try_from(view.commit_index).unwrap_or(i64::MAX);
            PartitionData {
                partition_index: 0,
                leader_id: view.leader_id.unwrap_or(-1),
                leader_epoch: i32::try_from(view.term).unwrap_or(i32::MAX),
                high_watermark,
                current_voters: view
                    .voters
                    .iter()
                    .map(|voter| {
                        let matched = i64::try_from(voter.matched_index).unwrap_or(i64::MAX);
                        ReplicaState {
                            replica_id: i32::try_from(voter.node_id).unwrap_or(-1),
                            log_end_offset: matched,
                            // raft-rs does not time its followers; a voter that has
                            // everything committed is reported as caught up now.
                            last_fetch_timestamp: if matched >= high_watermark { now } else { -1 },
                            last_caught_up_timestamp: if matched >= high_watermark { now } else { -1 },
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            }
        }
    };
    let nodes = if header.request_api_version >= 2 {
        broker
            .controller_endpoints()
            .into_iter()
            .map(|(node_id, name, host, port)| Node {
                node_id,
                listeners: vec![Listener { name, host, port, ..Default::default() }],
                ..Default::default()
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeQuorumResponse {
        topics: vec![TopicData {
            topic_name: METADATA_TOPIC.to_owned(),
            partitions: vec![partition],
            ..Default::default()
        }],
        nodes,
        ..DescribeQuorumResponse::default()
    }
}
