//! # gregor-metadata
//!
//! What the cluster metadata log means.
//!
//! **Owns:** the KRaft metadata records (topics, partitions, configs, producer-id blocks,
//! features, broker registrations) in Kafka's framing, the in-memory image they build,
//! and the controller's decisions: each operation reads the image and returns the records
//! to append plus a per-item result; the image changes only in `replay`.
//!
//! **Never:** I/O, async runtimes, clocks (time is an argument), or how the log is stored
//! and replicated (the broker appends the records; a later quorum replicates them).
