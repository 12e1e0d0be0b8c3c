"""The gateway's State: the pooled upstream client, the routing table, and the settings."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from lakehouse_common.app import state_of
from lakehouse_common.config import LakehouseSettings
from lakehouse_common.http import HttpClient
from services.gateway.service import RoutingTable


@dataclass(frozen=True, slots=True)
class State:
    settings: LakehouseSettings
    http: HttpClient
    routing: RoutingTable


async def stack_settings(request: Request) -> LakehouseSettings:
    return state_of(request, State).settings


async def upstream_http(request: Request) -> HttpClient:
    return state_of(request, State).http


async def routing_table(request: Request) -> RoutingTable:
    return state_of(request, State).routing
