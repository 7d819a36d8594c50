//! AllocateProducerIds (key 67), v0, on the controller listener only.
//!
//! A broker that runs out of producer ids asks the active controller for the next
//! block (1000 ids, as Kafka); the block is a ProducerIdsRecord in the metadata
//! log, so no id is ever handed out twice, whoever is the controller. A wrong
//! broker epoch is STALE_BROKER_EPOCH; a node that is not the active controller
//! answers NOT_CONTROLLER.

use crate::broker::Broker;
use gregor_metadata::controller::allocate_producer_ids;
use gregor_protocol::messages::{AllocateProducerIdsRequest, AllocateProducerIdsResponse};
use std::sync::Arc;

pub async fn handle(broker: &Arc<Broker>, request: AllocateProducerIdsRequest) -> AllocateProducerIdsResponse {
    let (broker_id, broker_epoch) = (request.broker_id, request.broker_epoch);
    let decided = broker.decide(move |image, _context| allocate_producer_ids(image, broker_id, broker_epoch)).await;
    match decided {
        Ok(Ok(block)) => AllocateProducerIdsResponse {
            producer_id_start: block.first_producer_id,
            producer_id_len: block.size,
            ..AllocateProducerIdsResponse::default()
        },
        Ok(Err(error)) => AllocateProducerIdsResponse { error_code: error.code.code(), ..Default::default() },
        Err(error) => AllocateProducerIdsResponse { error_code: error.error_code().code(), ..Default::default() },
    }
}
