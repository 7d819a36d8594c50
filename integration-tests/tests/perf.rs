//! `gregor perf` end to end: produce 10,000 records of 1 KiB into two partitions
//! of the real broker, consume exactly those back (assigned, then in a KIP-848
//! group), produce against `gregor perf sink`, and measure the machine's ceilings. Each run's last stdout line
//! is its JSON summary.

use anyhow::{bail, ensure, Context, Result};
use gregor_integration_tests::{gregor_binary, BrokerProcess};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A debug build moves 10 MB in well under a second; this only bounds a hang.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const RECORDS: u64 = 10_000;

/// Runs `gregor perf <command> <args> --json` and returns its JSON summary.
fn perf(command: &str, args: &[&str]) -> Result<Value> {
    let binary = gregor_binary()?;
    let child = Command::new(&binary)
        .args(["perf", command])
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} perf {args:?}", binary.display()))?;
    // Pipes are drained while the run goes on, so a chatty run cannot block on a full one.
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    let output = match done_rx.recv_timeout(RUN_TIMEOUT) {
        Ok(output) => output?,
        Err(_) => {
            // SAFETY: kill(2) on our own child, which the waiting thread has not reaped yet.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            bail!("gregor perf {command} {args:?} did not finish within {RUN_TIMEOUT:?}");
        }
    };
    let status = output.status;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("gregor perf {command} {args:?}:\n{stdout}{stderr}");
    ensure!(status.success(), "gregor perf {command} {args:?} exited with {status}:\n{stderr}");
    let last = stdout.lines().last().context("no output")?;
    serde_json::from_str(last).with_context(|| format!("the last stdout line is not JSON: {last:?}"))
}

fn number(summary: &Value, path: &[&str]) -> Result<f64> {
    let mut value = summary;
    for key in path {
        value = value.get(key).with_context(|| format!("no {path:?} in {summary}"))?;
    }
    value.as_f64().with_context(|| format!("{path:?} is not a number in {summary}"))
}

/// Exactly `records` records, no errors, a positive rate and positive latencies.
fn check(summary: &Value, mode: &str, records: u64) -> Result<()> {
    ensure!(summary["mode"] == mode, "mode of {summary}");
    ensure!(summary["records"].as_u64() == Some(records), "expected {records} records: {summary}");
    ensure!(summary["errors"].as_u64() == Some(0), "errors: {summary}");
    ensure!(number(summary, &["bytes"])? >= (records * 1024) as f64, "bytes: {summary}");
    ensure!(number(summary, &["records_per_s"])? > 0.0 && number(summary, &["mb_per_s"])? > 0.0, "rates: {summary}");
    for percentile in ["p50", "p99", "p999", "max"] {
        ensure!(number(summary, &["latency_ms", percentile])? > 0.0, "latency {percentile}: {summary}");
    }
    Ok(())
}

#[test]
fn produce_then_consume_assigned_and_in_a_group() -> Result<()> {
    let broker = BrokerProcess::start(&[])?;
    let bootstrap = broker.bootstrap();
    let common = ["--bootstrap", bootstrap.as_str(), "--topic", "perf-load"];
    let count = RECORDS.to_string();

    let produce =
        [&common[..], &["--partitions", "2", "--record-size-bytes", "1024", "--num-records", &count]].concat();
    broker.with_diag(check(&perf("produce", &produce)?, "produce", RECORDS))?;

    // Without a count or a duration, consume reads to the end of every partition.
    let assigned = [&common[..], &["--consumers", "2"]].concat();
    broker.with_diag(check(&perf("consume", &assigned)?, "consume", RECORDS))?;

    let grouped = [&common[..], &["--group", "g", "--num-records", &count]].concat();
    broker.with_diag(check(&perf("consume", &grouped)?, "consume", RECORDS))?;
    Ok(())
}

/// The sink child, killed when dropped.
struct Sink(Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn produce_against_the_sink() -> Result<()> {
    let mut sink = Sink(
        Command::new(gregor_binary()?)
            .args(["perf", "sink", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting gregor perf sink")?,
    );
    let mut line = String::new();
    BufReader::new(sink.0.stdout.take().context("sink stdout")?).read_line(&mut line)?;
    let address = line.trim().rsplit(' ').next().context("no address in the sink's line")?.to_owned();
    ensure!(line.starts_with("gregor perf sink listening on"), "sink said {line:?}");

    let produce = ["--bootstrap", &address, "--topic", "sunk", "--partitions", "3", "--num-records", "20000"];
    check(&perf("produce", &produce)?, "produce", 20_000)?;
    let unacknowledged = ["--bootstrap", &address, "--topic", "sunk", "--num-records", "5000", "--acks", "0"];
    let summary = perf("produce", &unacknowledged)?;
    ensure!(summary["records"].as_u64() == Some(5000) && summary["errors"].as_u64() == Some(0), "{summary}");
    Ok(())
}

#[test]
fn ceilings_measure_every_path() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let dir_text = dir.path().to_str().context("a UTF-8 temporary directory")?;
    let ceilings = perf("ceilings", &["--dir", dir_text, "--duration-s", "0.2"])?;
    for key in [
        "loopback_tcp_mb_per_s",
        "write_mb_per_s",
        "write_fdatasync_1mib_mb_per_s",
        "fsync_p50_ms",
        "fsync_p99_ms",
        "socket_to_file_mb_per_s",
        "socket_to_file_mb_per_cpu_s",
        "sendfile_mb_per_s",
        "sendfile_mb_per_cpu_s",
    ] {
        let value = number(&ceilings, &[key])?;
        ensure!(value.is_finite() && value > 0.0, "{key} is {value} in {ceilings}");
    }
    // Moving bytes costs CPU: a figure per CPU-second above the rate would mean the CPU time was not counted.
    for flow in ["socket_to_file", "sendfile"] {
        ensure!(number(&ceilings, &[&format!("{flow}_mb_per_cpu_s")])? < 1_000_000.0, "{flow}: {ceilings}");
    }
    ensure!(std::fs::read_dir(dir.path())?.next().is_none(), "the scratch files are removed");
    Ok(())
}
