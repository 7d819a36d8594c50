//! # gregor-txn
//!
//! The transaction coordinator as a deterministic state machine, after Kafka's
//! `TransactionCoordinator`, `TransactionStateManager` and `TransactionMetadata`.
//!
//! **Owns:** transactional ids, their producer ids and epochs (fencing of zombies),
//! transaction states (Empty, Ongoing, PrepareCommit/PrepareAbort, CompleteCommit/
//! CompleteAbort), the partitions in each transaction, transaction timeouts, the
//! expiry of idle ids, and the `__transaction_state` records (Kafka's key and value
//! formats) that make all of that durable.
//!
//! **Never:** I/O, async runtimes, clocks, writing markers. Every entry point takes
//! the current time as an argument and returns [`Effects`]: the records to append,
//! the responses that are complete once they are durable, and the transaction
//! markers to write ([`MarkerRequest`]). The caller appends the records, feeds each
//! back through [`TxnCoordinatorShard::replay`], then sends the responses and writes
//! the markers; when a transaction's markers are written it calls
//! [`TxnCoordinatorShard::markers_written`], which completes the transaction. Durable
//! state changes only in `replay`, so loading a partition's log rebuilds exactly what
//! was acknowledged, and [`TxnCoordinatorShard::finish_load`] hands back the markers of
//! transactions a previous coordinator left half-finished.
//!
//! One [`TxnCoordinatorShard`] serves the transactional ids that hash to one partition
//! of `__transaction_state` ([`partition_for_transactional_id`]).

pub mod add_offsets;
pub mod add_partitions;
pub mod admin;
pub mod config;
pub mod end_txn;
pub mod error;
pub mod init_producer_id;
pub mod record;
pub mod shard;
pub mod state;

#[cfg(test)]
mod tests;

pub use config::TxnConfig;
pub use error::TxnError;
pub use record::{partition_for_transactional_id, TxnRecord, TxnValue};
pub use shard::{Effects, MarkerRequest, ReplyId, RequestContext, TxnCoordinatorShard};
pub use state::{TransactionMetadata, TxnState};
