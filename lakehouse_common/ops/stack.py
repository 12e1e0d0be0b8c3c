"""Stack lifecycle (SPEC §9): start every installed daemon in order, stop exactly what we started.

- start: in `topology.DAEMONS` order, each daemon that exists under `services/` is started
  detached (own session), with `<data_dir>/run/<daemon>.pid` and `<data_dir>/logs/<daemon>.log`,
  and waited for on `/health`. A daemon already healthy on its port is left alone. A port held
  by something else, or a daemon that dies or never gets healthy, stops the start with the
  daemon's name and the tail of its log.
- stop: in reverse order, TERM each process named by a pid file, KILL after a grace period.
  A pid file records the process start time too, so a recycled pid is never signalled.
- status: one row per daemon: port, pid, health.

The scripts in `scripts/` and the `lakehouse stack` commands are thin callers of this module.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from lakehouse_common.audit.keys import generate_key
from lakehouse_common.audit.signing import generate_signing_key, public_key_path
from lakehouse_common.config import (
    CONFIG_ENV,
    REPO_ROOT,
    LakehouseSettings,
    audit_key_path,
    load_settings,
    signing_key_path,
)
from lakehouse_common.durable import atomic_write
from lakehouse_common.topology import DAEMON_NAMES, DAEMONS, Daemon, installed_daemons

Echo = Callable[[str], None]


class StackError(Exception):
    """Starting or stopping failed; the message names the daemon and why."""


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_ticks: int


@dataclass(frozen=True)
class DaemonStatus:
    name: str
    url: str
    pid: int | None
    running: bool
    health: str


def free_port() -> int:
    """A loopback port nothing listens on right now (for throwaway stacks: tests, benches)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: every socket stays bound until all are chosen, so the
    kernel cannot hand the same ephemeral port out twice."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def ephemeral_config(
    root: Path, extra: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[Path, LakehouseSettings]:
    """Write `<root>/lakehouse.toml`: every daemon on a free port, data under `<root>/data`.

    `extra` adds or overrides `{section: {key: value}}` (dotted sections such as `storage.s3`).
    """
    sections: dict[str, dict[str, Any]] = {
        "server": {"data_dir": str(root / "data"), "shutdown_grace_s": 2.0},
        "ports": dict(zip(DAEMON_NAMES, free_ports(len(DAEMON_NAMES)), strict=True)),
    }
    for section, values in (extra or {}).items():
        sections.setdefault(section, {}).update(values)
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in values.items())
        lines.append("")
    root.mkdir(parents=True, exist_ok=True)
    path = root / "lakehouse.toml"
    path.write_text("\n".join(lines))
    settings = load_settings(path, environ={})
    # catalogd refuses to start without a private audit key (SPEC §8, issue 7): a throwaway
    # stack gets its own.
    key_file = audit_key_path(settings)
    if not key_file.exists():
        generate_key(key_file)
    # ... and the Ed25519 pair signing its checkpoints (issue 18).
    signing = signing_key_path(settings)
    if not signing.exists() and not public_key_path(signing).exists():
        generate_signing_key(signing)
    return path, settings


def run_dir(settings: LakehouseSettings) -> Path:
    return settings.data_dir / "run"


def log_dir(settings: LakehouseSettings) -> Path:
    return settings.data_dir / "logs"


def pid_file(settings: LakehouseSettings, name: str) -> Path:
    return run_dir(settings) / f"{name}.pid"


def log_file(settings: LakehouseSettings, name: str) -> Path:
    return log_dir(settings) / f"{name}.log"


