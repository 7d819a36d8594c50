//! `gregor perf ceilings`: what this machine allows at best, for the benchmark
//! report: loopback TCP between two processes, sequential file writes without
//! and with an fdatasync per MiB, the latency of one small durable write, and
//! the kernel's own cost of a broker's two bulk paths, measured without a
//! broker: socket to file (what a produce costs at least) and file to socket
//! with sendfile (what a fetch costs at least), each in MB per CPU-second of
//! the process doing it. Plain blocking I/O: each measurement has the machine
//! to itself. The measuring process runs on the first CPU it may use and its
//! peer on the second, as the benchmark pins a broker and its load.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};
use rustix::time::{clock_gettime, ClockId};

use crate::batch::SplitMix64;
use crate::cli::{CeilingsArgs, CeilingsPeerArgs, PeerRole};
use crate::error::PerfError;
use crate::stats::json_number;

const CHUNK_BYTES: usize = 1024 * 1024;
/// The sequential write tests stop at this size or at the duration, whichever comes first.
const WRITE_BYTES_MAX: u64 = 1024 * 1024 * 1024;
/// The file that the sendfile measurement sends over and over (from the page cache):
/// this many bytes per second of the measurement's duration, within the bounds below.
const SENDFILE_FILE_BYTES_PER_S: f64 = 128.0 * 1024.0 * 1024.0;
const SENDFILE_FILE_BYTES_MIN: u64 = 8 * 1024 * 1024;
const SENDFILE_FILE_BYTES_MAX: u64 = 256 * 1024 * 1024;
const FSYNC_WRITE_BYTES: usize = 4096;
const FSYNC_SAMPLES: usize = 500;
/// The fsync test stops early on a disk this slow rather than run for minutes.
const FSYNC_TIME_MAX: Duration = Duration::from_secs(10);
/// How long the peer process may take to connect.
const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const BYTES_PER_MB: f64 = 1_000_000.0;

/// The measured ceilings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ceilings {
    pub loopback_tcp_mb_per_s: f64,
    pub write_mb_per_s: f64,
    pub write_fdatasync_1mib_mb_per_s: f64,
    pub fsync_p50_ms: f64,
    pub fsync_p99_ms: f64,
    /// Socket to file: 1 MiB reads from a loopback peer, each written to a file.
    pub socket_to_file: Flow,
    /// File to socket: sendfile of 1 MiB pieces of a cached file to a loopback peer.
    pub sendfile: Flow,
}

/// A bulk transfer: its rate, and the bytes it moved per CPU-second of the
/// process doing the file side (user and system time of that thread).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flow {
    pub mb_per_s: f64,
    pub mb_per_cpu_s: f64,
}

impl Flow {
    fn measured(bytes: u64, elapsed: Duration, cpu_s: f64) -> Self {
        let mb = bytes as f64 / BYTES_PER_MB;
        Self { mb_per_s: mb / elapsed.as_secs_f64().max(1e-9), mb_per_cpu_s: mb / cpu_s.max(1e-9) }
    }
}

impl Ceilings {
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"loopback_tcp_mb_per_s":{},"write_mb_per_s":{},"write_fdatasync_1mib_mb_per_s":{},"fsync_p50_ms":{},"fsync_p99_ms":{},"socket_to_file_mb_per_s":{},"socket_to_file_mb_per_cpu_s":{},"sendfile_mb_per_s":{},"sendfile_mb_per_cpu_s":{}}}"#,
            json_number(self.loopback_tcp_mb_per_s),
            json_number(self.write_mb_per_s),
            json_number(self.write_fdatasync_1mib_mb_per_s),
            json_number(self.fsync_p50_ms),
            json_number(self.fsync_p99_ms),
            json_number(self.socket_to_file.mb_per_s),
            json_number(self.socket_to_file.mb_per_cpu_s),
            json_number(self.sendfile.mb_per_s),
            json_number(self.sendfile.mb_per_cpu_s),
        )
    }

    pub fn human(&self, dir: &Path) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "loopback TCP (two processes):       {:>10.1} MB/s", self.loopback_tcp_mb_per_s);
        let _ = writeln!(
            text,
            "sequential write, no sync:          {:>10.1} MB/s ({})",
            self.write_mb_per_s,
            dir.display()
        );
        let _ = writeln!(text, "sequential write, fdatasync/MiB:    {:>10.1} MB/s", self.write_fdatasync_1mib_mb_per_s);
        let _ = writeln!(
            text,
            "4 KiB write + fdatasync:            p50 {:.3} ms, p99 {:.3} ms",
            self.fsync_p50_ms, self.fsync_p99_ms
        );
        let _ = writeln!(
            text,
            "socket to file (read + write):      {:>10.1} MB/s, {:.1} MB per CPU-s",
            self.socket_to_file.mb_per_s, self.socket_to_file.mb_per_cpu_s
        );
        let _ = write!(
            text,
            "file to socket (sendfile):          {:>10.1} MB/s, {:.1} MB per CPU-s",
            self.sendfile.mb_per_s, self.sendfile.mb_per_cpu_s
        );
        text
    }
}

