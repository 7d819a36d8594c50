//! The broker settings the transaction coordinator obeys, copied out of the broker
//! config so this crate does not depend on it.

/// Transaction coordinator limits (Kafka's `transaction.*` and `transactional.id.*`
/// keys), with Kafka's defaults.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`: the largest `transaction.timeout.ms` a producer may
    /// ask for (InitProducerId answers INVALID_TRANSACTION_TIMEOUT above it).
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: a transactional id idle this long in Empty,
    /// CompleteCommit or CompleteAbort is removed (a tombstone).
    pub transactional_id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often
    /// transactions open past their timeout are looked for and aborted.
    pub abort_timed_out_transaction_cleanup_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`: how often expired
    /// transactional ids are looked for.
    pub remove_expired_transaction_cleanup_interval_ms: i64,
    /// The finalized `transaction.version` feature level: 0 writes value version 0
    /// records (as Kafka 3.x), 1 and above write the flexible value version 1; 2
    /// enables KIP-890's epoch bump per transaction for clients that use it.
    pub transaction_version: i16,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
            abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            remove_expired_transaction_cleanup_interval_ms: 3_600_000,
            transaction_version: 0,
        }
    }
}
