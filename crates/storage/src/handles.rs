//! A budget of open file descriptors shared by every log of a [`LogManager`].
//!
//! Each segment has three files (`.log`, `.index`, `.timeindex`, plus a
//! `.txnindex` once it holds an abort marker), so a broker that kept them all
//! open would hit the process's `RLIMIT_NOFILE` at a few thousand partitions
//! and then refuse connections and fail to start again. As Kafka does with its
//! lazily opened indexes, files are opened on demand and cold ones are closed:
//! every file goes through a [`LazyFile`] that reopens it when it was closed,
//! and a clock (second-chance) sweep closes files nobody touched since the last
//! sweep once more than the budget are open.
//!
//! The indexes are not memory-mapped (their entries live in memory and the
//! files are only read at open and appended to on flush), so a closed index
//! costs neither a descriptor nor a mapping.
//!
//! The hot path takes no global lock: an access sets the file's reference bit
//! and clones its handle under the file's own lock. Only opening a file (a
//! cold file, or a new segment) takes the budget's lock. Closing a file only
//! drops the budget's reference to the handle: a fetch whose [`FileRegion`]
//! holds the handle keeps sending from it.
//!
//! Kafka has no config key for this; the budget is half the soft
//! `RLIMIT_NOFILE` (see [`open_files_max_for_process`]), leaving the other half
//! for sockets, the metadata log and short-lived files such as checkpoints.
//!
//! [`LogManager`]: crate::LogManager
//! [`FileRegion`]: crate::FileRegion

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use crate::index::{read_lock, write_lock};
use crate::io::{DataFile, FileIo};

/// Never fewer open files than this, however low the limit: one active
/// segment with its indexes, and a little room for a reader of another.
const OPEN_FILES_MIN: usize = 8;

/// The file budget for this process: half of the soft `RLIMIT_NOFILE` (at
/// least [`OPEN_FILES_MIN`]); an unlimited or unreadable limit counts as
/// 1,048,576, the usual hard limit on Linux.
pub fn open_files_max_for_process() -> usize {
    let soft = nofile_limits().map_or(1 << 20, |(soft, _)| soft);
    usize::try_from(soft / 2).unwrap_or(usize::MAX).max(OPEN_FILES_MIN)
}

/// The soft and hard `RLIMIT_NOFILE` of this process (`u64::MAX` for unlimited).
pub fn nofile_limits() -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, exclusively borrowed rlimit for the call to fill in.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((rlim_to_u64(limit.rlim_cur), rlim_to_u64(limit.rlim_max)))
}

// rlim_t is u64 on Linux but not on every platform libc supports.
#[allow(clippy::useless_conversion)]
fn rlim_to_u64(value: libc::rlim_t) -> u64 {
    if value == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        u64::try_from(value).unwrap_or(u64::MAX)
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as Kafka's start scripts
/// and service units do, and returns the limits before and after: `(soft
/// before, soft after, hard)`. A soft limit already at the hard one is left alone.
pub fn raise_nofile_limit() -> io::Result<(u64, u64, u64)> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: as in `nofile_limits`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = rlim_to_u64(limit.rlim_cur);
    let hard = rlim_to_u64(limit.rlim_max);
    if limit.rlim_cur == limit.rlim_max {
        return Ok((before, before, hard));
    }
    let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
    // SAFETY: `raised` is a valid rlimit that only moves the soft limit up to the hard one.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((before, hard, hard))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The ring is a list of weak references, valid after any panic.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The shared budget: how many lazily opened files hold a descriptor now, and
/// the clock over them.
pub(crate) struct HandleBudget {
    open_files_max: usize,
    open_files: AtomicUsize,
    ring: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    /// Files that held a descriptor when they were added (closed or dropped
    /// ones leave on the next sweep).
    slots: Vec<Weak<LazyState>>,
    hand: usize,
}

impl fmt::Debug for HandleBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandleBudget")
            .field("open_files_max", &self.open_files_max)
            .field("open_files", &self.open_files.load(Ordering::Relaxed))
            .finish()
    }
}

impl HandleBudget {
    pub fn new(open_files_max: usize) -> Self {
        Self {
            open_files_max: open_files_max.max(OPEN_FILES_MIN),
            open_files: AtomicUsize::new(0),
            ring: Mutex::new(Ring::default()),
        }
    }

    pub fn open_files_max(&self) -> usize {
        self.open_files_max
    }

