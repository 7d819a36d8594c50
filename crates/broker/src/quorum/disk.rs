//! The quorum's durable state on this node, in the metadata log's folder
//! (`__cluster_metadata-0`):
//!
//! - the Raft log in the storage crate's segment log: one batch per Raft entry,
//!   whose single record holds the entry (index, term, type, data). The segment log
//!   brings CRCs, torn-tail recovery, segment rolling and trimming from the front.
//!   Entries are never rewritten in place: when a new leader replaces a follower's
//!   uncommitted suffix, the new entries are appended after it and a replay keeps
//!   the last entry written for each index (dropping everything after it), so the
//!   log needs no truncation. rocksdb, named on the design card, would add a long
//!   C++ build to every CI run for no property the segment log lacks here.
//! - `quorum-state`: the current term and vote (Raft's hard state), replaced
//!   atomically and fsynced before any message that depends on it leaves;
//! - `<index>-<term>.checkpoint`: the newest snapshot, KRaft's file name, written to
//!   a temporary file, fsynced and renamed. The log is trimmed behind it.

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{split_record_set, RecordBatch, RecordBatchBuilder};
use gregor_quorum::{DurableState, Entry, HardState, QuorumDisk, QuorumError, Snapshot};
use gregor_storage::Log;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const STATE_FILE: &str = "quorum-state";
const SNAPSHOT_SUFFIX: &str = ".checkpoint";
const READ_BYTES: usize = 8 * 1024 * 1024;
/// A snapshot file larger than this is refused rather than read into memory.
const SNAPSHOT_BYTES_MAX: u64 = 1024 * 1024 * 1024;

pub struct SegmentDisk {
    log: Arc<Log>,
    dir: PathBuf,
    /// The storage offset of each held entry, by index order, for trimming.
    offsets: Vec<(u64, i64)>,
    unsynced: bool,
}

fn disk_error(what: &str, error: impl std::fmt::Display) -> QuorumError {
    QuorumError::Disk(format!("{what}: {error}"))
}

impl SegmentDisk {
    pub fn new(log: Arc<Log>) -> Self {
        let dir = log.dir().to_path_buf();
        SegmentDisk { log, dir, offsets: Vec::new(), unsynced: false }
    }

    /// Whether this folder holds a quorum's state (as opposed to a single node's
    /// metadata log, or nothing).
    pub fn is_quorum_folder(dir: &Path) -> bool {
        dir.join(STATE_FILE).exists()
    }

