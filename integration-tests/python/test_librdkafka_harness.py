"""scripts/librdkafka-tests.py's own behaviour, with a stand-in test-runner and broker
(the real suite takes far too long for a unit check): every test-runner process reads
a config file of its own, and with --allowlist a test that passes only on its retry
is FLAKY and fails the run."""

import importlib.util
import os
import pathlib
import stat
import sys
import threading

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "librdkafka-tests.py"


@pytest.fixture
def harness():
    spec = importlib.util.spec_from_file_location("librdkafka_tests", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeBroker:
    port = 9092

    def __init__(self, *args, **kwargs):
        pass

    def start(self):
        pass

    def stop(self):
        pass

    def alive(self):
        return True


# Re-reads its config file while other runners are writing theirs, as test-runner does
# every time a test creates a client, and passes only if it always names the broker.
FAKE_RUNNER = """#!/bin/sh
for i in 1 2 3 4 5 6 7 8 9 10; do
  grep -q '^bootstrap.servers=' "$RDKAFKA_TEST_CONF" || { echo "No bootstrap.servers configured"; exit 1; }
  sleep 0.02
done
echo "$RDKAFKA_TEST_CONF" >> "$(dirname "$0")/confs-read"
echo "|  ${TESTS}_fake | PASSED |   0.200s |"
"""


def test_concurrent_tests_of_one_mode_read_their_own_config_files(harness, tmp_path):
    tests_dir = tmp_path / "tests"
    tests_dir.mkdir()
    runner = tests_dir / "test-runner"
    runner.write_text(FAKE_RUNNER)
    runner.chmod(runner.stat().st_mode | stat.S_IXUSR)
    run_dir = tmp_path / "run"
    (run_dir / "classic").mkdir(parents=True)
    numbers = ["0001", "0002", "0003", "0004", "0005", "0006"]
    results = {}

    def run(number):
        results[number] = harness.run_number(
            str(tests_dir), number, [f"{number}_fake"], "classic", "default", FakeBroker(), str(run_dir), 30
        )

    threads = [threading.Thread(target=run, args=(number,)) for number in numbers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {number: result[f"{number}_fake"][0] for number, result in results.items()} == dict.fromkeys(
        numbers, "PASSED"
    )
    confs = (tests_dir / "confs-read").read_text().split()
    assert len(confs) == len(set(confs)) == len(numbers)


def test_a_pass_on_retry_is_flaky_and_fails_the_run(harness, tmp_path, monkeypatch, capsys):
    expected, _reasons = harness.read_allowlist()
    flaky, steady = sorted(name for name, modes in expected.items() if modes["classic"] == "pass")[:2]
    monkeypatch.setattr(harness, "build", lambda: str(tmp_path))
    monkeypatch.setattr(harness, "broker_tests", lambda _dir: [(name, "0", "default") for name in expected])
    monkeypatch.setattr(harness, "Broker", FakeBroker)
    monkeypatch.setenv("GREGOR_BIN", sys.executable)
    runs = []

    def run_number(_tests_dir, number, names, mode, _scenario, _broker, run_dir, _timeout_s):
        runs.append((number, os.path.basename(run_dir)))
        first = not any(n == number for n, d in runs[:-1])
        return {
            name: ("FAILED", 1.0, "timed out closing the consumer") if name == flaky and first else ("PASSED", 1.0, "")
            for name in names
        }

    monkeypatch.setattr(harness, "run_number", run_number)
    monkeypatch.setattr(
        sys,
        "argv",
        ["librdkafka-tests.py", "--allowlist", "--modes", "classic", "--tests", f"{flaky},{steady}",
         "--run-dir", str(tmp_path / "run")],
    )
    assert harness.main() == 1
    out = capsys.readouterr().out
    assert "1 passed, 0 failed, 1 flaky, 0 skipped" in out
    assert f"{flaky} (classic): timed out closing the consumer" in out
    results = (tmp_path / "run" / "results.tsv").read_text()
    assert f"{flaky}\tclassic\tFLAKY" in results and f"{steady}\tclassic\tPASSED" in results
