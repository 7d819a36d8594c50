//! The coordinators' internal topics (`__consumer_offsets`, `__transaction_state`),
//! created on first use as Kafka does: the first FindCoordinator of their key type
//! creates the topic from the broker's config, once, however many requests race.

use crate::broker::Broker;
use gregor_metadata::controller::{create_topics, NewTopic};
use gregor_protocol::ErrorCode;
use std::sync::Arc;

/// The partition count of the internal topic `name`, creating it with `define`
/// (given the current broker config) if it does not exist yet. `create_lock`
/// serialises creation; any failure is COORDINATOR_NOT_AVAILABLE, which clients retry.
pub async fn ensure_internal_topic(
    broker: &Arc<Broker>,
    name: &str,
    create_lock: &tokio::sync::Mutex<()>,
    define: impl FnOnce(&gregor_config::BrokerConfig) -> NewTopic,
) -> Result<i32, ErrorCode> {
    let partition_count = |broker: &Broker| {
        let topic = broker.image().topic(name).map(|topic| topic.partitions.len());
        topic.and_then(|count| i32::try_from(count).ok())
    };
    if let Some(count) = partition_count(broker) {
        return Ok(count);
    }
    let _creating = create_lock.lock().await;
    if let Some(count) = partition_count(broker) {
        return Ok(count);
    }
    let topic = define(&broker.config());
    let created = broker.decide(move |image, context| create_topics(image, context, &[topic], false)).await;
    match created {
        Ok(outcomes) => {
            let failed = outcomes
                .iter()
                .find(|outcome| outcome.error != ErrorCode::None && outcome.error != ErrorCode::TopicAlreadyExists);
            if let Some(outcome) = failed {
                tracing::warn!("creating {name} failed: {:?}", outcome.error);
                return Err(ErrorCode::CoordinatorNotAvailable);
            }
        }
        Err(error) => {
            tracing::warn!("creating {name} failed: {error}");
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
    }
    partition_count(broker).ok_or(ErrorCode::CoordinatorNotAvailable)
}
