//! AlterConfigs (key 33), v0-v2: the legacy, whole-set form.
//!
//! Replaces every dynamic config of each resource with the given set (keys left out
//! return to their defaults). Topic, broker and group resources; each succeeds or
//! fails on its own (INVALID_CONFIG with the key named, UNKNOWN_TOPIC_OR_PARTITION);
//! `validate_only` changes nothing. Changes are recorded in the metadata log and take
//! effect on the partitions' logs at once. With an authorizer, ALTER_CONFIGS on the
//! topic, the cluster (brokers) or the group is needed, else the resource's
//! authorization error.

use crate::broker::Broker;
use crate::config_resource::{authorize, parse};
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_metadata::controller::alter_configs;
use gregor_protocol::messages::alter_configs_request::AlterConfigsRequest;
use gregor_protocol::messages::alter_configs_response::{AlterConfigsResourceResponse, AlterConfigsResponse};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let access = broker.access(context);
    let mut responses: Vec<Option<AlterConfigsResourceResponse>> = Vec::new();
    let mut changes = Vec::new();
    let mut positions = Vec::new();
    for resource in &request.resources {
        let answer = |error: ErrorCode, message: Option<String>| AlterConfigsResourceResponse {
            error_code: error.code(),
            error_message: message,
            resource_type: resource.resource_type,
            resource_name: resource.resource_name.clone(),
            ..AlterConfigsResourceResponse::default()
        };
        let parsed = parse(resource.resource_type, &resource.resource_name, broker.node_id)
            .and_then(|parsed| authorize(&access, &parsed, operation::ALTER_CONFIGS).map(|()| parsed));
        match parsed {
            Err((error, message)) => responses.push(Some(answer(error, Some(message)))),
            Ok(parsed) => {
                positions.push(responses.len());
                responses.push(None);
                changes.push((
                    parsed,
                    resource
                        .configs
                        .iter()
                        .map(|config| (config.name.clone(), config.value.clone()))
                        .collect::<Vec<_>>(),
                ));
            }
        }
    }
    let validate_only = request.validate_only;
    let outcomes = broker.decide(move |image, context| alter_configs(image, context, &changes, validate_only)).await;
    let outcomes: Vec<(ErrorCode, Option<String>)> = match outcomes {
        Ok(outcomes) => outcomes.into_iter().map(|outcome| (outcome.error, outcome.message)).collect(),
        Err(error) => positions.iter().map(|_| (error.error_code(), Some(error.to_string()))).collect(),
    };
    for (position, (error, message)) in positions.into_iter().zip(outcomes) {
        let resource = &request.resources[position];
        responses[position] = Some(AlterConfigsResourceResponse {
            error_code: error.code(),
            error_message: if error == ErrorCode::None { None } else { message },
            resource_type: resource.resource_type,
            resource_name: resource.resource_name.clone(),
            ..AlterConfigsResourceResponse::default()
        });
    }
    AlterConfigsResponse {
        throttle_time_ms: 0,
        responses: responses.into_iter().flatten().collect(),
        ..AlterConfigsResponse::default()
    }
}
