//! ListTransactions (v0-v2) and DescribeTransactions (v0), after Kafka's
//! `TransactionStateManager.listTransactionStates` and
//! `TransactionCoordinator.handleDescribeTransactions`. Both span every shard: the
//! broker asks each shard it leads and merges the answers.

use crate::shard::TxnCoordinatorShard;
use crate::state::{TransactionMetadata, TxnState};
use gregor_protocol::messages::describe_transactions_response::{self, TopicData};
use gregor_protocol::messages::list_transactions_request::ListTransactionsRequest;
use gregor_protocol::messages::list_transactions_response::{self, ListTransactionsResponse};
use gregor_protocol::ErrorCode;
use std::collections::BTreeMap;

impl TxnCoordinatorShard {
    /// This shard's part of a ListTransactions answer. `unknown_state_filters` holds the
    /// filters that name no state; an invalid `transactional_id_pattern` (v2, a regular
    /// expression that must match the whole id) is INVALID_REGULAR_EXPRESSION.
    pub fn list_transactions(&self, request: &ListTransactionsRequest, now_ms: i64) -> ListTransactionsResponse {
        let mut response = ListTransactionsResponse::default();
        let mut states = Vec::new();
        for name in &request.state_filters {
            match TxnState::from_name(name) {
                Some(state) => states.push(state),
                None => response.unknown_state_filters.push(name.clone()),
            }
        }
        let pattern = match request.transactional_id_pattern.as_deref() {
            Some(pattern) if !pattern.is_empty() => match regex::Regex::new(&format!("^(?:{pattern})$")) {
                Ok(regex) => Some(regex),
                Err(_) => {
                    response.error_code = ErrorCode::InvalidRegularExpression.code();
                    return response;
                }
            },
            _ => None,
        };
        let include = |txn: &TransactionMetadata| {
            txn.state != TxnState::Dead
                && (request.producer_id_filters.is_empty() || request.producer_id_filters.contains(&txn.producer_id))
                && (request.state_filters.is_empty() || states.contains(&txn.state))
                && (request.duration_filter < 0 || now_ms - txn.start_timestamp_ms > request.duration_filter)
                && match &pattern {
                    Some(regex) => regex.is_match(&txn.transactional_id),
                    None => true,
                }
        };
        response.transaction_states = self
            .txns
            .values()
            .filter(|txn| include(txn))
            .map(|txn| list_transactions_response::TransactionState {
                transactional_id: txn.transactional_id.clone(),
                producer_id: txn.producer_id,
                transaction_state: txn.state.name().to_string(),
                ..Default::default()
            })
            .collect();
        response
    }

    /// DescribeTransactions for ids this shard coordinates.
    pub fn describe_transactions(
        &self,
        transactional_ids: &[String],
    ) -> Vec<describe_transactions_response::TransactionState> {
        transactional_ids.iter().map(|id| self.describe_transaction(id)).collect()
    }

    fn describe_transaction(&self, transactional_id: &str) -> describe_transactions_response::TransactionState {
        let mut state = describe_transactions_response::TransactionState {
            transactional_id: transactional_id.to_string(),
            ..Default::default()
        };
        if transactional_id.is_empty() {
            state.error_code = ErrorCode::InvalidRequest.code();
            return state;
        }
        let Some(txn) = self.txns.get(transactional_id).filter(|txn| txn.state != TxnState::Dead) else {
            state.error_code = ErrorCode::TransactionalIdNotFound.code();
            return state;
        };
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &txn.partitions {
            topics.entry(topic.as_str()).or_default().push(*partition);
        }
        state.transaction_state = txn.state.name().to_string();
        state.transaction_timeout_ms = txn.timeout_ms;
        state.transaction_start_time_ms = txn.start_timestamp_ms;
        state.producer_id = txn.producer_id;
        state.producer_epoch = txn.producer_epoch;
        state.topics = topics
            .into_iter()
            .map(|(topic, partitions)| TopicData { topic: topic.to_string(), partitions, ..Default::default() })
            .collect();
        state
    }
}
