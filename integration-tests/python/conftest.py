"""Starts the real `gregor` binary for the Python client tests.

The binary is found like the Rust harness finds it: $GREGOR_BIN, else
<target dir>/debug/gregor ($CARGO_TARGET_DIR or the workspace's target/), else it
is built once with `cargo build -p gregor-broker --bin gregor`.
"""

import os
import pathlib
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60
LISTENING = re.compile(r"listening on (\[[^\]]+\]|[^\s,:]+):(\d+)")


def gregor_binary():
    explicit = os.environ.get("GREGOR_BIN")
    if explicit:
        if not os.path.isfile(explicit):
            raise RuntimeError(f"GREGOR_BIN={explicit} is not a file")
        return explicit
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    candidate = target / "debug" / "gregor"
    if not candidate.is_file():
        subprocess.run(
            ["cargo", "build", "-p", "gregor-broker", "--bin", "gregor"],
            cwd=REPO,
            env={**os.environ, "CARGO_TARGET_DIR": str(target)},
            check=True,
        )
    return str(candidate)


class Broker:
    """One `gregor serve` process on a free port with its own data directory."""

    def __init__(self, overrides=None):
        self.dir = tempfile.mkdtemp(prefix="gregor-pytest-")
        self.stderr_path = os.path.join(self.dir, "broker.stderr")
        self.overrides = {
            "listeners": "PLAINTEXT://127.0.0.1:0",
            "log.dirs": os.path.join(self.dir, "data"),
        }
        self.overrides.update(overrides or {})
        self.proc = None
        self.host = None
        self.port = None
        self.start()

    def start(self):
        args = [gregor_binary(), "serve"]
        for key, value in self.overrides.items():
            args += ["--override", f"{key}={value}"]
        with open(self.stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
        deadline = time.monotonic() + READY_TIMEOUT_S
        buffered = b""
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode} before its ready line{self.diag()}")
            left = deadline - time.monotonic()
            if left <= 0:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"no `gregor ready` line within {READY_TIMEOUT_S} s{self.diag()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 0.2))
            if not ready:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            buffered += chunk
            for line in buffered.decode(errors="replace").splitlines():
                if line.startswith("gregor ready"):
                    found = LISTENING.search(line)
                    if not found:
                        raise RuntimeError(f"ready line without `listening on HOST:PORT`: {line!r}")
                    self.host, self.port = found.group(1), int(found.group(2))
                    # Keep draining stdout so the broker never blocks on a full pipe.
                    threading.Thread(target=self.proc.stdout.read, daemon=True).start()
                    return

    @property
    def bootstrap(self):
        return f"{self.host}:{self.port}"

    def stderr_tail(self, lines=40):
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 65536))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        text = re.sub(r"\x1b\[[0-9;?]*[@-~]", "", text)
        return "\n".join(text.splitlines()[-lines:])

    def diag(self):
        return f"\n--- broker stderr (last 40 lines, {self.stderr_path}) ---\n{self.stderr_tail()}\n---"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self):
        """Crashes the broker (SIGKILL) and reaps it; `start_again` recovers it."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def start_again(self):
        """Starts the stopped or killed broker on the same data directory and port,
        so clients holding the old bootstrap address reconnect to it."""
        if self.proc and self.proc.poll() is None:
            raise RuntimeError("broker is still running")
        first = self.overrides["listeners"]
        self.overrides["listeners"] = f"PLAINTEXT://{self.host}:{self.port}"
        try:
            self.start()
        finally:
            self.overrides["listeners"] = first

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


@pytest.fixture(scope="module")
def broker():
    b = Broker({"num.partitions": "1"})
    yield b
    b.close()


@pytest.fixture(autouse=True)
def broker_stderr_on_failure(request):
    """Shows the broker's stderr tail under a failed test (any fixture named
    `broker` or `*_broker`)."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for name in request.fixturenames:
            if name == "broker" or name.endswith("_broker"):
                print(request.getfixturevalue(name).diag())


@pytest.fixture
def topic_name(request):
    """A topic name unique to this test."""
    base = re.sub(r"[^a-zA-Z0-9]", "-", request.node.name)[:60]
    return f"{base}-{uuid.uuid4().hex[:8]}"


def wait_for(condition, timeout=15.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
