//! A node's life in a cluster, as KRaft's: the broker registers with the active
//! controller and heartbeats every `broker.heartbeat.interval.ms`; on shutdown it
//! asks for a controlled shutdown first. The active controller keeps the brokers'
//! sessions and fences a broker whose heartbeats stop for
//! `broker.session.timeout.ms`, and writes the bootstrap records of a new cluster.
//! Every change is a decision through the metadata log like any other.

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::meta_properties::random_uuid;
use gregor_metadata::MetadataRecord;
use gregor_protocol::messages::broker_registration_request::{Feature, Listener};
use gregor_protocol::messages::{BrokerHeartbeatRequest, BrokerRegistrationRequest};
use gregor_protocol::Uuid;
use gregor_protocol::{ErrorCode, RequestBody, ResponseBody};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a controlled shutdown may take before the process exits anyway.
const CONTROLLED_SHUTDOWN_MAX: Duration = Duration::from_secs(10);
const CONTROLLER_DUTIES_INTERVAL: Duration = Duration::from_millis(250);

/// The active controller's view of broker sessions: when each broker was last
/// heard from. Kept in memory only, as Kafka's: a new active controller starts
/// every session afresh.
#[derive(Debug, Default)]
pub struct BrokerSessions {
    last_heard: Mutex<HashMap<i32, Instant>>,
}

impl BrokerSessions {
    pub fn touch(&self, broker_id: i32) {
        if let Ok(mut sessions) = self.last_heard.lock() {
            sessions.insert(broker_id, Instant::now());
        }
    }

    /// The brokers among `alive` not heard from within `timeout`; a broker never
    /// heard from starts its session now.
    fn expired(&self, alive: &[i32], timeout: Duration) -> Vec<i32> {
        let Ok(mut sessions) = self.last_heard.lock() else { return Vec::new() };
        let now = Instant::now();
        alive.iter().filter(|id| now.duration_since(*sessions.entry(**id).or_insert(now)) > timeout).copied().collect()
    }

    fn clear(&self) {
        if let Ok(mut sessions) = self.last_heard.lock() {
            sessions.clear();
        }
    }
}

