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
