//! DescribeTransactions (key 65), v0: each transactional id is described by the shard
//! of its `__transaction_state` partition (`gregor_txn::admin`): state, timeout,
//! start time, producer id and epoch, and the partitions in the transaction. An id
//! this node cannot serve answers NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS;
//! an unknown one TRANSACTIONAL_ID_NOT_FOUND.

use crate::broker::Broker;
use gregor_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use gregor_protocol::messages::describe_transactions_response::{DescribeTransactionsResponse, TransactionState};
use gregor_protocol::messages::RequestHeader;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let transaction_states = request
        .transactional_ids
        .into_iter()
        .map(|transactional_id| {
            let described = broker.txns.read(broker, &transactional_id, |shard| {
                shard.describe_transactions(std::slice::from_ref(&transactional_id))
            });
            match described {
                Ok(mut states) if !states.is_empty() => states.remove(0),
                Ok(_) => TransactionState { transactional_id, ..TransactionState::default() },
                Err(code) => {
                    TransactionState { transactional_id, error_code: code.code(), ..TransactionState::default() }
                }
            }
        })
        .collect();
    DescribeTransactionsResponse { transaction_states, ..DescribeTransactionsResponse::default() }
}
