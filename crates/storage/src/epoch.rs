//! The leader-epoch cache: for each leader epoch, the first offset written in
//! it, persisted as `leader-epoch-checkpoint`, with Kafka's OffsetForLeaderEpoch
//! semantics.
//!
//! The file is a cache of what the batch headers say (each carries the leader
//! epoch it was written in): an unreadable one is rebuilt from them, and one left
//! stale by a failed write after a truncation is corrected at the next open, so
//! truncations only log a failed write. Assigning a new epoch must be on disk
//! before data of that epoch is, so it fails (and is undone) when the write does.

use std::path::{Path, PathBuf};

use crate::checkpoint::{read_epochs, write_epochs, LEADER_EPOCH_CHECKPOINT};
use crate::error::StorageError;

#[derive(Debug)]
pub(crate) struct LeaderEpochCache {
    path: PathBuf,
    /// Ascending in both epoch and start offset.
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    /// Reads `leader-epoch-checkpoint`; a `Corrupt` error when it is unreadable
    /// (see [`LeaderEpochCache::rebuild`]).
    pub fn load(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let mut entries = read_epochs(&path)?;
        // Keep only a strictly increasing prefix should the file be odd.
        let mut clean: Vec<(i32, i64)> = Vec::with_capacity(entries.len());
        for (epoch, offset) in entries.drain(..) {
            if clean.last().is_none_or(|&(e, o)| epoch > e && offset >= o) {
                clean.push((epoch, offset));
            }
        }
        Ok(Self { path, entries: clean })
    }

    /// The cache from the batches' (leader epoch, base offset), in log order:
    /// each epoch starts at its first batch. Written out at once, a failure only
    /// logged (it stays correct in memory and is rebuilt again at the next open).
    pub fn rebuild(dir: &Path, batches: impl IntoIterator<Item = (i32, i64)>) -> Self {
        let mut entries: Vec<(i32, i64)> = Vec::new();
        for (epoch, base_offset) in batches {
            if epoch >= 0 && entries.last().is_none_or(|&(latest, _)| epoch > latest) {
                entries.push((epoch, base_offset));
            }
        }
        let cache = Self { path: dir.join(LEADER_EPOCH_CHECKPOINT), entries };
        cache.persist_or_warn();
        cache
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|&(e, _)| e)
    }

    #[cfg(test)]
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// Records that `epoch` starts at `start_offset`. Entries it contradicts
    /// (a later-or-equal epoch, or a start at or beyond this one) are dropped.
    /// Returns whether anything changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<bool, StorageError> {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| latest >= epoch) {
            return Ok(false);
        }
        let before = self.entries.clone();
        self.entries.retain(|&(e, o)| e < epoch && o < start_offset);
        self.entries.push((epoch, start_offset));
        if let Err(e) = self.persist() {
            // No batch of the epoch is written unless the file names it.
            self.entries = before;
            return Err(e);
        }
        Ok(true)
    }

    /// Kafka's `endOffsetFor`: the largest epoch at or below the requested one
    /// and where the next epoch starts (the log end for the latest epoch).
    /// `None` stands for Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        if requested < 0 {
            return None;
        }
        if self.latest_epoch() == Some(requested) {
            return Some((requested, log_end_offset));
        }
        let higher = self.entries.iter().find(|&&(e, _)| e > requested)?;
        match self.entries.iter().rev().find(|&&(e, _)| e <= requested) {
            Some(&(floor, _)) => Some((floor, higher.1)),
            None => Some((requested, higher.1)),
        }
    }

    /// The log start moved: entries wholly before it go, and the one it
    /// falls in now starts there.
    pub fn truncate_from_start(&mut self, start_offset: i64) {
        let Some(keep_from) = self.entries.iter().rposition(|&(_, o)| o <= start_offset) else {
            return;
        };
        if keep_from == 0 && self.entries.first().is_some_and(|&(_, o)| o == start_offset) {
            return;
        }
        self.entries.drain(..keep_from);
        if let Some(first) = self.entries.first_mut() {
            first.1 = start_offset;
        }
        self.persist_or_warn();
    }

    /// The log was cut back to `end_offset`: epochs starting there or later go.
    pub fn truncate_from_end(&mut self, end_offset: i64) {
        let before = self.entries.len();
        self.entries.retain(|&(_, o)| o < end_offset);
        if self.entries.len() != before {
            self.persist_or_warn();
        }
    }

    /// Kafka's clearAndFlush, for a log emptied and restarted elsewhere.
    pub fn clear(&mut self) {
        if !self.entries.is_empty() {
            self.entries.clear();
            self.persist_or_warn();
        }
    }

    fn persist(&self) -> Result<(), StorageError> {
        write_epochs(&self.path, &self.entries)
    }

    /// For changes a stale file cannot contradict (see the module docs), so
    /// that retention and DeleteRecords free space on a full disk.
    fn persist_or_warn(&self) {
        if let Err(e) = self.persist() {
            tracing::warn!(error = %e, "leader-epoch-checkpoint not updated; it is corrected at the next open");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> (tempfile::TempDir, LeaderEpochCache) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochCache::load(dir.path()).unwrap();
        for &(e, o) in entries {
            c.assign(e, o).unwrap();
        }
        (dir, c)
    }

    #[test]
    fn end_offset_follows_kafka() {
        let (_d, c) = cache(&[(1, 0), (3, 10), (5, 20)]);
        assert_eq!(c.end_offset_for(5, 30), Some((5, 30)));
        assert_eq!(c.end_offset_for(3, 30), Some((3, 20)));
        // Epoch 4 never led: the floor is 3 and it ended where 5 started.
        assert_eq!(c.end_offset_for(4, 30), Some((3, 20)));
        // Below the earliest known epoch: the requested epoch and the first start.
        assert_eq!(c.end_offset_for(0, 30), Some((0, 0)));
        assert_eq!(c.end_offset_for(6, 30), None);
        assert_eq!(c.end_offset_for(-1, 30), None);
    }

    #[test]
    fn assign_ignores_old_epochs_and_persists() {
        let (dir, mut c) = cache(&[(1, 0), (2, 5)]);
        assert!(!c.assign(1, 9).unwrap());
        assert!(!c.assign(2, 9).unwrap());
        let again = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(again.entries(), &[(1, 0), (2, 5)]);
    }

    #[test]
    fn truncation_from_either_end() {
        let (_d, mut c) = cache(&[(1, 0), (2, 5), (3, 9)]);
        c.truncate_from_start(6);
        assert_eq!(c.entries(), &[(2, 6), (3, 9)]);
        c.truncate_from_end(9);
        assert_eq!(c.entries(), &[(2, 6)]);
    }
}