    /// Descriptors held by lazily opened files now (in-flight reads may hold a
    /// few more of the closed ones until they finish).
    pub fn open_files(&self) -> usize {
        self.open_files.load(Ordering::Acquire)
    }

    /// Counts a file that just got a descriptor and, over budget, closes cold
    /// ones. The closed handles are dropped after the ring's lock is released.
    fn opened(&self, state: &Arc<LazyState>) {
        let open = self.open_files.fetch_add(1, Ordering::AcqRel) + 1;
        let mut closed = Vec::new();
        {
            let mut ring = lock(&self.ring);
            ring.slots.push(Arc::downgrade(state));
            if open > self.open_files_max {
                self.sweep(&mut ring, &mut closed);
            } else if ring.slots.len() > self.open_files_max.saturating_mul(2) {
                // Dropped files leave dead slots behind; keep the ring bounded.
                ring.slots.retain(|slot| slot.upgrade().is_some_and(|s| s.is_open()));
                ring.hand = 0;
            }
        }
        drop(closed);
    }

    /// Second chance: a file touched since the hand last passed gets its bit
    /// cleared and is skipped; an untouched one is closed. Files in use right
    /// now (their lock is taken) and pinned ones are skipped. Two full turns
    /// at most, so an all-pinned ring cannot spin.
    fn sweep(&self, ring: &mut Ring, closed: &mut Vec<Arc<dyn DataFile>>) {
        let mut steps = ring.slots.len().saturating_mul(2);
        while self.open_files() > self.open_files_max && steps > 0 && !ring.slots.is_empty() {
            steps -= 1;
            if ring.hand >= ring.slots.len() {
                ring.hand = 0;
            }
            let hand = ring.hand;
            let Some(state) = ring.slots.get(hand).and_then(Weak::upgrade) else {
                ring.slots.swap_remove(hand);
                continue;
            };
            if state.pinned.load(Ordering::Acquire) {
                ring.hand += 1;
                continue;
            }
            if state.referenced.swap(false, Ordering::AcqRel) {
                ring.hand += 1;
                continue;
            }
            let Ok(mut handle) = state.handle.try_write() else {
                ring.hand += 1;
                continue;
            };
            if let Some(file) = handle.take() {
                self.open_files.fetch_sub(1, Ordering::AcqRel);
                closed.push(file);
            }
            drop(handle);
            ring.slots.swap_remove(hand);
        }
    }
}

struct LazyState {
    path: PathBuf,
    handle: RwLock<Option<Arc<dyn DataFile>>>,
    /// Set on every access; cleared by the sweep (the clock's second chance).
    referenced: AtomicBool,
    /// Never closed by the sweep (a segment being deleted: its readers must
    /// still read it after the path is gone).
    pinned: AtomicBool,
}

impl LazyState {
    fn is_open(&self) -> bool {
        read_lock(&self.handle).is_some()
    }
}

/// A file opened on demand and closed by the budget when cold. It reopens
/// its path without creating it, so a file deleted meanwhile is an error
/// rather than a new empty file.
pub(crate) struct LazyFile {
    state: Arc<LazyState>,
    io: Arc<dyn FileIo>,
    budget: Arc<HandleBudget>,
}

impl fmt::Debug for LazyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyFile").field("path", &self.state.path).field("open", &self.state.is_open()).finish()
    }
}

impl LazyFile {
    fn handle(&self) -> io::Result<Arc<dyn DataFile>> {
        self.state.referenced.store(true, Ordering::Release);
        if let Some(file) = read_lock(&self.state.handle).as_ref() {
            return Ok(Arc::clone(file));
        }
        let mut handle = write_lock(&self.state.handle);
        if let Some(file) = handle.as_ref() {
            return Ok(Arc::clone(file));
        }
        let file = self.io.open(&self.state.path, false)?;
        *handle = Some(Arc::clone(&file));
        drop(handle);
        self.budget.opened(&self.state);
        Ok(file)
    }
}

