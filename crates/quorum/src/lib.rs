//! The KRaft-style metadata quorum, on raft-rs.
//!
//! Owns: driving raft-rs (tick, step, propose, persist, apply), the durable-state
//! trait it persists through, and the frames voters exchange. The metadata
//! records themselves are opaque bytes here: the broker's metadata loader turns
//! committed entries into the image.
//!
//! Never: sockets, files, threads, tokio or the wall clock. The broker drives a
//! [`QuorumNode`] from one thread with a real clock, network and disk; the
//! simulation in `tests/` drives the same code with fake ones, deterministically.

mod disk;
mod error;
mod memory_log;
mod node;
pub mod wire;

pub use disk::{DurableState, MemoryDisk, QuorumDisk};
pub use error::QuorumError;
pub use memory_log::MemoryLog;
pub use node::{Applied, CommittedEntry, Output, QuorumNode, QuorumSettings, VoterProgress};
pub use raft::prelude::{Entry, EntryType, HardState, Message, MessageType, Snapshot};

/// An entry's bytes as the disk keeps them (raft-rs's protobuf form).
pub fn encode_entry(entry: &Entry) -> Result<Vec<u8>, QuorumError> {
    protobuf::Message::write_to_bytes(entry).map_err(|error| QuorumError::Malformed(error.to_string()))
}

/// The entry [`encode_entry`] wrote.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, QuorumError> {
    protobuf::Message::parse_from_bytes(bytes).map_err(|error| QuorumError::Malformed(error.to_string()))
}