/// Runs every measurement; returns the ceilings and the directory written in.
pub fn run(args: &CeilingsArgs) -> Result<(Ceilings, PathBuf), PerfError> {
    let duration = Duration::from_secs_f64(args.duration_s.max(0.1));
    let temp_dir;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            temp_dir = tempfile::Builder::new()
                .prefix("gregor-ceilings-")
                .tempdir()
                .map_err(|error| PerfError::io("creating a temporary directory", error))?;
            temp_dir.path().to_path_buf()
        }
    };
    let [own_cpu, peer_cpu] = first_two_cpus();
    if let Some(cpu) = own_cpu {
        pin_to(cpu)?;
    }
    let loopback_tcp_mb_per_s = loopback_tcp(duration, peer_cpu)?;
    let write_mb_per_s = sequential_write(&dir, duration, false)?;
    let write_fdatasync_1mib_mb_per_s = sequential_write(&dir, duration, true)?;
    let (fsync_p50_ms, fsync_p99_ms) = fsync_latency(&dir)?;
    let socket_to_file = socket_to_file(&dir, duration, peer_cpu)?;
    let sendfile = file_to_socket(&dir, duration, peer_cpu)?;
    let ceilings = Ceilings {
        loopback_tcp_mb_per_s,
        write_mb_per_s,
        write_fdatasync_1mib_mb_per_s,
        fsync_p50_ms,
        fsync_p99_ms,
        socket_to_file,
        sendfile,
    };
    Ok((ceilings, dir))
}

/// The first two CPUs this process may run on (None where it may run on fewer).
fn first_two_cpus() -> [Option<usize>; 2] {
    let mut found = [None, None];
    let Ok(allowed) = sched_getaffinity(None) else { return found };
    let mut cpus = (0..CpuSet::MAX_CPU).filter(|&cpu| allowed.is_set(cpu));
    found[0] = cpus.next();
    found[1] = cpus.next();
    found
}

fn pin_to(cpu: usize) -> Result<(), PerfError> {
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set).map_err(|error| PerfError::io(format!("pinning to CPU {cpu}"), error.into()))
}

/// User and system CPU time of the calling thread, in seconds.
fn thread_cpu_s() -> f64 {
    let now = clock_gettime(ClockId::ThreadCPUTime);
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// The arguments that led to `ceilings` in this process's command line
/// (`perf` for `gregor perf ceilings`), so the peer is started the same way.
fn subcommand_prefix() -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let end = args.iter().position(|arg| arg == "ceilings").unwrap_or(0);
    args[..end].to_vec()
}

/// A `ceilings-peer` child process connected to this one.
struct Peer {
    child: std::process::Child,
    stream: TcpStream,
}

