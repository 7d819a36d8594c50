//! A real full file system (a small tmpfs, which needs root to mount; the test
//! is skipped with a message otherwise): the manager opens on it, serves reads,
//! refuses appends, and deleting records frees space that appends then use.

use std::process::Command;

use super::*;

struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                eprintln!("SKIPPED: cannot mount a tmpfs: {}", String::from_utf8_lossy(&out.stderr).trim());
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Writes `path` until the file system has no block left.
fn fill(path: &Path) {
    let mut file = FsOpenOptions::new().create(true).append(true).open(path).unwrap();
    for chunk_bytes in [1 << 16, 4096, 512, 1] {
        let chunk = vec![0u8; chunk_bytes];
        loop {
            match file.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling: {e}"),
            }
        }
    }
    let _ = file.sync_all();
}

/// A batch bigger than a page, so that it needs new blocks wherever it lands.
fn big_batch() -> BytesMut {
    let mut b = RecordBatchBuilder::new(0);
    b.append(NOW, Some(Bytes::from("k")), Some(Bytes::from(vec![b'v'; 9000])), vec![]).unwrap();
    BytesMut::from(&b.build().unwrap()[..])
}

fn segments_config() -> LogConfig {
    LogConfig { segment_bytes: 64 * 1024, index_interval_bytes: 512, ..LogConfig::default() }
}

#[test]
fn a_full_disk_opens_read_only_and_deleting_records_frees_space_for_appends() {
    let Some(fs) = Tmpfs::mount("3m") else { return };
    let dirs = vec![fs.path().join("data")];
    let end = {
        let manager = LogManager::open(&dirs).unwrap();
        let log = manager.get_or_create(&tp("t"), segments_config(), NOW).unwrap();
        for _ in 0..1500 {
            log.append_as_leader(batch(2), 2, NOW).unwrap();
        }
        manager.shutdown().unwrap();
        log.log_end_offset()
    };
    fill(&fs.path().join("filler"));

    // Started on the full disk (the clean-shutdown marker, checkpoints and
    // snapshots it would rewrite cannot be written): it comes up.
    let manager = LogManager::open(&dirs).unwrap();
    let log = manager.get_or_create(&tp("t"), segments_config(), NOW).unwrap();
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(all_batches(&log), 1500);
    let e = log.append_as_leader(big_batch(), 2, NOW).unwrap_err();
    assert!(e.is_no_space(), "{e}");
    assert!(!log.is_offline());
    assert!(manager.checkpoint().is_err(), "the disk is full");
    assert_eq!(log.end_offset_for_epoch(2), Some((2, end)));

    // DeleteRecords frees whole segments, and appends go on where they stopped.
    let bases = log.segment_base_offsets();
    log.delete_records_before(bases[bases.len() / 2]).unwrap();
    let info = log.append_as_leader(big_batch(), 2, NOW).unwrap();
    assert_eq!(info.base_offset, end);
    assert!(!log.is_write_blocked());
    manager.checkpoint().unwrap();

    // A shutdown on a full disk, then a start on it: the log is recovered whole.
    fill(&fs.path().join("filler2"));
    let _ = manager.shutdown();
    drop(log);
    drop(manager);
    let manager = LogManager::open(&dirs).unwrap();
    let log = manager.get_or_create(&tp("t"), segments_config(), NOW).unwrap();
    assert_eq!(log.log_end_offset(), end + 1);
    assert_eq!(log.log_start_offset(), bases[bases.len() / 2]);
    all_batches(&log);
    let _ = fs::remove_file(fs.path().join("filler"));
    log.append_as_leader(big_batch(), 2, NOW).unwrap();
    manager.shutdown().unwrap();
}
