//! EndTxn (v0-v5), after Kafka's `TransactionCoordinator.endTransaction`: an Ongoing
//! transaction moves to PrepareCommit/PrepareAbort (the answer is released once that
//! record is durable) and its markers are written; a retry after the fact is answered
//! NONE once complete, CONCURRENT_TRANSACTIONS while the markers are still being
//! written, INVALID_TXN_STATE when it asks for the other outcome.
//!
//! With transaction version 2 (KIP-890, EndTxn v5 from a client that uses it) every
//! transaction ends with an epoch bump; the answer carries the new producer id and
//! epoch, and an exhausted epoch moves the producer to a new producer id.

use crate::shard::{fenced_for_version, Effects, RequestContext, TxnCoordinatorShard};
use crate::state::{is_epoch_exhausted, TxnState, NO_PRODUCER_EPOCH, NO_PRODUCER_ID};
use gregor_protocol::messages::end_txn_request::EndTxnRequest;
use gregor_protocol::messages::end_txn_response::EndTxnResponse;
use gregor_protocol::ErrorCode;

/// The first EndTxn version that understands PRODUCER_FENCED.
const FENCED_SINCE_VERSION: i16 = 2;
/// The first EndTxn version that answers with the producer id and epoch.
const PRODUCER_IN_RESPONSE_SINCE_VERSION: i16 = 5;

impl TxnCoordinatorShard {
    /// Handles EndTxn. `client_transaction_version` is the transaction version this
    /// request uses: 2 when the request is v5+ and the `transaction.version` feature
    /// is 2 or more (epoch bump per transaction), else the finalized level (0 or 1).
    /// `fresh_producer_id` is used only when a TV2 bump exhausts the epoch.
    pub fn end_txn(
        &mut self,
        ctx: &RequestContext,
        request: EndTxnRequest,
        client_transaction_version: i16,
        fresh_producer_id: i64,
    ) -> Effects {
        let mut effects = Effects::default();
        let (error, producer_id, producer_epoch) =
            match self.decide_end_txn(ctx, &request, client_transaction_version, fresh_producer_id, &mut effects) {
                Ok((producer_id, producer_epoch)) => (ErrorCode::None, producer_id, producer_epoch),
                Err(error) => (error, NO_PRODUCER_ID, NO_PRODUCER_EPOCH),
            };
        let mut response = EndTxnResponse {
            error_code: fenced_for_version(error, ctx.api_version, FENCED_SINCE_VERSION).code(),
            ..Default::default()
        };
        if ctx.api_version >= PRODUCER_IN_RESPONSE_SINCE_VERSION {
            response.producer_id = producer_id;
            response.producer_epoch = producer_epoch;
        }
        effects.reply(ctx.reply, response);
        effects
    }

    fn decide_end_txn(
        &mut self,
        ctx: &RequestContext,
        request: &EndTxnRequest,
        client_transaction_version: i16,
        fresh_producer_id: i64,
        effects: &mut Effects,
    ) -> Result<(i64, i16), ErrorCode> {
        if request.transactional_id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        let txn = self.txns.get(&request.transactional_id).ok_or(ErrorCode::InvalidProducerIdMapping)?;
        let commit = request.committed;
        let epoch = request.producer_epoch;
        let tv2 = match txn.state {
            TxnState::Ongoing | TxnState::Empty => client_transaction_version >= 2,
            _ => txn.client_transaction_version >= 2,
        };
        // TV2: a retry of an EndTxn that bumped the epoch names the epoch before it.
        let retry_on_epoch_bump = tv2 && txn.producer_epoch > 0 && epoch == txn.producer_epoch - 1;
        let retry_on_overflow =
            tv2 && txn.previous_producer_id == request.producer_id && epoch == i16::MAX - 1 && txn.producer_epoch == 0;
        let valid_epoch = if tv2 {
            match txn.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort => retry_on_epoch_bump,
                TxnState::CompleteCommit | TxnState::CompleteAbort => retry_on_epoch_bump || retry_on_overflow,
                _ => epoch == txn.producer_epoch,
            }
        } else {
            epoch == txn.producer_epoch
        };
        if txn.producer_id != request.producer_id && !retry_on_overflow {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if !valid_epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        match (txn.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut prepared = txn.clone();
                prepared.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
                prepared.last_update_timestamp_ms = ctx.now_ms;
                if tv2 {
                    prepared.client_transaction_version = client_transaction_version;
                    prepared.last_producer_epoch = txn.producer_epoch;
                    if is_epoch_exhausted(txn.producer_epoch) {
                        prepared.next_producer_id = fresh_producer_id;
                    }
                    prepared.producer_epoch = txn.producer_epoch.saturating_add(1);
                }
                let answer = if prepared.next_producer_id != NO_PRODUCER_ID {
                    (prepared.next_producer_id, 0)
                } else {
                    (prepared.producer_id, prepared.producer_epoch)
                };
                self.prepare_end(prepared, ctx.now_ms, effects);
                Ok(answer)
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                Ok((txn.producer_id, txn.producer_epoch))
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => Err(ErrorCode::ConcurrentTransactions),
            (TxnState::Dead | TxnState::PrepareEpochFence, _) => Err(ErrorCode::UnknownServerError),
            _ => Err(ErrorCode::InvalidTxnState),
        }
    }
}
