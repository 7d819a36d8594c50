//! BrokerRegistration (key 62), v0-v4, on the controller listener only.
//!
//! A broker registers with the active controller at start: a RegisterBrokerRecord
//! with its listeners, supported features and rack, fenced until its heartbeats
//! show it has caught up with the metadata log (Kafka's
//! `ClusterControlManager.registerBroker`, in `gregor_metadata::controller::brokers`).
//! The broker epoch grows with every registration (Kafka uses the record's offset;
//! Gregor the controller's clock, kept above the broker's previous epoch). A
//! broker of another cluster is refused with INCONSISTENT_CLUSTER_ID; a node that
//! is not the active controller answers NOT_CONTROLLER and the broker asks the next.

use crate::broker::Broker;
use gregor_metadata::controller::brokers::{register_broker, BrokerRegistrationRequest as Registration};
use gregor_metadata::BrokerEndpoint;
use gregor_protocol::messages::{BrokerRegistrationRequest, BrokerRegistrationResponse};
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(broker: &Arc<Broker>, request: BrokerRegistrationRequest) -> BrokerRegistrationResponse {
    let failed = |code: ErrorCode| BrokerRegistrationResponse {
        error_code: code.code(),
        broker_epoch: -1,
        ..BrokerRegistrationResponse::default()
    };
    if request.cluster_id != broker.cluster_id {
        tracing::error!(
            "broker {} of cluster {} tried to register with cluster {}",
            request.broker_id,
            request.cluster_id,
            broker.cluster_id
        );
        return failed(ErrorCode::InconsistentClusterId);
    }
    let registration = Registration {
        broker_id: request.broker_id,
        incarnation_id: request.incarnation_id,
        listeners: request
            .listeners
            .iter()
            .map(|listener| BrokerEndpoint {
                name: listener.name.clone(),
                host: listener.host.clone(),
                port: listener.port,
                security_protocol: listener.security_protocol,
            })
            .collect(),
        features: request
            .features
            .iter()
            .map(|feature| (feature.name.clone(), feature.min_supported_version, feature.max_supported_version))
            .collect(),
        rack: request.rack.clone(),
        log_dirs: request.log_dirs.clone(),
    };
    let broker_id = request.broker_id;
    // A registration that arrives before the new cluster's bootstrap records
    // waits for them: the features it is checked against are in those records.
    if broker.image().features().is_empty() {
        let bootstrapped =
            broker.decide(|image, _context| (gregor_metadata::finalize_missing_features(image), ())).await;
        if let Err(error) = bootstrapped {
            return failed(error.error_code());
        }
    }
    let session_timeout_ms = i64::from(broker.config().broker_session_timeout_ms);
    let controller = Arc::clone(broker);
    let decided = broker
        .decide(move |image, _context| {
            let now = crate::time::now_ms();
            let previous = image.broker(broker_id).map_or(-1, |registered| registered.epoch);
            let epoch = now.max(previous + 1);
            let mut sessions = controller.sessions();
            register_broker(image, &mut sessions, &registration, epoch, now, session_timeout_ms)
        })
        .await;
    match decided {
        Ok(Ok(epoch)) => {
            // The loader noted the offset the registration landed at.
            BrokerRegistrationResponse { broker_epoch: epoch, ..BrokerRegistrationResponse::default() }
        }
        Ok(Err(error)) => {
            tracing::warn!("registration of broker {broker_id} refused: {:?}", error.message);
            failed(error.code)
        }
        Err(error) => failed(error.error_code()),
    }
}