impl Peer {
    fn start(
        role: PeerRole,
        duration: Duration,
        bytes_max: Option<u64>,
        cpu: Option<usize>,
    ) -> Result<Self, PerfError> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|error| PerfError::io("binding a loopback port", error))?;
        let address = listener.local_addr().map_err(|error| PerfError::io("the loopback port", error))?;
        let exe = std::env::current_exe().map_err(|error| PerfError::io("finding this executable", error))?;
        let mut command = Command::new(&exe);
        command.args(subcommand_prefix()).args([
            "ceilings-peer",
            "--connect",
            &address.to_string(),
            "--duration-s",
            &duration.as_secs_f64().to_string(),
            "--role",
            match role {
                PeerRole::Send => "send",
                PeerRole::Receive => "receive",
            },
        ]);
        if let Some(bytes_max) = bytes_max {
            command.args(["--bytes-max", &bytes_max.to_string()]);
        }
        if let Some(cpu) = cpu {
            command.args(["--cpu", &cpu.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|error| PerfError::io(format!("starting {} ceilings-peer", exe.display()), error))?;
        match accept_within(&listener, &mut child) {
            Ok(stream) => Ok(Self { child, stream }),
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(error)
            }
        }
    }

    /// Closes this end and waits for the peer, which must have succeeded.
    fn finish(self) -> Result<(), PerfError> {
        let Self { mut child, stream } = self;
        drop(stream);
        let status = child.wait().map_err(|error| PerfError::io("waiting for the peer process", error))?;
        if status.success() {
            Ok(())
        } else {
            Err(PerfError::io("the loopback peer", std::io::Error::other(format!("exited with {status}"))))
        }
    }
}

fn loopback_tcp(duration: Duration, peer_cpu: Option<usize>) -> Result<f64, PerfError> {
    let mut peer = Peer::start(PeerRole::Send, duration, None, peer_cpu)?;
    let measured = receive_all(&mut peer.stream, |_| Ok(()));
    peer.finish()?;
    let (bytes, elapsed, _) = measured?;
    Ok(bytes as f64 / BYTES_PER_MB / elapsed.as_secs_f64().max(1e-9))
}

