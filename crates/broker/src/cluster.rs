//! A node's life in a cluster, as KRaft's: the broker registers with the active
//! controller and heartbeats every `broker.heartbeat.interval.ms`; on shutdown it
//! asks for a controlled shutdown first. The active controller keeps the brokers'
//! sessions and fences a broker whose heartbeats stop for
//! `broker.session.timeout.ms`, and writes the bootstrap records of a new cluster.
//! Every change is a decision through the metadata log like any other.

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::meta_properties::random_uuid;
use gregor_metadata::controller::brokers::{balance_partition_leaders, fence_broker, BrokerSessions};
use gregor_protocol::messages::broker_registration_request::{Feature, Listener};
use gregor_protocol::messages::{BrokerHeartbeatRequest, BrokerRegistrationRequest};
use gregor_protocol::Uuid;
use gregor_protocol::{ErrorCode, RequestBody, ResponseBody};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a controlled shutdown may take before the process exits anyway.
const CONTROLLED_SHUTDOWN_MAX: Duration = Duration::from_secs(10);
const CONTROLLER_DUTIES_INTERVAL: Duration = Duration::from_millis(100);

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
                    // Heartbeat at once: the first one unfences the broker.
                    continue;
                }
                Err(error) => tracing::warn!("broker registration failed, retrying: {error}"),
            },
            Some(current) => match heartbeat(&broker, current, false, call_timeout).await {
                Ok(answer) if answer.error_code == ErrorCode::StaleBrokerEpoch.code() => epoch = None,
                Ok(answer) if answer.error_code != 0 => {
                    tracing::warn!("heartbeat refused by the active controller: error {}", answer.error_code)
                }
                Ok(_) => {}
                Err(error) => tracing::warn!("heartbeat failed: {error}"),
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
        // Each try is short: with the whole cluster stopping, the controller may be gone.
        let left = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(2));
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
        log_dirs: broker.log_dir_ids.clone(),
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
/// cluster, fencing brokers whose sessions expired, and moving leadership back to
/// preferred replicas (`auto.leader.rebalance.enable`).
pub async fn controller_duties(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut was_active = false;
    let mut last_rebalance = Instant::now();
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
        let now = crate::time::now_ms();
        if !was_active {
            // Sessions start afresh on a new active controller, as in Kafka.
            *broker.sessions() = BrokerSessions::from_image(&broker.image(), now);
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
        let timeout_ms = i64::from(config.broker_session_timeout_ms);
        let expired = broker.sessions().expired(now, timeout_ms);
        for broker_id in expired {
            tracing::warn!("broker {broker_id}'s session expired: fencing it");
            let fenced = broker.decide(move |image, _context| fence_broker(image, broker_id)).await;
            match fenced {
                Ok(Ok(())) => broker.sessions().fence(broker_id),
                Ok(Err(error)) => {
                    tracing::warn!("cannot fence broker {broker_id}: {:?}", error.message);
                    broker.sessions().fence(broker_id);
                }
                Err(error) => tracing::warn!("cannot fence broker {broker_id}: {error}"),
            }
        }
        let interval =
            Duration::from_secs(u64::try_from(config.leader_imbalance_check_interval_seconds).unwrap_or(300).max(1));
        if config.auto_leader_rebalance_enable && last_rebalance.elapsed() >= interval {
            last_rebalance = Instant::now();
            let balanced = broker.decide(|image, _context| balance_partition_leaders(image)).await;
            if let Err(error) = balanced {
                tracing::warn!("preferred leader election failed: {error}");
            }
        }
    }
}
