//! AddPartitionsToTxn, after Kafka's `handleAddPartitionsToTransaction` and
//! `handleVerifyPartitionsInTransaction`: v0-v3 carry one transaction (clients,
//! librdkafka included); v4+ carry a batch of transactions from brokers, each either
//! added or, with `verify_only`, checked (are these partitions already in it?).

use crate::shard::{fenced_for_version, Effects, RequestContext, TxnCoordinatorShard};
use crate::state::{TransactionMetadata, TxnState};
use gregor_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnRequest, AddPartitionsToTxnTopic};
use gregor_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};
use gregor_protocol::ErrorCode;
use std::collections::BTreeMap;

/// The first AddPartitionsToTxn version that understands PRODUCER_FENCED.
const FENCED_SINCE_VERSION: i16 = 2;
/// The first batched version.
const BATCHED_SINCE_VERSION: i16 = 4;

type PartitionErrors = BTreeMap<(String, i32), ErrorCode>;

fn flatten(topics: &[AddPartitionsToTxnTopic]) -> Vec<(String, i32)> {
    let mut partitions: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|topic| topic.partitions.iter().map(move |partition| (topic.name.clone(), *partition)))
        .collect();
    partitions.sort();
    partitions.dedup();
    partitions
}

fn all(partitions: &[(String, i32)], error: ErrorCode) -> PartitionErrors {
    partitions.iter().map(|partition| (partition.clone(), error)).collect()
}

fn topic_results(errors: PartitionErrors) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut by_topic: BTreeMap<String, Vec<AddPartitionsToTxnPartitionResult>> = BTreeMap::new();
    for ((topic, partition), error) in errors {
        by_topic.entry(topic).or_default().push(AddPartitionsToTxnPartitionResult {
            partition_index: partition,
            partition_error_code: error.code(),
            ..Default::default()
        });
    }
    by_topic
        .into_iter()
        .map(|(name, results_by_partition)| AddPartitionsToTxnTopicResult {
            name,
            results_by_partition,
            ..Default::default()
        })
        .collect()
}

impl TxnCoordinatorShard {
    /// Handles AddPartitionsToTxn (all versions). `partition_exists` says whether a
    /// data partition exists (unknown ones fail with UNKNOWN_TOPIC_OR_PARTITION and the
    /// rest of that transaction with OPERATION_NOT_ATTEMPTED, as Kafka answers).
    pub fn add_partitions_to_txn(
        &mut self,
        ctx: &RequestContext,
        request: AddPartitionsToTxnRequest,
        partition_exists: &dyn Fn(&str, i32) -> bool,
    ) -> Effects {
        let mut effects = Effects::default();
        let version = ctx.api_version;
        let mut response = AddPartitionsToTxnResponse::default();
        if version < BATCHED_SINCE_VERSION {
            let partitions = flatten(&request.v3_and_below_topics);
            let errors = self.add_or_verify(
                ctx,
                &request.v3_and_below_transactional_id,
                request.v3_and_below_producer_id,
                request.v3_and_below_producer_epoch,
                &partitions,
                false,
                partition_exists,
                &mut effects,
            );
            response.results_by_topic_v3_and_below = topic_results(errors);
        } else {
            for transaction in &request.transactions {
                let partitions = flatten(&transaction.topics);
                let errors = self.add_or_verify(
                    ctx,
                    &transaction.transactional_id,
                    transaction.producer_id,
                    transaction.producer_epoch,
                    &partitions,
                    transaction.verify_only,
                    partition_exists,
                    &mut effects,
                );
                response.results_by_transaction.push(AddPartitionsToTxnResult {
                    transactional_id: transaction.transactional_id.clone(),
                    topic_results: topic_results(errors),
                    ..Default::default()
                });
            }
        }
        effects.reply(ctx.reply, response);
        effects
    }

    #[allow(clippy::too_many_arguments)]
    fn add_or_verify(
        &mut self,
        ctx: &RequestContext,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        verify_only: bool,
        partition_exists: &dyn Fn(&str, i32) -> bool,
        effects: &mut Effects,
    ) -> PartitionErrors {
        let missing: Vec<&(String, i32)> =
            partitions.iter().filter(|(topic, partition)| !partition_exists(topic, *partition)).collect();
        if !missing.is_empty() {
            let mut errors = all(partitions, ErrorCode::OperationNotAttempted);
            for partition in missing {
                errors.insert(partition.clone(), ErrorCode::UnknownTopicOrPartition);
            }
            return errors;
        }
        if verify_only {
            return match self.verify_partitions(transactional_id, producer_id, producer_epoch, partitions) {
                Ok(errors) => errors,
                Err(error) => all(partitions, error),
            };
        }
        let error = self.add_partitions(ctx.now_ms, transactional_id, producer_id, producer_epoch, partitions, effects);
        all(partitions, fenced_for_version(error, ctx.api_version, FENCED_SINCE_VERSION))
    }

    /// Adds partitions to a transaction (Empty/Complete* → Ongoing, or more partitions
    /// for an Ongoing one); the answer for every partition of the request.
    pub(crate) fn add_partitions(
        &mut self,
        now_ms: i64,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        effects: &mut Effects,
    ) -> ErrorCode {
        if transactional_id.is_empty() {
            return ErrorCode::InvalidRequest;
        }
        let Some(txn) = self.txns.get(transactional_id) else { return ErrorCode::InvalidProducerIdMapping };
        if txn.producer_id != producer_id {
            return ErrorCode::InvalidProducerIdMapping;
        }
        if txn.producer_epoch != producer_epoch {
            return ErrorCode::ProducerFenced;
        }
        match txn.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => return ErrorCode::ConcurrentTransactions,
            TxnState::Ongoing if partitions.iter().all(|partition| txn.partitions.contains(partition)) => {
                return ErrorCode::None;
            }
            TxnState::Dead | TxnState::PrepareEpochFence => return ErrorCode::InvalidTxnState,
            _ => {}
        }
        let start_timestamp_ms = if txn.state == TxnState::Ongoing { txn.start_timestamp_ms } else { now_ms };
        let mut next: TransactionMetadata = txn.clone();
        next.state = TxnState::Ongoing;
        next.partitions.extend(partitions.iter().cloned());
        next.start_timestamp_ms = start_timestamp_ms;
        next.last_update_timestamp_ms = now_ms;
        self.transition(next, effects);
        ErrorCode::None
    }

    /// Whether every one of `partitions` is in the transaction of `transactional_id`
    /// with this producer id and epoch (the check of a v4+ `verify_only` request, also
    /// used directly by the produce path of this node). Read-only.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<PartitionErrors, ErrorCode> {
        if transactional_id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        let txn = self.txns.get(transactional_id).ok_or(ErrorCode::InvalidProducerIdMapping)?;
        if txn.producer_id != producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if txn.producer_epoch != producer_epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        if txn.state.is_prepare() {
            return Err(ErrorCode::ConcurrentTransactions);
        }
        Ok(partitions
            .iter()
            .map(|partition| {
                let error =
                    if txn.partitions.contains(partition) { ErrorCode::None } else { ErrorCode::TransactionAbortable };
                (partition.clone(), error)
            })
            .collect())
    }
}
