//! CreateTopics (key 19), v2-v7.
//!
//! Each topic is checked on its own (name, partitions, replication factor, manual
//! assignment, every config), so one request can mix created and refused topics; a
//! name given twice is INVALID_REQUEST for both. `validate_only` checks everything
//! and creates nothing. Created topics are recorded in the metadata log before the
//! answer. v5+ answers with the partitions, replication factor and every config of
//! the topic (value, source, read-only, sensitive); v7+ with the topic id.
//!
//! With an authorizer: creating needs CREATE on the cluster or on the topic (else
//! TOPIC_AUTHORIZATION_FAILED), and the configs are answered only with
//! DESCRIBE_CONFIGS on the topic (else `topic_config_error_code` says why).

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_config::TopicConfig;
use gregor_metadata::acl::operation;
use gregor_metadata::controller::{create_topics, NewTopic};
use gregor_protocol::messages::create_topics_request::CreateTopicsRequest;
use gregor_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, Uuid};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let version = header.request_api_version;
    let access = broker.access(context);
    let cluster_create = access.allows_cluster(operation::CREATE);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for topic in &request.topics {
        *seen.entry(topic.name.clone()).or_default() += 1;
    }
    let (duplicates, unique): (Vec<_>, Vec<_>) =
        request.topics.into_iter().partition(|topic| seen.get(&topic.name).copied().unwrap_or(0) > 1);
    let (unique, denied): (Vec<_>, Vec<_>) =
        unique.into_iter().partition(|topic| cluster_create || access.allows_topic(operation::CREATE, &topic.name));
    let topics: Vec<NewTopic> = unique
        .into_iter()
        .map(|topic| NewTopic {
            name: topic.name,
            num_partitions: topic.num_partitions,
            replication_factor: topic.replication_factor,
            assignments: topic
                .assignments
                .into_iter()
                .map(|assignment| (assignment.partition_index, assignment.broker_ids))
                .collect(),
            configs: topic.configs.into_iter().map(|config| (config.name, config.value)).collect(),
        })
        .collect();
    let validate_only = request.validate_only;
    let outcomes = broker.decide(move |image, context| create_topics(image, context, &topics, validate_only)).await;
    let config = broker.config();
    let mut results: Vec<CreatableTopicResult> = match outcomes {
        Ok(outcomes) => outcomes
            .into_iter()
            .map(|outcome| {
                if outcome.error != ErrorCode::None {
                    return failed(outcome.name, outcome.error, outcome.message);
                }
                let overrides: BTreeMap<String, String> = outcome.configs.into_iter().collect();
                // The configs are shown only to a client that may describe them.
                let configs_visible = access.allows_topic(operation::DESCRIBE_CONFIGS, &outcome.name);
                let configs = (version >= 5 && configs_visible).then(|| {
                    TopicConfig::describe(&config, &overrides)
                        .into_iter()
                        .map(|described| CreatableTopicConfigs {
                            name: described.name,
                            value: if described.sensitive { None } else { described.value },
                            read_only: described.read_only,
                            config_source: described.source.code(),
                            is_sensitive: described.sensitive,
                            ..CreatableTopicConfigs::default()
                        })
                        .collect()
                });
                CreatableTopicResult {
                    name: outcome.name,
                    topic_id: outcome.topic_id,
                    error_code: ErrorCode::None.code(),
                    error_message: None,
                    topic_config_error_code: if configs_visible {
                        ErrorCode::None.code()
                    } else {
                        ErrorCode::TopicAuthorizationFailed.code()
                    },
                    num_partitions: outcome.num_partitions,
                    replication_factor: outcome.replication_factor,
                    configs,
                    ..CreatableTopicResult::default()
                }
            })
            .collect(),
        Err(error) => {
            tracing::warn!("create topics failed: {error}");
            seen.keys()
                .filter(|name| seen.get(*name).copied().unwrap_or(0) == 1)
                .map(|name| failed(name.clone(), error.error_code(), Some(error.to_string())))
                .collect()
        }
    };
    for topic in denied {
        results.push(failed(topic.name, ErrorCode::TopicAuthorizationFailed, None));
    }
    for topic in duplicates {
        if !results.iter().any(|result| result.name == topic.name) {
            results.push(failed(
                topic.name,
                ErrorCode::InvalidRequest,
                Some("the topic is named more than once in the request".to_owned()),
            ));
        }
    }
    CreateTopicsResponse { throttle_time_ms: 0, topics: results, ..CreateTopicsResponse::default() }
}

fn failed(name: String, error: ErrorCode, message: Option<String>) -> CreatableTopicResult {
    CreatableTopicResult {
        name,
        topic_id: Uuid::ZERO,
        error_code: error.code(),
        error_message: message.or_else(|| Some(error.message().to_owned())),
        topic_config_error_code: ErrorCode::None.code(),
        num_partitions: -1,
        replication_factor: -1,
        configs: None,
        ..CreatableTopicResult::default()
    }
}
