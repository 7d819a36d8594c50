//! A transaction's state and the metadata the coordinator keeps per transactional id,
//! after Kafka's `TransactionState` and `TransactionMetadata`.

use std::collections::BTreeSet;

/// `RecordBatch.NO_PRODUCER_ID`.
pub const NO_PRODUCER_ID: i64 = -1;
/// `RecordBatch.NO_PRODUCER_EPOCH`.
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// Whether `epoch` leaves no room for another bump that a client could use
/// (Kafka's `TransactionMetadata.isEpochExhausted`: `Short.MaxValue - 1` and above).
pub fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// The state of a transactional id; the discriminants are the bytes Kafka writes in
/// `TransactionLogValue.TransactionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction in progress (after InitProducerId).
    Empty = 0,
    /// Partitions have been added; the transaction is open.
    Ongoing = 1,
    /// EndTxn(commit) is durable; markers are being written.
    PrepareCommit = 2,
    /// EndTxn(abort), a fence or a timeout is durable; markers are being written.
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    /// The id is being removed (expired); never written as a value, a tombstone is.
    Dead = 6,
    /// Transient in Kafka while a new producer fences an ongoing transaction; this
    /// coordinator writes PrepareAbort with the bumped epoch directly, as Kafka ends up
    /// doing, so it is only ever read, never written.
    PrepareEpochFence = 7,
}

impl TxnState {
    pub fn from_byte(byte: i8) -> Option<TxnState> {
        Some(match byte {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    pub fn byte(self) -> i8 {
        self as i8
    }

    /// Kafka's state name, as ListTransactions and DescribeTransactions show it.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|state| state.name() == name)
    }

    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// States an idle transactional id may expire in.
    pub fn is_expiration_allowed(self) -> bool {
        matches!(self, TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort)
    }

    /// Prepare states: markers are outstanding.
    pub fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// What the coordinator knows about one transactional id: the last durable record,
/// plus `last_producer_epoch`, which Kafka keeps in memory only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last rotation (value version 1 only).
    pub previous_producer_id: i64,
    /// The producer id the next epoch bump moves to (KIP-890, value version 1 only).
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last InitProducerId bump, so a retried InitProducerId of a
    /// producer recovering its epoch (KIP-360) gets the same answer; -1 after a reload
    /// or a fence.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// The partitions in the transaction (topic, partition).
    pub partitions: BTreeSet<(String, i32)>,
    /// When the first partition was added (-1 when none was).
    pub start_timestamp_ms: i64,
    pub last_update_timestamp_ms: i64,
    /// The transaction version the client uses (2: KIP-890 epoch bump per transaction).
    pub client_transaction_version: i16,
}
