"""One real vectord (+ gateway) shared by the package's API tests, and helpers.

Settings are small on purpose: `exact_threshold` 30 so small indexes take the exact path and
slightly larger ones HNSW; `initial_capacity` 16 so growth happens within a few adds;
`snapshot_every_ops` 20 so background snapshots run while tests write.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.stack import LiveStack
from tests.support.vectors import VECTOR_CONFIG


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(tmp_path_factory.mktemp("vectord"), {"vector": VECTOR_CONFIG})
    with live.running("vectord", "gateway"):
        yield live


@pytest.fixture
def vd(stack: LiveStack) -> Iterator[httpx.Client]:
    """A client straight to vectord."""
    with stack.client("vectord") as client:
        yield client
