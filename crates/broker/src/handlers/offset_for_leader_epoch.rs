//! OffsetForLeaderEpoch (key 23), v2-v4.
//!
//! For each partition and requested epoch: the largest epoch at or below it that
//! this log knows, and the offset where it ended (the log end offset for the current
//! epoch), from the leader-epoch cache; (-1, -1) when the log knows no such epoch.
//! Consumers use it to detect truncation after a leader change (librdkafka pins v2).
//! v2+ checks the current leader epoch (FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH);
//! v3+ carries the replica id (-1 for consumers). With an authorizer, a topic the
//! client may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED. Only the leader answers:
//! a partition another broker leads is NOT_LEADER_OR_FOLLOWER.

use crate::broker::Broker;
use crate::cluster_view::led_elsewhere;
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use gregor_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let access = broker.access(context);
    let image = broker.image();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| OffsetForLeaderTopicResult {
            partitions: topic
                .partitions
                .iter()
                .map(|wanted| {
                    let mut result = EpochEndOffset {
                        error_code: ErrorCode::None.code(),
                        partition: wanted.partition,
                        leader_epoch: -1,
                        end_offset: -1,
                        ..EpochEndOffset::default()
                    };
                    if !access.allows_topic(operation::DESCRIBE, &topic.topic) {
                        result.error_code = ErrorCode::TopicAuthorizationFailed.code();
                        return result;
                    }
                    if led_elsewhere(&image, &topic.topic, wanted.partition, broker.node_id) {
                        result.error_code = ErrorCode::NotLeaderOrFollower.code();
                        return result;
                    }
                    let Some(partition) = broker.replicas.get(&topic.topic, wanted.partition) else {
                        result.error_code = ErrorCode::UnknownTopicOrPartition.code();
                        return result;
                    };
                    let current = partition.leader_epoch();
                    if wanted.current_leader_epoch >= 0 && wanted.current_leader_epoch < current {
                        result.error_code = ErrorCode::FencedLeaderEpoch.code();
                    } else if wanted.current_leader_epoch > current {
                        result.error_code = ErrorCode::UnknownLeaderEpoch.code();
                    } else if partition.log.is_offline() {
                        result.error_code = ErrorCode::KafkaStorageError.code();
                    } else if let Some((epoch, end_offset)) = partition.log.end_offset_for_epoch(wanted.leader_epoch) {
                        result.leader_epoch = epoch;
                        result.end_offset = end_offset;
                    }
                    result
                })
                .collect(),
            topic: topic.topic,
            ..OffsetForLeaderTopicResult::default()
        })
        .collect();
    OffsetForLeaderEpochResponse { throttle_time_ms: 0, topics, ..OffsetForLeaderEpochResponse::default() }
}