impl Drop for LazyFile {
    fn drop(&mut self) {
        if write_lock(&self.state.handle).take().is_some() {
            self.budget.open_files.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl DataFile for LazyFile {
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        self.handle()?.read_at(buf, position)
    }

    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()> {
        self.handle()?.write_all_at(buf, position)
    }

    fn sync_data(&self) -> io::Result<()> {
        // A closed file has no descriptor to sync through; a reopened one
        // syncs the same inode, and since Linux 4.16 the first fsync after a
        // writeback error reports it even on a descriptor opened later.
        self.handle()?.sync_data()
    }

    fn len_bytes(&self) -> io::Result<u64> {
        self.handle()?.len_bytes()
    }

    fn set_len_bytes(&self, len_bytes: u64) -> io::Result<()> {
        self.handle()?.set_len_bytes(len_bytes)
    }

    fn os_file(&self) -> Option<&File> {
        None
    }

    fn open_handle(&self) -> io::Result<Option<Arc<dyn DataFile>>> {
        self.handle().map(Some)
    }

    fn keep_open(&self) -> io::Result<()> {
        self.state.pinned.store(true, Ordering::Release);
        self.handle().map(drop)
    }
}

/// A file layer whose files count against a [`HandleBudget`].
#[derive(Debug)]
pub(crate) struct BudgetedFileIo {
    inner: Arc<dyn FileIo>,
    budget: Arc<HandleBudget>,
}

impl BudgetedFileIo {
    pub fn new(inner: Arc<dyn FileIo>, budget: Arc<HandleBudget>) -> Self {
        Self { inner, budget }
    }
}

impl FileIo for BudgetedFileIo {
    /// Opens the file now (so a missing file or a failed create is reported
    /// here), then lets the budget close it whenever it goes cold.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn DataFile>> {
        let file = self.inner.open(path, create)?;
        let state = Arc::new(LazyState {
            path: path.to_path_buf(),
            handle: RwLock::new(Some(file)),
            referenced: AtomicBool::new(true),
            pinned: AtomicBool::new(false),
        });
        self.budget.opened(&state);
        Ok(Arc::new(LazyFile { state, io: Arc::clone(&self.inner), budget: Arc::clone(&self.budget) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{read_fully_at, OsFileIo};

    fn budgeted(max: usize) -> (BudgetedFileIo, Arc<HandleBudget>) {
        let budget = Arc::new(HandleBudget::new(max));
        (BudgetedFileIo::new(Arc::new(OsFileIo), Arc::clone(&budget)), budget)
    }

    #[test]
    fn cold_files_close_and_reopen_with_their_bytes() {
        let Ok(dir) = tempfile::tempdir() else { panic!("tempdir") };
        let (io, budget) = budgeted(OPEN_FILES_MIN);
        let files: Vec<_> = (0..40)
            .map(|i| {
                let Ok(file) = io.open(&dir.path().join(format!("{i}.log")), true) else { panic!("open {i}") };
                assert!(file.write_all_at(format!("file {i}").as_bytes(), 0).is_ok());
                assert!(budget.open_files() <= OPEN_FILES_MIN, "{} open", budget.open_files());
                file
            })
            .collect();
        for (i, file) in files.iter().enumerate().rev() {
            let mut buf = vec![0u8; 16];
            let Ok(read) = read_fully_at(file.as_ref(), &mut buf, 0) else { panic!("read {i}") };
            assert_eq!(buf.get(..read), Some(format!("file {i}").as_bytes()));
            assert!(budget.open_files() <= OPEN_FILES_MIN);
        }
        drop(files);
        assert_eq!(budget.open_files(), 0);
    }

    #[test]
    fn a_held_handle_survives_eviction_and_a_pinned_file_stays_open() {
        let Ok(dir) = tempfile::tempdir() else { panic!("tempdir") };
        let (io, budget) = budgeted(OPEN_FILES_MIN);
        let Ok(first) = io.open(&dir.path().join("first.log"), true) else { panic!("open") };
        assert!(first.write_all_at(b"still here", 0).is_ok());
        let Ok(Some(held)) = first.open_handle() else { panic!("handle") };
        let Ok(pinned) = io.open(&dir.path().join("pinned.log"), true) else { panic!("open") };
        assert!(pinned.keep_open().is_ok());
        let path = dir.path().join("pinned.log");
        let _others: Vec<_> =
            (0..30).filter_map(|i| io.open(&dir.path().join(format!("{i}.log")), true).ok()).collect();
        // The pinned file still reads after its path is gone.
        assert!(std::fs::remove_file(&path).is_ok());
        assert!(pinned.len_bytes().is_ok());
        let mut buf = [0u8; 10];
        assert_eq!(read_fully_at(held.as_ref(), &mut buf, 0).ok(), Some(10));
        assert_eq!(&buf, b"still here");
        assert!(budget.open_files() <= OPEN_FILES_MIN + 1);
    }
}
