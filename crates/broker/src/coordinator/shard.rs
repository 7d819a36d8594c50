//! The group coordinator's shard as the coordinator runtime drives it.

use crate::coordinator_runtime::{CoordinatorShard, Writes};
use bytes::Bytes;
use gregor_group::{CoordinatorRecord, Effects, GroupConfig, GroupCoordinatorShard};
use gregor_protocol::ErrorCode;
use gregor_storage::AppendError;

impl CoordinatorShard for GroupCoordinatorShard {
    type Config = GroupConfig;
    type Record = CoordinatorRecord;
    type Effects = Effects;
    /// Group decisions hand back nothing besides records and answers.
    type FollowUp = std::convert::Infallible;
    const KIND: &'static str = "group";
    const TOPIC_MISSING: ErrorCode = ErrorCode::CoordinatorNotAvailable;

    fn new(partition: i32, _leader_epoch: i32, config: GroupConfig) -> Self {
        GroupCoordinatorShard::new(partition, config)
    }

    fn config(&self) -> &GroupConfig {
        GroupCoordinatorShard::config(self)
    }

    fn set_config(&mut self, config: GroupConfig) {
        GroupCoordinatorShard::set_config(self, config);
    }

    fn encode(record: &CoordinatorRecord) -> Result<(Bytes, Option<Bytes>), String> {
        record.encode().map_err(|error| error.to_string())
    }

    fn decode(key: Bytes, value: Option<Bytes>) -> Result<Option<CoordinatorRecord>, String> {
        CoordinatorRecord::decode(key, value).map_err(|error| error.to_string())
    }

    fn replay(&mut self, producer_id: Option<i64>, record: CoordinatorRecord) {
        match producer_id {
            Some(producer_id) => self.replay_transactional(producer_id, record),
            None => GroupCoordinatorShard::replay(self, record),
        }
    }

    fn replay_end_transaction(&mut self, producer_id: i64, commit: bool) {
        self.replay_end_transaction_marker(producer_id, commit);
    }

    fn finish_load(&mut self, now_ms: i64) -> Effects {
        GroupCoordinatorShard::finish_load(self, now_ms);
        Effects::default()
    }

    fn next_deadline_ms(&self) -> Option<i64> {
        GroupCoordinatorShard::next_deadline_ms(self)
    }

    fn poll_timers(&mut self, now_ms: i64) -> Effects {
        GroupCoordinatorShard::poll_timers(self, now_ms)
    }

    fn into_writes(effects: Effects) -> Writes<Self> {
        let Effects { records, replies, transactional } = effects;
        Writes { records, replies, transactional, follow_ups: Vec::new() }
    }

    /// A transactional write (TxnOffsetCommit) answers the storage's error after
    /// Kafka's `handleOperationException` normalisation (an INVALID_PRODUCER_EPOCH
    /// for a fenced producer); every other failed write answers NOT_COORDINATOR.
    fn write_error(append: Option<&AppendError>, transactional: bool) -> ErrorCode {
        let Some(error) = append.filter(|_| transactional) else { return ErrorCode::NotCoordinator };
        match error.error_code() {
            ErrorCode::UnknownTopicOrPartition | ErrorCode::NotEnoughReplicas | ErrorCode::RequestTimedOut => {
                ErrorCode::CoordinatorNotAvailable
            }
            ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
            ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge | ErrorCode::InvalidFetchSize => {
                ErrorCode::UnknownServerError
            }
            other => other,
        }
    }
}