/// Registers this broker, heartbeats, and on shutdown asks the controller to move
/// its leaderships away before it returns.
pub async fn broker_lifecycle(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let config = broker.config();
    let interval = Duration::from_millis(u64::try_from(config.broker_heartbeat_interval_ms).unwrap_or(2000).max(10));
    let call_timeout = Duration::from_millis(u64::try_from(config.broker_session_timeout_ms).unwrap_or(9000).max(100));
    drop(config);
    let incarnation = random_uuid();
    let mut epoch: Option<i64> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        match epoch {
            None => match register(&broker, incarnation, call_timeout).await {
                Ok(registered) => {
                    tracing::info!(
                        "registered with the active controller as broker {} (epoch {registered})",
                        broker.node_id
                    );
                    epoch = Some(registered);
                }
                Err(error) => tracing::warn!("broker registration failed, retrying: {error}"),
            },
            Some(current) => match heartbeat(&broker, current, false, call_timeout).await {
                Ok(answer) if answer.error_code == ErrorCode::StaleBrokerEpoch.code() => epoch = None,
                Ok(_) => {}
                Err(error) => tracing::debug!("heartbeat failed: {error}"),
            },
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => break,
        }
    }
    // Controlled shutdown: the controller moves our leaderships away and says
    // when we may go.
    let Some(current) = epoch else { return };
    let deadline = Instant::now() + CONTROLLED_SHUTDOWN_MAX;
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        match heartbeat(&broker, current, true, left).await {
            Ok(answer) if answer.should_shut_down => {
                tracing::info!("controlled shutdown complete");
                return;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!("controlled shutdown: {error}");
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!("controlled shutdown did not complete in {} s", CONTROLLED_SHUTDOWN_MAX.as_secs());
}

async fn register(broker: &Arc<Broker>, incarnation: Uuid, timeout: Duration) -> Result<i64, BrokerError> {
    let config = broker.config();
    let request = BrokerRegistrationRequest {
        broker_id: broker.node_id,
        cluster_id: broker.cluster_id.clone(),
        incarnation_id: incarnation,
        listeners: broker
            .endpoints
            .iter()
            .map(|endpoint| Listener {
                name: endpoint.listener_name.clone(),
                host: endpoint.host.clone(),
                port: endpoint.port,
                security_protocol: 0,
                ..Default::default()
            })
            .collect(),
        features: gregor_metadata::controller::supported_features()
            .iter()
            .map(|feature| Feature {
                name: feature.name.to_string(),
                min_supported_version: feature.min_level,
                max_supported_version: feature.max_level,
                ..Default::default()
            })
            .collect(),
        rack: config.broker_rack.clone(),
        ..Default::default()
    };
    let response = broker.controller_client.call(broker, RequestBody::BrokerRegistration(request), 4, timeout).await?;
    match response {
        ResponseBody::BrokerRegistration(response) if response.error_code == 0 => Ok(response.broker_epoch),
        ResponseBody::BrokerRegistration(response) => Err(BrokerError::Controller {
            code: ErrorCode::from_code(response.error_code).unwrap_or(ErrorCode::UnknownServerError),
            message: Some("the controller refused the registration".into()),
        }),
        other => Err(BrokerError::Cluster(format!("unexpected answer to a registration: {:?}", other.api_key()))),
    }
}

async fn heartbeat(
    broker: &Arc<Broker>,
    epoch: i64,
    want_shut_down: bool,
    timeout: Duration,
) -> Result<gregor_protocol::messages::BrokerHeartbeatResponse, BrokerError> {
    let request = BrokerHeartbeatRequest {
        broker_id: broker.node_id,
        broker_epoch: epoch,
        current_metadata_offset: broker.metadata_offset.load(std::sync::atomic::Ordering::Acquire),
        want_fence: false,
        want_shut_down,
        ..Default::default()
    };
    match broker.controller_client.call(broker, RequestBody::BrokerHeartbeat(request), 1, timeout).await? {
        ResponseBody::BrokerHeartbeat(response) => Ok(response),
        other => Err(BrokerError::Cluster(format!("unexpected answer to a heartbeat: {:?}", other.api_key()))),
    }
}

/// The active controller's periodic work: the bootstrap records of a new
/// cluster, and fencing brokers whose sessions expired.
pub async fn controller_duties(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut was_active = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CONTROLLER_DUTIES_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
        let leadership = broker.controller.leadership();
        if !leadership.may_decide {
            was_active = false;
            continue;
        }
        if !was_active {
            // Sessions start afresh on a new active controller.
            broker.broker_sessions.clear();
            was_active = true;
        }
        if broker.image().features().is_empty() {
            let bootstrapped =
                broker.decide(|image, _context| (gregor_metadata::finalize_missing_features(image), ())).await;
            if let Err(error) = bootstrapped {
                tracing::warn!("cannot write the bootstrap records: {error}");
            }
            continue;
        }
        let config = broker.config();
        let timeout = Duration::from_millis(u64::try_from(config.broker_session_timeout_ms).unwrap_or(9000));
        let image = broker.image();
        let alive: Vec<i32> = image.brokers().filter(|registration| !registration.fenced).map(|r| r.id).collect();
        for broker_id in broker.broker_sessions.expired(&alive, timeout) {
            tracing::warn!("broker {broker_id}'s session expired: fencing it");
            let fenced = broker
                .decide(move |image, _context| {
                    let records = match image.broker(broker_id) {
                        Some(registration) if !registration.fenced => {
                            fence_records(image, broker_id, registration.epoch)
                        }
                        _ => Vec::new(),
                    };
                    (records, ())
                })
                .await;
            if let Err(error) = fenced {
                tracing::warn!("cannot fence broker {broker_id}: {error}");
            }
        }
    }
}

/// Fences a broker and moves the leadership of its partitions to another live
/// in-sync replica (none left: the partition goes offline, leader -1).
pub(crate) fn fence_records(image: &gregor_metadata::MetadataImage, broker_id: i32, epoch: i64) -> Vec<MetadataRecord> {
    let mut records = vec![MetadataRecord::FenceBroker(gregor_protocol::messages::FenceBrokerRecord {
        id: broker_id,
        epoch,
        ..Default::default()
    })];
    records.extend(move_leadership_away(image, broker_id));
    records
}

/// PartitionChangeRecords that take `broker_id` out of every ISR and give its
/// leaderships to the next live in-sync replica, as Kafka does on fencing and
/// controlled shutdown.
pub(crate) fn move_leadership_away(image: &gregor_metadata::MetadataImage, broker_id: i32) -> Vec<MetadataRecord> {
    let alive = |id: i32| id != broker_id && image.broker(id).is_some_and(|broker| broker.is_active());
    let mut records = Vec::new();
    for topic in image.topics() {
        for (&partition, state) in &topic.partitions {
            if !state.isr.contains(&broker_id) {
                continue;
            }
            let remaining: Vec<i32> = state.isr.iter().copied().filter(|id| *id != broker_id).collect();
            let mut change = gregor_protocol::messages::PartitionChangeRecord {
                partition_id: partition,
                topic_id: topic.id,
                leader: -2,
                leader_recovery_state: -1,
                ..Default::default()
            };
            if remaining.is_empty() {
                // The last in-sync replica keeps its place in the ISR (so that it can
                // lead again when back) and the partition has no leader meanwhile.
                if state.leader == broker_id {
                    change.leader = -1;
                    records.push(MetadataRecord::PartitionChange(change));
                }
                continue;
            }
            change.isr = Some(remaining.clone());
            if state.leader == broker_id || state.leader == -1 {
                change.leader =
                    state.replicas.iter().copied().find(|id| remaining.contains(id) && alive(*id)).unwrap_or(-1);
            }
            records.push(MetadataRecord::PartitionChange(change));
        }
    }
    records
}
