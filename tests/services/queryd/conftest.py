"""queryd fixtures: a live lake (catalogd + queryd + gateway) per Store backend, with the
`workers` dataset committed through catalogd's API (helpers in tests/support/query.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from lakehouse_common.store import Store
from lakehouse_common.store.settings import store_from_settings
from tests.support.query import DEFAULT_ROW_LIMIT, MAX_ROW_LIMIT, commit_table, workers_table
from tests.support.stack import LiveStack, backend_config


@pytest.fixture(scope="package", params=["fs", "s3"])
def lake(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    """catalogd, queryd and the gateway on one backend; views refresh every 0.2 s."""
    extra = backend_config(request, request.param)
    extra["query"] = {
        "default_row_limit": DEFAULT_ROW_LIMIT,
        "max_row_limit": MAX_ROW_LIMIT,
        "catalog_refresh_s": 0.2,
    }
    live = LiveStack.create(tmp_path_factory.mktemp(f"queryd-{request.param}"), extra)
    with live.running("catalogd", "queryd", "gateway"):
        yield live


@pytest.fixture(scope="package")
def store(lake: LiveStack) -> Iterator[Store]:
    with store_from_settings(lake.settings) as s:
        yield s


@pytest.fixture
def qd(lake: LiveStack) -> Iterator[httpx.Client]:
    with lake.client("queryd") as client:
        yield client


@pytest.fixture(scope="package")
def workers(lake: LiveStack, store: Store) -> dict[str, int]:
    """`workers` v1 (40 rows, two files) and v2 (10 rows): name → rows of each version."""
    with lake.client("catalogd") as catalog:
        commit_table(catalog, store, "workers", 1, workers_table(40), parts=2)
        commit_table(catalog, store, "workers", 2, workers_table(10, offset=100))
    return {"workers__v1": 40, "workers__v2": 10, "workers": 10}
