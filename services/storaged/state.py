"""storaged's State: the one `Store` its routes read and write."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from lakehouse_common.app import state_of
from lakehouse_common.store import Store


@dataclass(frozen=True, slots=True)
class State:
    store: Store


async def object_store(request: Request) -> Store:
    return state_of(request, State).store
