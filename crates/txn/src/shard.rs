//! One shard of the transaction coordinator: the transactional ids of one
//! `__transaction_state` partition, record replay, marker completion and the periodic
//! scans (timed-out transactions, expired ids).
//!
//! The per-API logic lives in `init_producer_id.rs`, `add_partitions.rs`,
//! `add_offsets.rs`, `end_txn.rs` and `admin.rs` (ListTransactions,
//! DescribeTransactions) as further `impl` blocks of [`TxnCoordinatorShard`].

use crate::config::TxnConfig;
use crate::record::{TxnRecord, TxnValue};
use crate::state::{TransactionMetadata, TxnState, NO_PRODUCER_EPOCH, NO_PRODUCER_ID};
use gregor_protocol::{ErrorCode, ResponseBody};
use std::collections::{BTreeMap, HashMap};

/// Identifies one outstanding request; the caller picks it and maps it back to the
/// connection waiting for the answer.
pub type ReplyId = u64;

/// What the shard knows about the request it is handling.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request's API version (answers and error codes are shaped by it).
    pub api_version: i16,
    pub now_ms: i64,
    /// Where this request's own answer goes.
    pub reply: ReplyId,
}

/// Transaction markers the broker must write: one control batch (commit or abort) for
/// `producer_id`/`producer_epoch` in each of `partitions`, data partitions and the
/// `__consumer_offsets` partitions of groups added with AddOffsetsToTxn alike (as a
/// WriteTxnMarkers request to each partition's leader). When every partition has the
/// marker, the broker calls [`TxnCoordinatorShard::markers_written`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerRequest {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The leader epoch of this `__transaction_state` partition when the shard decided;
    /// partition leaders reject markers of an older coordinator epoch.
    pub coordinator_epoch: i32,
    /// Commit (true) or abort (false).
    pub commit: bool,
    /// (topic, partition), sorted.
    pub partitions: Vec<(String, i32)>,
    /// The client's transaction version (WriteTxnMarkers v2's `transaction_version`).
    pub transaction_version: i16,
}

/// The outcome of one call, in the order the broker must apply it: append `records`
/// (in order) to the shard's partition and replay each into the shard; only once
/// they are durable send `replies` and start writing `markers`. If the append fails,
/// drop the replies (answer NOT_COORDINATOR) and the markers.
#[derive(Debug, Default)]
pub struct Effects {
    pub records: Vec<TxnRecord>,
    pub replies: Vec<(ReplyId, ResponseBody)>,
    pub markers: Vec<MarkerRequest>,
}

impl Effects {
    pub fn reply(&mut self, to: ReplyId, response: impl Into<ResponseBody>) {
        self.replies.push((to, response.into()));
    }

    pub fn extend(&mut self, other: Effects) {
        self.records.extend(other.records);
        self.replies.extend(other.replies);
        self.markers.extend(other.markers);
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.replies.is_empty() && self.markers.is_empty()
    }
}

/// State Kafka keeps in memory only; remembered at decision time and applied when the
/// matching record is replayed.
#[derive(Debug, Clone, Copy)]
struct InMemoryFields {
    producer_id: i64,
    producer_epoch: i16,
    last_producer_epoch: i16,
    previous_producer_id: i64,
}

/// The coordinator state of one `__transaction_state` partition.
#[derive(Debug)]
pub struct TxnCoordinatorShard {
    pub(crate) partition: i32,
    pub(crate) coordinator_epoch: i32,
    pub(crate) config: TxnConfig,
    pub(crate) txns: BTreeMap<String, TransactionMetadata>,
    in_memory: HashMap<String, InMemoryFields>,
    next_abort_scan_ms: Option<i64>,
    next_expiration_scan_ms: Option<i64>,
}

