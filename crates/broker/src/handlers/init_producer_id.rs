//! InitProducerId (key 22), v0-v5, for idempotent producers.
//!
//! Without a transactional id every request gets a fresh producer id at epoch 0,
//! from this node's block of ids (blocks of 1000 are taken from the controller and
//! recorded in the metadata log, so ids are never reused after a restart). Kafka
//! does the same: an idempotent producer that bumps its epoch (KIP-360, v3+) also
//! gets a new id. Transactional ids need the transaction coordinator, which arrives
//! with the transactions issue; until then such a request is answered
//! COORDINATOR_NOT_AVAILABLE (FindCoordinator is not advertised either).

use crate::broker::Broker;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let failed = |error: ErrorCode| InitProducerIdResponse {
        error_code: error.code(),
        producer_id: -1,
        producer_epoch: -1,
        ..InitProducerIdResponse::default()
    };
    if request.transactional_id.is_some() {
        return failed(ErrorCode::CoordinatorNotAvailable);
    }
    match broker.next_producer_id().await {
        Ok(producer_id) => InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::None.code(),
            producer_id,
            producer_epoch: 0,
            ..InitProducerIdResponse::default()
        },
        Err(error) => {
            tracing::warn!("cannot allocate a producer id: {error}");
            failed(error.error_code())
        }
    }
}
