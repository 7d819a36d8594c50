//! Kafka's text checkpoint files: a version line (0), an entry-count line, then
//! one entry per line. Used for `recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `cleaner-offset-checkpoint` (`topic partition offset`) and
//! `leader-epoch-checkpoint` (`epoch start_offset`).

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use crate::config::TopicPartition;
use crate::error::StorageError;
use crate::io::write_atomically;

pub(crate) const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub(crate) const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
pub(crate) const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
pub(crate) const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
const VERSION: u32 = 0;

fn render(lines: &[String]) -> String {
    let mut out = format!("{VERSION}\n{}\n", lines.len());
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The entry lines of a checkpoint file; `None` when the file is missing.
fn read_lines(path: &Path) -> Result<Option<Vec<String>>, StorageError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(StorageError::corrupt(path, "not UTF-8 text"))
        }
        Err(e) => return Err(StorageError::io(path, e)),
    };
    let mut lines = text.lines();
    let version = lines.next().map(str::trim);
    if version != Some("0") {
        return Err(StorageError::corrupt(path, format!("unsupported version {version:?}")));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| StorageError::corrupt(path, "missing entry count"))?;
    let entries: Vec<String> = lines.filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
    if entries.len() != count {
        return Err(StorageError::corrupt(path, format!("expected {count} entries, found {}", entries.len())));
    }
    Ok(Some(entries))
}

pub(crate) fn write_offsets(path: &Path, offsets: &[(TopicPartition, i64)]) -> Result<(), StorageError> {
    let lines: Vec<String> = offsets.iter().map(|(tp, o)| format!("{} {} {o}", tp.topic, tp.partition)).collect();
    write_atomically(path, render(&lines).as_bytes())
}

pub(crate) fn read_offsets(path: &Path) -> Result<HashMap<TopicPartition, i64>, StorageError> {
    let mut out = HashMap::new();
    for line in read_lines(path)?.unwrap_or_default() {
        // Topic names cannot contain spaces, so the fields split cleanly.
        let mut fields = line.split_whitespace();
        let parsed = (|| {
            let topic = fields.next()?;
            let partition = fields.next()?.parse().ok()?;
            let offset = fields.next()?.parse().ok()?;
            fields.next().is_none().then(|| (TopicPartition::new(topic, partition), offset))
        })();
        let (tp, offset) = parsed.ok_or_else(|| StorageError::corrupt(path, format!("bad entry {line:?}")))?;
        out.insert(tp, offset);
    }
    Ok(out)
}

pub(crate) fn write_epochs(path: &Path, epochs: &[(i32, i64)]) -> Result<(), StorageError> {
    let lines: Vec<String> = epochs.iter().map(|(e, o)| format!("{e} {o}")).collect();
    write_atomically(path, render(&lines).as_bytes())
}

pub(crate) fn read_epochs(path: &Path) -> Result<Vec<(i32, i64)>, StorageError> {
    let mut out = Vec::new();
    for line in read_lines(path)?.unwrap_or_default() {
        let mut fields = line.split_whitespace();
        let epoch = fields.next().and_then(|f| f.parse().ok());
        let offset = fields.next().and_then(|f| f.parse().ok());
        match (epoch, offset, fields.next()) {
            (Some(e), Some(o), None) => out.push((e, o)),
            _ => return Err(StorageError::corrupt(path, format!("bad entry {line:?}"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_use_kafkas_layout_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT);
        write_offsets(&path, &[(TopicPartition::new("a-b", 3), 42)]).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n1\na-b 3 42\n");
        let read = read_offsets(&path).unwrap();
        assert_eq!(read.get(&TopicPartition::new("a-b", 3)), Some(&42));
        assert!(read_offsets(&dir.path().join("missing")).unwrap().is_empty());
    }

    #[test]
    fn malformed_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        for text in ["1\n0\n", "0\n2\nt 0 1\n", "0\n1\nt zero 1\n", "", "0\nx\n"] {
            fs::write(&path, text).unwrap();
            assert!(read_offsets(&path).is_err(), "{text:?}");
        }
        fs::write(&path, "0\n2\n0 0\n3 17\n").unwrap();
        assert_eq!(read_epochs(&path).unwrap(), vec![(0, 0), (3, 17)]);
    }
}