impl TxnCoordinatorShard {
    /// A shard for `partition`, led at `coordinator_epoch` (the partition's leader
    /// epoch). Replay its log, then call [`finish_load`](Self::finish_load).
    pub fn new(partition: i32, coordinator_epoch: i32, config: TxnConfig) -> Self {
        TxnCoordinatorShard {
            partition,
            coordinator_epoch,
            config,
            txns: BTreeMap::new(),
            in_memory: HashMap::new(),
            next_abort_scan_ms: None,
            next_expiration_scan_ms: None,
        }
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn coordinator_epoch(&self) -> i32 {
        self.coordinator_epoch
    }

    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    /// Replaces the settings (a dynamic config change); they apply to the next decision.
    pub fn set_config(&mut self, config: TxnConfig) {
        self.config = config;
    }

    pub fn transaction(&self, transactional_id: &str) -> Option<&TransactionMetadata> {
        self.txns.get(transactional_id)
    }

    pub fn transaction_count(&self) -> usize {
        self.txns.len()
    }

    /// Every transactional id this shard holds.
    pub fn transactions(&self) -> impl Iterator<Item = &TransactionMetadata> {
        self.txns.values()
    }

    /// Applies one record that is now durable (just appended, or read while loading).
    pub fn replay(&mut self, record: TxnRecord) {
        let TxnRecord { transactional_id, value } = record;
        let Some(value) = value else {
            self.txns.remove(&transactional_id);
            self.in_memory.remove(&transactional_id);
            return;
        };
        let remembered = self
            .in_memory
            .remove(&transactional_id)
            .filter(|fields| fields.producer_id == value.producer_id && fields.producer_epoch == value.producer_epoch);
        let existing = self.txns.get(&transactional_id);
        let (last_producer_epoch, previous_producer_id) = match (remembered, existing) {
            (Some(fields), _) => (fields.last_producer_epoch, fields.previous_producer_id),
            (None, Some(existing))
                if existing.producer_id == value.producer_id && existing.producer_epoch == value.producer_epoch =>
            {
                (existing.last_producer_epoch, existing.previous_producer_id)
            }
            _ => (NO_PRODUCER_EPOCH, NO_PRODUCER_ID),
        };
        let previous_producer_id = if value.previous_producer_id != NO_PRODUCER_ID {
            value.previous_producer_id
        } else {
            previous_producer_id
        };
        let metadata = TransactionMetadata {
            transactional_id: transactional_id.clone(),
            producer_id: value.producer_id,
            previous_producer_id,
            next_producer_id: value.next_producer_id,
            producer_epoch: value.producer_epoch,
            last_producer_epoch,
            timeout_ms: value.timeout_ms,
            state: value.state,
            partitions: value.partitions,
            start_timestamp_ms: value.start_timestamp_ms,
            last_update_timestamp_ms: value.last_update_timestamp_ms,
            client_transaction_version: value.client_transaction_version,
        };
        self.txns.insert(transactional_id, metadata);
    }

    /// Called once after the partition's log has been replayed (or for a new, empty
    /// partition): starts the periodic scans and re-emits the markers of every
    /// transaction left in PrepareCommit or PrepareAbort, as Kafka completes them
    /// after a failover.
    pub fn finish_load(&mut self, now_ms: i64) -> Effects {
        self.next_abort_scan_ms = Some(now_ms + self.config.abort_timed_out_transaction_cleanup_interval_ms);
        self.next_expiration_scan_ms = Some(now_ms + self.config.remove_expired_transaction_cleanup_interval_ms);
        let mut effects = Effects::default();
        for metadata in self.txns.values() {
            if metadata.state.is_prepare() {
                effects.markers.push(self.marker_request(metadata));
            }
        }
        effects
    }

    /// When [`poll_timers`](Self::poll_timers) next has something to do.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        match (self.next_abort_scan_ms, self.next_expiration_scan_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the scans that are due at `now_ms`: aborts transactions open past their
    /// timeout and removes expired transactional ids.
    pub fn poll_timers(&mut self, now_ms: i64) -> Effects {
        let mut effects = Effects::default();
        if self.next_abort_scan_ms.is_some_and(|due| due <= now_ms) {
            self.abort_timed_out_transactions(now_ms, &mut effects);
            self.next_abort_scan_ms = Some(now_ms + self.config.abort_timed_out_transaction_cleanup_interval_ms);
        }
        if self.next_expiration_scan_ms.is_some_and(|due| due <= now_ms) {
            self.remove_expired_transactional_ids(now_ms, &mut effects);
            self.next_expiration_scan_ms = Some(now_ms + self.config.remove_expired_transaction_cleanup_interval_ms);
        }
        effects
    }

    /// Kafka's `abortTimedOutTransactions`: every Ongoing transaction whose start plus
    /// timeout has passed is aborted with a bumped epoch (fencing its producer).
    pub fn abort_timed_out_transactions(&mut self, now_ms: i64, effects: &mut Effects) {
        let timed_out: Vec<TransactionMetadata> = self
            .txns
            .values()
            .filter(|txn| txn.state == TxnState::Ongoing && txn.start_timestamp_ms + i64::from(txn.timeout_ms) < now_ms)
            .cloned()
            .collect();
        for txn in timed_out {
            self.fence_and_abort(&txn, now_ms, effects);
        }
    }

    /// Kafka's `removeExpiredTransactionalIds`: ids idle for
    /// `transactional.id.expiration.ms` in Empty or Complete* get a tombstone.
    pub fn remove_expired_transactional_ids(&mut self, now_ms: i64, effects: &mut Effects) {
        let expiration = self.config.transactional_id_expiration_ms;
        for txn in self.txns.values() {
            if txn.state.is_expiration_allowed() && txn.last_update_timestamp_ms <= now_ms - expiration {
                effects.records.push(TxnRecord { transactional_id: txn.transactional_id.clone(), value: None });
            }
        }
    }

    /// The broker wrote (or failed to write) the markers of a transaction in
    /// PrepareCommit/PrepareAbort. On success the transaction moves to
    /// CompleteCommit/CompleteAbort (a record); on failure the markers are handed back
    /// to be retried. Stale acknowledgements (the transaction has moved on, another
    /// producer id or epoch) are ignored.
    pub fn markers_written(
        &mut self,
        ctx: &RequestContext,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        result: Result<(), ErrorCode>,
    ) -> Effects {
        let mut effects = Effects::default();
        let Some(txn) = self.txns.get(transactional_id) else { return effects };
        if txn.producer_id != producer_id || txn.producer_epoch != producer_epoch || !txn.state.is_prepare() {
            return effects;
        }
        if result.is_err() {
            effects.markers.push(self.marker_request(txn));
            return effects;
        }
        let next = complete_transition(txn, ctx.now_ms);
        self.transition(next, &mut effects);
        effects
    }

    /// The value version records are written at.
    pub(crate) fn value_version(&self) -> i16 {
        if self.config.transaction_version >= 1 {
            1
        } else {
            0
        }
    }

    /// Appends the record that moves a transactional id to `next`; the shard's state
    /// changes when it is replayed.
    pub(crate) fn transition(&mut self, next: TransactionMetadata, effects: &mut Effects) {
        self.in_memory.insert(
            next.transactional_id.clone(),
            InMemoryFields {
                producer_id: next.producer_id,
                producer_epoch: next.producer_epoch,
                last_producer_epoch: next.last_producer_epoch,
                previous_producer_id: next.previous_producer_id,
            },
        );
        let value = TxnValue {
            version: self.value_version(),
            producer_id: next.producer_id,
            previous_producer_id: next.previous_producer_id,
            next_producer_id: next.next_producer_id,
            producer_epoch: next.producer_epoch,
            timeout_ms: next.timeout_ms,
            state: next.state,
            partitions: next.partitions,
            last_update_timestamp_ms: next.last_update_timestamp_ms,
            start_timestamp_ms: next.start_timestamp_ms,
            client_transaction_version: next.client_transaction_version,
        };
        effects.records.push(TxnRecord { transactional_id: next.transactional_id, value: Some(value) });
    }

    pub(crate) fn marker_request(&self, txn: &TransactionMetadata) -> MarkerRequest {
        MarkerRequest {
            transactional_id: txn.transactional_id.clone(),
            producer_id: txn.producer_id,
            producer_epoch: txn.producer_epoch,
            coordinator_epoch: self.coordinator_epoch,
            commit: txn.state == TxnState::PrepareCommit,
            partitions: txn.partitions.iter().cloned().collect(),
            transaction_version: txn.client_transaction_version,
        }
    }

    /// Moves `txn` (Ongoing) to `prepared` (PrepareCommit or PrepareAbort): the record,
    /// and the markers to write once it is durable; with no partitions there is
    /// nothing to mark and the Complete record follows at once.
    pub(crate) fn prepare_end(&mut self, prepared: TransactionMetadata, now_ms: i64, effects: &mut Effects) {
        if prepared.partitions.is_empty() {
            let complete = complete_transition(&prepared, now_ms);
            self.transition(prepared, effects);
            self.transition(complete, effects);
        } else {
            effects.markers.push(self.marker_request(&prepared));
            self.transition(prepared, effects);
        }
    }

    /// Aborts an Ongoing transaction on the coordinator's own initiative (a new
    /// producer's InitProducerId, a timeout): the epoch is bumped so the old producer
    /// is fenced (Kafka's `prepareFenceProducerEpoch`, then PrepareAbort).
    pub(crate) fn fence_and_abort(&mut self, txn: &TransactionMetadata, now_ms: i64, effects: &mut Effects) {
        let mut prepared = txn.clone();
        if txn.producer_epoch < i16::MAX {
            prepared.producer_epoch = txn.producer_epoch + 1;
        }
        prepared.last_producer_epoch = NO_PRODUCER_EPOCH;
        prepared.state = TxnState::PrepareAbort;
        prepared.last_update_timestamp_ms = now_ms;
        self.prepare_end(prepared, now_ms, effects);
    }
}

/// Kafka's `prepareComplete`: PrepareCommit → CompleteCommit, PrepareAbort →
/// CompleteAbort, partitions cleared; a pending producer id rotation (KIP-890) takes
/// effect with epoch 0.
pub(crate) fn complete_transition(txn: &TransactionMetadata, now_ms: i64) -> TransactionMetadata {
    let mut next = txn.clone();
    next.state = if txn.state == TxnState::PrepareCommit { TxnState::CompleteCommit } else { TxnState::CompleteAbort };
    next.partitions.clear();
    next.last_update_timestamp_ms = now_ms;
    if txn.next_producer_id != NO_PRODUCER_ID {
        next.previous_producer_id = txn.producer_id;
        next.producer_id = txn.next_producer_id;
        next.producer_epoch = 0;
        next.next_producer_id = NO_PRODUCER_ID;
    }
    next
}

/// Kafka answers older clients that do not know PRODUCER_FENCED with
/// INVALID_PRODUCER_EPOCH.
pub(crate) fn fenced_for_version(error: ErrorCode, api_version: i16, first_version_with_fenced: i16) -> ErrorCode {
    if error == ErrorCode::ProducerFenced && api_version < first_version_with_fenced {
        ErrorCode::InvalidProducerEpoch
    } else {
        error
    }
}
