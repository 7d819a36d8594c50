//! DescribeTransactions (key 65), v0: each transactional id is described by the shard
//! of its `__transaction_state` partition (`gregor_txn::admin`): state, timeout,
//! start time, producer id and epoch, and the partitions in the transaction. An id
//! this node cannot serve answers NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS;
//! an unknown one TRANSACTIONAL_ID_NOT_FOUND.
//!
//! With an authorizer, an id the client may not DESCRIBE is
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use gregor_protocol::messages::describe_transactions_response::{DescribeTransactionsResponse, TransactionState};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let access = broker.access(context);
    let mut transaction_states = Vec::with_capacity(request.transactional_ids.len());
    for transactional_id in request.transactional_ids {
        if !access.allows_transactional_id(operation::DESCRIBE, &transactional_id) {
            transaction_states.push(TransactionState {
                transactional_id,
                error_code: ErrorCode::TransactionalIdAuthorizationFailed.code(),
                ..TransactionState::default()
            });
            continue;
        }
        let id = transactional_id.clone();
        let described =
            broker.txns.read(broker, &transactional_id, move |shard| shard.describe_transactions(&[id])).await;
        transaction_states.push(match described {
            Ok(mut states) if !states.is_empty() => states.remove(0),
            Ok(_) => TransactionState { transactional_id, ..TransactionState::default() },
            Err(code) => TransactionState { transactional_id, error_code: code.code(), ..TransactionState::default() },
        });
    }
    DescribeTransactionsResponse { transaction_states, ..DescribeTransactionsResponse::default() }
}
