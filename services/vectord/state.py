"""vectord's typed State: the index set its lifespan opens, and the dependency routes use."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from lakehouse_common.app import state_of
from services.vectord.service import VectorService


@dataclass(frozen=True, slots=True)
class State:
    vectors: VectorService


# `async def` although it awaits nothing: FastAPI runs a plain `def` dependency in its threadpool,
# a thread hop per request (~150 µs of matrixd's search path measured in-process, issue 15).
async def vector_service(request: Request) -> VectorService:
    return state_of(request, State).vectors
