//! Idempotent and transactional producer state (Kafka's ProducerStateManager
//! semantics): per producer id the epoch, the last five batches, the
//! coordinator epoch of the last marker and the first offset of the open
//! transaction; sequence and epoch checks, duplicate detection, transaction
//! markers, snapshots to `<20-digit offset>.snapshot` (every field above, so
//! open transactions survive a restart) and expiration.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use gregor_protocol::records::{RecordBatchHeader, NO_PRODUCER_EPOCH, NO_SEQUENCE};

use crate::error::{AppendError, StorageError};
use crate::io::write_atomically;
use crate::segment::{file_name, parse_file_name};

pub(crate) const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Kafka keeps this many batches per producer for duplicate detection.
const BATCHES_RETAINED: usize = 5;
const SNAPSHOT_VERSION: u16 = 1;
/// Snapshots kept after writing a new one: the newest and one before it.
const SNAPSHOTS_RETAINED: usize = 2;

/// A producer as DescribeProducers shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp_ms: i64,
    pub coordinator_epoch: i32,
    /// First offset of the producer's open transaction, or -1.
    pub current_txn_start_offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Producer {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
    last_timestamp_ms: i64,
    coordinator_epoch: i32,
    txn_start_offset: i64,
}

impl Producer {
    fn empty() -> Self {
        Self {
            epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            last_timestamp_ms: -1,
            coordinator_epoch: -1,
            txn_start_offset: -1,
        }
    }

    fn last_sequence(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_sequence)
    }

    /// Records a batch; a new epoch forgets the old epoch's batches.
    fn add(&mut self, header: &RecordBatchHeader) {
        if header.producer_epoch != self.epoch {
            self.epoch = header.producer_epoch;
            self.batches.clear();
        }
        if header.base_sequence != NO_SEQUENCE {
            self.batches.push_back(BatchMeta {
                first_sequence: header.base_sequence,
                last_sequence: increment_sequence(header.base_sequence, header.last_offset_delta),
                first_offset: header.base_offset,
                last_offset: header.last_offset(),
                timestamp_ms: header.max_timestamp,
            });
            while self.batches.len() > BATCHES_RETAINED {
                self.batches.pop_front();
            }
        }
        self.last_timestamp_ms = header.max_timestamp;
        if header.is_transactional() && self.txn_start_offset < 0 {
            self.txn_start_offset = header.base_offset;
        }
    }

    /// Applies a commit or abort marker (Kafka's appendEndTxnMarker): a new
    /// epoch forgets the old batches, the coordinator epoch is remembered and
    /// the open transaction, if any, is completed.
    fn end_txn(&mut self, producer_id: i64, header: &RecordBatchHeader, marker: Marker) -> Option<CompletedTxn> {
        let completed = (self.txn_start_offset >= 0).then_some(CompletedTxn {
            producer_id,
            first_offset: self.txn_start_offset,
            last_offset: header.base_offset,
            aborted: !marker.commit,
        });
        if header.producer_epoch != self.epoch {
            self.epoch = header.producer_epoch;
            self.batches.clear();
        }
        self.coordinator_epoch = marker.coordinator_epoch;
        self.last_timestamp_ms = header.max_timestamp;
        self.txn_start_offset = -1;
        completed
    }
}

/// What a commit or abort marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Marker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// A transaction a marker ended (Kafka's CompletedTxn): `last_offset` is the
/// marker's offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub aborted: bool,
}

/// Sequences wrap from i32::MAX to 0.
pub(crate) fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

fn in_sequence(last_sequence: i32, next_sequence: i32) -> bool {
    if last_sequence == i32::MAX {
        next_sequence == 0
    } else {
        next_sequence == last_sequence + 1
    }
}

/// The outcome of checking one batch against producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    Append,
    /// Already in the log at these offsets, stamped with this max timestamp.
    Duplicate {
        first_offset: i64,
        last_offset: i64,
        timestamp_ms: i64,
    },
}

