"""The ingest service in process, with a scripted catalog: lost commits, leftovers, lost answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakehouse_common.config import IngestSettings
from lakehouse_common.contracts.catalog import (
    DataFile,
    DatasetDetail,
    DatasetManifest,
    SchemaField,
    VersionCommit,
    part_key,
)
from lakehouse_common.errors import (
    Conflict,
    LakehouseError,
    NotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from lakehouse_common.store import FsStore, Store
from services.ingestd.service import COMMIT_ATTEMPTS, IngestOptions, IngestService

BUCKET = "lakehouse"
CSV = b"id,n\nw-1,1\nw-2,2\nw-3,3\n"


class ScriptedCatalog:
    """An in-memory catalogd; `before_commit` runs first on every commit (to stage races)."""

    def __init__(self) -> None:
        self.versions: dict[str, list[DatasetManifest]] = {}
        self.before_commit: Callable[[str, VersionCommit], None] | None = None
        self.commits = 0

    def record(self, name: str, commit: VersionCommit) -> DatasetManifest:
        versions = self.versions.setdefault(name, [])
        if commit.version != len(versions) + 1:
            raise Conflict(f"next version is {len(versions) + 1}")
        manifest = DatasetManifest(
            name=name,
            version=commit.version,
            schema=commit.schema_,
            files=commit.files,
            row_count=commit.row_count,
            source=commit.source,
            created_at=datetime.now(UTC),
        )
        versions.append(manifest)
        return manifest

    async def get_dataset(self, name: str) -> DatasetDetail:
        versions = self.versions.get(name)
        if not versions:
            raise NotFound(f"no dataset {name}")
        return DatasetDetail(name=name, latest=versions[-1], versions=[m.version for m in versions])

    async def get_version(self, name: str, version: int) -> DatasetManifest:
        for manifest in self.versions.get(name, []):
            if manifest.version == version:
                return manifest
        raise NotFound(f"no version {version}")

    async def commit_version(self, name: str, commit: VersionCommit) -> DatasetManifest:
        self.commits += 1
        if self.before_commit is not None:
            self.before_commit(name, commit)
        return self.record(name, commit)


def foreign_commit(catalog: ScriptedCatalog, store: Store, name: str, version: int) -> None:
    """Another writer's version `version`, with its own file outside our part keys."""
    key = f"elsewhere/{name}/v{version}.parquet"
    info = store.put_bytes(BUCKET, key, b"not ours")
    catalog.record(
        name,
        VersionCommit(
            version=version,
            schema=[SchemaField(name="id", type="VARCHAR")],
            files=[DataFile(key=key, rows=1, bytes=info.size, sha256=info.etag)],
            row_count=1,
        ),
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return FsStore(tmp_path / "objects")


@pytest.fixture
def catalog() -> ScriptedCatalog:
    return ScriptedCatalog()


@pytest.fixture
def service(store: Store, catalog: ScriptedCatalog, tmp_path: Path) -> IngestService:
    settings = IngestSettings(batch_rows=2, rows_per_file=2, max_reported_errors=5)
    svc = IngestService(store, catalog, settings, bucket=BUCKET, spool_dir=tmp_path / "spool")
    svc.clean_spool()
    return svc


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def run(service: IngestService, name: str, data: bytes = CSV) -> DatasetManifest:
    spool = await service.spool_stream(body(data))
    with spool:
        return await service.ingest(spool, IngestOptions(dataset=name, format="csv"))


def keys(store: Store, prefix: str = "datasets/") -> list[str]:
    return [info.key for info in store.list(BUCKET, prefix=prefix).objects]


async def test_lost_commit_moves_the_parts_to_the_next_version(
    service: IngestService, catalog: ScriptedCatalog, store: Store
) -> None:
    def race(name: str, commit: VersionCommit) -> None:
        if catalog.commits == 1:
            foreign_commit(catalog, store, name, commit.version)

    catalog.before_commit = race
    manifest = await run(service, "ds")
    assert manifest.version == 2
    assert [f.key for f in manifest.files] == [part_key("ds", 2, 0), part_key("ds", 2, 1)]
    assert keys(store) == [part_key("ds", 2, 0), part_key("ds", 2, 1)]  # v1's parts are gone
    assert keys(store, "elsewhere/") == ["elsewhere/ds/v1.parquet"]  # the winner's are not


async def test_repeatedly_lost_commits_answer_409_and_leave_nothing(
    service: IngestService, catalog: ScriptedCatalog, store: Store
) -> None:
    catalog.before_commit = lambda name, commit: foreign_commit(
        catalog, store, name, commit.version
    )
    with pytest.raises(Conflict) as exc:
        await run(service, "ds")
    assert "retry" in exc.value.message
    assert catalog.commits == COMMIT_ATTEMPTS
    assert keys(store) == []


async def test_leftovers_of_an_interrupted_ingest_are_replaced(
    service: IngestService, store: Store
) -> None:
    store.put_bytes(BUCKET, part_key("ds", 1, 0), b"half-written by a crashed ingest")
    store.put_bytes(BUCKET, part_key("ds", 1, 7), b"more junk")
    manifest = await run(service, "ds")
    assert keys(store) == sorted(f.key for f in manifest.files)
    assert store.head(BUCKET, part_key("ds", 1, 0)).etag == manifest.files[0].sha256


async def test_commit_applied_but_answer_lost_is_success(
    service: IngestService, catalog: ScriptedCatalog
) -> None:
    def apply_then_fail(name: str, commit: VersionCommit) -> None:
        catalog.record(name, commit)
        raise UpstreamTimeout("catalogd did not answer in time")

    catalog.before_commit = apply_then_fail
    manifest = await run(service, "ds")
    assert manifest.version == 1 and manifest.row_count == 3


async def test_commit_not_applied_and_catalog_gone_deletes_the_parts(
    service: IngestService, catalog: ScriptedCatalog, store: Store
) -> None:
    def fail(name: str, commit: VersionCommit) -> None:
        raise UpstreamUnavailable("catalogd is unreachable")

    catalog.before_commit = fail
    with pytest.raises(UpstreamUnavailable):
        await run(service, "ds")
    assert keys(store) == []


async def test_rejected_rows_delete_parts_already_written(
    service: IngestService, catalog: ScriptedCatalog, store: Store
) -> None:
    # batch_rows=2 and rows_per_file=2: two parts are published before row 5 fails.
    data = b"id,n\nw-1,1\nw-2,2\nw-3,3\nw-4,4\n,5\nw-6,6\n"
    with pytest.raises(LakehouseError) as exc:
        await run(service, "ds", data)
    assert exc.value.status == 422
    assert exc.value.details["errors"] == [
        {"row": 5, "column": "id", "reason": "required value is missing"}
    ]
    assert keys(store) == [] and catalog.versions == {}


async def test_spool_files_are_removed(service: IngestService, tmp_path: Path) -> None:
    await run(service, "ds")
    with pytest.raises(LakehouseError):
        await run(service, "ds", b"")
    assert list((tmp_path / "spool").iterdir()) == []
