//! CreatePartitions (key 37), v0-v3.
//!
//! Raises a topic's partition count (never lowers it: INVALID_PARTITIONS), with
//! optional manual assignments for the new partitions; one result per topic, and
//! `validate_only` changes nothing. A name given twice is INVALID_REQUEST. With an
//! authorizer, a topic the client may not ALTER is TOPIC_AUTHORIZATION_FAILED.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_metadata::controller::{create_partitions, NewPartitions};
use gregor_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use gregor_protocol::messages::create_partitions_response::{CreatePartitionsResponse, CreatePartitionsTopicResult};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let access = broker.access(context);
    let count_of = |name: &str| request.topics.iter().filter(|topic| topic.name == name).count();
    let mut results = Vec::new();
    let mut wanted = Vec::new();
    for topic in &request.topics {
        if count_of(&topic.name) > 1 {
            if !results.iter().any(|result: &CreatePartitionsTopicResult| result.name == topic.name) {
                results.push(result(topic.name.clone(), ErrorCode::InvalidRequest, Some("duplicate topic".to_owned())));
            }
            continue;
        }
        if !access.allows_topic(operation::ALTER, &topic.name) {
            results.push(result(topic.name.clone(), ErrorCode::TopicAuthorizationFailed, None));
            continue;
        }
        wanted.push(NewPartitions {
            name: topic.name.clone(),
            count: topic.count,
            assignments: topic
                .assignments
                .as_ref()
                .map(|assignments| assignments.iter().map(|assignment| assignment.broker_ids.clone()).collect()),
        });
    }
    let validate_only = request.validate_only;
    let names: Vec<String> = wanted.iter().map(|topic| topic.name.clone()).collect();
    match broker.decide(move |image, context| create_partitions(image, context, &wanted, validate_only)).await {
        Ok(outcomes) => {
            results.extend(outcomes.into_iter().map(|outcome| result(outcome.name, outcome.error, outcome.message)))
        }
        Err(error) => {
            results.extend(names.into_iter().map(|name| result(name, error.error_code(), Some(error.to_string()))))
        }
    }
    CreatePartitionsResponse { throttle_time_ms: 0, results, ..CreatePartitionsResponse::default() }
}

fn result(name: String, error: ErrorCode, message: Option<String>) -> CreatePartitionsTopicResult {
    CreatePartitionsTopicResult {
        name,
        error_code: error.code(),
        error_message: if error == ErrorCode::None { None } else { message },
        ..CreatePartitionsTopicResult::default()
    }
}
