//! AlterPartitionReassignments (key 45), v0.
//!
//! Starts, changes or (with null replicas) cancels partition reassignments; one
//! result per requested partition, grouped by topic as requested. Needs ALTER on the
//! cluster, else every partition and the top level answer CLUSTER_AUTHORIZATION_FAILED,
//! as Kafka's error response does. v1's AllowReplicationFactorChange (KIP-860) is not
//! served.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type, CLUSTER_RESOURCE_NAME};
use gregor_metadata::controller::reassignment::{alter_partition_reassignments, ReassignmentRequest};
use gregor_protocol::messages::alter_partition_reassignments_request::AlterPartitionReassignmentsRequest;
use gregor_protocol::messages::alter_partition_reassignments_response::{
    AlterPartitionReassignmentsResponse, ReassignablePartitionResponse, ReassignableTopicResponse,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    if !broker.authorize(context, operation::ALTER, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME) {
        return refuse_all(&request, ErrorCode::ClusterAuthorizationFailed, None);
    }
    let wanted: Vec<ReassignmentRequest> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| ReassignmentRequest {
                topic: topic.name.clone(),
                partition: partition.partition_index,
                replicas: partition.replicas.clone(),
            })
        })
        .collect();
    let outcomes = match broker.decide(move |image, _context| alter_partition_reassignments(image, &wanted)).await {
        Ok(outcomes) => outcomes,
        Err(error) => return refuse_all(&request, error.error_code(), Some(error.to_string())),
    };
    // Outcomes come one per requested partition, in request order.
    let mut outcomes = outcomes.into_iter();
    let responses = request
        .topics
        .iter()
        .map(|topic| ReassignableTopicResponse {
            name: topic.name.clone(),
            partitions: outcomes
                .by_ref()
                .take(topic.partitions.len())
                .map(|outcome| ReassignablePartitionResponse {
                    partition_index: outcome.partition,
                    error_code: outcome.error.code(),
                    error_message: outcome.message,
                    ..ReassignablePartitionResponse::default()
                })
                .collect(),
            ..ReassignableTopicResponse::default()
        })
        .collect();
    AlterPartitionReassignmentsResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None.code(),
        error_message: None,
        responses,
        ..AlterPartitionReassignmentsResponse::default()
    }
}

/// The same error for the request and every partition in it.
fn refuse_all(
    request: &AlterPartitionReassignmentsRequest,
    error: ErrorCode,
    message: Option<String>,
) -> AlterPartitionReassignmentsResponse {
    let responses = request
        .topics
        .iter()
        .map(|topic| ReassignableTopicResponse {
            name: topic.name.clone(),
            partitions: topic
                .partitions
                .iter()
                .map(|partition| ReassignablePartitionResponse {
                    partition_index: partition.partition_index,
                    error_code: error.code(),
                    error_message: message.clone(),
                    ..ReassignablePartitionResponse::default()
                })
                .collect(),
            ..ReassignableTopicResponse::default()
        })
        .collect();
    AlterPartitionReassignmentsResponse {
        error_code: error.code(),
        error_message: message,
        responses,
        ..AlterPartitionReassignmentsResponse::default()
    }
}