def _start_ticks(pid: int) -> int | None:
    """Process start time in clock ticks since boot (/proc/<pid>/stat field 22), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited; only its parent's wait is missing
        return None
    return int(fields[19])


def read_pid(path: Path) -> PidRecord | None:
    try:
        pid_s, ticks_s = path.read_text().split()
        return PidRecord(int(pid_s), int(ticks_s))
    except (OSError, ValueError):
        return None


def is_alive(record: PidRecord) -> bool:
    return _start_ticks(record.pid) == record.start_ticks


def _write_pid(path: Path, pid: int) -> None:
    ticks = _start_ticks(pid)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, f"{pid} {ticks if ticks is not None else -1}\n".encode())


def health_of(url: str, name: str, timeout_s: float = 1.0) -> str:
    """`ok` when `name` answers healthy at `url`; `down` when nothing listens; else what did."""
    try:
        resp = httpx.get(f"{url}/health", timeout=timeout_s)
    except httpx.ConnectError:
        return "down"
    except httpx.HTTPError as exc:
        return f"error: {type(exc).__name__}"
    try:
        body = resp.json()
    except ValueError:
        body = None
    if (
        resp.status_code == 200
        and isinstance(body, dict)
        and (body.get("status"), body.get("service")) == ("ok", name)
    ):
        # Live; a degraded check (catalogd's audit witness) is the gateway's to report.
        return "ok"
    service = body.get("service") if isinstance(body, dict) else None
    return f"foreign: {service}" if service else f"foreign: HTTP {resp.status_code}"


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _daemon_env(settings: LakehouseSettings, config_path: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if config_path is not None:
        env[CONFIG_ENV] = str(config_path.resolve())
    # Pin the data dir the CLI resolved, whatever the daemon's working directory.
    env["LAKEHOUSE_SERVER__DATA_DIR"] = str(settings.data_dir)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _stop_process(record: PidRecord, grace_s: float) -> str:
    if not is_alive(record):
        return "not running"
    os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not is_alive(record):
            return "stopped"
        time.sleep(0.05)
    os.kill(record.pid, signal.SIGKILL)
    while is_alive(record):
        time.sleep(0.02)
    return "killed after grace period"


def start_daemon(
    settings: LakehouseSettings,
    daemon: Daemon,
    *,
    config_path: Path | None,
    timeout_s: float,
    echo: Echo,
) -> None:
    name = daemon.name
    url = settings.url_of(name)
    health = health_of(url, name)
    if health == "ok":
        echo(f"  {name:<11} already healthy at {url}: left alone")
        return
    if health != "down":
        port = settings.ports.of(name)
        raise StackError(f"{name}: port {port} is held by something else ({health})")

    log_path = log_file(settings, name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            cwd=REPO_ROOT,
            env=_daemon_env(settings, config_path),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # detached: survives the shell that ran `make run`
        )
    _write_pid(pid_file(settings, name), proc.pid)

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pid_file(settings, name).unlink(missing_ok=True)
            raise StackError(
                f"{name} exited with code {proc.returncode} during start; "
                f"last lines of {log_path}:\n{tail(log_path)}"
            )
        if health_of(url, name, timeout_s=0.5) == "ok":
            echo(f"  {name:<11} started (pid {proc.pid}) at {url}")
            return
        time.sleep(0.1)
    record = read_pid(pid_file(settings, name))
    if record is not None:
        _stop_process(record, grace_s=2.0)
    pid_file(settings, name).unlink(missing_ok=True)
    raise StackError(
        f"{name} was not healthy at {url} after {timeout_s:.0f}s; "
        f"last lines of {log_path}:\n{tail(log_path)}"
    )


def start_stack(
    settings: LakehouseSettings,
    *,
    config_path: Path | None = None,
    timeout_s: float = 60.0,
    echo: Echo = print,
) -> list[Daemon]:
    daemons = list(installed_daemons())
    echo(f"starting {len(daemons)} daemons (data: {settings.data_dir})")
    for daemon in daemons:
        start_daemon(settings, daemon, config_path=config_path, timeout_s=timeout_s, echo=echo)
    return daemons


def _pid_files_in_stop_order(settings: LakehouseSettings) -> Iterator[tuple[str, Path]]:
    known = [d.name for d in reversed(DAEMONS)]
    for name in known:
        path = pid_file(settings, name)
        if path.exists():
            yield name, path
    # Pid files of daemons this checkout no longer knows still name processes we started.
    if run_dir(settings).is_dir():
        for path in sorted(run_dir(settings).glob("*.pid")):
            if path.stem not in known:
                yield path.stem, path


def stop_stack(
    settings: LakehouseSettings,
    *,
    grace_s: float | None = None,
    echo: Echo = print,
) -> int:
    grace = settings.server.shutdown_grace_s + 2 if grace_s is None else grace_s
    stopped = 0
    for name, path in _pid_files_in_stop_order(settings):
        record = read_pid(path)
        if record is None:
            echo(f"  {name:<11} unreadable pid file {path}: removed")
        else:
            outcome = _stop_process(record, grace)
            stopped += outcome != "not running"
            echo(f"  {name:<11} pid {record.pid}: {outcome}")
        path.unlink(missing_ok=True)
    if stopped == 0:
        echo("nothing to stop")
    return stopped


def stack_status(settings: LakehouseSettings) -> list[DaemonStatus]:
    rows = []
    for daemon in installed_daemons():
        url = settings.url_of(daemon.name)
        record = read_pid(pid_file(settings, daemon.name))
        rows.append(
            DaemonStatus(
                name=daemon.name,
                url=url,
                pid=record.pid if record else None,
                running=bool(record and is_alive(record)),
                health=health_of(url, daemon.name, timeout_s=0.5),
            )
        )
    return rows
