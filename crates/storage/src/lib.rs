//! # gregor-storage
//!
//! Partition logs in Kafka's on-disk layout.
//!
//! **Owns:** a partition's directory `<topic>-<partition>/` of segments
//! (`<20-digit base offset>.log` with its sparse `.index` and `.timeindex`), appending
//! validated batches with offsets assigned in the header, reading stored bytes back
//! without re-encoding, rolling, crash recovery of a torn tail, retention, the log start
//! offset, the leader-epoch cache, idempotent-producer state and its snapshots, the
//! checkpoint files, and the flush policy.
//!
//! **Never:** sockets, async runtimes, coordinators or cluster metadata. Every call is
//! blocking file I/O; the broker runs it off its reactor threads.
