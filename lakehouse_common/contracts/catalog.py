"""catalogd's dataset wire format, storage layout and typed client (SPEC §4).

A dataset is a sequence of immutable versions 1, 2, …; each version's manifest names its schema
and its Parquet files. Manifests live in the Store (so in S3 when the store is S3) under
`catalog/datasets/<name>/v<NNNNNN>.json` in the default bucket; data files under
`datasets/<name>/v<n>/part-<NNNNN>.parquet`. Committing version n is a create-only write of its
manifest, so of two concurrent commits exactly one wins and the other gets 409.

Endpoints (catalogd, :3212):
- `POST /v1/catalog/datasets/{name}/versions` body `VersionCommit` → 201 `DatasetManifest`
  (409 when version n exists or n is not latest + 1);
- `GET /v1/catalog/datasets` → `DatasetList`;
- `GET /v1/catalog/datasets/{name}` → `DatasetDetail` (latest manifest + version numbers);
- `GET /v1/catalog/datasets/{name}/versions` → `VersionHistory` (every manifest, oldest first);
- `GET /v1/catalog/datasets/{name}/versions/{v}` → `DatasetManifest`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field

from lakehouse_common.errors import InvalidInput
from lakehouse_common.http import ServiceClient

AREA = "catalog"
DATASETS = "/v1/catalog/datasets"
MANIFEST_PREFIX = "catalog/datasets/"

# A dataset name is also a SQL view name in queryd (`workers`, `workers__v3`): lowercase
# identifier, no double underscore (reserved for the version suffix).
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


def validate_dataset_name(name: str) -> str:
    if not _NAME.fullmatch(name) or "__" in name or name.endswith("_"):
        raise InvalidInput(
            f"invalid dataset name {name!r}: use 1-63 of [a-z0-9_], starting with a letter, "
            "without '__' and not ending with '_'",
            details={"dataset": name},
        )
    return name


def dataset_path(name: str) -> str:
    """`GET` a dataset's detail (its latest manifest)."""
    return f"{DATASETS}/{quote(name, safe='')}"


def manifest_key(name: str, version: int) -> str:
    return f"{MANIFEST_PREFIX}{name}/v{version:06d}.json"


def manifest_prefix(name: str) -> str:
    return f"{MANIFEST_PREFIX}{name}/"


def version_of_manifest_key(key: str) -> int | None:
    match = re.fullmatch(r".*/v(\d{6})\.json", key)
    return int(match.group(1)) if match else None


def data_prefix(name: str, version: int) -> str:
    return f"datasets/{name}/v{version}/"


def part_key(name: str, version: int, part: int) -> str:
    return f"{data_prefix(name, version)}part-{part:05d}.parquet"


class SchemaField(BaseModel):
    """One column: name and its Arrow/DuckDB type as a string (e.g. `VARCHAR`, `BIGINT`)."""

    name: str
    type: str


class DataFile(BaseModel):
    """One Parquet file of a version; `key` is in the default bucket."""

    key: str
    rows: int = Field(ge=0)
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class VersionCommit(BaseModel):
    """What a writer (ingestd) commits; catalogd stamps `name` and `created_at`."""

    version: int = Field(ge=1)
    schema_: list[SchemaField] = Field(alias="schema")
    files: list[DataFile]
    row_count: int = Field(ge=0)
    source: dict[str, Any] = Field(default_factory=dict)

    model_config = {"populate_by_name": True}


class DatasetManifest(BaseModel):
    """A committed version (SPEC §4): name, version, schema, files, row_count, source,
    created_at."""

    name: str
    version: int = Field(ge=1)
    schema_: list[SchemaField] = Field(alias="schema")
    files: list[DataFile]
    row_count: int = Field(ge=0)
    source: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime

    model_config = {"populate_by_name": True}


class DatasetSummary(BaseModel):
    name: str
    latest_version: int
    row_count: int
    created_at: datetime


class DatasetList(BaseModel):
    datasets: list[DatasetSummary]
    count: int


class DatasetDetail(BaseModel):
    name: str
    latest: DatasetManifest
    versions: list[int]


class VersionHistory(BaseModel):
    name: str
    versions: list[DatasetManifest]
    count: int


class CatalogClient:
    """catalogd over HTTP."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def commit_version(self, name: str, commit: VersionCommit) -> DatasetManifest:
        data = await self.client.call_json(
            "POST",
            f"{dataset_path(name)}/versions",
            json=commit.model_dump(mode="json", by_alias=True),
        )
        return DatasetManifest.model_validate(data)

    async def list_datasets(self) -> DatasetList:
        return DatasetList.model_validate(await self.client.call_json("GET", DATASETS))

    async def get_dataset(self, name: str) -> DatasetDetail:
        data = await self.client.call_json("GET", dataset_path(name))
        return DatasetDetail.model_validate(data)

    async def get_version(self, name: str, version: int) -> DatasetManifest:
        data = await self.client.call_json("GET", f"{dataset_path(name)}/versions/{version}")
        return DatasetManifest.model_validate(data)

    async def history(self, name: str) -> VersionHistory:
        data = await self.client.call_json("GET", f"{dataset_path(name)}/versions")
        return VersionHistory.model_validate(data)
