"""pathwayd's State: the pathway store and the observer that reports recorded pathways."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from lakehouse_common.app import state_of
from lakehouse_common.observer import Observer
from services.pathwayd.service import PathwayStore


@dataclass(frozen=True, slots=True)
class State:
    pathways: PathwayStore
    observer: Observer


async def pathway_store(request: Request) -> PathwayStore:
    return state_of(request, State).pathways


async def pathway_observer(request: Request) -> Observer:
    return state_of(request, State).observer
