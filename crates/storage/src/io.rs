//! The file layer under segments and indexes: a small trait so tests can count
//! fsyncs and inject write failures, and the positional I/O helpers on top of it.

use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::error::StorageError;

/// One open file addressed by position, so readers never share a cursor.
pub trait DataFile: Send + Sync + Debug {
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize>;
    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()>;
    fn sync_data(&self) -> io::Result<()>;
    fn len_bytes(&self) -> io::Result<u64>;
    fn set_len_bytes(&self, len_bytes: u64) -> io::Result<()>;
    /// The operating system's file, for transfers the kernel does itself (sendfile);
    /// `None` for files that must be read through this trait (fault injection).
    fn os_file(&self) -> Option<&File> {
        None
    }

    /// The open file behind a lazily opened one (opening it again if it was
    /// closed), for a reader that must keep it open, such as a [`FileRegion`];
    /// `None` when this file is itself the open file.
    fn open_handle(&self) -> io::Result<Option<Arc<dyn DataFile>>> {
        Ok(None)
    }

    /// Keeps the file open from now on until it is dropped (a segment being
    /// deleted, whose readers must still reach it after its path is gone).
    fn keep_open(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Opens data files; the seam for fault injection.
pub trait FileIo: Send + Sync + Debug {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn DataFile>>;
}

#[derive(Debug)]
struct OsFile(File);

impl DataFile for OsFile {
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        self.0.read_at(buf, position)
    }

    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()> {
        self.0.write_all_at(buf, position)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn len_bytes(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len_bytes(&self, len_bytes: u64) -> io::Result<()> {
        self.0.set_len(len_bytes)
    }

    fn os_file(&self) -> Option<&File> {
        Some(&self.0)
    }
}

/// A byte range of a segment file holding whole batches, for a fetch to send
/// without reading it into memory. Segment files only grow, and a deleted
/// segment's open file stays readable, so the range stays valid while it is held;
/// the one exception is a replica's truncation ([`crate::Log::truncate_to`]),
/// which cuts the file: a region past the cut then fails to read or send whole
/// (as Kafka's FileRecords.writeTo fails on a file truncated during a send).
#[derive(Debug, Clone)]
pub struct FileRegion {
    file: Arc<dyn DataFile>,
    position: u64,
    len_bytes: usize,
}

impl FileRegion {
    pub(crate) fn new(file: Arc<dyn DataFile>, position: u64, len_bytes: usize) -> Self {
        Self { file, position, len_bytes }
    }

    /// The file, when the kernel can send from it directly.
    pub fn os_file(&self) -> Option<&File> {
        self.file.os_file()
    }

    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn len_bytes(&self) -> usize {
        self.len_bytes
    }

    /// The bytes, read into memory (for callers that cannot send from the file).
    pub fn read(&self) -> io::Result<bytes::Bytes> {
        let mut buf = vec![0u8; self.len_bytes];
        let read = read_fully_at(self.file.as_ref(), &mut buf, self.position)?;
        if read < self.len_bytes {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a segment file ended inside a fetched region"));
        }
        Ok(bytes::Bytes::from(buf))
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFileIo;

impl FileIo for OsFileIo {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn DataFile>> {
        let file = OpenOptions::new().read(true).write(true).create(create).truncate(false).open(path)?;
        Ok(Arc::new(OsFile(file)))
    }
}

/// A file layer over the real one that counts fsyncs and fails writes and
/// fsyncs, on demand, of files whose path contains a given fragment. For tests
/// of the flush policy and of a log going offline.
#[derive(Debug, Default, Clone)]
pub struct FaultyFileIo {
    state: Arc<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    syncs: AtomicU64,
    failing: AtomicBool,
    /// The errno failures carry (0: a plain error, like EIO for the log). With
    /// ENOSPC the layer acts like a full disk: a write lands half its bytes
    /// before failing, growing a file fails, shrinking one and fsync still work.
    errno: AtomicI32,
    fragment: Mutex<String>,
    /// fsyncs of matching files wait while this is set.
    sync_gate: Mutex<SyncGate>,
    sync_gate_changed: Condvar,
}

#[derive(Debug, Default)]
struct SyncGate {
    fragment: Option<String>,
    waiting: usize,
}

impl FaultState {
    fn fails(&self, path: &Path) -> bool {
        if !self.failing.load(Ordering::SeqCst) {
            return false;
        }
        let fragment = self.fragment.lock().map(|f| f.clone()).unwrap_or_default();
        path.to_string_lossy().contains(fragment.as_str())
    }

    fn disk_full(&self) -> bool {
        self.errno.load(Ordering::SeqCst) == libc::ENOSPC
    }

    fn error(&self, what: &str) -> io::Error {
        match self.errno.load(Ordering::SeqCst) {
            0 => io::Error::other(format!("injected {what} failure")),
            errno => io::Error::from_raw_os_error(errno),
        }
    }

    fn lock_gate(&self) -> std::sync::MutexGuard<'_, SyncGate> {
        self.sync_gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait_at_gate(&self, path: &Path) {
        let mut gate = self.lock_gate();
        let matches =
            |gate: &SyncGate| gate.fragment.as_ref().is_some_and(|f| path.to_string_lossy().contains(f.as_str()));
        if !matches(&gate) {
            return;
        }
        gate.waiting += 1;
        self.sync_gate_changed.notify_all();
        while matches(&gate) {
            gate = self.sync_gate_changed.wait(gate).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        gate.waiting -= 1;
    }
}

impl FaultyFileIo {
    pub fn new() -> Self {
        Self::default()
    }

    /// fsyncs seen so far, on every file.
    pub fn sync_count(&self) -> u64 {
        self.state.syncs.load(Ordering::SeqCst)
    }

    /// From now on, writes and fsyncs of files whose path contains `fragment` fail.
    pub fn fail_writes_to(&self, fragment: &str) {
        if let Ok(mut f) = self.state.fragment.lock() {
            *f = fragment.to_string();
        }
        self.state.failing.store(true, Ordering::SeqCst);
    }

    /// From now on, files whose path contains `fragment` behave as on a full
    /// disk (ENOSPC; see `FaultState::errno`).
    pub fn fill_disk_for(&self, fragment: &str) {
        self.state.errno.store(libc::ENOSPC, Ordering::SeqCst);
        self.fail_writes_to(fragment);
    }

    pub fn heal(&self) {
        self.state.failing.store(false, Ordering::SeqCst);
        self.state.errno.store(0, Ordering::SeqCst);
    }

    /// fsyncs of files whose path contains `fragment` block until [`Self::release_syncs`].
    pub fn block_syncs_of(&self, fragment: &str) {
        self.state.lock_gate().fragment = Some(fragment.to_string());
    }

    pub fn release_syncs(&self) {
        self.state.lock_gate().fragment = None;
        self.state.sync_gate_changed.notify_all();
    }

    /// Waits until an fsync is blocked at the gate; false after `timeout`.
    pub fn wait_for_blocked_sync(&self, timeout: std::time::Duration) -> bool {
        let gate = self.state.lock_gate();
        let result = self.state.sync_gate_changed.wait_timeout_while(gate, timeout, |gate| gate.waiting == 0);
        result.map(|(gate, _)| gate.waiting > 0).unwrap_or(false)
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn DataFile>,
    path: PathBuf,
    state: Arc<FaultState>,
}

impl FaultyFile {
    fn check(&self) -> io::Result<()> {
        if self.state.fails(&self.path) {
            return Err(self.state.error("write"));
        }
        Ok(())
    }
}

impl DataFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        self.inner.read_at(buf, position)
    }

    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()> {
        if self.state.fails(&self.path) && self.state.disk_full() {
            // A full disk takes what fits, then refuses: a torn write.
            let half = buf.get(..buf.len() / 2).unwrap_or_default();
            self.inner.write_all_at(half, position)?;
            return Err(self.state.error("write"));
        }
        self.check()?;
        self.inner.write_all_at(buf, position)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.state.wait_at_gate(&self.path);
        if !self.state.disk_full() {
            self.check()?;
        }
        self.state.syncs.fetch_add(1, Ordering::SeqCst);
        self.inner.sync_data()
    }

    fn len_bytes(&self) -> io::Result<u64> {
        self.inner.len_bytes()
    }

    fn set_len_bytes(&self, len_bytes: u64) -> io::Result<()> {
        let shrinks = self.inner.len_bytes().is_ok_and(|len| len_bytes <= len);
        if !(self.state.disk_full() && shrinks) {
            self.check()?;
        }
        self.inner.set_len_bytes(len_bytes)
    }
}

impl FileIo for FaultyFileIo {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn DataFile>> {
        if create && self.state.fails(path) && !(self.state.disk_full() && path.exists()) {
            return Err(self.state.error("create"));
        }
        let inner = OsFileIo.open(path, create)?;
        Ok(Arc::new(FaultyFile { inner, path: path.to_path_buf(), state: Arc::clone(&self.state) }))
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub(crate) fn read_fully_at(file: &dyn DataFile, buf: &mut [u8], position: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let Some(rest) = buf.get_mut(done..) else { break };
        let n = match file.read_at(rest, position + done as u64) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        done += n;
    }
    Ok(done)
}

/// Replaces `path` with `contents` so a crash leaves either the old or the new
/// file: write a temporary sibling, fsync it, rename, fsync the directory.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), StorageError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
    file.write_all(contents).map_err(|e| StorageError::io(&tmp, e))?;
    file.sync_all().map_err(|e| StorageError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| StorageError::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes renames and creations inside `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StorageError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faulty_layer_counts_syncs_and_fails_only_matching_paths() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string());
        let dir = dir.as_ref().map(|d| d.path().to_path_buf()).unwrap_or_default();
        let io = FaultyFileIo::new();
        let a = io.open(&dir.join("a-0.log"), true);
        let b = io.open(&dir.join("b-0.log"), true);
        let (Ok(a), Ok(b)) = (a, b) else { panic!("open failed") };
        assert!(a.write_all_at(b"hello", 0).is_ok());
        assert!(a.sync_data().is_ok());
        assert_eq!(io.sync_count(), 1);
        io.fail_writes_to("a-0");
        assert!(a.write_all_at(b"x", 5).is_err());
        assert!(b.write_all_at(b"fine", 0).is_ok());
        io.heal();
        assert!(a.write_all_at(b"!", 5).is_ok());
        let mut buf = [0u8; 10];
        assert_eq!(read_fully_at(a.as_ref(), &mut buf, 0).ok(), Some(6));
        assert_eq!(&buf[..6], b"hello!");
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let Ok(dir) = tempfile::tempdir() else { panic!("tempdir") };
        let path = dir.path().join("checkpoint");
        assert!(write_atomically(&path, b"one").is_ok());
        assert!(write_atomically(&path, b"two").is_ok());
        assert_eq!(fs::read(&path).ok(), Some(b"two".to_vec()));
        assert!(!dir.path().join("checkpoint.tmp").exists());
    }
}
