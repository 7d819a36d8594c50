//! The coordinators' internal topics (`__consumer_offsets`, `__transaction_state`),
//! created on first use as Kafka does: the first FindCoordinator of their key type
//! creates the topic from the broker's config, once, however many requests race.

use crate::broker::Broker;
use gregor_metadata::controller::NewTopic;
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
    match broker.create_topics_via_controller(vec![topic]).await {
        Ok(outcomes) => {
            let failed =
                outcomes.iter().find(|(_, error)| *error != ErrorCode::None && *error != ErrorCode::TopicAlreadyExists);
            if let Some((_, error)) = failed {
                tracing::warn!("creating {name} failed: {error:?}");
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

/// The replication factor an internal topic can have now: its configured one
/// (`offsets.topic.replication.factor`, `transaction.state.log.replication.factor`)
/// capped at the brokers registered, so that a single node, or a cluster smaller
/// than the default 3, still gets its coordinators. Kafka refuses to create the
/// topic until enough brokers have registered; Gregor creates it with fewer
/// replicas instead, and says so in its README.
pub fn registered_brokers(broker: &Broker) -> i16 {
    let count = broker.image().brokers().count().max(1);
    i16::try_from(count).unwrap_or(i16::MAX)
}
