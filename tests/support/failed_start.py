"""A daemon whose start fails part-way, in-process: whatever its lifespan opened before the
failing resource must be closed again (issue 15: matrixd, validatord, chatd, queryd and ingestd
used to leak their pool, Store and observer task on a failed start).

`watch_opened(monkeypatch, module)` records the `HttpClient` sessions, Stores and `Observer`s a
daemon's `app` module opens; `refuse(monkeypatch, module, name)` makes one of its later
resources raise `Refused` when built; `assert_start_fails(app)` runs the lifespan, expects
`Refused`, and checks that no task it started is still running.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NoReturn

import aiohttp
import pytest
from fastapi import FastAPI

from lakehouse_common.http import HttpClient
from lakehouse_common.observer import Observer
from lakehouse_common.store import Store


class Refused(RuntimeError):
    """The resource a test made fail to open."""


@dataclass
class Opened:
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)
    closed_stores: list[Store] = field(default_factory=list)
    observers: list[Observer] = field(default_factory=list)
    closed_observers: list[Observer] = field(default_factory=list)

    def assert_all_closed(self) -> None:
        assert all(session.closed for session in self.sessions)
        assert self.closed_stores == self.stores
        assert self.closed_observers == self.observers


def watch_opened(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> Opened:
    """Record what `module` (a daemon's `services.<d>.app`) opens, and what it closes."""
    opened = Opened()

    class WatchedHttpClient(HttpClient):
        async def open(self) -> None:
            await super().open()
            opened.sessions.append(self.session)

    class WatchedObserver(Observer):
        async def start(self) -> None:
            await super().start()
            opened.observers.append(self)

        async def close(self) -> None:
            await super().close()
            opened.closed_observers.append(self)

    def watched_store(settings: Any) -> Store:
        store: Store = real_store_from_settings(settings)
        close = store.close

        def closing() -> None:
            opened.closed_stores.append(store)
            close()

        store.close = closing  # type: ignore[method-assign]
        opened.stores.append(store)
        return store

    if hasattr(module, "HttpClient"):
        monkeypatch.setattr(module, "HttpClient", WatchedHttpClient)
    if hasattr(module, "Observer"):
        monkeypatch.setattr(module, "Observer", WatchedObserver)
    if hasattr(module, "store_from_settings"):
        real_store_from_settings = module.store_from_settings
        monkeypatch.setattr(module, "store_from_settings", watched_store)
    return opened


def refuse(monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str) -> None:
    """Make `module.<name>` (a constructor the lifespan calls) raise `Refused`."""

    def refused(*args: Any, **kwargs: Any) -> NoReturn:
        raise Refused(f"{name} refused to open (test)")

    assert hasattr(module, name), f"{module.__name__} does not use {name}"
    monkeypatch.setattr(module, name, refused)


async def assert_start_fails(app: FastAPI) -> None:
    """Run `app`'s lifespan: it must raise `Refused` and leave no task of its own running."""
    before = asyncio.all_tasks()
    with pytest.raises(Refused):
        async with app.router.lifespan_context(app):
            pytest.fail("the daemon started although a resource refused to open")
    await asyncio.sleep(0)  # let cancelled tasks finish
    left = {task for task in asyncio.all_tasks() - before if not task.done()}
    assert not left, f"tasks still running after the failed start: {left}"
