//! BrokerHeartbeat (key 63), v0-v1, on the controller listener only.
//!
//! Keeps a broker's session alive on the active controller (Kafka's
//! `processBrokerHeartbeat`, in `gregor_metadata::controller::brokers`): a fenced
//! broker is unfenced once its metadata offset reaches its registration; a broker
//! that asks to shut down enters controlled shutdown, its leaderships move to
//! other in-sync replicas, and it is told it may stop once that is committed. A
//! wrong broker epoch is STALE_BROKER_EPOCH (the broker registers again).

use crate::broker::Broker;
use gregor_metadata::controller::brokers::{heartbeat, HeartbeatRequest};
use gregor_protocol::messages::{BrokerHeartbeatRequest, BrokerHeartbeatResponse};
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(broker: &Arc<Broker>, request: BrokerHeartbeatRequest) -> BrokerHeartbeatResponse {
    let failed = |code: ErrorCode| BrokerHeartbeatResponse {
        error_code: code.code(),
        is_fenced: true,
        ..BrokerHeartbeatResponse::default()
    };
    if !broker.controller.leadership().may_decide {
        return failed(ErrorCode::NotController);
    }
    let broker_id = request.broker_id;
    let beat = HeartbeatRequest {
        broker_id,
        broker_epoch: request.broker_epoch,
        current_metadata_offset: request.current_metadata_offset,
        want_fence: request.want_fence,
        want_shut_down: request.want_shut_down,
    };
    let registration_offset = broker.registration_offsets().get(&broker_id).copied();
    let controller = Arc::clone(broker);
    let decided = broker
        .decide(move |image, _context| {
            let now = crate::time::now_ms();
            let mut sessions = controller.sessions();
            // The session's fenced state follows the committed image: a decision that
            // changed the session but whose records were then not committed (a lost
            // proposal, a leadership change) must not leave the two apart for good.
            if let Some(registration) = image.broker(broker_id) {
                sessions.register(broker_id, registration.fenced, now);
            }
            heartbeat(image, &mut sessions, &beat, registration_offset, now)
        })
        .await;
    match decided {
        Ok(Ok(answer)) => {
            if answer.in_controlled_shutdown {
                let offset = broker.metadata_offset.load(std::sync::atomic::Ordering::Acquire);
                broker.sessions().enter_controlled_shutdown(broker_id, offset);
            }
            BrokerHeartbeatResponse {
                is_caught_up: answer.is_caught_up,
                is_fenced: answer.is_fenced,
                should_shut_down: answer.should_shut_down,
                ..BrokerHeartbeatResponse::default()
            }
        }
        Ok(Err(error)) => {
            tracing::debug!("heartbeat of broker {broker_id} refused: {:?}", error.message);
            failed(error.code)
        }
        Err(error) => {
            tracing::warn!("heartbeat of broker {broker_id} failed: {error}");
            failed(error.error_code())
        }
    }
}
