//! DescribeConfigs (key 32), v1-v4.
//!
//! Every config of the resource (or only the keys asked for) with its value, source,
//! read-only and sensitive flags (sensitive values are null); with
//! `include_synonyms`, the chain of keys that could supply it, most specific first
//! (a topic override, the dynamic broker value, the static broker value, the
//! default); v3+ the config type and, when asked, documentation. Topics: unknown is
//! UNKNOWN_TOPIC_OR_PARTITION. Brokers: this node's id, or "" for the cluster-wide
//! dynamic defaults only. Groups (Kafka 4.0): the consumer-protocol keys, overridden
//! or the broker's value, for any group name (the group need not exist). With an
//! authorizer, DESCRIBE_CONFIGS on the topic, the cluster (brokers) or the group is
//! needed, else the resource's authorization error.

use crate::broker::Broker;
use crate::config_resource::{authorize, parse};
use crate::request_context::RequestContext;
use gregor_config::{DescribedConfig, TopicConfig};
use gregor_metadata::acl::operation;
use gregor_metadata::controller::ConfigResource;
use gregor_protocol::messages::describe_configs_request::DescribeConfigsRequest;
use gregor_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult, DescribeConfigsSynonym,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let access = broker.access(context);
    let version = header.request_api_version;
    let image = broker.image();
    let config = broker.config();
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let mut result = DescribeConfigsResult {
                error_code: ErrorCode::None.code(),
                error_message: None,
                resource_type: resource.resource_type,
                resource_name: resource.resource_name.clone(),
                configs: Vec::new(),
                ..DescribeConfigsResult::default()
            };
            let parsed = parse(resource.resource_type, &resource.resource_name, broker.node_id)
                .and_then(|parsed| authorize(&access, &parsed, operation::DESCRIBE_CONFIGS).map(|()| parsed));
            let described: Vec<DescribedConfig> = match parsed {
                Err((error, message)) => {
                    result.error_code = error.code();
                    result.error_message = Some(message);
                    return result;
                }
                Ok(ConfigResource::Topic(name)) => {
                    if image.topic(&name).is_none() {
                        result.error_code = ErrorCode::UnknownTopicOrPartition.code();
                        result.error_message = Some(format!("topic {name} does not exist"));
                        return result;
                    }
                    TopicConfig::describe(&config, &image.topic_configs(&name))
                }
                Ok(ConfigResource::Broker(Some(_))) => config.describe(),
                Ok(ConfigResource::Group(name)) => gregor_config::describe_group_configs(
                    &config,
                    &image.configs(gregor_metadata::image::resource_type::GROUP, &name),
                ),
                Ok(ConfigResource::Broker(None)) => {
                    let defaults = image.broker_configs(None);
                    config.describe().into_iter().filter(|described| defaults.contains_key(&described.name)).collect()
                }
            };
            result.configs = described
                .into_iter()
                .filter(|described| {
                    resource.configuration_keys.as_ref().is_none_or(|keys| keys.contains(&described.name))
                })
                .map(|described| to_wire(described, version, request.include_synonyms, request.include_documentation))
                .collect();
            result
        })
        .collect();
    DescribeConfigsResponse { throttle_time_ms: 0, results, ..DescribeConfigsResponse::default() }
}

fn to_wire(
    described: DescribedConfig,
    version: i16,
    include_synonyms: bool,
    include_documentation: bool,
) -> DescribeConfigsResourceResult {
    let hide = |value: Option<String>| if described.sensitive { None } else { value };
    DescribeConfigsResourceResult {
        value: hide(described.value.clone()),
        read_only: described.read_only,
        config_source: described.source.code(),
        is_default: version == 0 && described.is_default,
        is_sensitive: described.sensitive,
        synonyms: if version >= 1 && include_synonyms {
            described
                .synonyms
                .iter()
                .map(|synonym| DescribeConfigsSynonym {
                    name: synonym.name.clone(),
                    value: if described.sensitive { None } else { synonym.value.clone() },
                    source: synonym.source.code(),
                    ..DescribeConfigsSynonym::default()
                })
                .collect()
        } else {
            Vec::new()
        },
        config_type: if version >= 3 { described.config_type.code() } else { 0 },
        documentation: if version >= 3 && include_documentation { described.documentation.clone() } else { None },
        name: described.name,
        ..DescribeConfigsResourceResult::default()
    }
}
