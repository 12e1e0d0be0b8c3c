"""The README's commands for real: `make run` / `make status` / `make stop`, and the scripts.

Each test runs the stack on free ports with its own data dir (CONFIG=...), so a developer's own
stack on the dev ports is never touched.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from lakehouse_common.ops.stack import is_alive, pid_file, read_pid
from lakehouse_common.topology import installed_daemons
from tests.support.paths import repo_root
from tests.support.stack import LiveStack

ROOT = repo_root()
DEMO_WORKERS = 300


def run(cmd: list[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


@pytest.fixture
def stack(tmp_path: Path) -> LiveStack:
    return LiveStack.create(tmp_path)


@pytest.mark.slow
def test_make_run_status_stop(stack: LiveStack) -> None:
    cfg = f"CONFIG={stack.config_path}"
    try:
        # The main job: the stack, then the demo roster ingested and indexed (small here).
        started = run(["make", "run", cfg, f"WORKERS={DEMO_WORKERS}"], timeout=600)
        assert started.returncode == 0, started.stdout + started.stderr
        gateway = stack.url("gateway")
        assert f"curl -s {gateway}/v1/health" in started.stdout
        assert f"curl -s {gateway}/v1/matrix/search" in started.stdout
        health = httpx.get(f"{gateway}/v1/health", timeout=10).json()
        assert health["status"] == "ok"
        assert set(health["daemons"]) == {d.name for d in installed_daemons()} - {"gateway"}
        index = httpx.get(f"{gateway}/v1/vectors/indexes/workers", timeout=10).json()
        assert index["count"] == DEMO_WORKERS

        # A second make run leaves the healthy daemons (same pids) and the loaded roster alone.
        # (It proves what a second scripts/start_stack.sh does, which `make run` runs: one
        # stack start fewer for the suite, issue 15.)
        pids = {d.name: stack.pid(d.name) for d in installed_daemons()}
        again = run(["make", "run", cfg, f"WORKERS={DEMO_WORKERS}"], timeout=600)
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.count("already healthy") == len(pids), again.stdout
        assert {d.name: stack.pid(d.name) for d in installed_daemons()} == pids
        assert "already loaded" in again.stdout

        # The learning story through the gateway, twice (each run starts cold again).
        for _ in range(2):
            story = run(["make", "demo", cfg])
            assert story.returncode == 0, story.stdout + story.stderr
            assert "the distance is halved" in story.stdout
            assert "role gate" in story.stdout

        status = run(["make", "status", cfg])
        assert status.returncode == 0, status.stdout + status.stderr
        for daemon in installed_daemons():
            assert daemon.name in status.stdout

        records = {d.name: read_pid(pid_file(stack.settings, d.name)) for d in installed_daemons()}
        assert all(r is not None and is_alive(r) for r in records.values())
    finally:
        stopped = run(["make", "stop", cfg])
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    for name, record in records.items():
        assert record is not None and not is_alive(record), f"{name} still running"
        assert not pid_file(stack.settings, name).exists()
    after = run(["make", "status", cfg])
    assert after.returncode != 0
    assert "down" in after.stdout


def test_port_held_by_a_stranger_fails_naming_the_daemon(stack: LiveStack) -> None:
    holder = socket.create_server(("127.0.0.1", stack.settings.ports.storaged))
    try:
        result = run([str(ROOT / "scripts/start_stack.sh"), "--config", str(stack.config_path)])
    finally:
        holder.close()
        run([str(ROOT / "scripts/stop_stack.sh"), "--config", str(stack.config_path)])
    assert result.returncode == 1
    assert "storaged" in result.stderr
    assert str(stack.settings.ports.storaged) in result.stderr


def test_daemon_dying_at_start_shows_its_log_tail(stack: LiveStack) -> None:
    # An unreadable audit key dir is no use here yet; a bad S3 endpoint URL is refused by
    # boto3 when storaged opens its store, so storaged exits during start.
    cfg = stack.config_path
    cfg.write_text(
        cfg.read_text() + '\n[storage]\nbackend = "s3"\n[storage.s3]\nendpoint_url = "not a url"\n'
    )
    try:
        result = run([str(ROOT / "scripts/start_stack.sh"), "--config", str(cfg)])
    finally:
        run([str(ROOT / "scripts/stop_stack.sh"), "--config", str(cfg)])
    assert result.returncode == 1
    assert "storaged exited" in result.stderr
    assert "last lines of" in result.stderr


def test_stop_never_signals_a_recycled_pid(stack: LiveStack) -> None:
    # A pid file naming a live process that is not the one we started (different start time).
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        path = pid_file(stack.settings, "storaged")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{sleeper.pid} 1\n")
        result = run([str(ROOT / "scripts/stop_stack.sh"), "--config", str(stack.config_path)])
        assert result.returncode == 0
        assert sleeper.poll() is None, "stop signalled a process it did not start"
        assert not path.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
