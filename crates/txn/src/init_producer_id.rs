//! InitProducerId with a transactional id (v0-v6), after Kafka's
//! `TransactionCoordinator.handleInitProducerId`: a new id gets a producer id and
//! epoch 0; an idle one gets its epoch bumped (a new producer id when the epoch is
//! exhausted); an ongoing transaction is aborted first with a bumped epoch, fencing
//! the old producer, and the caller is told to retry (CONCURRENT_TRANSACTIONS).

use crate::shard::{fenced_for_version, Effects, RequestContext, TxnCoordinatorShard};
use crate::state::{is_epoch_exhausted, TransactionMetadata, TxnState, NO_PRODUCER_EPOCH, NO_PRODUCER_ID};
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use gregor_protocol::ErrorCode;
use std::collections::BTreeSet;

/// The first InitProducerId version that understands PRODUCER_FENCED.
const FENCED_SINCE_VERSION: i16 = 4;

fn error_response(error: ErrorCode) -> InitProducerIdResponse {
    InitProducerIdResponse {
        error_code: error.code(),
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        ..Default::default()
    }
}

impl TxnCoordinatorShard {
    /// Handles InitProducerId for a transactional id. `fresh_producer_id` is a producer
    /// id the broker reserved; it is used only when a new one is needed (a new id, or
    /// an exhausted epoch) and otherwise wasted, as Kafka's id blocks allow.
    pub fn init_producer_id(
        &mut self,
        ctx: &RequestContext,
        request: InitProducerIdRequest,
        fresh_producer_id: i64,
    ) -> Effects {
        let mut effects = Effects::default();
        let response = self.decide_init_producer_id(ctx, &request, fresh_producer_id, &mut effects);
        let response = match response {
            Ok(response) => response,
            Err(error) => error_response(fenced_for_version(error, ctx.api_version, FENCED_SINCE_VERSION)),
        };
        effects.reply(ctx.reply, response);
        effects
    }

    fn decide_init_producer_id(
        &mut self,
        ctx: &RequestContext,
        request: &InitProducerIdRequest,
        fresh_producer_id: i64,
        effects: &mut Effects,
    ) -> Result<InitProducerIdResponse, ErrorCode> {
        let now = ctx.now_ms;
        let Some(transactional_id) = request.transactional_id.as_deref() else {
            // Idempotent producers are the broker's business; answer as Kafka does.
            return Ok(InitProducerIdResponse {
                producer_id: fresh_producer_id,
                producer_epoch: 0,
                ..Default::default()
            });
        };
        if transactional_id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        let timeout_ms = request.transaction_timeout_ms;
        if timeout_ms <= 0 || timeout_ms > self.config.transaction_max_timeout_ms {
            return Err(ErrorCode::InvalidTransactionTimeout);
        }
        // KIP-360 (v3+): a producer recovering its epoch names the id and epoch it had.
        let expected = match (request.producer_id, request.producer_epoch) {
            (NO_PRODUCER_ID, NO_PRODUCER_EPOCH) => None,
            (NO_PRODUCER_ID, _) | (_, NO_PRODUCER_EPOCH) => return Err(ErrorCode::InvalidRequest),
            (producer_id, epoch) => Some((producer_id, epoch)),
        };

        let current = match self.txns.get(transactional_id) {
            Some(txn) => txn.clone(),
            None => TransactionMetadata {
                transactional_id: transactional_id.to_string(),
                producer_id: fresh_producer_id,
                previous_producer_id: NO_PRODUCER_ID,
                next_producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
                last_producer_epoch: NO_PRODUCER_EPOCH,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                start_timestamp_ms: -1,
                last_update_timestamp_ms: now,
                client_transaction_version: 0,
            },
        };

        if let Some((producer_id, epoch)) = expected {
            let valid = current.producer_epoch == NO_PRODUCER_EPOCH
                || producer_id == current.producer_id
                || (producer_id == current.previous_producer_id && is_epoch_exhausted(epoch));
            if !valid {
                return Err(ErrorCode::ProducerFenced);
            }
        }

        match current.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => Err(ErrorCode::ConcurrentTransactions),
            TxnState::Ongoing => {
                // Abort the open transaction with a bumped epoch (that epoch is never
                // handed out); the client retries and gets a second bump.
                self.fence_and_abort(&current, now, effects);
                Err(ErrorCode::ConcurrentTransactions)
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let next = if is_epoch_exhausted(current.producer_epoch)
                    && !matches!(expected, Some((_, epoch)) if epoch != current.producer_epoch)
                {
                    // Kafka's prepareProducerIdRotation.
                    TransactionMetadata {
                        producer_id: fresh_producer_id,
                        previous_producer_id: current.producer_id,
                        producer_epoch: 0,
                        last_producer_epoch: if expected.is_some() {
                            current.producer_epoch
                        } else {
                            NO_PRODUCER_EPOCH
                        },
                        ..idle(&current, timeout_ms, now)
                    }
                } else {
                    // Kafka's prepareIncrementProducerEpoch.
                    let bumped = current.producer_epoch + 1;
                    let (epoch, last_epoch) = match expected {
                        None => (bumped, NO_PRODUCER_EPOCH),
                        Some((_, expected_epoch))
                            if current.producer_epoch == NO_PRODUCER_EPOCH
                                || expected_epoch == current.producer_epoch =>
                        {
                            (bumped, current.producer_epoch)
                        }
                        // A retry of a bump whose answer was lost.
                        Some((_, expected_epoch)) if expected_epoch == current.last_producer_epoch => {
                            (current.producer_epoch, current.last_producer_epoch)
                        }
                        Some(_) => return Err(ErrorCode::ProducerFenced),
                    };
                    TransactionMetadata {
                        producer_epoch: epoch,
                        last_producer_epoch: last_epoch,
                        ..idle(&current, timeout_ms, now)
                    }
                };
                let response = InitProducerIdResponse {
                    producer_id: next.producer_id,
                    producer_epoch: next.producer_epoch,
                    ..Default::default()
                };
                self.transition(next, effects);
                Ok(response)
            }
            TxnState::Dead | TxnState::PrepareEpochFence => Err(ErrorCode::UnknownServerError),
        }
    }
}

/// The Empty state after an InitProducerId: no partitions, no start time.
fn idle(current: &TransactionMetadata, timeout_ms: i32, now_ms: i64) -> TransactionMetadata {
    TransactionMetadata {
        timeout_ms,
        state: TxnState::Empty,
        partitions: BTreeSet::new(),
        start_timestamp_ms: -1,
        last_update_timestamp_ms: now_ms,
        next_producer_id: NO_PRODUCER_ID,
        ..current.clone()
    }
}
