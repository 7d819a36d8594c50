//! A node's identity on disk, through the real binary: `gregor storage format` and
//! `random-uuid`, the apache/kafka image's `CLUSTER_ID` on first and later starts,
//! the refusal of another cluster id or node.id (which changes nothing in the data
//! folder), and `gregor dev --nodes 1`.

use anyhow::{bail, ensure, Context, Result};
use gregor_integration_tests::{gregor_binary, parse_listening, BrokerProcess, READY_TIMEOUT, SHUTDOWN_TIMEOUT};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn gregor(args: &[&str]) -> Result<Output> {
    let output = Command::new(gregor_binary()?)
        .args(args)
        .env_remove("CLUSTER_ID")
        .stdin(Stdio::null())
        .output()
        .context("running gregor")?;
    Ok(output)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file under `root` with its bytes.
fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

enum Start {
    Ready { child: std::process::Child, line: String },
    Exited { status: ExitStatus, stderr: String },
}

/// Starts `gregor serve` on `dir` with `CLUSTER_ID` (when given) and `overrides`.
fn start(dir: &Path, cluster_id: Option<&str>, overrides: &[(&str, &str)]) -> Result<Start> {
    let stderr_path = dir.with_extension("stderr");
    let stderr = std::fs::File::create(&stderr_path)?;
    let mut command = Command::new(gregor_binary()?);
    command.arg("serve");
    let log_dirs = format!("log.dirs={}", dir.display());
    for pair in ["listeners=PLAINTEXT://127.0.0.1:0".to_owned(), log_dirs]
        .into_iter()
        .chain(overrides.iter().map(|(k, v)| format!("{k}={v}")))
    {
        command.arg("--override").arg(pair);
    }
    command.env_remove("CLUSTER_ID").env("RUST_BACKTRACE", "0");
    if let Some(id) = cluster_id {
        command.env("CLUSTER_ID", id);
    }
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr).spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(50)) {
            if line.starts_with("gregor ready") {
                return Ok(Start::Ready { child, line });
            }
        }
        if let Some(status) = child.try_wait()? {
            return Ok(Start::Exited { status, stderr: std::fs::read_to_string(&stderr_path)? });
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            bail!("gregor neither got ready nor exited in {READY_TIMEOUT:?}");
        }
    }
}

fn stop(mut child: std::process::Child) -> Result<ExitStatus> {
    let pid = libc::pid_t::try_from(child.id())?;
    // SAFETY: signals the child this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            bail!("no exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cluster_of(ready_line: &str) -> Option<&str> {
    ready_line.split("cluster ").nth(1)?.split(',').next()
}

#[test]
fn random_uuid_prints_kafka_ids() -> Result<()> {
    let first = gregor(&["storage", "random-uuid"])?;
    let second = gregor(&["storage", "random-uuid"])?;
    ensure!(first.status.success(), "{}", text(&first.stderr));
    let (a, b) = (text(&first.stdout).trim().to_owned(), text(&second.stdout).trim().to_owned());
    for id in [&a, &b] {
        ensure!(id.len() == 22, "{id:?} is not 22 characters");
        ensure!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{id:?} is not base64url");
    }
    ensure!(a != b, "two calls printed the same id {a}");
    Ok(())
}

#[test]
fn storage_format_then_start_uses_the_formatted_id() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let (a, b) = (temp.path().join("a"), temp.path().join("b"));
    let log_dirs = format!("log.dirs={},{}", a.display(), b.display());
    let id = text(&gregor(&["storage", "random-uuid"])?.stdout).trim().to_owned();
    let formatted = gregor(&["storage", "format", "--cluster-id", &id, "--override", &log_dirs])?;
    ensure!(formatted.status.success(), "format failed: {}", text(&formatted.stderr));
    ensure!(text(&formatted.stdout).contains(&format!("with cluster.id {id}")), "{}", text(&formatted.stdout));
    for dir in [&a, &b] {
        let meta = std::fs::read_to_string(dir.join("meta.properties"))?;
        ensure!(meta.contains(&format!("cluster.id={id}")) && meta.contains("node.id=1") && meta.contains("version=1"));
    }
    // Formatting again is refused unless formatted directories are to be skipped.
    let again = gregor(&["storage", "format", "-t", &id, "-o", &log_dirs])?;
    ensure!(again.status.code() == Some(1), "second format: {:?}", again.status);
    ensure!(text(&again.stderr).contains("already formatted"), "{}", text(&again.stderr));
    let ignored = gregor(&["storage", "format", "-t", &id, "-o", &log_dirs, "--ignore-formatted"])?;
    ensure!(ignored.status.success(), "{}", text(&ignored.stderr));
    let info = gregor(&["storage", "info", "-o", &log_dirs])?;
    ensure!(info.status.success(), "info: {}", text(&info.stdout));
    ensure!(text(&info.stdout).contains(&format!("cluster.id={id}")), "{}", text(&info.stdout));

    let joined = format!("{},{}", a.display(), b.display());
    let mut broker = BrokerProcess::start(&[("log.dirs", joined.as_str())])?;
    ensure!(cluster_of(broker.ready_line()) == Some(id.as_str()), "ready line: {}", broker.ready_line());
    broker.stop()?;
    Ok(())
}

