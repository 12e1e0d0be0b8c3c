"""`run_service`: the body of every `python -m services.<daemon>` — load config, log, tune the
process, serve with graceful shutdown (SIGTERM drains in-flight requests for
`server.shutdown_grace_s`)."""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable, Sequence

import uvicorn
from fastapi import FastAPI

from lakehouse_common.config import LakehouseSettings
from lakehouse_common.logging import configure_logging

__all__ = ["run_service", "tune_gc", "tune_malloc"]


def tune_gc(thresholds: Sequence[int]) -> None:
    """Freeze what is alive now (modules, the app) out of the cyclic collector and set its
    thresholds: long-lived objects then cost no gen-2 pass, and passes come less often."""
    if thresholds:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*thresholds)


# mallopt(3) parameters (glibc's malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_malloc(*, arena_max: int, mmap_threshold: int) -> bool:
    """Set glibc's malloc arena count and mmap threshold for this process (0 leaves one as it
    is); False where the C library is not glibc (nothing changed)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = True
    if arena_max:
        ok = bool(mallopt(_M_ARENA_MAX, arena_max)) and ok
    if mmap_threshold:
        ok = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and ok
    return ok


def run_service(name: str, app_factory: Callable[[LakehouseSettings], FastAPI]) -> None:
    """The body of every `python -m services.<daemon>`: load config, log, serve."""
    from lakehouse_common.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise SystemExit(f"{name}: {exc}") from None
    configure_logging(name, settings.server.log_level)
    app = app_factory(settings)
    tune_gc(settings.server.gc_thresholds)
    uvicorn.run(
        app,
        host=settings.bind_host(name),
        port=settings.ports.of(name),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.server.shutdown_grace_s),
        timeout_keep_alive=settings.server.keep_alive_s,
        server_header=False,
    )
