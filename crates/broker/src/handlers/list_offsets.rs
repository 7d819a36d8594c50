//! ListOffsets (key 2), v1-v11.
//!
//! Per partition, by the requested timestamp: -1 the latest offset (the high
//! watermark, or the last stable offset with read_committed), -2 the log start
//! offset, -3 (v7+) the record with the largest timestamp, -4 (v8+) the local log
//! start (the same here: no tiered storage), -5 (v9+) and -6 (v11+) the tiered
//! offsets, which are unknown (-1) without tiered storage; any other timestamp finds
//! the first record at or after it through the time index (-1 when there is none).
//! v4+ returns the leader epoch of the offset and checks the current leader epoch.
//!
//! Isolation (v2+, read_uncommitted before): what a consumer may fetch ends at the
//! high watermark for read_uncommitted and at the last stable offset for
//! read_committed. Latest is that end; a timestamp lookup or max timestamp whose
//! record lies at or past it answers "none" (offset and timestamp -1, no error),
//! as Kafka does; earliest is not bounded. With an authorizer, a topic the client may
//! not DESCRIBE is TOPIC_AUTHORIZATION_FAILED. A partition another broker leads is
//! NOT_LEADER_OR_FOLLOWER (but for Kafka's debugging replica id, -2).

use crate::broker::Broker;
use crate::cluster_view::led_elsewhere;
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsRequest};
use gregor_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use gregor_storage::{Log, TimestampOffset};
use std::sync::Arc;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;
const READ_COMMITTED: i8 = 1;
/// The replica id of a request that may read any replica, not only the leader.
const DEBUGGING_REPLICA_ID: i32 = -2;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let version = header.request_api_version;
    let access = broker.access(context);
    let broker = Arc::clone(broker);
    let isolation = request.isolation_level;
    let image = broker.image();
    // Kafka's debugging replica id may read any replica; consumers only the leader.
    let leader_only = request.replica_id != DEBUGGING_REPLICA_ID;
    let answer = move || {
        let topics = request
            .topics
            .into_iter()
            .map(|topic| ListOffsetsTopicResponse {
                partitions: topic
                    .partitions
                    .iter()
                    .map(|partition| {
                        if !access.allows_topic(operation::DESCRIBE, &topic.name) {
                            return ListOffsetsPartitionResponse {
                                partition_index: partition.partition_index,
                                error_code: ErrorCode::TopicAuthorizationFailed.code(),
                                timestamp: -1,
                                offset: -1,
                                leader_epoch: -1,
                                ..ListOffsetsPartitionResponse::default()
                            };
                        }
                        if leader_only && led_elsewhere(&image, &topic.name, partition.partition_index, broker.node_id)
                        {
                            return ListOffsetsPartitionResponse {
                                partition_index: partition.partition_index,
                                error_code: ErrorCode::NotLeaderOrFollower.code(),
                                timestamp: -1,
                                offset: -1,
                                leader_epoch: -1,
                                ..ListOffsetsPartitionResponse::default()
                            };
                        }
                        list_partition(&broker, version, &topic.name, partition, isolation)
                    })
                    .collect(),
                name: topic.name,
                ..ListOffsetsTopicResponse::default()
            })
            .collect();
        ListOffsetsResponse { throttle_time_ms: 0, topics, ..ListOffsetsResponse::default() }
    };
    match tokio::task::spawn_blocking(answer).await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!("list offsets task failed: {error}");
            ListOffsetsResponse::default()
        }
    }
}

fn list_partition(
    broker: &Broker,
    version: i16,
    topic: &str,
    request: &ListOffsetsPartition,
    isolation: i8,
) -> ListOffsetsPartitionResponse {
    let mut response = ListOffsetsPartitionResponse {
        partition_index: request.partition_index,
        error_code: ErrorCode::None.code(),
        timestamp: -1,
        offset: -1,
        leader_epoch: -1,
        ..ListOffsetsPartitionResponse::default()
    };
    let Some(partition) = broker.replicas.get(topic, request.partition_index) else {
        response.error_code = ErrorCode::UnknownTopicOrPartition.code();
        return response;
    };
    let current_epoch = partition.leader_epoch();
    if version >= 4 && request.current_leader_epoch >= 0 {
        if request.current_leader_epoch < current_epoch {
            response.error_code = ErrorCode::FencedLeaderEpoch.code();
            return response;
        }
        if request.current_leader_epoch > current_epoch {
            response.error_code = ErrorCode::UnknownLeaderEpoch.code();
            return response;
        }
    }
    match lookup(&partition.log, request.timestamp, isolation) {
        Ok(Some(found)) => {
            response.timestamp = found.timestamp;
            response.offset = found.offset;
            response.leader_epoch = found.leader_epoch;
        }
        Ok(None) => {}
        Err(error) => response.error_code = error.code(),
    }
    if version < 4 {
        response.leader_epoch = -1;
    }
    response
}

/// One partition's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    timestamp: i64,
    offset: i64,
    leader_epoch: i32,
}

/// The offset `timestamp` asks for in `log` as a consumer with `isolation` sees
/// it: nothing found is `Ok(None)` (answered as -1).
fn lookup(log: &Log, timestamp: i64, isolation: i8) -> Result<Option<Found>, ErrorCode> {
    if log.is_offline() {
        return Err(ErrorCode::KafkaStorageError);
    }
    let fetchable_end = if isolation == READ_COMMITTED { log.last_stable_offset() } else { log.high_watermark() };
    let fetchable = |found: Option<TimestampOffset>| {
        found.filter(|found| found.offset < fetchable_end).map(|found| Found {
            timestamp: found.timestamp_ms,
            offset: found.offset,
            leader_epoch: found.leader_epoch.unwrap_or(-1),
        })
    };
    match timestamp {
        LATEST => {
            Ok(Some(Found { timestamp: -1, offset: fetchable_end, leader_epoch: log.latest_epoch().unwrap_or(-1) }))
        }
        EARLIEST | EARLIEST_LOCAL => {
            let offset = log.log_start_offset();
            Ok(Some(Found { timestamp: -1, offset, leader_epoch: epoch_for_offset(log, offset).unwrap_or(-1) }))
        }
        MAX_TIMESTAMP => log.max_timestamp_offset().map(fetchable).map_err(|error| error.error_code()),
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Ok(None),
        timestamp if timestamp < 0 => Err(ErrorCode::InvalidRequest),
        timestamp => log.find_offset_by_timestamp(timestamp).map(fetchable).map_err(|error| error.error_code()),
    }
}

/// The leader epoch that wrote `offset`: the smallest epoch whose end offset lies
/// beyond it.
fn epoch_for_offset(log: &Log, offset: i64) -> Option<i32> {
    let latest = log.latest_epoch()?;
    let mut answer = None;
    let mut epoch = latest;
    while epoch >= 0 {
        match log.end_offset_for_epoch(epoch) {
            Some((found_epoch, end_offset)) if found_epoch >= 0 => {
                if end_offset > offset {
                    answer = Some(found_epoch);
                    if found_epoch == 0 {
                        break;
                    }
                    epoch = found_epoch - 1;
                } else {
                    break;
                }
            }
            _ => break,
        }
    }
    answer
}

#[cfg(test)]
mod tests;