fn accept_within(listener: &TcpListener, child: &mut std::process::Child) -> Result<TcpStream, PerfError> {
    listener.set_nonblocking(true).map_err(|error| PerfError::io("a non-blocking listener", error))?;
    let deadline = Instant::now() + PEER_CONNECT_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(|error| PerfError::io("a blocking stream", error))?;
                return Ok(stream);
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(error) => return Err(PerfError::io("accepting the peer", error)),
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(PerfError::io(
                "the loopback peer",
                std::io::Error::other(format!("exited early with {status}")),
            ));
        }
        if Instant::now() >= deadline {
            return Err(PerfError::Timeout { what: "the loopback peer connecting".into(), timeout_ms: 10_000 });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads whole 1 MiB chunks (the last may be short) until the peer closes,
/// handing each to `sink`. Returns the bytes, and the time and this thread's
/// CPU seconds from the first byte to the end.
fn receive_all(
    stream: &mut TcpStream,
    mut sink: impl FnMut(&[u8]) -> Result<(), PerfError>,
) -> Result<(u64, Duration, f64), PerfError> {
    let mut buffer = vec![0u8; CHUNK_BYTES];
    let mut total = 0u64;
    let mut first_byte: Option<(Instant, f64)> = None;
    loop {
        let mut filled = 0;
        while filled < buffer.len() {
            let read =
                stream.read(&mut buffer[filled..]).map_err(|error| PerfError::io("reading from the peer", error))?;
            if read == 0 {
                break;
            }
            first_byte.get_or_insert_with(|| (Instant::now(), thread_cpu_s()));
            filled += read;
        }
        if filled == 0 {
            break;
        }
        sink(&buffer[..filled])?;
        total += filled as u64;
    }
    Ok(match first_byte {
        Some((at, cpu_s)) => (total, at.elapsed(), thread_cpu_s() - cpu_s),
        None => (0, Duration::ZERO, 0.0),
    })
}

/// A produce's floor: the peer streams 1 MiB writes and this process writes
/// each MiB it reads to a new file (no sync), up to 1 GiB or the duration.
fn socket_to_file(dir: &Path, duration: Duration, peer_cpu: Option<usize>) -> Result<Flow, PerfError> {
    let mut scratch = ScratchFile::create(dir, "gregor-ceilings-socket-to-file.tmp")?;
    let mut peer = Peer::start(PeerRole::Send, duration, Some(WRITE_BYTES_MAX), peer_cpu)?;
    let path = scratch.path.clone();
    let measured = receive_all(&mut peer.stream, |chunk| {
        scratch.file.write_all(chunk).map_err(|error| PerfError::io(format!("writing {}", path.display()), error))
    });
    peer.finish()?;
    let (bytes, elapsed, cpu_s) = measured?;
    Ok(Flow::measured(bytes, elapsed, cpu_s))
}

/// A fetch's floor: sendfile of 1 MiB pieces of a cached file (256 MiB for a
/// run of 2 s or more), round and round, to a peer that discards them, up to
/// 1 GiB or the duration.
fn file_to_socket(dir: &Path, duration: Duration, peer_cpu: Option<usize>) -> Result<Flow, PerfError> {
    let file_mib = (duration.as_secs_f64() * SENDFILE_FILE_BYTES_PER_S) as u64 / CHUNK_BYTES as u64;
    let file_bytes = (file_mib * CHUNK_BYTES as u64).clamp(SENDFILE_FILE_BYTES_MIN, SENDFILE_FILE_BYTES_MAX);
    let scratch = ScratchFile::create(dir, "gregor-ceilings-sendfile.tmp")?;
    let mut chunk = vec![0u8; CHUNK_BYTES];
    SplitMix64::new(SplitMix64::seed_from_clock()).fill(&mut chunk);
    let mut file = &scratch.file;
    for _ in 0..file_bytes / CHUNK_BYTES as u64 {
        file.write_all(&chunk).map_err(|error| PerfError::io(format!("writing {}", scratch.path.display()), error))?;
    }
    // Written back before the clock starts, so that writeback is not measured; the pages stay cached.
    scratch
        .file
        .sync_data()
        .map_err(|error| PerfError::io(format!("fdatasync of {}", scratch.path.display()), error))?;
    let peer = Peer::start(PeerRole::Receive, duration, None, peer_cpu)?;
    let started = Instant::now();
    let started_cpu_s = thread_cpu_s();
    let mut sent = 0u64;
    let mut offset = 0u64;
    while sent < WRITE_BYTES_MAX && started.elapsed() < duration {
        if offset >= file_bytes {
            offset = 0;
        }
        let count = (file_bytes - offset).min(CHUNK_BYTES as u64) as usize;
        let written = rustix::fs::sendfile(&peer.stream, &scratch.file, Some(&mut offset), count)
            .map_err(|error| PerfError::io("sendfile to the peer", error.into()))?;
        if written == 0 {
            return Err(PerfError::io("sendfile to the peer", std::io::Error::from(ErrorKind::WriteZero)));
        }
        sent += written as u64;
    }
    let flow = Flow::measured(sent, started.elapsed(), thread_cpu_s() - started_cpu_s);
    peer.finish()?;
    Ok(flow)
}

/// The hidden `ceilings-peer`: the other end of the loopback measurements.
pub fn peer(args: &CeilingsPeerArgs) -> Result<(), PerfError> {
    if let Some(cpu) = args.cpu {
        pin_to(cpu)?;
    }
    let mut stream = TcpStream::connect(&args.connect)
        .map_err(|error| PerfError::io(format!("connecting to {}", args.connect), error))?;
    match args.role {
        PeerRole::Send => {
            let mut chunk = vec![0u8; CHUNK_BYTES];
            SplitMix64::new(SplitMix64::seed_from_clock()).fill(&mut chunk);
            let duration = Duration::from_secs_f64(args.duration_s.max(0.1));
            let bytes_max = args.bytes_max.unwrap_or(u64::MAX);
            let started = Instant::now();
            let mut sent = 0u64;
            while sent < bytes_max && started.elapsed() < duration {
                stream.write_all(&chunk).map_err(|error| PerfError::io("streaming to the measuring process", error))?;
                sent += CHUNK_BYTES as u64;
            }
        }
        PeerRole::Receive => {
            let mut buffer = vec![0u8; CHUNK_BYTES];
            while stream
                .read(&mut buffer)
                .map_err(|error| PerfError::io("reading from the measuring process", error))?
                > 0
            {}
        }
    }
    Ok(())
}

struct ScratchFile {
    path: PathBuf,
    file: File,
}

impl ScratchFile {
    fn create(dir: &Path, name: &str) -> Result<Self, PerfError> {
        let path = dir.join(name);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|error| PerfError::io(format!("creating {}", path.display()), error))?;
        Ok(Self { path, file })
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        // Best effort: a leftover file in the test directory is harmless.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// MB/s of 1 MiB writes to a new file, up to 1 GiB or `duration`; with
/// `fdatasync`, each MiB is made durable before the next is written.
fn sequential_write(dir: &Path, duration: Duration, fdatasync: bool) -> Result<f64, PerfError> {
    let mut scratch = ScratchFile::create(dir, "gregor-ceilings-write.tmp")?;
    let mut chunk = vec![0u8; CHUNK_BYTES];
    // Random bytes, so a compressing or deduplicating file system cannot flatter the figure.
    SplitMix64::new(SplitMix64::seed_from_clock()).fill(&mut chunk);
    let started = Instant::now();
    let mut written = 0u64;
    while written < WRITE_BYTES_MAX && started.elapsed() < duration {
        scratch
            .file
            .write_all(&chunk)
            .map_err(|error| PerfError::io(format!("writing {}", scratch.path.display()), error))?;
        if fdatasync {
            scratch
                .file
                .sync_data()
                .map_err(|error| PerfError::io(format!("fdatasync of {}", scratch.path.display()), error))?;
        }
        written += CHUNK_BYTES as u64;
    }
    Ok(written as f64 / BYTES_PER_MB / started.elapsed().as_secs_f64().max(1e-9))
}

/// p50 and p99, in ms, of a 4 KiB append followed by fdatasync.
fn fsync_latency(dir: &Path) -> Result<(f64, f64), PerfError> {
    let mut scratch = ScratchFile::create(dir, "gregor-ceilings-fsync.tmp")?;
    let block = [0x5au8; FSYNC_WRITE_BYTES];
    let mut samples_ms = Vec::with_capacity(FSYNC_SAMPLES);
    let started = Instant::now();
    while samples_ms.len() < FSYNC_SAMPLES && started.elapsed() < FSYNC_TIME_MAX {
        let write_started = Instant::now();
        scratch
            .file
            .write_all(&block)
            .map_err(|error| PerfError::io(format!("writing {}", scratch.path.display()), error))?;
        scratch
            .file
            .sync_data()
            .map_err(|error| PerfError::io(format!("fdatasync of {}", scratch.path.display()), error))?;
        samples_ms.push(write_started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((percentile(&mut samples_ms, 0.50), percentile(&mut samples_ms, 0.99)))
}

/// The nearest-rank percentile; 0 for no samples.
fn percentile(samples: &mut [f64], quantile: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((quantile * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut samples, 0.5), 50.0);
        assert_eq!(percentile(&mut samples, 0.99), 99.0);
        assert_eq!(percentile(&mut [], 0.5), 0.0);
        assert_eq!(percentile(&mut [3.0], 0.99), 3.0);
    }

    #[test]
    fn json_keys_are_the_documented_ones() {
        let ceilings = Ceilings {
            loopback_tcp_mb_per_s: 5000.0,
            write_mb_per_s: 1500.5,
            write_fdatasync_1mib_mb_per_s: 300.25,
            fsync_p50_ms: 0.5,
            fsync_p99_ms: 2.0,
            socket_to_file: Flow { mb_per_s: 1800.0, mb_per_cpu_s: 2100.0 },
            sendfile: Flow { mb_per_s: 2000.0, mb_per_cpu_s: 2500.0 },
        };
        assert_eq!(
            ceilings.to_json(),
            r#"{"loopback_tcp_mb_per_s":5000.000,"write_mb_per_s":1500.500,"write_fdatasync_1mib_mb_per_s":300.250,"fsync_p50_ms":0.500,"fsync_p99_ms":2.000,"socket_to_file_mb_per_s":1800.000,"socket_to_file_mb_per_cpu_s":2100.000,"sendfile_mb_per_s":2000.000,"sendfile_mb_per_cpu_s":2500.000}"#
        );
    }

    #[test]
    fn file_measurements_run_in_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(sequential_write(dir.path(), Duration::from_millis(50), false).unwrap() > 0.0);
        assert!(sequential_write(dir.path(), Duration::from_millis(50), true).unwrap() > 0.0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "scratch files are removed");
    }
}