#[derive(Debug, Default)]
pub(crate) struct ProducerStateManager {
    producers: HashMap<i64, Producer>,
}

/// Updates checked for one append, applied only once the bytes are written.
#[derive(Debug, Default)]
pub(crate) struct StagedProducers {
    producers: HashMap<i64, Producer>,
}

impl ProducerStateManager {
    /// Checks `header` (offsets already assigned) against the committed state
    /// and earlier batches of the same append, staging the update.
    pub fn check(
        &self,
        header: &RecordBatchHeader,
        staged: &mut StagedProducers,
    ) -> Result<SequenceCheck, AppendError> {
        let producer_id = header.producer_id;
        if producer_id < 0 {
            return Ok(SequenceCheck::Append);
        }
        let committed = self.producers.get(&producer_id);
        if let Some(current) = committed {
            if current.epoch == header.producer_epoch && header.base_sequence != NO_SEQUENCE {
                let last_sequence = increment_sequence(header.base_sequence, header.last_offset_delta);
                if let Some(dup) = current
                    .batches
                    .iter()
                    .find(|b| b.first_sequence == header.base_sequence && b.last_sequence == last_sequence)
                {
                    return Ok(SequenceCheck::Duplicate {
                        first_offset: dup.first_offset,
                        last_offset: dup.last_offset,
                        timestamp_ms: dup.timestamp_ms,
                    });
                }
            }
        }
        let entry =
            staged.producers.entry(producer_id).or_insert_with(|| committed.cloned().unwrap_or_else(Producer::empty));
        if header.producer_epoch < entry.epoch {
            return Err(AppendError::InvalidProducerEpoch {
                producer_id,
                epoch: header.producer_epoch,
                current_epoch: entry.epoch,
            });
        }
        if header.base_sequence != NO_SEQUENCE {
            if header.producer_epoch != entry.epoch {
                if header.base_sequence != 0 && entry.epoch != NO_PRODUCER_EPOCH {
                    return Err(AppendError::OutOfOrderSequence {
                        producer_id,
                        message: format!(
                            "new epoch {} must start at sequence 0, got {}",
                            header.producer_epoch, header.base_sequence
                        ),
                    });
                }
            } else if entry.epoch != NO_PRODUCER_EPOCH && !in_sequence(entry.last_sequence(), header.base_sequence) {
                return Err(AppendError::OutOfOrderSequence {
                    producer_id,
                    message: format!(
                        "expected sequence {} after {}, got {}",
                        increment_sequence(entry.last_sequence(), 1),
                        entry.last_sequence(),
                        header.base_sequence
                    ),
                });
            }
        }
        if entry.txn_start_offset >= 0 && !header.is_transactional() {
            return Err(AppendError::InvalidTxnState {
                producer_id,
                message: format!(
                    "expected a transactional write from producer {producer_id} at offset {}: its transaction \
                     from offset {} is open",
                    header.base_offset, entry.txn_start_offset
                ),
            });
        }
        entry.add(header);
        Ok(SequenceCheck::Append)
    }

    /// Whether `producer_id` has a transaction open in this partition, counting the
    /// batches staged earlier in the same append.
    pub fn has_open_txn(&self, producer_id: i64, staged: &StagedProducers) -> bool {
        staged
            .producers
            .get(&producer_id)
            .or_else(|| self.producers.get(&producer_id))
            .is_some_and(|producer| producer.txn_start_offset >= 0)
    }

