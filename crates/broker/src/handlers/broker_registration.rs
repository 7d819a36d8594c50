//! BrokerRegistration (key 62), v0-v4, on the controller listener only.
//!
//! A broker registers with the active controller at start: a RegisterBrokerRecord
//! with its listeners, supported features and rack, under a new broker epoch
//! (Kafka uses the record's metadata offset; Gregor the controller's clock in
//! milliseconds, kept above the broker's previous epoch: both only grow). A broker of another cluster is
//! refused with INCONSISTENT_CLUSTER_ID; a node that is not the active controller
//! answers NOT_CONTROLLER, and the broker asks the next one.

use crate::broker::Broker;
use gregor_metadata::MetadataRecord;
use gregor_protocol::messages::register_broker_record::{BrokerEndpoint, BrokerFeature};
use gregor_protocol::messages::{BrokerRegistrationRequest, BrokerRegistrationResponse, RegisterBrokerRecord};
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
    let broker_id = request.broker_id;
    let decided = broker
        .decide(move |image, _context| {
            // Broker epochs grow with the log, so a later registration always wins.
            let previous = image.broker(request.broker_id).map_or(-1, |registration| registration.epoch);
            let epoch = crate::time::now_ms().max(previous + 1);
            let record = RegisterBrokerRecord {
                broker_id: request.broker_id,
                incarnation_id: request.incarnation_id,
                broker_epoch: epoch,
                end_points: request
                    .listeners
                    .iter()
                    .map(|listener| BrokerEndpoint {
                        name: listener.name.clone(),
                        host: listener.host.clone(),
                        port: listener.port,
                        security_protocol: listener.security_protocol,
                        ..Default::default()
                    })
                    .collect(),
                features: request
                    .features
                    .iter()
                    .map(|feature| BrokerFeature {
                        name: feature.name.clone(),
                        min_supported_version: feature.min_supported_version,
                        max_supported_version: feature.max_supported_version,
                        ..Default::default()
                    })
                    .collect(),
                rack: request.rack.clone(),
                fenced: false,
                in_controlled_shutdown: false,
                log_dirs: request.log_dirs.clone(),
                ..Default::default()
            };
            (vec![MetadataRecord::RegisterBroker(record)], epoch)
        })
        .await;
    match decided {
        Ok(epoch) => {
            broker.broker_sessions.touch(broker_id);
            BrokerRegistrationResponse { broker_epoch: epoch, ..BrokerRegistrationResponse::default() }
        }
        Err(error) => failed(error.error_code()),
    }
}
