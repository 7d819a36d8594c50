//! The quorum's durable state behind a small trait: the broker stores it in a
//! segment log and a state file, the simulation in memory that survives a
//! simulated crash.

use crate::QuorumError;
use raft::prelude::{Entry, HardState, Snapshot};
use std::sync::{Arc, Mutex};

/// What a node finds on disk at start.
#[derive(Debug, Clone, Default)]
pub struct DurableState {
    pub hard_state: HardState,
    /// The newest snapshot, if one was taken or received.
    pub snapshot: Option<Snapshot>,
    /// The entries after the snapshot, in index order.
    pub entries: Vec<Entry>,
}

/// Durable storage of the Raft log. Writes may be buffered until [`QuorumDisk::sync`];
/// the node syncs before it sends a message that depends on them (a vote, an
/// acknowledgement of entries), as Raft requires.
pub trait QuorumDisk: Send {
    fn load(&mut self) -> Result<DurableState, QuorumError>;
    /// Appends entries; an entry whose index is already held replaces it and
    /// everything after it.
    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), QuorumError>;
    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<(), QuorumError>;
    /// Keeps `snapshot` as the newest one; entries up to its index may be dropped.
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), QuorumError>;
    fn sync(&mut self) -> Result<(), QuorumError>;
}

/// A disk in memory, shared by clones: a simulated crash drops the node and
/// opens a new one on a clone, which sees only what was synced.
#[derive(Debug, Clone, Default)]
pub struct MemoryDisk {
    synced: Arc<Mutex<DurableState>>,
    pending: DurableState,
    dirty: bool,
}

impl MemoryDisk {
    fn synced(&self) -> std::sync::MutexGuard<'_, DurableState> {
        match self.synced.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The state a restart would find.
    pub fn durable(&self) -> DurableState {
        self.synced().clone()
    }
}

impl QuorumDisk for MemoryDisk {
    fn load(&mut self) -> Result<DurableState, QuorumError> {
        let synced = self.synced().clone();
        self.pending = synced;
        self.dirty = false;
        Ok(self.pending.clone())
    }

    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), QuorumError> {
        let Some(first) = entries.first() else { return Ok(()) };
        self.pending.entries.retain(|held| held.index < first.index);
        self.pending.entries.extend(entries.iter().cloned());
        self.dirty = true;
        Ok(())
    }

    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<(), QuorumError> {
        self.pending.hard_state = hard_state.clone();
        self.dirty = true;
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), QuorumError> {
        let index = snapshot.get_metadata().index;
        self.pending.entries.retain(|held| held.index > index);
        self.pending.snapshot = Some(snapshot.clone());
        self.dirty = true;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), QuorumError> {
        if self.dirty {
            let pending = self.pending.clone();
            *self.synced() = pending;
            self.dirty = false;
        }
        Ok(())
    }
}
