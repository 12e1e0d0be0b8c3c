"""validatord's State: the validators, the iterate loop and the session log they append to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from lakehouse_common.app import state_of
from lakehouse_common.config import ValidatorSettings
from services.validatord.iterate import IterateLoop
from services.validatord.service import PayloadValidator


@dataclass(frozen=True, slots=True)
class State:
    settings: ValidatorSettings
    validator: PayloadValidator
    iterate: IterateLoop
    session_log: Path


async def validator_settings(request: Request) -> ValidatorSettings:
    return state_of(request, State).settings


async def payload_validator(request: Request) -> PayloadValidator:
    return state_of(request, State).validator


async def iterate_loop(request: Request) -> IterateLoop:
    return state_of(request, State).iterate


async def session_log(request: Request) -> Path:
    return state_of(request, State).session_log
