//! EndTxn (key 26), v0-v5.
//!
//! Decided by the transaction coordinator shard of the transactional id
//! (`gregor_txn::end_txn`): an Ongoing transaction moves to PrepareCommit or
//! PrepareAbort, the answer is released once that record is durable, and the
//! coordinator runtime then writes the COMMIT/ABORT markers to every partition of
//! the transaction and completes it (`crate::txn_coordinator`). Retries are answered
//! as Kafka does (NONE once complete, CONCURRENT_TRANSACTIONS while the markers are
//! being written).
//!
//! The transaction version is the finalized `transaction.version` level, 2 (epoch
//! bump per transaction, KIP-890) only for v5+ requests when the feature allows it;
//! only then is a fresh producer id reserved for an exhausted epoch.
//!
//! With an authorizer, WRITE on the transactional id is needed (else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type};
use gregor_protocol::messages::end_txn_request::EndTxnRequest;
use gregor_protocol::messages::end_txn_response::EndTxnResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, ResponseBody};
use std::sync::Arc;

/// The first EndTxn version of KIP-890's transaction version 2.
const TV2_SINCE_VERSION: i16 = 5;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: EndTxnRequest,
) -> EndTxnResponse {
    let failed = |code: ErrorCode| EndTxnResponse {
        error_code: code.code(),
        producer_id: -1,
        producer_epoch: -1,
        ..EndTxnResponse::default()
    };
    if !broker.authorize(context, operation::WRITE, resource_type::TRANSACTIONAL_ID, &request.transactional_id) {
        return failed(ErrorCode::TransactionalIdAuthorizationFailed);
    }
    let version = header.request_api_version;
    let finalized = broker.txns.transaction_version(broker);
    let client_transaction_version = if version >= TV2_SINCE_VERSION && finalized >= 2 { 2 } else { finalized.min(1) };
    let fresh_producer_id = if client_transaction_version >= 2 {
        match broker.next_producer_id().await {
            Ok(producer_id) => producer_id,
            Err(error) => {
                tracing::warn!("cannot allocate a producer id: {error}");
                return failed(error.error_code());
            }
        }
    } else {
        -1
    };
    let transactional_id = request.transactional_id.clone();
    let decided = broker
        .txns
        .decide(broker, version, &transactional_id, move |shard, context| {
            shard.end_txn(context, request, client_transaction_version, fresh_producer_id)
        })
        .await;
    match decided {
        Ok(ResponseBody::EndTxn(response)) => response,
        Ok(_) => failed(ErrorCode::UnknownServerError),
        Err(code) => failed(code),
    }
}
