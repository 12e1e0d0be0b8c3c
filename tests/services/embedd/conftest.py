"""One real embedd (+ gateway) for the whole package: the local model loads once (~8 s).

Both remote providers point at one `FakeProviders` server on loopback; the openai_compatible
key comes from an environment variable the daemon inherits.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.embed import (
    API_KEY,
    API_KEY_ENV,
    BATCH_MAX_TEXTS,
    BATCH_WAIT_MS,
    CACHE_SIZE,
    MAX_TEXT_CHARS,
    MAX_TEXTS,
    PROVIDER_TIMEOUT_S,
)
from tests.support.embed_providers import FakeProviders
from tests.support.stack import LiveStack


@pytest.fixture(scope="package")
def fake() -> Iterator[FakeProviders]:
    server = FakeProviders()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="package")
def stack(fake: FakeProviders, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    provider = {"base_url": fake.url, "timeout_s": PROVIDER_TIMEOUT_S}
    extra: dict[str, dict[str, Any]] = {
        "embed": {
            "cache_size": CACHE_SIZE,
            "max_texts": MAX_TEXTS,
            "max_text_chars": MAX_TEXT_CHARS,
            "batch_wait_ms": BATCH_WAIT_MS,
            "batch_max_texts": BATCH_MAX_TEXTS,
        },
        "embed.providers.ollama": {**provider, "api_key_env": ""},
        "embed.providers.openai_compatible": {**provider, "api_key_env": API_KEY_ENV},
    }
    previous = os.environ.get(API_KEY_ENV)
    os.environ[API_KEY_ENV] = API_KEY  # inherited by the daemon process
    live = LiveStack.create(tmp_path_factory.mktemp("embedd"), extra)
    try:
        live.start("embedd", "gateway", timeout_s=120)
        yield live
    finally:
        live.stop()
        if previous is None:
            os.environ.pop(API_KEY_ENV, None)
        else:
            os.environ[API_KEY_ENV] = previous


@pytest.fixture(scope="package")
def embedd(stack: LiveStack) -> Iterator[httpx.Client]:
    with stack.client("embedd") as client:
        yield client
