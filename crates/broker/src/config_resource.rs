//! The config resources of DescribeConfigs, AlterConfigs and
//! IncrementalAlterConfigs: resource type codes and names, checked in one place.

use crate::authorization::Access;
use gregor_metadata::controller::ConfigResource;
use gregor_protocol::ErrorCode;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
pub const RESOURCE_GROUP: i8 = 32;

/// The resource a request names, or the error to answer for it. A broker resource
/// is this node's id, or the empty name for the cluster-wide defaults; another
/// node's id was sent to the wrong broker.
pub fn parse(resource_type: i8, name: &str, node_id: i32) -> Result<ConfigResource, (ErrorCode, String)> {
    match resource_type {
        RESOURCE_TOPIC => {
            if name.is_empty() {
                Err((ErrorCode::InvalidRequest, "a topic resource needs a topic name".to_owned()))
            } else {
                Ok(ConfigResource::Topic(name.to_owned()))
            }
        }
        RESOURCE_BROKER if name.is_empty() => Ok(ConfigResource::Broker(None)),
        RESOURCE_BROKER => match name.parse::<i32>() {
            Ok(id) if id == node_id => Ok(ConfigResource::Broker(Some(id))),
            Ok(id) => Err((ErrorCode::InvalidRequest, format!("broker {id} is not this node ({node_id})"))),
            Err(_) => Err((ErrorCode::InvalidRequest, format!("broker id {name:?} is not a number"))),
        },
        RESOURCE_BROKER_LOGGER => {
            Err((ErrorCode::InvalidRequest, "broker logger levels are not configurable on this broker".to_owned()))
        }
        RESOURCE_GROUP if name.is_empty() => {
            Err((ErrorCode::InvalidRequest, "Group name must not be empty".to_owned()))
        }
        RESOURCE_GROUP => Ok(ConfigResource::Group(name.to_owned())),
        other => Err((ErrorCode::InvalidRequest, format!("resource type {other} is not supported"))),
    }
}

/// Whether the request may do `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on the
/// resource: on the topic, on the cluster for brokers, on the group; else the
/// resource type's authorization error.
pub fn authorize(access: &Access, resource: &ConfigResource, operation: i8) -> Result<(), (ErrorCode, String)> {
    let (allowed, error) = match resource {
        ConfigResource::Topic(name) => (access.allows_topic(operation, name), ErrorCode::TopicAuthorizationFailed),
        ConfigResource::Broker(_) => (access.allows_cluster(operation), ErrorCode::ClusterAuthorizationFailed),
        ConfigResource::Group(name) => (access.allows_group(operation, name), ErrorCode::GroupAuthorizationFailed),
    };
    if allowed {
        Ok(())
    } else {
        Err((error, error.message().to_owned()))
    }
}
