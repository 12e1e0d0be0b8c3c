"""chatd's State: the chat service (its providers share one aiohttp session)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from lakehouse_common.app import state_of
from services.chatd.service import ChatService


@dataclass(frozen=True, slots=True)
class State:
    chat: ChatService


async def chat_service(request: Request) -> ChatService:
    return state_of(request, State).chat
