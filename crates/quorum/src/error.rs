//! The quorum's errors.

/// What can go wrong driving the quorum.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// Only the leader takes proposals; `leader` is the one this node knows of.
    #[error("this node is not the active controller (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    /// The durable state could not be read or written.
    #[error("quorum storage: {0}")]
    Disk(String),
    /// A message from a peer that raft-rs refused (an unknown peer, a local type).
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// A frame on the controller listener that does not decode.
    #[error("malformed quorum frame: {0}")]
    Malformed(String),
}