#[test]
fn cluster_id_env_formats_then_a_different_id_or_node_is_refused() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path().join("data");
    let id = "MkU3OEVBNTcwNTJENDM2Qk";
    let Start::Ready { child, line } = start(&dir, Some(id), &[])? else { bail!("first start failed") };
    ensure!(cluster_of(&line) == Some(id), "first start did not use CLUSTER_ID: {line}");
    let (_, port) = parse_listening(&line).context("listening")?;
    ensure!(port != 0);
    ensure!(stop(child)?.success(), "clean stop");
    let before = snapshot(&dir);
    ensure!(before.iter().any(|(path, _)| path.ends_with("meta.properties")));

    match start(&dir, Some("4L6g3nShT-eMCtK--X86sw"), &[])? {
        Start::Ready { child, line } => {
            let _ = stop(child);
            bail!("a different CLUSTER_ID started: {line}");
        }
        Start::Exited { status, stderr } => {
            ensure!(!status.success(), "exit status {status}");
            ensure!(
                stderr.contains(&format!("belongs to cluster {id}, but CLUSTER_ID is 4L6g3nShT-eMCtK--X86sw")),
                "{stderr}"
            );
            ensure!(stderr.contains("nothing was changed"), "{stderr}");
        }
    }
    ensure!(snapshot(&dir) == before, "the refused start changed the data folder");

    match start(&dir, None, &[("node.id", "2")])? {
        Start::Ready { child, line } => {
            let _ = stop(child);
            bail!("another node.id started: {line}");
        }
        Start::Exited { status, stderr } => {
            ensure!(!status.success(), "exit status {status}");
            ensure!(stderr.contains("formatted for node.id 1, but this node's node.id is 2"), "{stderr}");
        }
    }
    ensure!(snapshot(&dir) == before, "the refused start changed the data folder");

    // The right id, or none, starts with the data.
    for cluster_id in [Some(id), None] {
        let Start::Ready { child, line } = start(&dir, cluster_id, &[])? else { bail!("restart refused") };
        ensure!(cluster_of(&line) == Some(id), "{line}");
        ensure!(stop(child)?.success());
    }
    Ok(())
}

/// Two consecutive free ports on loopback (the OS picks the first).
fn free_port_pair() -> Result<u16> {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = first.local_addr()?.port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no two consecutive free ports")
}

#[test]
fn dev_one_node_gets_ready_and_stops_on_sigterm() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path().join("dev");
    let base = free_port_pair()?;
    let mut child = Command::new(gregor_binary()?)
        .args(["dev", "--nodes", "1", "--base-port", &base.to_string(), "--dir"])
        .arg(&dir)
        .env_remove("CLUSTER_ID")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let stderr = child.stderr.take().context("stderr")?;
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let stderr_reader =
        std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<String>>());
    let line = match lines.recv_timeout(READY_TIMEOUT) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            bail!("no ready line; stderr: {:?}", stderr_reader.join());
        }
    };
    let expected = format!("gregor dev cluster ready: bootstrap 127.0.0.1:{base} (1 node, data in {})", dir.display());
    ensure!(line == expected, "ready line {line:?}, expected {expected:?}");
    // A client reaches the node on the announced port.
    std::net::TcpStream::connect(("127.0.0.1", base)).context("connecting to the node")?;
    let cluster_id = std::fs::read_to_string(dir.join("cluster.id"))?.trim().to_owned();
    let meta = std::fs::read_to_string(dir.join("node-1").join("meta.properties"))?;
    ensure!(meta.contains(&format!("cluster.id={cluster_id}")), "{meta}");

    let status = stop(child)?;
    ensure!(status.success(), "gregor dev exited with {status}");
    let logged = stderr_reader.join().map_err(|_| anyhow::anyhow!("stderr reader panicked"))?;
    ensure!(logged.iter().any(|l| l.starts_with("[node 1]") && l.contains("stopped cleanly")), "{logged:#?}");
    // The node is gone: its port is free again.
    ensure!(
        std::net::TcpListener::bind(("127.0.0.1", base)).is_ok(),
        "the node still listens after the launcher exited"
    );
    Ok(())
}

#[test]
fn dev_reports_a_node_that_exits_early_and_fails() -> Result<()> {
    let temp = tempfile::tempdir()?;
    let base = free_port_pair()?;
    // Node 1's client port is taken, so node 1 cannot start.
    let _taken = std::net::TcpListener::bind(("127.0.0.1", base))?;
    let mut child = Command::new(gregor_binary()?)
        .args(["dev", "--nodes", "1", "--base-port", &base.to_string(), "--dir"])
        .arg(temp.path().join("dev"))
        .env_remove("CLUSTER_ID")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + READY_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            bail!("gregor dev did not exit after its node failed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output()?;
    ensure!(status.code() == Some(1), "exit status {status}");
    let stderr = text(&output.stderr);
    ensure!(stderr.contains("gregor dev: node 1 exited early"), "{stderr}");
    ensure!(stderr.contains("[node 1]") && stderr.contains("cannot listen on"), "{stderr}");
    ensure!(!text(&output.stdout).contains("cluster ready"), "{}", text(&output.stdout));
    Ok(())
}
