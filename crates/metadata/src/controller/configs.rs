//! IncrementalAlterConfigs and the legacy AlterConfigs, for topic, broker and group
//! resources.

use std::collections::{BTreeMap, HashSet};

use gregor_protocol::messages::config_record::ConfigRecord;
use gregor_protocol::ErrorCode;

use super::topics::{invalid_topic_name, unsafe_internal_config, unsafe_internal_config_error};
use super::{ApiError, ControllerContext};
use crate::image::{broker_resource_name, resource_type, MetadataImage};
use crate::record::MetadataRecord;

/// A resource whose config overrides the log stores.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConfigResource {
    Topic(String),
    /// A broker's overrides, or with `None` the cluster-wide default.
    Broker(Option<i32>),
    /// A group's overrides (Kafka 4.0's group configs); the group need not exist.
    Group(String),
}

impl ConfigResource {
    fn key(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(name) => (resource_type::TOPIC, name.clone()),
            ConfigResource::Broker(node_id) => (resource_type::BROKER, broker_resource_name(*node_id)),
            ConfigResource::Group(name) => (resource_type::GROUP, name.clone()),
        }
    }
}

/// IncrementalAlterConfigs operations, numbered as on the wire (0-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterOp {
    Set,
    Delete,
    Append,
    Subtract,
}

impl AlterOp {
    fn name(self) -> &'static str {
        match self {
            AlterOp::Set => "SET",
            AlterOp::Delete => "DELETE",
            AlterOp::Append => "APPEND",
            AlterOp::Subtract => "SUBTRACT",
        }
    }
}

/// The operations on one resource; all of them apply or none does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    pub resource: ConfigResource,
    /// (config name, operation, value); the value is ignored by DELETE.
    pub ops: Vec<(String, AlterOp, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigOutcome {
    pub resource: ConfigResource,
    pub error: ErrorCode,
    pub message: Option<String>,
}

/// Resources that appear more than once; Kafka rejects every copy.
fn duplicated_resources<'a>(resources: impl Iterator<Item = &'a ConfigResource>) -> HashSet<&'a ConfigResource> {
    let mut seen = HashSet::new();
    let mut duplicated = HashSet::new();
    for resource in resources {
        if !seen.insert(resource) {
            duplicated.insert(resource);
        }
    }
    duplicated
}

/// Kafka's checks of the resource itself: a legal, existing topic; a non-negative id.
fn check_resource(image: &MetadataImage, resource: &ConfigResource) -> Result<(), ApiError> {
    match resource {
        ConfigResource::Topic(name) => {
            if name.is_empty() {
                return Err(ApiError::new(ErrorCode::InvalidRequest, "Default topic resources are not allowed."));
            }
            if let Some(message) = invalid_topic_name(name) {
                return Err(ApiError::new(ErrorCode::InvalidTopicException, message));
            }
            if image.topic(name).is_none() {
                return Err(ApiError::new(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("The topic '{name}' does not exist."),
                ));
            }
            Ok(())
        }
        ConfigResource::Broker(Some(id)) if *id < 0 => {
            Err(ApiError::new(ErrorCode::InvalidRequest, "Invalid negative broker ID."))
        }
        ConfigResource::Broker(_) => Ok(()),
        ConfigResource::Group(name) if name.is_empty() => {
            Err(ApiError::new(ErrorCode::InvalidRequest, "Group name must not be empty"))
        }
        ConfigResource::Group(_) => Ok(()),
    }
}

/// Validates the values being set, then turns the changed keys into ConfigRecords.
/// Broker resources get a record even for an unchanged value because brokers reload
/// their dynamic config when they see one (Kafka's KAFKA-14136).
fn finish(
    ctx: &ControllerContext<'_>,
    resource: &ConfigResource,
    current: &BTreeMap<String, String>,
    changes: BTreeMap<String, Option<String>>,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let validate = match resource {
        ConfigResource::Topic(_) => ctx.validate_topic_config,
        ConfigResource::Broker(_) => ctx.validate_broker_config,
        ConfigResource::Group(_) => {
            // Group keys constrain each other, so the whole resulting set is checked.
            let mut next = current.clone();
            for (name, value) in &changes {
                match value {
                    Some(value) => next.insert(name.clone(), value.clone()),
                    None => next.remove(name),
                };
            }
            (ctx.validate_group_configs)(&next).map_err(|message| ApiError::new(ErrorCode::InvalidConfig, message))?;
            &|_: &str, _: &str| Ok(())
        }
    };
    for (name, value) in &changes {
        if let Some(value) = value {
            validate(name, value).map_err(|message| ApiError::new(ErrorCode::InvalidConfig, message))?;
        }
        if let ConfigResource::Topic(topic) = resource {
            // Removing an override falls back to the broker's default, which may be
            // `delete`: judge the value the topic would end up with.
            let effective = value.clone().or_else(|| (ctx.default_value)(resource, name));
            if let Some(effective) = effective.filter(|effective| unsafe_internal_config(topic, name, effective)) {
                return Err(unsafe_internal_config_error(topic, name, &effective));
            }
        }
    }
    let (resource_type, resource_name) = resource.key();
    let always = matches!(resource, ConfigResource::Broker(_));
    Ok(changes
        .into_iter()
        .filter(|(name, value)| always || current.get(name) != value.as_ref())
        .map(|(name, value)| {
            MetadataRecord::Config(ConfigRecord {
                resource_type,
                resource_name: resource_name.clone(),
                name,
                value,
                ..Default::default()
            })
        })
        .collect())
}

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').filter(|part| !part.is_empty())
}

