"""Fixtures for the object-store tests: an FS store in a temp dir and an S3 store talking to a real
moto S3 server process on loopback (SPEC §4: "tested against a real S3-protocol server process")."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lakehouse_common.ops.stack import free_port
from lakehouse_common.store import FsStore, S3Store, Store

if TYPE_CHECKING:
    from tests.support.stack import S3Server

MIB = 1024 * 1024
# Small multipart settings so the contract suite's multi-MB objects take the multipart path.
S3_MULTIPART_THRESHOLD = 6 * MIB
S3_PART_SIZE = 5 * MIB


@pytest.fixture(scope="session")
def moto_endpoint(s3_server: S3Server) -> str:
    """URL of the session's real moto S3 server process (``s3_server`` in tests/conftest.py,
    ``python -m moto.server`` on a free loopback port, stopped by its pid at session end), so
    these tests and the storaged tests share one server."""
    return s3_server.endpoint


@pytest.fixture
def fs_store(tmp_path: Path) -> Iterator[FsStore]:
    store = FsStore(tmp_path / "data")
    yield store
    store.close()


@pytest.fixture
def s3_store_factory(moto_endpoint: str) -> Iterator[Callable[[], S3Store]]:
    """Makes S3 stores on the session's moto server, each with a fresh bucket prefix so that
    tests sharing the server never see each other's buckets; closes them at teardown."""
    made: list[S3Store] = []

    def make() -> S3Store:
        store = S3Store(
            moto_endpoint,
            "us-east-1",
            "testing",
            "testing",
            bucket_prefix=f"t{uuid.uuid4().hex[:10]}-",
            multipart_threshold=S3_MULTIPART_THRESHOLD,
            part_size=S3_PART_SIZE,
        )
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def s3_store(s3_store_factory: Callable[[], S3Store]) -> S3Store:
    return s3_store_factory()


@pytest.fixture
def unreachable_endpoint() -> str:
    """An S3 endpoint URL on a loopback port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(params=["fs", "s3"])
def store(request: pytest.FixtureRequest) -> Store:
    """Every contract test runs once per backend."""
    backend: Store = request.getfixturevalue(f"{request.param}_store")
    return backend
