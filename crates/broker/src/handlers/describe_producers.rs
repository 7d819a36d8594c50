//! DescribeProducers (key 61), v0.
//!
//! The idempotent and transactional producers a partition's log remembers: id,
//! epoch, last sequence and timestamp, coordinator epoch and the start offset of an
//! open transaction (-1 when none). With an authorizer, a topic the client may not
//! READ is TOPIC_AUTHORIZATION_FAILED. A partition another broker leads is
//! NOT_LEADER_OR_FOLLOWER (the admin client asks each partition's leader).

use crate::broker::Broker;
use crate::cluster_view::led_elsewhere;
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::describe_producers_request::DescribeProducersRequest;
use gregor_protocol::messages::describe_producers_response::{
    DescribeProducersResponse, PartitionResponse, ProducerState, TopicResponse,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let access = broker.access(context);
    let image = broker.image();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| TopicResponse {
            partitions: topic
                .partition_indexes
                .iter()
                .map(|&index| {
                    let mut response = PartitionResponse {
                        partition_index: index,
                        error_code: ErrorCode::None.code(),
                        ..PartitionResponse::default()
                    };
                    if !access.allows_topic(operation::READ, &topic.name) {
                        response.error_code = ErrorCode::TopicAuthorizationFailed.code();
                        return response;
                    }
                    if led_elsewhere(&image, &topic.name, index, broker.node_id) {
                        response.error_code = ErrorCode::NotLeaderOrFollower.code();
                        return response;
                    }
                    match broker.replicas.get(&topic.name, index) {
                        None => response.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                        Some(partition) if partition.log.is_offline() => {
                            response.error_code = ErrorCode::KafkaStorageError.code()
                        }
                        Some(partition) => {
                            response.active_producers = partition
                                .log
                                .producer_states()
                                .into_iter()
                                .map(|state| ProducerState {
                                    producer_id: state.producer_id,
                                    producer_epoch: i32::from(state.producer_epoch),
                                    last_sequence: state.last_sequence,
                                    last_timestamp: state.last_timestamp_ms,
                                    coordinator_epoch: state.coordinator_epoch,
                                    current_txn_start_offset: state.current_txn_start_offset,
                                    ..ProducerState::default()
                                })
                                .collect();
                        }
                    }
                    response
                })
                .collect(),
            name: topic.name,
            ..TopicResponse::default()
        })
        .collect();
    DescribeProducersResponse { throttle_time_ms: 0, topics, ..DescribeProducersResponse::default() }
}
