//! The transaction coordinator's shard as the coordinator runtime drives it.

use crate::coordinator_runtime::{CoordinatorShard, Writes};
use bytes::Bytes;
use gregor_protocol::ErrorCode;
use gregor_storage::AppendError;
use gregor_txn::{Effects, MarkerRequest, TxnConfig, TxnCoordinatorShard, TxnRecord};

impl CoordinatorShard for TxnCoordinatorShard {
    type Config = TxnConfig;
    type Record = TxnRecord;
    type Effects = Effects;
    /// The markers to write for a transaction that is completing.
    type FollowUp = MarkerRequest;
    const KIND: &'static str = "transaction";
    const TOPIC_MISSING: ErrorCode = ErrorCode::NotCoordinator;

    /// The coordinator epoch is the partition's leader epoch, as in Kafka.
    fn new(partition: i32, leader_epoch: i32, config: TxnConfig) -> Self {
        TxnCoordinatorShard::new(partition, leader_epoch, config)
    }

    fn config(&self) -> &TxnConfig {
        TxnCoordinatorShard::config(self)
    }

    fn set_config(&mut self, config: TxnConfig) {
        TxnCoordinatorShard::set_config(self, config);
    }

    fn encode(record: &TxnRecord) -> Result<(Bytes, Option<Bytes>), String> {
        record.encode().map_err(|error| error.to_string())
    }

    fn decode(key: Bytes, value: Option<Bytes>) -> Result<Option<TxnRecord>, String> {
        TxnRecord::decode(key, value).map(Some).map_err(|error| error.to_string())
    }

    /// `__transaction_state` holds no transactional batches.
    fn replay(&mut self, _producer_id: Option<i64>, record: TxnRecord) {
        TxnCoordinatorShard::replay(self, record);
    }

    /// `__transaction_state` holds no markers.
    fn replay_end_transaction(&mut self, _producer_id: i64, _commit: bool) {}

    fn finish_load(&mut self, now_ms: i64) -> Effects {
        TxnCoordinatorShard::finish_load(self, now_ms)
    }

    fn next_deadline_ms(&self) -> Option<i64> {
        TxnCoordinatorShard::next_deadline_ms(self)
    }

    fn poll_timers(&mut self, now_ms: i64) -> Effects {
        TxnCoordinatorShard::poll_timers(self, now_ms)
    }

    fn into_writes(effects: Effects) -> Writes<Self> {
        let Effects { records, replies, markers } = effects;
        Writes { records, replies, transactional: None, follow_ups: markers }
    }

    /// After Kafka's `TransactionStateManager.appendTransactionToLog` normalisation.
    fn write_error(append: Option<&AppendError>, _transactional: bool) -> ErrorCode {
        let Some(error) = append else { return ErrorCode::UnknownServerError };
        match error.error_code() {
            ErrorCode::UnknownTopicOrPartition
            | ErrorCode::NotEnoughReplicas
            | ErrorCode::NotEnoughReplicasAfterAppend
            | ErrorCode::RequestTimedOut => ErrorCode::CoordinatorNotAvailable,
            ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
            _ => ErrorCode::UnknownServerError,
        }
    }
}
