//! Topic lookups shared by handlers: automatic creation (Metadata, and Produce on
//! older clients' behalf) and the operation bitfields Kafka reports when asked.

use crate::broker::Broker;
use gregor_metadata::controller::{create_topics, NewTopic};
use gregor_protocol::ErrorCode;
use std::sync::Arc;

/// Kafka's ACL operation codes, as bits of the authorized-operations fields.
const OPERATION_READ: i32 = 3;
const OPERATION_WRITE: i32 = 4;
const OPERATION_CREATE: i32 = 5;
const OPERATION_DELETE: i32 = 6;
const OPERATION_ALTER: i32 = 7;
const OPERATION_DESCRIBE: i32 = 8;
const OPERATION_CLUSTER_ACTION: i32 = 9;
const OPERATION_DESCRIBE_CONFIGS: i32 = 10;
const OPERATION_ALTER_CONFIGS: i32 = 11;
const OPERATION_IDEMPOTENT_WRITE: i32 = 12;

/// The value of an authorized-operations field the client did not ask for.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// Without an authorizer every operation on a topic is allowed.
pub const TOPIC_AUTHORIZED_OPERATIONS: i32 = (1 << OPERATION_READ)
    | (1 << OPERATION_WRITE)
    | (1 << OPERATION_CREATE)
    | (1 << OPERATION_DELETE)
    | (1 << OPERATION_ALTER)
    | (1 << OPERATION_DESCRIBE)
    | (1 << OPERATION_DESCRIBE_CONFIGS)
    | (1 << OPERATION_ALTER_CONFIGS);

/// Without an authorizer every operation on a group is allowed.
pub const GROUP_AUTHORIZED_OPERATIONS: i32 =
    (1 << OPERATION_READ) | (1 << OPERATION_DELETE) | (1 << OPERATION_DESCRIBE);

/// Without an authorizer every operation on the cluster is allowed.
pub const CLUSTER_AUTHORIZED_OPERATIONS: i32 = (1 << OPERATION_CREATE)
    | (1 << OPERATION_ALTER)
    | (1 << OPERATION_DESCRIBE)
    | (1 << OPERATION_CLUSTER_ACTION)
    | (1 << OPERATION_DESCRIBE_CONFIGS)
    | (1 << OPERATION_ALTER_CONFIGS)
    | (1 << OPERATION_IDEMPOTENT_WRITE);

/// Internal topics are never created as a side effect of a client's lookup.
pub fn is_internal_topic(name: &str) -> bool {
    name == "__consumer_offsets" || name == "__transaction_state" || name == "__share_group_state"
}

/// Creates the topics in `names` that do not exist yet with the broker's defaults,
/// and returns the error of each name that could not be created (e.g. an invalid
/// name). A topic someone else created meanwhile counts as created.
pub async fn auto_create(broker: &Arc<Broker>, names: Vec<String>) -> Vec<(String, ErrorCode)> {
    if names.is_empty() {
        return Vec::new();
    }
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|name| NewTopic {
            name: name.clone(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: Vec::new(),
        })
        .collect();
    let outcome = broker.decide(move |image, context| create_topics(image, context, &topics, false)).await;
    match outcome {
        Ok(outcomes) => outcomes
            .into_iter()
            .filter(|outcome| outcome.error != ErrorCode::None && outcome.error != ErrorCode::TopicAlreadyExists)
            .map(|outcome| (outcome.name, outcome.error))
            .collect(),
        Err(error) => {
            tracing::warn!("automatic topic creation failed: {error}");
            names.into_iter().map(|name| (name, ErrorCode::UnknownServerError)).collect()
        }
    }
}
