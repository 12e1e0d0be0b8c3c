"""embedd's State: the `Embedder` (local models, remote providers, cache, micro-batchers)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from lakehouse_common.app import state_of
from services.embedd.service import Embedder


@dataclass(frozen=True, slots=True)
class State:
    embedder: Embedder


async def text_embedder(request: Request) -> Embedder:
    return state_of(request, State).embedder
