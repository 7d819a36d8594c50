//! WriteTxnMarkers (key 27), v1-v2 (v0 is gone since Kafka 4.0): the inter-broker and admin API that writes a
//! transaction's COMMIT or ABORT control batch to partitions this node leads (the
//! admin client's `abortTransaction` for a hanging transaction uses it). Each marker
//! is appended directly to each of its partitions (`__consumer_offsets` partitions
//! through the group coordinator, so the group's pending offsets complete in log
//! order); errors are per partition: NOT_LEADER_OR_FOLLOWER for a partition another
//! broker leads, UNKNOWN_TOPIC_OR_PARTITION for one that does not exist, and storage's own (INVALID_PRODUCER_EPOCH,
//! TRANSACTION_COORDINATOR_FENCED for an older coordinator epoch, ...).
//!
//! With an authorizer, CLUSTER_ACTION on the cluster is needed (else every partition
//! is CLUSTER_AUTHORIZATION_FAILED).

use crate::broker::Broker;
use crate::cluster_view::led_elsewhere;
use crate::request_context::RequestContext;
use crate::txn_coordinator::write_marker;
use gregor_metadata::acl::{operation, resource_type, CLUSTER_RESOURCE_NAME};
use gregor_protocol::messages::write_txn_markers_request::WriteTxnMarkersRequest;
use gregor_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult, WriteTxnMarkersResponse,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use gregor_storage::TxnMarker;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    if !broker.authorize(context, operation::CLUSTER_ACTION, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME) {
        return every_partition(&request, ErrorCode::ClusterAuthorizationFailed);
    }
    let broker = Arc::clone(broker);
    let shape = request.clone();
    let write = move || write_all(&broker, request);
    match tokio::task::spawn_blocking(write).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!("writing transaction markers failed: {error}");
            every_partition(&shape, ErrorCode::UnknownServerError)
        }
    }
}

/// Appends every marker of the request. Blocking.
fn write_all(broker: &Broker, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let image = broker.image();
    let markers = request
        .markers
        .into_iter()
        .map(|marker| {
            let txn_marker = TxnMarker {
                producer_id: marker.producer_id,
                producer_epoch: marker.producer_epoch,
                coordinator_epoch: marker.coordinator_epoch,
                commit: marker.transaction_result,
            };
            let topics = marker
                .topics
                .into_iter()
                .map(|topic| {
                    let partitions = topic
                        .partition_indexes
                        .iter()
                        .map(|&partition_index| {
                            let code = if led_elsewhere(&image, &topic.name, partition_index, broker.node_id) {
                                ErrorCode::NotLeaderOrFollower
                            } else {
                                match write_marker(broker, &topic.name, partition_index, txn_marker) {
                                    Ok(()) => ErrorCode::None,
                                    Err(code) => code,
                                }
                            };
                            WritableTxnMarkerPartitionResult {
                                partition_index,
                                error_code: code.code(),
                                ..WritableTxnMarkerPartitionResult::default()
                            }
                        })
                        .collect();
                    WritableTxnMarkerTopicResult {
                        name: topic.name,
                        partitions,
                        ..WritableTxnMarkerTopicResult::default()
                    }
                })
                .collect();
            WritableTxnMarkerResult { producer_id: marker.producer_id, topics, ..WritableTxnMarkerResult::default() }
        })
        .collect();
    WriteTxnMarkersResponse { markers, ..WriteTxnMarkersResponse::default() }
}

/// The answer that gives every requested partition `code`.
fn every_partition(request: &WriteTxnMarkersRequest, code: ErrorCode) -> WriteTxnMarkersResponse {
    let markers = request
        .markers
        .iter()
        .map(|marker| WritableTxnMarkerResult {
            producer_id: marker.producer_id,
            topics: marker
                .topics
                .iter()
                .map(|topic| WritableTxnMarkerTopicResult {
                    name: topic.name.clone(),
                    partitions: topic
                        .partition_indexes
                        .iter()
                        .map(|&partition_index| WritableTxnMarkerPartitionResult {
                            partition_index,
                            error_code: code.code(),
                            ..WritableTxnMarkerPartitionResult::default()
                        })
                        .collect(),
                    ..WritableTxnMarkerTopicResult::default()
                })
                .collect(),
            ..WritableTxnMarkerResult::default()
        })
        .collect();
    WriteTxnMarkersResponse { markers, ..WriteTxnMarkersResponse::default() }
}