    fn read_entries(&self) -> Result<Vec<(i64, Entry)>, QuorumError> {
        let mut entries = Vec::new();
        let mut offset = self.log.log_start_offset();
        let end = self.log.log_end_offset();
        while offset < end {
            let read =
                self.log.read(offset, READ_BYTES, true, end).map_err(|e| disk_error("reading the Raft log", e))?;
            if read.records.is_empty() {
                break;
            }
            let mut next = offset;
            for batch in split_record_set(read.records) {
                let batch = batch
                    .map_err(|e| disk_error("Raft log batch", e))
                    .and_then(|batch| RecordBatch::new(batch).map_err(|e| disk_error("Raft log batch", e)))?;
                let at = batch.header().base_offset;
                next = batch.header().last_offset() + 1;
                let records = batch.records(64 * 1024 * 1024).map_err(|e| disk_error("Raft log records", e))?;
                for record in records {
                    let value = record.value.ok_or_else(|| disk_error("Raft log record", "no value"))?;
                    let entry: Entry =
                        gregor_quorum::decode_entry(&value).map_err(|e| disk_error("Raft log entry", e))?;
                    entries.push((at, entry));
                }
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        Ok(entries)
    }

    fn write_file_atomically(&self, name: &str, bytes: &[u8]) -> Result<(), QuorumError> {
        let path = self.dir.join(name);
        let temporary = self.dir.join(format!("{name}.tmp"));
        let mut file = fs::File::create(&temporary).map_err(|e| disk_error(name, e))?;
        file.write_all(bytes).map_err(|e| disk_error(name, e))?;
        file.sync_all().map_err(|e| disk_error(name, e))?;
        fs::rename(&temporary, &path).map_err(|e| disk_error(name, e))?;
        fs::File::open(&self.dir).and_then(|dir| dir.sync_all()).map_err(|e| disk_error(name, e))?;
        Ok(())
    }

    fn snapshot_files(&self) -> Result<Vec<(u64, u64, PathBuf)>, QuorumError> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| disk_error("listing snapshots", e))? {
            let entry = entry.map_err(|e| disk_error("listing snapshots", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX) else { continue };
            let Some((index, term)) = stem.split_once('-') else { continue };
            if let (Ok(index), Ok(term)) = (index.parse::<u64>(), term.parse::<u64>()) {
                found.push((index, term, entry.path()));
            }
        }
        found.sort();
        Ok(found)
    }
}

fn encode_hard_state(hard_state: &HardState) -> Vec<u8> {
    let mut text = format!("term={}\nvote={}\ncommit={}\n", hard_state.term, hard_state.vote, hard_state.commit);
    let crc = crc32c::crc32c(text.as_bytes());
    text.push_str(&format!("crc={crc}\n"));
    text.into_bytes()
}

fn decode_hard_state(bytes: &[u8]) -> Result<HardState, QuorumError> {
    let text = std::str::from_utf8(bytes).map_err(|e| disk_error(STATE_FILE, e))?;
    let (body, crc_line) = text.trim_end().rsplit_once('\n').ok_or_else(|| disk_error(STATE_FILE, "truncated"))?;
    let body = format!("{body}\n");
    let crc: u32 = crc_line
        .strip_prefix("crc=")
        .and_then(|crc| crc.parse().ok())
        .ok_or_else(|| disk_error(STATE_FILE, "no checksum"))?;
    if crc32c::crc32c(body.as_bytes()) != crc {
        return Err(disk_error(STATE_FILE, "checksum mismatch"));
    }
    let mut hard_state = HardState::default();
    for line in body.lines() {
        let (key, value) = line.split_once('=').ok_or_else(|| disk_error(STATE_FILE, line))?;
        let value: u64 = value.parse().map_err(|e| disk_error(STATE_FILE, e))?;
        match key {
            "term" => hard_state.term = value,
            "vote" => hard_state.vote = value,
            "commit" => hard_state.commit = value,
            _ => return Err(disk_error(STATE_FILE, format!("unknown key {key}"))),
        }
    }
    Ok(hard_state)
}

/// A snapshot file: the metadata (index, term, voters) then the data.
fn encode_snapshot_file(snapshot: &Snapshot) -> Vec<u8> {
    let metadata = snapshot.get_metadata();
    let voters = &metadata.get_conf_state().voters;
    let mut bytes = Vec::with_capacity(snapshot.data.len() + 64);
    bytes.extend_from_slice(&metadata.index.to_be_bytes());
    bytes.extend_from_slice(&metadata.term.to_be_bytes());
    bytes.extend_from_slice(&(voters.len() as u32).to_be_bytes());
    for voter in voters {
        bytes.extend_from_slice(&voter.to_be_bytes());
    }
    bytes.extend_from_slice(&snapshot.data);
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes
}

fn decode_snapshot_file(bytes: &[u8]) -> Result<Snapshot, QuorumError> {
    let corrupt = || disk_error("snapshot", "truncated or corrupt");
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4).ok_or_else(corrupt)?).ok_or_else(corrupt)?;
    if crc32c::crc32c(body).to_be_bytes() != crc {
        return Err(corrupt());
    }
    let take_u64 = |at: usize| -> Result<u64, QuorumError> {
        body.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes).ok_or_else(corrupt)
    };
    let index = take_u64(0)?;
    let term = take_u64(8)?;
    let count = body.get(16..20).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes).ok_or_else(corrupt)? as usize;
    if count > 1024 {
        return Err(corrupt());
    }
    let mut snapshot = Snapshot::default();
    let mut voters = Vec::with_capacity(count);
    for voter in 0..count {
        voters.push(take_u64(20 + voter * 8)?);
    }
    let data_at = 20 + count * 8;
    let data = body.get(data_at..).ok_or_else(corrupt)?;
    let metadata = snapshot.mut_metadata();
    metadata.index = index;
    metadata.term = term;
    metadata.mut_conf_state().voters = voters;
    snapshot.data = Bytes::copy_from_slice(data);
    Ok(snapshot)
}

