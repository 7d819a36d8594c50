//! IncrementalAlterConfigs (key 44), v0-v1.
//!
//! Per key: SET (0) a value, DELETE (1) the override, APPEND (2) to or SUBTRACT (3)
//! from a list config (e.g. `cleanup.policy`; other keys are INVALID_CONFIG). Topic
//! and broker resources, each succeeding or failing on its own; `validate_only`
//! changes nothing. An unknown operation is INVALID_REQUEST. With an authorizer,
//! ALTER_CONFIGS on the topic, the cluster (brokers) or the group is needed, else the
//! resource's authorization error.

use crate::broker::Broker;
use crate::config_resource::{authorize, parse};
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_metadata::controller::{incremental_alter_configs, AlterOp, ConfigChange};
use gregor_protocol::messages::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use gregor_protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

fn operation(code: i8) -> Option<AlterOp> {
    match code {
        0 => Some(AlterOp::Set),
        1 => Some(AlterOp::Delete),
        2 => Some(AlterOp::Append),
        3 => Some(AlterOp::Subtract),
        _ => None,
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let access = broker.access(context);
    let mut answers: Vec<Option<(ErrorCode, Option<String>)>> = Vec::new();
    let mut changes = Vec::new();
    let mut positions = Vec::new();
    for resource in &request.resources {
        let parsed = parse(resource.resource_type, &resource.resource_name, broker.node_id).and_then(|parsed| {
            authorize(&access, &parsed, operation::ALTER_CONFIGS)?;
            let ops = resource
                .configs
                .iter()
                .map(|config| {
                    operation(config.config_operation)
                        .map(|op| (config.name.clone(), op, config.value.clone()))
                        .ok_or((ErrorCode::InvalidRequest, format!("unknown operation {}", config.config_operation)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ConfigChange { resource: parsed, ops })
        });
        match parsed {
            Err((error, message)) => answers.push(Some((error, Some(message)))),
            Ok(change) => {
                positions.push(answers.len());
                answers.push(None);
                changes.push(change);
            }
        }
    }
    let validate_only = request.validate_only;
    let outcomes =
        broker.decide(move |image, context| incremental_alter_configs(image, context, &changes, validate_only)).await;
    let outcomes: Vec<(ErrorCode, Option<String>)> = match outcomes {
        Ok(outcomes) => outcomes.into_iter().map(|outcome| (outcome.error, outcome.message)).collect(),
        Err(error) => positions.iter().map(|_| (error.error_code(), Some(error.to_string()))).collect(),
    };
    for (position, outcome) in positions.into_iter().zip(outcomes) {
        answers[position] = Some(outcome);
    }
    let responses = request
        .resources
        .iter()
        .zip(answers)
        .map(|(resource, answer)| {
            let (error, message) = answer.unwrap_or((ErrorCode::UnknownServerError, None));
            AlterConfigsResourceResponse {
                error_code: error.code(),
                error_message: if error == ErrorCode::None { None } else { message },
                resource_type: resource.resource_type,
                resource_name: resource.resource_name.clone(),
                ..AlterConfigsResourceResponse::default()
            }
        })
        .collect();
    IncrementalAlterConfigsResponse { throttle_time_ms: 0, responses, ..IncrementalAlterConfigsResponse::default() }
}
