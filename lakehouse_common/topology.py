"""The twelve daemons, their ports, the path areas they own and their start order (SPEC §2).

Declared once here; the gateway's routing table, the stack scripts and the configs all derive
from it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Daemon:
    name: str
    dev_port: int
    persistent_port: int
    # First path segment after `/v1/` that the gateway forwards to this daemon.
    areas: tuple[str, ...]


# In start order (SPEC §2: dependencies first). Stop order is the reverse.
DAEMONS: tuple[Daemon, ...] = (
    Daemon("storaged", 3211, 4211, ("storage",)),
    Daemon("catalogd", 3212, 4212, ("catalog",)),
    Daemon("ingestd", 3213, 4213, ("ingest",)),
    Daemon("queryd", 3214, 4214, ("query",)),
    Daemon("embedd", 3216, 4216, ("embed",)),
    Daemon("vectord", 3215, 4215, ("vectors",)),
    Daemon("pathwayd", 3217, 4217, ("pathways",)),
    Daemon("observerd", 3219, 4219, ("observe", "observations")),
    Daemon("matrixd", 3218, 4218, ("matrix",)),
    Daemon("chatd", 3220, 4220, ("chat", "models")),
    Daemon("validatord", 3221, 4221, ("validate", "iterate", "sessions")),
    Daemon("gateway", 3110, 4110, ()),
)

BY_NAME: dict[str, Daemon] = {d.name: d for d in DAEMONS}
DAEMON_NAMES: tuple[str, ...] = tuple(d.name for d in DAEMONS)


def default_routes() -> dict[str, str]:
    """`area -> daemon` for every area a daemon owns."""
    return {area: d.name for d in DAEMONS for area in d.areas}


def is_installed(name: str) -> bool:
    """Whether `services/<name>/` exists, i.e. `python -m services.<name>` can run.

    Later issues add daemons by adding packages; the stack and the gateway's health view
    pick them up from here without another list to edit.
    """
    try:
        return importlib.util.find_spec(f"services.{name}.__main__") is not None
    except ModuleNotFoundError:  # no `services/<name>/` package at all
        return False


def installed_daemons() -> tuple[Daemon, ...]:
    return tuple(d for d in DAEMONS if is_installed(d.name))