impl QuorumDisk for SegmentDisk {
    fn load(&mut self) -> Result<DurableState, QuorumError> {
        let hard_state = match fs::read(self.dir.join(STATE_FILE)) {
            Ok(bytes) => decode_hard_state(&bytes)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                // A new quorum member: the state file marks the folder as a quorum's.
                let hard_state = HardState::default();
                self.write_file_atomically(STATE_FILE, &encode_hard_state(&hard_state))?;
                hard_state
            }
            Err(error) => return Err(disk_error(STATE_FILE, error)),
        };
        let mut snapshot = None;
        if let Some((_, _, path)) = self.snapshot_files()?.pop() {
            let size = fs::metadata(&path).map_err(|e| disk_error("snapshot", e))?.len();
            if size > SNAPSHOT_BYTES_MAX {
                return Err(disk_error("snapshot", format!("{} is {size} bytes", path.display())));
            }
            let bytes = fs::read(&path).map_err(|e| disk_error("snapshot", e))?;
            snapshot = Some(decode_snapshot_file(&bytes)?);
        }
        let snapshot_index = snapshot.as_ref().map_or(0, |s: &Snapshot| s.get_metadata().index);
        // The last write for an index wins and drops everything after it.
        let mut entries: Vec<(i64, Entry)> = Vec::new();
        for (offset, entry) in self.read_entries()? {
            if entry.index <= snapshot_index {
                continue;
            }
            let keep = entries.partition_point(|(_, held)| held.index < entry.index);
            entries.truncate(keep);
            let contiguous =
                entries.last().map_or(entry.index == snapshot_index + 1, |(_, last)| last.index + 1 == entry.index);
            if !contiguous {
                // A gap means an entry before it is missing (cannot happen with an
                // append-only log; refuse rather than guess).
                return Err(disk_error("Raft log", format!("entry {} follows a gap", entry.index)));
            }
            entries.push((offset, entry));
        }
        self.offsets = entries.iter().map(|(offset, entry)| (entry.index, *offset)).collect();
        Ok(DurableState { hard_state, snapshot, entries: entries.into_iter().map(|(_, entry)| entry).collect() })
    }

    fn append_entries(&mut self, entries: &[Entry]) -> Result<(), QuorumError> {
        let Some(first) = entries.first() else { return Ok(()) };
        let keep = self.offsets.partition_point(|(index, _)| *index < first.index);
        self.offsets.truncate(keep);
        let now = crate::time::now_ms();
        for entry in entries {
            let value = gregor_quorum::encode_entry(entry)?;
            let mut builder = RecordBatchBuilder::new(0);
            builder.append(now, None, Some(Bytes::from(value)), Vec::new()).map_err(|e| disk_error("Raft entry", e))?;
            let batch = builder.build().map_err(|e| disk_error("Raft entry", e))?;
            let info = self
                .log
                .append_as_leader(BytesMut::from(&batch[..]), 0, now)
                .map_err(|e| disk_error("appending to the Raft log", e))?;
            self.offsets.push((entry.index, info.base_offset));
        }
        self.unsynced = true;
        Ok(())
    }

    fn save_hard_state(&mut self, hard_state: &HardState) -> Result<(), QuorumError> {
        self.write_file_atomically(STATE_FILE, &encode_hard_state(hard_state))
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), QuorumError> {
        let metadata = snapshot.get_metadata();
        let name = format!("{:020}-{:010}{SNAPSHOT_SUFFIX}", metadata.index, metadata.term);
        self.write_file_atomically(&name, &encode_snapshot_file(snapshot))?;
        for (index, _, path) in self.snapshot_files()? {
            if index < metadata.index {
                if let Err(error) = fs::remove_file(&path) {
                    tracing::warn!("cannot remove the old snapshot {}: {error}", path.display());
                }
            }
        }
        // Entries the snapshot covers are trimmed from the front of the log.
        let keep = self.offsets.partition_point(|(index, _)| *index <= metadata.index);
        let trim_to = match self.offsets.get(keep) {
            Some((_, offset)) => *offset,
            None => self.log.log_end_offset(),
        };
        self.offsets.drain(..keep);
        if trim_to > self.log.log_start_offset() {
            self.log.delete_records_before(trim_to).map_err(|e| disk_error("trimming the Raft log", e))?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), QuorumError> {
        if self.unsynced {
            self.log.flush().map_err(|e| disk_error("syncing the Raft log", e))?;
            self.unsynced = false;
        }
        Ok(())
    }
}