    /// Checks a commit or abort marker (its header, offsets assigned) for
    /// `header.producer_id` and stages it. Kafka's checks: an epoch older
    /// than the producer's is INVALID_PRODUCER_EPOCH, a coordinator epoch
    /// older than the last marker's is TRANSACTION_COORDINATOR_FENCED.
    /// Returns the transaction it completes, if one was open.
    pub fn check_marker(
        &self,
        header: &RecordBatchHeader,
        marker: Marker,
        staged: &mut StagedProducers,
    ) -> Result<Option<CompletedTxn>, AppendError> {
        let producer_id = header.producer_id;
        let entry = staged
            .producers
            .entry(producer_id)
            .or_insert_with(|| self.producers.get(&producer_id).cloned().unwrap_or_else(Producer::empty));
        if header.producer_epoch < entry.epoch {
            return Err(AppendError::InvalidProducerEpoch {
                producer_id,
                epoch: header.producer_epoch,
                current_epoch: entry.epoch,
            });
        }
        if marker.coordinator_epoch < entry.coordinator_epoch {
            return Err(AppendError::TransactionCoordinatorFenced {
                producer_id,
                coordinator_epoch: marker.coordinator_epoch,
                current_coordinator_epoch: entry.coordinator_epoch,
            });
        }
        Ok(entry.end_txn(producer_id, header, marker))
    }

    /// The LSO recorded with an aborted transaction in the txn index (Kafka's
    /// lastStableOffset(completedTxn)): the first offset of the oldest other
    /// open transaction, else the offset after the marker. Call it once the
    /// marker is applied.
    pub fn stable_offset_after(&self, completed: &CompletedTxn) -> i64 {
        self.producers
            .iter()
            .filter(|(&id, p)| id != completed.producer_id && p.txn_start_offset >= 0)
            .map(|(_, p)| p.txn_start_offset)
            .min()
            .unwrap_or(completed.last_offset + 1)
    }

    pub fn commit(&mut self, staged: StagedProducers) {
        self.producers.extend(staged.producers);
    }

    /// Replays a batch read back from the log, without checks; `marker` is
    /// the decoded marker of a control batch. Returns the transaction a
    /// marker completed.
    pub fn replay(&mut self, header: &RecordBatchHeader, marker: Option<Marker>) -> Option<CompletedTxn> {
        if header.producer_id < 0 {
            return None;
        }
        let producer = self.producers.entry(header.producer_id).or_insert_with(Producer::empty);
        match marker {
            Some(marker) => producer.end_txn(header.producer_id, header, marker),
            None if header.is_control() => None,
            None => {
                producer.add(header);
                None
            }
        }
    }

