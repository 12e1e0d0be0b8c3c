"""observerd's State: the stream store (one append log per stream)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from lakehouse_common.app import state_of
from services.observerd.service import ObservationStore


@dataclass(frozen=True, slots=True)
class State:
    observations: ObservationStore


async def observation_store(request: Request) -> ObservationStore:
    return state_of(request, State).observations
