"""embedd test helpers: the limits its test stack is configured with, and request helpers."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import numpy as np

API_KEY_ENV = "EMBEDD_TEST_API_KEY"
API_KEY = "sk-test-0f3c9a1e7b5d2468"
PROVIDER_TIMEOUT_S = 1.0
MAX_TEXTS = 32
MAX_TEXT_CHARS = 500
CACHE_SIZE = 64
BATCH_MAX_TEXTS = 16
# Long enough that 20 requests fired together surely share model calls.
BATCH_WAIT_MS = 50.0


MODEL = "all-MiniLM-L6-v2"


def unique(text: str) -> str:
    """A text no other test has embedded (so it is not in the cache)."""
    return f"{text} #{secrets.token_hex(4)}"


def embed(client: httpx.Client, texts: list[Any], **extra: Any) -> httpx.Response:
    return client.post("/v1/embed", json={"texts": texts, **extra})


def vectors_of(resp: httpx.Response) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    return np.asarray(resp.json()["vectors"], dtype=np.float64)
