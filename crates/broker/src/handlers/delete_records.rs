//! DeleteRecords (key 21), v0-v2.
//!
//! Moves each partition's log start offset up to the requested offset (-1 means the
//! high watermark) and deletes the segments wholly below it; the answer carries the
//! new low watermark. An offset beyond the high watermark is OFFSET_OUT_OF_RANGE.
//! One node is the whole ISR, so the answer does not wait for followers. With an
//! authorizer, a topic the client may not DELETE is TOPIC_AUTHORIZATION_FAILED.
//! The internal topics are INVALID_TOPIC_EXCEPTION, as in Kafka. A partition another
//! broker leads is NOT_LEADER_OR_FOLLOWER.

use crate::broker::Broker;
use crate::cluster_view::led_elsewhere;
use crate::request_context::RequestContext;
use crate::topics::is_internal_topic;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::delete_records_request::DeleteRecordsRequest;
use gregor_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let access = broker.access(context);
    let broker = Arc::clone(broker);
    let image = broker.image();
    let delete = move || {
        let topics = request
            .topics
            .into_iter()
            .map(|topic| DeleteRecordsTopicResult {
                partitions: topic
                    .partitions
                    .iter()
                    .map(|wanted| {
                        let mut result = DeleteRecordsPartitionResult {
                            partition_index: wanted.partition_index,
                            low_watermark: -1,
                            error_code: ErrorCode::None.code(),
                            ..DeleteRecordsPartitionResult::default()
                        };
                        if !access.allows_topic(operation::DELETE, &topic.name) {
                            result.error_code = ErrorCode::TopicAuthorizationFailed.code();
                            return result;
                        }
                        // The coordinators' state lives only in these logs: Kafka refuses to trim them.
                        if is_internal_topic(&topic.name) {
                            result.error_code = ErrorCode::InvalidTopicException.code();
                            return result;
                        }
                        if led_elsewhere(&image, &topic.name, wanted.partition_index, broker.node_id) {
                            result.error_code = ErrorCode::NotLeaderOrFollower.code();
                            return result;
                        }
                        match broker.replicas.get(&topic.name, wanted.partition_index) {
                            None => result.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                            Some(partition) => match partition.log.delete_records_before(wanted.offset) {
                                Ok(low_watermark) => result.low_watermark = low_watermark,
                                Err(error) => result.error_code = error.error_code().code(),
                            },
                        }
                        result
                    })
                    .collect(),
                name: topic.name,
                ..DeleteRecordsTopicResult::default()
            })
            .collect();
        DeleteRecordsResponse { throttle_time_ms: 0, topics, ..DeleteRecordsResponse::default() }
    };
    match tokio::task::spawn_blocking(delete).await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!("delete records task failed: {error}");
            DeleteRecordsResponse::default()
        }
    }
}
