"""chatd against fake providers: one real chatd (+ observerd, gateway) for the package.

Each provider table points at its own `FakeLLM` (tests/support/llm.py); see tests/support/chat.py
for the keys and the two providers that cover the 503 paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lakehouse_common.ops.stack import free_port
from tests.support.chat import (
    COLD_START_TIMEOUT_S,
    KEY_OF,
    KEYS,
    PROVIDERS,
    RETRY,
    TIMEOUT_S,
    UNSET_KEY_ENV,
    chat_stack,
    keys_in_environment,
)
from tests.support.llm import FakeLLM
from tests.support.stack import LiveStack


@pytest.fixture(scope="package")
def fakes() -> Iterator[dict[str, FakeLLM]]:
    servers = {
        name: FakeLLM(require_key=KEYS[KEY_OF[name]] if name in KEY_OF else None).start()
        for name in PROVIDERS
    }
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(autouse=True)
def _fresh_fakes(fakes: dict[str, FakeLLM]) -> None:
    """Every test starts with empty scripts and records."""
    for server in fakes.values():
        server.reset()


@pytest.fixture(scope="package")
def stack(
    fakes: dict[str, FakeLLM], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    providers: dict[str, dict[str, Any]] = {
        name: {
            "base_url": fakes[name].url,
            "api_key_env": KEY_OF.get(name, ""),
            "timeout_s": TIMEOUT_S,
            "cold_start_timeout_s": COLD_START_TIMEOUT_S,
        }
        for name in PROVIDERS
    }
    providers["vllm"] = {
        "kind": "openai_compatible",
        "base_url": f"http://127.0.0.1:{free_port()}",
        "timeout_s": TIMEOUT_S,
    }
    providers["groq"] = {
        "kind": "openai",
        "base_url": "https://api.groq.com/openai/v1",
        "api_key_env": UNSET_KEY_ENV,
    }
    live = chat_stack(
        tmp_path_factory.mktemp("chatd"),
        {"default_model": "ollama/fake-model", "fallback": [], **RETRY},
        providers,
    )
    with keys_in_environment(KEYS), live.running("observerd", "chatd", "gateway"):
        yield live


@pytest.fixture(scope="package")
def chatd(stack: LiveStack) -> Iterator[httpx.Client]:
    with stack.client("chatd") as client:
        yield client
