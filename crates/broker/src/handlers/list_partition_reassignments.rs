//! ListPartitionReassignments (key 46), v0.
//!
//! The reassignments in progress: of every partition when the topic list is null, else
//! of the named partitions (unknown ones and those not moving are left out, as Kafka
//! does). Needs DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type, CLUSTER_RESOURCE_NAME};
use gregor_metadata::controller::reassignment::list_partition_reassignments;
use gregor_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsRequest;
use gregor_protocol::messages::list_partition_reassignments_response::{
    ListPartitionReassignmentsResponse, OngoingPartitionReassignment, OngoingTopicReassignment,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    if !broker.authorize(context, operation::DESCRIBE, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME) {
        return ListPartitionReassignmentsResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            error_message: None,
            ..ListPartitionReassignmentsResponse::default()
        };
    }
    let filter: Option<Vec<(String, Vec<i32>)>> =
        request.topics.map(|topics| topics.into_iter().map(|topic| (topic.name, topic.partition_indexes)).collect());
    let image = broker.image();
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    for ongoing in list_partition_reassignments(&image, filter.as_deref()) {
        let partition = OngoingPartitionReassignment {
            partition_index: ongoing.partition,
            replicas: ongoing.replicas,
            adding_replicas: ongoing.adding_replicas,
            removing_replicas: ongoing.removing_replicas,
            ..OngoingPartitionReassignment::default()
        };
        match topics.last_mut() {
            Some(topic) if topic.name == ongoing.topic => topic.partitions.push(partition),
            _ => topics.push(OngoingTopicReassignment {
                name: ongoing.topic,
                partitions: vec![partition],
                ..OngoingTopicReassignment::default()
            }),
        }
    }
    ListPartitionReassignmentsResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None.code(),
        error_message: None,
        topics,
        ..ListPartitionReassignmentsResponse::default()
    }
}
