//! ElectLeaders (key 43), v0-v2.
//!
//! Preferred (0) or unclean (1, v1+) leader election for the named partitions, or
//! for every partition when the list is null. On one node the only replica already
//! leads, so named partitions answer ELECTION_NOT_NEEDED, unknown ones
//! UNKNOWN_TOPIC_OR_PARTITION; for "every partition" only partitions where an
//! election happened or failed for another reason are listed, as Kafka does.
//! v1+ carries a top-level error code. Needs ALTER on the cluster (else
//! CLUSTER_AUTHORIZATION_FAILED).

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type, CLUSTER_RESOURCE_NAME};
use gregor_metadata::controller::elect_leaders;
use gregor_protocol::messages::elect_leaders_request::ElectLeadersRequest;
use gregor_protocol::messages::elect_leaders_response::{ElectLeadersResponse, PartitionResult, ReplicaElectionResult};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    if !broker.authorize(context, operation::ALTER, resource_type::CLUSTER, CLUSTER_RESOURCE_NAME) {
        // The top-level error (v1+) and each named partition's, for v0 clients.
        let error = ErrorCode::ClusterAuthorizationFailed;
        let replica_election_results = request
            .topic_partitions
            .unwrap_or_default()
            .into_iter()
            .map(|topic| ReplicaElectionResult {
                partition_result: topic
                    .partitions
                    .iter()
                    .map(|partition| PartitionResult {
                        partition_id: *partition,
                        error_code: error.code(),
                        ..PartitionResult::default()
                    })
                    .collect(),
                topic: topic.topic,
                ..ReplicaElectionResult::default()
            })
            .collect();
        return ElectLeadersResponse {
            error_code: error.code(),
            replica_election_results,
            ..ElectLeadersResponse::default()
        };
    }
    let election_type = if header.request_api_version >= 1 { request.election_type } else { 0 };
    if !(0..=1).contains(&election_type) {
        return ElectLeadersResponse {
            error_code: ErrorCode::InvalidRequest.code(),
            ..ElectLeadersResponse::default()
        };
    }
    let every_partition = request.topic_partitions.is_none();
    let wanted: Option<Vec<(String, Vec<i32>)>> = request
        .topic_partitions
        .map(|topics| topics.into_iter().map(|topic| (topic.topic, topic.partitions)).collect());
    let outcomes = broker.decide(move |image, _context| elect_leaders(image, election_type, wanted.as_deref())).await;
    let outcome = match outcomes {
        Ok(outcome) => outcome,
        Err(error) => {
            return ElectLeadersResponse { error_code: error.error_code().code(), ..ElectLeadersResponse::default() }
        }
    };
    if outcome.error != ErrorCode::None {
        return ElectLeadersResponse { error_code: outcome.error.code(), ..ElectLeadersResponse::default() };
    }
    let mut results: Vec<ReplicaElectionResult> = Vec::new();
    for outcome in outcome.partitions {
        if every_partition && outcome.error == ErrorCode::ElectionNotNeeded {
            continue;
        }
        let result = PartitionResult {
            partition_id: outcome.partition,
            error_code: outcome.error.code(),
            error_message: outcome.message,
            ..PartitionResult::default()
        };
        match results.iter_mut().find(|existing| existing.topic == outcome.topic) {
            Some(existing) => existing.partition_result.push(result),
            None => results.push(ReplicaElectionResult {
                topic: outcome.topic,
                partition_result: vec![result],
                ..ReplicaElectionResult::default()
            }),
        }
    }
    ElectLeadersResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None.code(),
        replica_election_results: results,
        ..ElectLeadersResponse::default()
    }
}