    /// Drops producers idle for `expiration_ms` with no open transaction.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers
            .retain(|_, p| p.txn_start_offset >= 0 || now_ms.saturating_sub(p.last_timestamp_ms) < expiration_ms);
    }

    /// The first offset of the oldest open transaction.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers.values().filter(|p| p.txn_start_offset >= 0).map(|p| p.txn_start_offset).min()
    }

    pub fn entries(&self) -> Vec<ProducerStateEntry> {
        let mut out: Vec<_> = self
            .producers
            .iter()
            .map(|(&producer_id, p)| ProducerStateEntry {
                producer_id,
                producer_epoch: p.epoch,
                last_sequence: p.last_sequence(),
                last_timestamp_ms: p.last_timestamp_ms,
                coordinator_epoch: p.coordinator_epoch,
                current_txn_start_offset: p.txn_start_offset,
            })
            .collect();
        out.sort_by_key(|e| e.producer_id);
        out
    }

    /// Writes `<offset>.snapshot` atomically and prunes older snapshots.
    pub fn write_snapshot(&self, dir: &Path, offset: i64) -> Result<(), StorageError> {
        write_snapshot_bytes(dir, offset, &self.encode())
    }

    /// The state as a snapshot file's bytes: a copy taken under the append lock,
    /// written later by [`write_snapshot_bytes`] off it.
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        self.encode()
    }

    /// Loads the newest readable snapshot at or below `max_offset`, deleting
    /// newer ones (they describe a log that was truncated) and unreadable ones.
    /// Returns the state and the offset the log must be replayed from.
    pub fn load_latest(dir: &Path, max_offset: i64) -> Result<(Self, Option<i64>), StorageError> {
        let mut snapshots = list_snapshots(dir)?;
        while let Some((offset, path)) = snapshots.pop() {
            if offset <= max_offset {
                let bytes = fs::read(&path).map_err(|e| StorageError::io(&path, e))?;
                if let Some(state) = Self::decode(&bytes) {
                    return Ok((state, Some(offset)));
                }
                tracing::warn!(snapshot = %path.display(), "ignoring unreadable producer snapshot");
            }
            fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
        }
        Ok((Self::default(), None))
    }

    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        body.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            let Some(p) = self.producers.get(&id) else { continue };
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&p.epoch.to_be_bytes());
            body.extend_from_slice(&p.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&p.txn_start_offset.to_be_bytes());
            body.extend_from_slice(&p.last_timestamp_ms.to_be_bytes());
            body.push(p.batches.len() as u8);
            for b in &p.batches {
                body.extend_from_slice(&b.first_sequence.to_be_bytes());
                body.extend_from_slice(&b.last_sequence.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
                body.extend_from_slice(&b.timestamp_ms.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(body.len() + 6);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        if u16::from_be_bytes(r.take()?) != SNAPSHOT_VERSION {
            return None;
        }
        let crc = u32::from_be_bytes(r.take()?);
        if crc32c::crc32c(r.0) != crc {
            return None;
        }
        let count = u32::from_be_bytes(r.take()?);
        let mut producers = HashMap::new();
        for _ in 0..count {
            let id = i64::from_be_bytes(r.take()?);
            let epoch = i16::from_be_bytes(r.take()?);
            let coordinator_epoch = i32::from_be_bytes(r.take()?);
            let txn_start_offset = i64::from_be_bytes(r.take()?);
            let last_timestamp_ms = i64::from_be_bytes(r.take()?);
            let [n] = r.take::<1>()?;
            let mut batches = VecDeque::with_capacity(usize::from(n));
            for _ in 0..n {
                batches.push_back(BatchMeta {
                    first_sequence: i32::from_be_bytes(r.take()?),
                    last_sequence: i32::from_be_bytes(r.take()?),
                    first_offset: i64::from_be_bytes(r.take()?),
                    last_offset: i64::from_be_bytes(r.take()?),
                    timestamp_ms: i64::from_be_bytes(r.take()?),
                });
            }
            producers.insert(id, Producer { epoch, batches, last_timestamp_ms, coordinator_epoch, txn_start_offset });
        }
        r.0.is_empty().then_some(Self { producers })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
}

/// Writes `<offset>.snapshot` (bytes from [`ProducerStateManager::snapshot_bytes`])
/// atomically and prunes older snapshots.
pub(crate) fn write_snapshot_bytes(dir: &Path, offset: i64, bytes: &[u8]) -> Result<(), StorageError> {
    let path = dir.join(file_name(offset, SNAPSHOT_SUFFIX));
    write_atomically(&path, bytes)?;
    let snapshots = list_snapshots(dir)?;
    let keep_from = snapshots.len().saturating_sub(SNAPSHOTS_RETAINED);
    for (_, old) in snapshots.iter().take(keep_from) {
        fs::remove_file(old).map_err(|e| StorageError::io(old, e))?;
    }
    Ok(())
}

/// Snapshot files of `dir`, oldest first.
pub(crate) fn list_snapshots(dir: &Path) -> Result<Vec<(i64, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        let name = entry.file_name();
        if let Some(offset) = name.to_str().and_then(|n| parse_file_name(n, SNAPSHOT_SUFFIX)) {
            out.push((offset, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::records::RecordBatchHeader;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, base_offset: i64) -> RecordBatchHeader {
        RecordBatchHeader {
            base_offset,
            batch_length: 49,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 1000,
            max_timestamp: 1000,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    fn append(m: &mut ProducerStateManager, h: RecordBatchHeader) -> Result<SequenceCheck, AppendError> {
        let mut staged = StagedProducers::default();
        let r = m.check(&h, &mut staged)?;
        m.commit(staged);
        Ok(r)
    }

    #[test]
    fn in_order_batches_append_and_exact_repeats_are_duplicates() {
        let mut m = ProducerStateManager::default();
        assert_eq!(append(&mut m, header(7, 0, 0, 3, 0)).unwrap(), SequenceCheck::Append);
        assert_eq!(append(&mut m, header(7, 0, 3, 2, 3)).unwrap(), SequenceCheck::Append);
        assert_eq!(
            append(&mut m, header(7, 0, 0, 3, 99)).unwrap(),
            SequenceCheck::Duplicate { first_offset: 0, last_offset: 2, timestamp_ms: 1000 }
        );
        assert_eq!(m.entries()[0].last_sequence, 4);
    }

    #[test]
    fn gaps_old_epochs_and_bad_new_epoch_starts_are_rejected() {
        let mut m = ProducerStateManager::default();
        append(&mut m, header(7, 1, 0, 1, 0)).unwrap();
        assert!(matches!(append(&mut m, header(7, 1, 5, 1, 1)), Err(AppendError::OutOfOrderSequence { .. })));
        assert!(matches!(append(&mut m, header(7, 0, 1, 1, 1)), Err(AppendError::InvalidProducerEpoch { .. })));
        assert!(matches!(append(&mut m, header(7, 2, 4, 1, 1)), Err(AppendError::OutOfOrderSequence { .. })));
        assert_eq!(append(&mut m, header(7, 2, 0, 1, 1)).unwrap(), SequenceCheck::Append);
        // A partially overlapping retry is not a duplicate but out of order.
        assert!(matches!(append(&mut m, header(7, 2, 0, 2, 2)), Err(AppendError::OutOfOrderSequence { .. })));
    }

    #[test]
    fn unknown_producers_may_start_anywhere_and_sequences_wrap() {
        let mut m = ProducerStateManager::default();
        append(&mut m, header(9, 0, i32::MAX - 1, 2, 0)).unwrap();
        assert_eq!(m.entries()[0].last_sequence, i32::MAX);
        assert_eq!(append(&mut m, header(9, 0, 0, 1, 2)).unwrap(), SequenceCheck::Append);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut m = ProducerStateManager::default();
        for i in 0..6 {
            append(&mut m, header(1, 0, i, 1, i64::from(i))).unwrap();
        }
        assert!(append(&mut m, header(1, 0, 0, 1, 10)).is_err());
        assert_eq!(
            append(&mut m, header(1, 0, 1, 1, 10)).unwrap(),
            SequenceCheck::Duplicate { first_offset: 1, last_offset: 1, timestamp_ms: 1000 }
        );
    }

    #[test]
    fn snapshots_round_trip_and_bad_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProducerStateManager::default();
        append(&mut m, header(1, 0, 0, 2, 0)).unwrap();
        append(&mut m, header(2, 3, 0, 1, 2)).unwrap();
        m.write_snapshot(dir.path(), 3).unwrap();
        let (loaded, offset) = ProducerStateManager::load_latest(dir.path(), 10).unwrap();
        assert_eq!(offset, Some(3));
        assert_eq!(loaded.entries(), m.entries());
        // A snapshot beyond the log end is dropped, a corrupt one too.
        m.write_snapshot(dir.path(), 50).unwrap();
        let (_, offset) = ProducerStateManager::load_latest(dir.path(), 10).unwrap();
        assert_eq!(offset, Some(3));
        let path = dir.path().join(file_name(3, SNAPSHOT_SUFFIX));
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, bytes).unwrap();
        let (loaded, offset) = ProducerStateManager::load_latest(dir.path(), 10).unwrap();
        assert_eq!(offset, None);
        assert!(loaded.entries().is_empty());
    }

    #[test]
    fn idle_producers_expire() {
        let mut m = ProducerStateManager::default();
        append(&mut m, header(1, 0, 0, 1, 0)).unwrap();
        m.expire(1000 + 99, 100);
        assert_eq!(m.entries().len(), 1);
        m.expire(1000 + 100, 100);
        assert!(m.entries().is_empty());
    }
}