fn incremental_one(
    image: &MetadataImage,
    ctx: &ControllerContext<'_>,
    change: &ConfigChange,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let mut names = HashSet::new();
    if !change.ops.iter().all(|(name, _, _)| names.insert(name.as_str())) {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "Error due to duplicate config keys"));
    }
    let nulls: Vec<&str> = change
        .ops
        .iter()
        .filter(|(_, op, value)| *op != AlterOp::Delete && value.is_none())
        .map(|(name, _, _)| name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("Null value not supported for : {}", nulls.join(", ")),
        ));
    }
    check_resource(image, &change.resource)?;
    let (kind, name) = change.resource.key();
    let current = image.configs(kind, &name);
    let mut changes = BTreeMap::new();
    for (key, op, value) in &change.ops {
        let operand = value.as_deref().unwrap_or_default();
        let next = match op {
            AlterOp::Set => Some(operand.to_string()),
            AlterOp::Delete => None,
            AlterOp::Append | AlterOp::Subtract => {
                if !(ctx.is_list_config)(key) {
                    return Err(ApiError::new(
                        ErrorCode::InvalidConfig,
                        format!("Can't {} to key {key} because its type is not LIST.", op.name()),
                    ));
                }
                // Without an override the list starts from the value in effect, as in Kafka.
                let effective = changes
                    .get(key)
                    .cloned()
                    .flatten()
                    .or_else(|| current.get(key).cloned())
                    .or_else(|| (ctx.default_value)(&change.resource, key));
                let mut parts: Vec<String> =
                    effective.map(|value| split_list(&value).map(str::to_string).collect()).unwrap_or_default();
                for item in split_list(operand) {
                    if *op == AlterOp::Append {
                        if !parts.iter().any(|part| part == item) {
                            parts.push(item.to_string());
                        }
                    } else {
                        parts.retain(|part| part != item);
                    }
                }
                Some(parts.join(","))
            }
        };
        changes.insert(key.clone(), next);
    }
    finish(ctx, &change.resource, &current, changes)
}

/// Applies IncrementalAlterConfigs: per resource, every operation or none.
pub fn incremental_alter_configs(
    image: &MetadataImage,
    ctx: &ControllerContext<'_>,
    resources: &[ConfigChange],
    validate_only: bool,
) -> (Vec<MetadataRecord>, Vec<ConfigOutcome>) {
    let duplicated = duplicated_resources(resources.iter().map(|change| &change.resource));
    let mut records = Vec::new();
    let mut outcomes = Vec::with_capacity(resources.len());
    for change in resources {
        let result = if duplicated.contains(&change.resource) {
            Err(ApiError::new(ErrorCode::InvalidRequest, "Each resource must appear at most once."))
        } else {
            incremental_one(image, ctx, change)
        };
        outcomes.push(outcome(&change.resource, result, &mut records));
    }
    if validate_only {
        records.clear();
    }
    (records, outcomes)
}

fn outcome(
    resource: &ConfigResource,
    result: Result<Vec<MetadataRecord>, ApiError>,
    records: &mut Vec<MetadataRecord>,
) -> ConfigOutcome {
    match result {
        Ok(mut added) => {
            records.append(&mut added);
            ConfigOutcome { resource: resource.clone(), error: ErrorCode::None, message: None }
        }
        Err(error) => ConfigOutcome { resource: resource.clone(), error: error.code, message: error.message },
    }
}

fn legacy_one(
    image: &MetadataImage,
    ctx: &ControllerContext<'_>,
    resource: &ConfigResource,
    configs: &[(String, Option<String>)],
) -> Result<Vec<MetadataRecord>, ApiError> {
    let mut names = HashSet::new();
    if !configs.iter().all(|(name, _)| names.insert(name.as_str())) {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "Error due to duplicate config keys"));
    }
    let nulls: Vec<&str> = configs.iter().filter(|(_, value)| value.is_none()).map(|(name, _)| name.as_str()).collect();
    if !nulls.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("Null value not supported for : {}", nulls.join(", ")),
        ));
    }
    check_resource(image, resource)?;
    let (kind, name) = resource.key();
    let current = image.configs(kind, &name);
    // The request is the whole new set: keys it omits are deleted.
    let mut changes: BTreeMap<String, Option<String>> = current.keys().map(|key| (key.clone(), None)).collect();
    for (key, value) in configs {
        changes.insert(key.clone(), value.clone());
    }
    finish(ctx, resource, &current, changes)
}

/// A legacy AlterConfigs entry: a resource and its complete new set of overrides.
pub type LegacyConfigs = (ConfigResource, Vec<(String, Option<String>)>);

/// Applies the legacy AlterConfigs: each resource's overrides become exactly the given set.
pub fn alter_configs(
    image: &MetadataImage,
    ctx: &ControllerContext<'_>,
    resources: &[LegacyConfigs],
    validate_only: bool,
) -> (Vec<MetadataRecord>, Vec<ConfigOutcome>) {
    let duplicated = duplicated_resources(resources.iter().map(|(resource, _)| resource));
    let mut records = Vec::new();
    let mut outcomes = Vec::with_capacity(resources.len());
    for (resource, configs) in resources {
        let result = if duplicated.contains(resource) {
            Err(ApiError::new(ErrorCode::InvalidRequest, "Each resource must appear at most once."))
        } else {
            legacy_one(image, ctx, resource, configs)
        };
        outcomes.push(outcome(resource, result, &mut records));
    }
    if validate_only {
        records.clear();
    }
    (records, outcomes)
}
