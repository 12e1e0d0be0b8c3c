"""One real stack for the package: embedd (its model loads once, ~7 s), vectord, observerd,
matrixd and the gateway; test_retrieve adds the lake daemons to it.

Every test gets its own vectord index holding the same small roster (`fresh_index`): playbooks
are keyed by index (the lookup filters on it), so recordings made by one test never touch
another's searches although they share one playbook index.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.matrix import CITIES, CORE, ROLES, Roster, embed, make_index
from tests.support.stack import LiveStack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(tmp_path_factory.mktemp("matrixd"))
    with live.running(*CORE, timeout_s=120):
        yield live


@pytest.fixture(scope="package")
def gw(stack: LiveStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url("gateway"), timeout=60) as client:
        yield client


@pytest.fixture(scope="package")
def roster(gw: httpx.Client) -> Roster:
    """30 workers, one per (role, city); `available` varies. Vectors from the real embedd."""
    metadata = [
        {"role": role, "city": city, "state": state, "available": n % 4 < 2}
        for n, (role, (city, state)) in enumerate(
            (role, place) for role in ROLES for place in CITIES
        )
    ]
    texts = [f"{m['role']} in {m['city']}, {m['state']}" for m in metadata]
    vectors = embed(gw, *texts)
    items = [
        {"id": f"w-{n + 1}", "vector": vector, "metadata": meta}
        for n, (vector, meta) in enumerate(zip(vectors, metadata, strict=True))
    ]
    return Roster(items)


@pytest.fixture
def index(gw: httpx.Client, roster: Roster) -> str:
    """A fresh index holding the roster: this test's playbooks affect only its searches."""
    return make_index(gw, roster)
