//! Black-box harness for the `gregor` binary: start it on a free port with a
//! temporary data directory, restart it cleanly (SIGTERM) or crash it
//! (SIGKILL), and talk to it with rdkafka or raw protocol frames.
//!
//! The binary is found, in order, at `$GREGOR_BIN`, at `<target dir>/debug/gregor`
//! (the target dir of the running test binary, `$CARGO_TARGET_DIR`, or the
//! workspace's `target/`), or else built once with
//! `cargo build -p gregor-broker --bin gregor`.

use anyhow::{anyhow, bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub mod cluster;
pub mod group_wire;
pub mod groups;
pub mod raw;
pub mod rdk;

/// How long a start may take before the harness gives up (debug build, recovery
/// of a large log after a crash).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a SIGTERM shutdown may take.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// The prefix of the one line the broker prints on stdout when it is ready.
const READY_PREFIX: &str = "gregor ready";
const LISTENING_ON: &str = "listening on ";

/// A running `gregor` process with its own data directory.
pub struct BrokerProcess {
    child: Option<Child>,
    pid: u32,
    /// Kept so the directory lives as long as the broker (and across restarts).
    _temp_dir: Option<tempfile::TempDir>,
    data_dir: PathBuf,
    stderr_path: PathBuf,
    overrides: Vec<(String, String)>,
    host: String,
    port: u16,
    ready_line: String,
    starts: u32,
    /// RLIMIT_NOFILE (soft and hard) the broker runs under, on every start.
    open_files_limit: Option<u64>,
    /// Environment variables set on every start (CLUSTER_ID, ...).
    env: Vec<(String, String)>,
}

impl BrokerProcess {
    /// Starts a broker on `127.0.0.1:0` with a fresh temporary data directory.
    /// `overrides` are passed as `--override key=value`; a `log.dirs` or
    /// `listeners` among them replaces the harness's own.
    pub fn start(overrides: &[(&str, &str)]) -> Result<BrokerProcess> {
        Self::start_with_limit(overrides, None, &[])
    }

    /// As [`BrokerProcess::start`], with environment variables set on every start.
    pub fn start_with_env(overrides: &[(&str, &str)], env: &[(&str, &str)]) -> Result<BrokerProcess> {
        Self::start_with_limit(overrides, None, env)
    }

    /// As [`BrokerProcess::start`], with both the soft and the hard
    /// `RLIMIT_NOFILE` of the broker (and of its restarts) set to
    /// `open_files_limit`, as `prlimit --nofile=N:N` would.
    pub fn start_with_open_files_limit(overrides: &[(&str, &str)], open_files_limit: u64) -> Result<BrokerProcess> {
        Self::start_with_limit(overrides, Some(open_files_limit), &[])
    }

    fn start_with_limit(
        overrides: &[(&str, &str)],
        open_files_limit: Option<u64>,
        env: &[(&str, &str)],
    ) -> Result<BrokerProcess> {
        let temp_dir = tempfile::Builder::new().prefix("gregor-itest-").tempdir().context("creating a temp dir")?;
        let given_dir = overrides.iter().find(|(k, _)| *k == "log.dirs").map(|(_, v)| PathBuf::from(v));
        let data_dir = given_dir.unwrap_or_else(|| temp_dir.path().join("data"));
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let mut all: Vec<(String, String)> = vec![
            ("listeners".into(), "PLAINTEXT://127.0.0.1:0".into()),
            ("log.dirs".into(), data_dir.display().to_string()),
        ];
        for (key, value) in overrides {
            all.retain(|(k, _)| k != key);
            all.push((key.to_string(), value.to_string()));
        }
        let stderr_path = temp_dir.path().join("broker.stderr");
        let mut broker = BrokerProcess {
            child: None,
            pid: 0,
            _temp_dir: Some(temp_dir),
            data_dir,
            stderr_path,
            overrides: all,
            host: String::new(),
            port: 0,
            ready_line: String::new(),
            starts: 0,
            open_files_limit,
            env: env.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect(),
        };
        broker.spawn_and_wait_ready()?;
        Ok(broker)
    }

    /// `host:port` of the listener, as parsed from the ready line.
    pub fn bootstrap(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The whole ready line of the latest start.
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGTERM, then waits for the exit; fails unless it exits with status 0 in time.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        let mut child = self.child.take().ok_or_else(|| anyhow!("broker is not running"))?;
        // SAFETY: plain kill(2) on the pid of our own child, which has not been reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let started = Instant::now();
        let deadline = started + SHUTDOWN_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                eprintln!(
                    "harness: broker pid {} exited with {status} {:?} after SIGTERM",
                    child.id(),
                    started.elapsed()
                );
                if !status.success() {
                    bail!("broker exited with {status} after SIGTERM (expected 0){}", self.stderr_tail_block());
                }
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("broker did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM{}", self.stderr_tail_block());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Clean restart: SIGTERM, wait for exit 0, start again on the same data
    /// directory and, if it is still free, the same port.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.start_again()
    }

    /// Crash: SIGKILL and reap. Call [`BrokerProcess::start_again`] to recover.
    pub fn kill9(&mut self) -> Result<()> {
        let mut child = self.child.take().ok_or_else(|| anyhow!("broker is not running"))?;
        child.kill().context("SIGKILL")?;
        child.wait().context("reaping the killed broker")?;
        Ok(())
    }

    /// Starts the broker again on the same data directory, on the same port if
    /// it can still be bound, else on a new one.
    pub fn start_again(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("broker is still running");
        }
        let previous = self.overrides.clone();
        let listeners_given = previous.iter().any(|(k, v)| k == "listeners" && !v.ends_with(":0"));
        if !listeners_given && self.port != 0 {
            self.set_override("listeners", &format!("PLAINTEXT://{}:{}", self.host, self.port));
            match self.spawn_and_wait_ready() {
                Ok(()) => {
                    self.overrides = previous;
                    return Ok(());
                }
                Err(first) => {
                    // The port may have been taken meanwhile: fall back to a new one.
                    self.overrides = previous;
                    return self.spawn_and_wait_ready().map_err(|second| {
                        anyhow!("restart on the same port failed: {first:#}\nthen on a new port: {second:#}")
                    });
                }
            }
        }
        self.spawn_and_wait_ready()
    }

    fn set_override(&mut self, key: &str, value: &str) {
        self.overrides.retain(|(k, _)| k != key);
        self.overrides.push((key.into(), value.into()));
    }

    /// The last `lines` lines the broker wrote to stderr (over all its starts).
    pub fn stderr_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.stderr_path) {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
            let _ = file.read_to_string(&mut text);
        }
        let text = strip_ansi(&text);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn stderr_tail_block(&self) -> String {
        format!(
            "{}\n--- broker stderr (last 40 lines, {}) ---\n{}\n---",
            self.panics(),
            self.stderr_path.display(),
            self.stderr_tail(40)
        )
    }

    /// The broker's panic messages (a backtrace can push them out of the tail).
    fn panics(&self) -> String {
        let text = strip_ansi(&std::fs::read_to_string(&self.stderr_path).unwrap_or_default());
        let lines: Vec<&str> = text.lines().collect();
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate().filter(|(_, l)| l.contains("panicked at")).take(5) {
            out.push_str("\n--- broker panic ---\n");
            out.push_str(&lines[i..(i + 3).min(lines.len())].join("\n"));
            let _ = line;
        }
        out
    }

    /// A context string for assertion messages: the broker's stderr tail.
    pub fn diag(&self) -> String {
        self.stderr_tail_block()
    }

    /// Appends the broker's stderr tail to an error, keeping the error first.
    pub fn with_diag<T>(&self, result: Result<T>) -> Result<T> {
        result.map_err(|error| anyhow!("{error:#}{}", self.stderr_tail_block()))
    }

    fn spawn_and_wait_ready(&mut self) -> Result<()> {
        let binary = gregor_binary()?;
        self.starts += 1;
        let mut stderr = OpenOptions::new().create(true).append(true).open(&self.stderr_path)?;
        writeln!(stderr, "=== harness: start #{} of {} ===", self.starts, binary.display())?;
        let mut command = Command::new(&binary);
        command.arg("serve");
        for (key, value) in &self.overrides {
            command.arg("--override").arg(format!("{key}={value}"));
        }
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(stderr)).env("RUST_BACKTRACE", "1");
        command.envs(self.env.iter().map(|(key, value)| (key, value)));
        if let Some(limit) = self.open_files_limit {
            let limit = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
            // SAFETY: runs in the forked child before exec, and only calls
            // setrlimit(2), which is async-signal-safe, on a value it owns.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command.spawn().with_context(|| format!("spawning {}", binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = mpsc::channel::<String>();
        let stdout_log = self.stderr_path.with_extension("stdout");
        // Drains stdout for the whole life of the process so the broker never
        // blocks on a full pipe; every line is also kept in a file.
        std::thread::spawn(move || {
            let mut log = OpenOptions::new().create(true).append(true).open(stdout_log).ok();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(log) = log.as_mut() {
                    let _ = writeln!(log, "{line}");
                }
                let _ = sender.send(line);
            }
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(line) if line.starts_with(READY_PREFIX) => {
                    eprintln!("harness: {line}");
                    let (host, port) = parse_listening(&line).with_context(|| {
                        format!("ready line without `listening on HOST:PORT`: {line:?}{}", self.stderr_tail_block())
                    })?;
                    self.host = host;
                    self.port = port;
                    self.ready_line = line;
                    self.pid = child.id();
                    self.child = Some(child);
                    return Ok(());
                }
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait()?;
                    bail!("broker exited with {status} before its ready line{}", self.stderr_tail_block());
                }
            }
            if let Some(status) = child.try_wait()? {
                // Let the reader pass on a ready line printed just before exiting.
                std::thread::sleep(Duration::from_millis(50));
                bail!("broker exited with {status} before its ready line{}", self.stderr_tail_block());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("no `{READY_PREFIX}` line on stdout within {READY_TIMEOUT:?}{}", self.stderr_tail_block());
            }
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.stderr_tail_block());
        }
    }
}

