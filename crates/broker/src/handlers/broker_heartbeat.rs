//! BrokerHeartbeat (key 63), v0-v1, on the controller listener only.
//!
//! Keeps a broker's session alive on the active controller. A fenced broker is
//! unfenced once it has caught up with the metadata log; a broker that asks to
//! shut down is put in controlled shutdown, its leaderships move to other in-sync
//! replicas, and it is told it may stop once it leads nothing. A wrong broker
//! epoch is STALE_BROKER_EPOCH (the broker registers again).

use crate::broker::Broker;
use gregor_metadata::MetadataRecord;
use gregor_protocol::messages::{
    BrokerHeartbeatRequest, BrokerHeartbeatResponse, BrokerRegistrationChangeRecord, UnfenceBrokerRecord,
};
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
    let image = broker.image();
    let Some(registration) = image.broker(request.broker_id) else {
        return failed(ErrorCode::BrokerIdNotRegistered);
    };
    if registration.epoch != request.broker_epoch {
        return failed(ErrorCode::StaleBrokerEpoch);
    }
    broker.broker_sessions.touch(request.broker_id);
    let caught_up =
        request.current_metadata_offset >= broker.metadata_offset.load(std::sync::atomic::Ordering::Acquire) - 1;
    let broker_id = request.broker_id;
    let epoch = request.broker_epoch;
    let want_shut_down = request.want_shut_down;
    let decided = broker
        .decide(move |image, _context| {
            let Some(registration) = image.broker(broker_id) else { return (Vec::new(), (true, false)) };
            let mut records = Vec::new();
            if want_shut_down {
                if !registration.in_controlled_shutdown {
                    records.push(MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
                        broker_id,
                        broker_epoch: epoch,
                        in_controlled_shutdown: 1,
                        ..Default::default()
                    }));
                }
                records.extend(crate::cluster::move_leadership_away(image, broker_id));
                // It may go once a heartbeat finds nothing left to move.
                let done = records.is_empty();
                return (records, (registration.fenced, done));
            }
            if registration.fenced && caught_up {
                records.push(MetadataRecord::UnfenceBroker(UnfenceBrokerRecord {
                    id: broker_id,
                    epoch,
                    ..Default::default()
                }));
                return (records, (false, false));
            }
            (records, (registration.fenced, false))
        })
        .await;
    match decided {
        Ok((is_fenced, should_shut_down)) => BrokerHeartbeatResponse {
            is_caught_up: caught_up,
            is_fenced,
            should_shut_down,
            ..BrokerHeartbeatResponse::default()
        },
        Err(error) => failed(error.error_code()),
    }
}
