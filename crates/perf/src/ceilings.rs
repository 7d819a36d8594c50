//! `gregor perf ceilings`: what this machine allows at best, for the benchmark
//! report: loopback TCP between two processes, sequential file writes without
//! and with an fdatasync per MiB, and the latency of one small durable write.
//! Plain blocking I/O: each measurement has the machine to itself.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::batch::SplitMix64;
use crate::cli::{CeilingsArgs, CeilingsPeerArgs};
use crate::error::PerfError;
use crate::stats::json_number;

const CHUNK_BYTES: usize = 1024 * 1024;
/// The sequential write tests stop at this size or at the duration, whichever comes first.
const WRITE_BYTES_MAX: u64 = 1024 * 1024 * 1024;
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
}

impl Ceilings {
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"loopback_tcp_mb_per_s":{},"write_mb_per_s":{},"write_fdatasync_1mib_mb_per_s":{},"fsync_p50_ms":{},"fsync_p99_ms":{}}}"#,
            json_number(self.loopback_tcp_mb_per_s),
            json_number(self.write_mb_per_s),
            json_number(self.write_fdatasync_1mib_mb_per_s),
            json_number(self.fsync_p50_ms),
            json_number(self.fsync_p99_ms),
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
        let _ = write!(
            text,
            "4 KiB write + fdatasync:            p50 {:.3} ms, p99 {:.3} ms",
            self.fsync_p50_ms, self.fsync_p99_ms
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
    let loopback_tcp_mb_per_s = loopback_tcp(duration)?;
    let write_mb_per_s = sequential_write(&dir, duration, false)?;
    let write_fdatasync_1mib_mb_per_s = sequential_write(&dir, duration, true)?;
    let (fsync_p50_ms, fsync_p99_ms) = fsync_latency(&dir)?;
    let ceilings =
        Ceilings { loopback_tcp_mb_per_s, write_mb_per_s, write_fdatasync_1mib_mb_per_s, fsync_p50_ms, fsync_p99_ms };
    Ok((ceilings, dir))
}

/// The arguments that led to `ceilings` in this process's command line
/// (`perf` for `gregor perf ceilings`), so the peer is started the same way.
fn subcommand_prefix() -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let end = args.iter().position(|arg| arg == "ceilings").unwrap_or(0);
    args[..end].to_vec()
}

fn loopback_tcp(duration: Duration) -> Result<f64, PerfError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|error| PerfError::io("binding a loopback port", error))?;
    let address = listener.local_addr().map_err(|error| PerfError::io("the loopback port", error))?;
    let exe = std::env::current_exe().map_err(|error| PerfError::io("finding this executable", error))?;
    let mut child = Command::new(&exe)
        .args(subcommand_prefix())
        .args(["ceilings-peer", "--connect", &address.to_string(), "--duration-s", &duration.as_secs_f64().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|error| PerfError::io(format!("starting {} ceilings-peer", exe.display()), error))?;
    let accepted = accept_within(&listener, &mut child);
    let measured = accepted.and_then(receive_all);
    let status = child.wait().map_err(|error| PerfError::io("waiting for the peer process", error))?;
    let (bytes, elapsed) = measured?;
    if !status.success() {
        return Err(PerfError::io("the loopback peer", std::io::Error::other(format!("exited with {status}"))));
    }
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
            let _ = child.kill();
            return Err(PerfError::Timeout { what: "the loopback peer connecting".into(), timeout_ms: 10_000 });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Bytes read until the peer closes, and the time from the first byte to the end.
fn receive_all(mut stream: TcpStream) -> Result<(u64, Duration), PerfError> {
    let mut buffer = vec![0u8; CHUNK_BYTES];
    let mut total = 0u64;
    let mut first_byte_at = None;
    loop {
        let read = stream.read(&mut buffer).map_err(|error| PerfError::io("reading from the peer", error))?;
        if read == 0 {
            break;
        }
        first_byte_at.get_or_insert_with(Instant::now);
        total += read as u64;
    }
    Ok((total, first_byte_at.map(|at| at.elapsed()).unwrap_or_default()))
}

/// The hidden `ceilings-peer`: streams 1 MiB writes to the measuring process.
pub fn peer(args: &CeilingsPeerArgs) -> Result<(), PerfError> {
    let mut stream = TcpStream::connect(&args.connect)
        .map_err(|error| PerfError::io(format!("connecting to {}", args.connect), error))?;
    let mut chunk = vec![0u8; CHUNK_BYTES];
    SplitMix64::new(SplitMix64::seed_from_clock()).fill(&mut chunk);
    let duration = Duration::from_secs_f64(args.duration_s.max(0.1));
    let started = Instant::now();
    while started.elapsed() < duration {
        stream.write_all(&chunk).map_err(|error| PerfError::io("streaming to the measuring process", error))?;
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
        };
        assert_eq!(
            ceilings.to_json(),
            r#"{"loopback_tcp_mb_per_s":5000.000,"write_mb_per_s":1500.500,"write_fdatasync_1mib_mb_per_s":300.250,"fsync_p50_ms":0.500,"fsync_p99_ms":2.000}"#
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
