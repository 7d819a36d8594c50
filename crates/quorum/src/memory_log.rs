//! The Raft log as raft-rs reads it: the entries after the last snapshot, the hard
//! state and the voter set, in memory. The durable copy is the [`crate::QuorumDisk`];
//! this one is rebuilt from it at start and kept in step by [`crate::QuorumNode`].
//! Memory stays bounded because the node takes a snapshot and drops the entries
//! behind it every `metadata.log.max.record.bytes.between.snapshots`.

use bytes::Bytes;
use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};
use std::collections::VecDeque;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Debug, Default)]
struct Core {
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: SnapshotMetadata,
    snapshot_data: Bytes,
    /// `entries[i]` has index `snapshot.index + 1 + i`.
    entries: VecDeque<Entry>,
}

/// Shared between the node and raft-rs (which owns a clone inside its `RawNode`).
#[derive(Debug, Clone, Default)]
pub struct MemoryLog {
    core: Arc<RwLock<Core>>,
}

impl MemoryLog {
    fn read(&self) -> RwLockReadGuard<'_, Core> {
        match self.core.read() {
            Ok(core) => core,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, Core> {
        match self.core.write() {
            Ok(core) => core,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn set_conf_state(&self, conf_state: ConfState) {
        self.write().conf_state = conf_state;
    }

    pub fn conf_state(&self) -> ConfState {
        self.read().conf_state.clone()
    }

    pub fn hard_state(&self) -> HardState {
        self.read().hard_state.clone()
    }

    pub fn set_hard_state(&self, hard_state: HardState) {
        self.write().hard_state = hard_state;
    }

    pub fn set_commit(&self, commit: u64) {
        self.write().hard_state.commit = commit;
    }

    /// The snapshot the log starts after: its index, term and data.
    pub fn snapshot_point(&self) -> (u64, u64) {
        let core = self.read();
        (core.snapshot.index, core.snapshot.term)
    }

    /// Appends entries, first dropping any entries at or after the first new index
    /// (a leader overwriting a follower's unacknowledged suffix).
    pub fn append(&self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        let mut core = self.write();
        let snapshot_index = core.snapshot.index;
        // Entries the snapshot already covers are skipped.
        let skip = usize::try_from(snapshot_index.saturating_add(1).saturating_sub(first.index)).unwrap_or(usize::MAX);
        let Some(new) = entries.get(skip..) else { return };
        let Some(first_new) = new.first() else { return };
        let keep = usize::try_from(first_new.index - snapshot_index - 1).unwrap_or(usize::MAX);
        core.entries.truncate(keep);
        core.entries.extend(new.iter().cloned());
    }

    /// Replaces everything with a snapshot received from the leader.
    pub fn apply_snapshot(&self, snapshot: &Snapshot) {
        let mut core = self.write();
        let metadata = snapshot.get_metadata();
        core.entries.clear();
        core.hard_state.commit = core.hard_state.commit.max(metadata.index);
        core.hard_state.term = core.hard_state.term.max(metadata.term);
        core.conf_state = metadata.get_conf_state().clone();
        core.snapshot = metadata.clone();
        core.snapshot_data = snapshot.data.clone();
    }

    /// Drops the entries up to `index`, which a new snapshot with `data` covers.
    pub fn compact(&self, index: u64, term: u64, data: Bytes) {
        let mut core = self.write();
        if index <= core.snapshot.index {
            return;
        }
        let drop = usize::try_from(index - core.snapshot.index).unwrap_or(usize::MAX).min(core.entries.len());
        core.entries.drain(..drop);
        let conf_state = core.conf_state.clone();
        core.snapshot.index = index;
        core.snapshot.term = term;
        core.snapshot.set_conf_state(conf_state);
        core.snapshot_data = data;
    }

    /// The entries in `[low, high)` that are held, for tests and the disk.
    pub fn last_index(&self) -> u64 {
        let core = self.read();
        core.snapshot.index + core.entries.len() as u64
    }

    /// The summed size of the entries held, which decides when to snapshot.
    pub fn entry_bytes(&self) -> u64 {
        self.read().entries.iter().map(|entry| entry.data.len() as u64 + 16).sum()
    }
}

impl raft::Storage for MemoryLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let core = self.read();
        Ok(RaftState { hard_state: core.hard_state.clone(), conf_state: core.conf_state.clone() })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let core = self.read();
        let first = core.snapshot.index + 1;
        if low < first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let last = core.snapshot.index + core.entries.len() as u64;
        if high > last + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let from = usize::try_from(low - first).unwrap_or(usize::MAX);
        let to = usize::try_from(high - first).unwrap_or(usize::MAX);
        let max_size = max_size.into();
        let mut entries = Vec::new();
        let mut size = 0u64;
        for entry in core.entries.range(from..to) {
            size += protobuf::Message::compute_size(entry) as u64;
            // At least one entry even when it alone is over the limit, as raft-rs expects.
            if !entries.is_empty() && max_size.is_some_and(|max| size > max) {
                break;
            }
            entries.push(entry.clone());
        }
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        let core = self.read();
        if index == core.snapshot.index {
            return Ok(core.snapshot.term);
        }
        if index < core.snapshot.index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let offset = usize::try_from(index - core.snapshot.index - 1).unwrap_or(usize::MAX);
        match core.entries.get(offset) {
            Some(entry) => Ok(entry.term),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.read().snapshot.index + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(MemoryLog::last_index(self))
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let core = self.read();
        if core.snapshot.index < request_index {
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        let mut snapshot = Snapshot::default();
        snapshot.set_metadata(core.snapshot.clone());
        snapshot.data = core.snapshot_data.clone();
        Ok(snapshot)
    }
}