/// Parses `HOST:PORT` after `listening on ` in the ready line.
pub fn parse_listening(line: &str) -> Option<(String, u16)> {
    let rest = &line[line.find(LISTENING_ON)? + LISTENING_ON.len()..];
    let address = rest.split(|c: char| c.is_whitespace() || c == ',').next()?;
    let (host, port) = address.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
    Some((host, port.parse().ok()?))
}

/// The `gregor` binary (see the crate doc for the lookup order).
pub fn gregor_binary() -> Result<PathBuf> {
    static BINARY: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    let mut found = BINARY.get_or_init(|| Mutex::new(None)).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = found.as_ref() {
        return Ok(path.clone());
    }
    let path = locate_or_build()?;
    *found = Some(path.clone());
    Ok(path)
}

fn locate_or_build() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("GREGOR_BIN") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("GREGOR_BIN={} is not a file", path.display());
        }
        return Ok(path);
    }
    let target = target_dir();
    let candidate = target.join("debug").join("gregor");
    if candidate.is_file() {
        return Ok(candidate);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("crate is inside the workspace");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "gregor-broker", "--bin", "gregor"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(workspace)
        .status()
        .context("running cargo build -p gregor-broker --bin gregor")?;
    if !status.success() || !candidate.is_file() {
        bail!("cargo build -p gregor-broker --bin gregor failed ({status}); {} missing", candidate.display());
    }
    Ok(candidate)
}

/// The target directory: `$CARGO_TARGET_DIR`, else the one holding the running
/// test binary (`<target>/debug/deps/<test>`), else the workspace's `target/`.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    if let Ok(exe) = std::env::current_exe() {
        // <target>/debug/deps/<test binary>
        if let Some(target) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            if exe.parent().is_some_and(|deps| deps.ends_with("deps")) {
                return target.to_path_buf();
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target")
}

/// `text` without ANSI escape sequences (colours in log lines).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The peak resident set size (VmHWM) of a process, in bytes, from /proc.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::parse_listening;

    #[test]
    fn parses_the_ready_line() {
        let line = "gregor ready in 9 ms: node 1, cluster AbCd, listening on 127.0.0.1:40123";
        assert_eq!(parse_listening(line), Some(("127.0.0.1".into(), 40123)));
        assert_eq!(parse_listening("gregor ready: listening on [::1]:9092, x"), Some(("[::1]".into(), 9092)));
        assert_eq!(parse_listening("gregor ready"), None);
    }
}
