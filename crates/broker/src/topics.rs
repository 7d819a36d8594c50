//! Topic lookups shared by handlers: automatic creation (Metadata, and Produce on
//! older clients' behalf) and the value of an authorized-operations field not asked for.

use crate::broker::Broker;
use gregor_metadata::controller::NewTopic;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

/// The value of an authorized-operations field the client did not ask for.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// Internal topics are never created as a side effect of a client's lookup.
pub use gregor_metadata::controller::is_internal_topic;

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
    match broker.create_topics_via_controller(topics).await {
        Ok(outcomes) => outcomes
            .into_iter()
            .filter(|(_, error)| *error != ErrorCode::None && *error != ErrorCode::TopicAlreadyExists)
            .collect(),
        Err(error) => {
            tracing::warn!("automatic topic creation failed: {error}");
            names.into_iter().map(|name| (name, ErrorCode::UnknownServerError)).collect()
        }
    }
}
