//! ListTransactions (key 66), v0-v2: the transactions of every shard this node hosts,
//! filtered by state, producer id, duration (v1+) and transactional id pattern (v2+)
//! in `gregor_txn::admin`. Unknown state filters are echoed back; an invalid pattern
//! answers INVALID_REGULAR_EXPRESSION; while a shard is still loading the answer is
//! COORDINATOR_LOAD_IN_PROGRESS, as Kafka answers.
//!
//! With an authorizer, only the ids the client may DESCRIBE are listed.

use crate::broker::Broker;
use crate::request_context::RequestContext;
use crate::time::now_ms;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::list_transactions_request::ListTransactionsRequest;
use gregor_protocol::messages::list_transactions_response::ListTransactionsResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use gregor_txn::{TxnConfig, TxnCoordinatorShard};
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let now = now_ms();
    // The filters' own answer (unknown states, a bad pattern) from an empty shard.
    let mut response = TxnCoordinatorShard::new(-1, 0, TxnConfig::default()).list_transactions(&request, now);
    if response.error_code != ErrorCode::None.code() {
        return response;
    }
    let (states, error) =
        broker.txns.visit_all(move |shard| shard.list_transactions(&request, now).transaction_states).await;
    if let Some(code) = error {
        response.error_code = code.code();
        return response;
    }
    let access = broker.access(context);
    response.transaction_states = states
        .into_iter()
        .filter(|state| access.allows_transactional_id(operation::DESCRIBE, &state.transactional_id))
        .collect();
    response
}
