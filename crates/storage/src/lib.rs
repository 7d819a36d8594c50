//! # gregor-storage
//!
//! Partition logs in Kafka's on-disk layout.
//!
//! **Owns:** a partition's directory `<topic>-<partition>/` of segments
//! (`<20-digit base offset>.log` with its sparse `.index` and `.timeindex`), appending
//! validated batches with offsets assigned in the header, appending a leader's batches
//! as they are on a replica and truncating a replica's diverged tail (`log/replica.rs`),
//! reading stored bytes back without re-encoding, rolling, crash recovery of a torn
//! tail, retention, the log start offset, log compaction for `cleanup.policy=compact`
//! (see `log/compact.rs`), the leader-epoch cache, idempotent-producer state and its
//! snapshots, the checkpoint files, and the flush policy.
//!
//! **Never:** sockets, async runtimes, coordinators or cluster metadata. Every call is
//! blocking file I/O; the broker runs it off its reactor threads.
//!
//! On disk, per partition directory:
//! - `<offset>.log`: the batches exactly as appended (offsets, leader epoch and, for
//!   log-append-time topics, the max timestamp stamped in the header), or as the
//!   cleaner rewrote them (same offsets, superseded records gone).
//! - `<offset>.index`: 8-byte big-endian entries (relative offset u32, position u32),
//!   one per `index.interval.bytes`, exactly as many bytes as entries.
//! - `<offset>.timeindex`: 12-byte entries (timestamp i64, relative offset u32), only
//!   when the segment's max timestamp grows.
//! - `<offset>.txnindex`: aborted transactions whose abort marker is in the segment,
//!   34-byte entries in Kafka's format (see `txn_index.rs`); only once there is one.
//! - `<offset>.snapshot`: producer state at that offset (version u16, CRC-32C u32 of
//!   the rest, then the producers with their open transactions), written on roll
//!   and shutdown.
//! - `leader-epoch-checkpoint`: Kafka's text format.
//! - `<offset>.log.cleaned` / `.swap` (and their indexes): the cleaner's output
//!   before and while it replaces old segments; an open discards `.cleaned` and
//!   completes a `.swap`.
//!
//! Segment, index and txn-index files are opened on demand and the coldest closed
//! under a budget of open descriptors shared by a [`LogManager`] (`handles.rs`).
//!
//! Per log directory: `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
//! `cleaner-offset-checkpoint` (Kafka's text format), `.lock` and the
//! `.kafka_cleanshutdown` marker.

mod checkpoint;
mod config;
mod epoch;
mod error;
mod handles;
mod index;
pub mod io;
mod log;
mod manager;
mod producer;
mod segment;
mod txn_index;

pub use config::{LogConfig, TopicPartition};
pub use error::{AppendError, ReadError, RecordErrors, StorageError};
pub use handles::{nofile_limits, open_files_max_for_process, raise_nofile_limit};
pub use io::FileRegion;
pub use log::{
    AbortedTxn, AppendInfo, CompactionStats, Log, OpenOptions, ReadInfo, RegionRead, TimestampOffset, TxnMarker,
    TxnVerifier,
};
pub use manager::{LogDirInfo, LogManager, PartitionSize};
pub use producer::ProducerStateEntry;
