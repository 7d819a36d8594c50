//! # gregor-group
//!
//! The group coordinator as a deterministic state machine.
//!
//! **Owns:** classic consumer groups (JoinGroup/SyncGroup/Heartbeat/LeaveGroup, static
//! membership), KIP-848 consumer groups (ConsumerGroupHeartbeat, server-side assignors,
//! member epochs and reconciliation), committed offsets and their expiry, and the
//! `__consumer_offsets` records (Kafka's key and value formats) that make all of that
//! durable.
//!
//! **Never:** I/O, async runtimes, clocks, or how records are stored. Every entry point
//! takes the current time as an argument and returns [`Effects`]: the records to append
//! and the responses that are now complete. The caller appends the records, then feeds
//! each one back through [`GroupCoordinatorShard::replay`], and only then sends the
//! responses; durable state (offsets, consumer groups, the last stable classic-group
//! generation) changes only in `replay`, so loading a partition's log on start rebuilds
//! exactly the state that was acknowledged.
//!
//! TxnOffsetCommit's records are the one exception to "append, then `replay`": their
//! `Effects` say `transactional: Some((producer id, epoch))`, the caller appends them as
//! that producer's transactional batch and feeds them to
//! [`GroupCoordinatorShard::replay_transactional`], which keeps them *pending*; the
//! producer's COMMIT or ABORT marker on the partition, fed to
//! [`GroupCoordinatorShard::replay_end_transaction_marker`], commits or drops them.
//!
//! One [`GroupCoordinatorShard`] serves the groups that hash to one partition of
//! `__consumer_offsets` ([`partition_for_group`]). Classic groups also keep transient
//! state outside the log, as Kafka does: who is waiting in JoinGroup or SyncGroup, and
//! heartbeat deadlines. Timers are data ([`timer::Timers`]); the caller asks for
//! [`GroupCoordinatorShard::next_deadline_ms`] and calls
//! [`GroupCoordinatorShard::poll_timers`] when it passes.

pub mod admin;
pub mod assignor;
pub mod classic;
pub mod config;
pub mod consumer;
pub mod error;
pub mod offsets;
pub mod record;
pub mod shard;
pub mod timer;

#[cfg(test)]
mod tests;

pub use config::{ConsumerTiming, GroupConfig};
pub use error::GroupError;
pub use record::CoordinatorRecord;
pub use shard::{partition_for_group, Effects, GroupCoordinatorShard, ReplyId, RequestContext, TopicsView};
