"""The dataset catalog: immutable version manifests in the Store (SPEC §4).

Version n of a dataset is the object `catalog/datasets/<name>/v<NNNNNN>.json` in the default
bucket, written create-only: of two concurrent commits of n exactly one wins, the other gets
409 and retries as n + 1. Manifests never change once written, so they are cached in memory by
key; the set of versions is always read from the Store, so several catalogd processes (or a
restart) agree on it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from lakehouse_common.contracts.catalog import (
    MANIFEST_PREFIX,
    DatasetDetail,
    DatasetList,
    DatasetManifest,
    DatasetSummary,
    VersionCommit,
    VersionHistory,
    manifest_key,
    manifest_prefix,
    validate_dataset_name,
    version_of_manifest_key,
)
from lakehouse_common.errors import Conflict, NotFound, UnprocessableEntity
from lakehouse_common.store import Store


class DatasetCatalog:
    def __init__(self, store: Store, bucket: str) -> None:
        self.store = store
        self.bucket = bucket
        self._manifests: dict[str, DatasetManifest] = {}
        self._lock = threading.Lock()

    # -- reading ------------------------------------------------------------------------

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        cursor = None
        while True:
            page = self.store.list(self.bucket, prefix=prefix, limit=10_000, cursor=cursor)
            keys += [info.key for info in page.objects]
            if page.next_cursor is None:
                return keys
            cursor = page.next_cursor

    def versions(self, name: str) -> list[int]:
        validate_dataset_name(name)
        found = (version_of_manifest_key(k) for k in self._keys(manifest_prefix(name)))
        return sorted(v for v in found if v is not None)

    def _load(self, name: str, version: int) -> DatasetManifest:
        key = manifest_key(name, version)
        with self._lock:
            cached = self._manifests.get(key)
        if cached is not None:
            return cached
        try:
            raw = self.store.get_bytes(self.bucket, key)
        except NotFound:
            raise NotFound(
                f"dataset {name!r} has no version {version}",
                details={"dataset": name, "version": version},
            ) from None
        manifest = DatasetManifest.model_validate_json(raw)
        with self._lock:
            self._manifests[key] = manifest
        return manifest

    def get_version(self, name: str, version: int) -> DatasetManifest:
        validate_dataset_name(name)
        return self._load(name, version)

    def _require_versions(self, name: str) -> list[int]:
        versions = self.versions(name)
        if not versions:
            raise NotFound(f"no dataset named {name!r}", details={"dataset": name})
        return versions

    def get_dataset(self, name: str) -> DatasetDetail:
        versions = self._require_versions(name)
        return DatasetDetail(name=name, latest=self._load(name, versions[-1]), versions=versions)

    def history(self, name: str) -> VersionHistory:
        manifests = [self._load(name, v) for v in self._require_versions(name)]
        return VersionHistory(name=name, versions=manifests, count=len(manifests))

    def list_datasets(self) -> DatasetList:
        latest: dict[str, int] = {}
        for key in self._keys(MANIFEST_PREFIX):
            name = key[len(MANIFEST_PREFIX) :].split("/", 1)[0]
            version = version_of_manifest_key(key)
            if version is not None and version > latest.get(name, 0):
                latest[name] = version
        summaries = []
        for name in sorted(latest):
            manifest = self._load(name, latest[name])
            summaries.append(
                DatasetSummary(
                    name=name,
                    latest_version=manifest.version,
                    row_count=manifest.row_count,
                    created_at=manifest.created_at,
                )
            )
        return DatasetList(datasets=summaries, count=len(summaries))

    # -- writing ------------------------------------------------------------------------

    def commit(self, name: str, commit: VersionCommit) -> DatasetManifest:
        """Register version `commit.version`; it must be the next one and its files must exist."""
        validate_dataset_name(name)
        self._check_files(commit)
        versions = self.versions(name)
        expected = (versions[-1] if versions else 0) + 1
        if commit.version != expected:
            raise Conflict(
                f"dataset {name!r}: version {commit.version} cannot be committed, the next "
                f"version is {expected}",
                details={"dataset": name, "expected_version": expected},
            )
        manifest = DatasetManifest(
            name=name,
            version=commit.version,
            schema=commit.schema_,
            files=commit.files,
            row_count=commit.row_count,
            source=commit.source,
            created_at=datetime.now(UTC),
        )
        body = manifest.model_dump_json(by_alias=True).encode()
        key = manifest_key(name, commit.version)
        try:
            self.store.put_bytes(
                self.bucket, key, body, create_only=True, content_type="application/json"
            )
        except Conflict:
            raise Conflict(
                f"dataset {name!r}: version {commit.version} was committed concurrently; "
                f"retry as version {commit.version + 1}",
                details={"dataset": name, "expected_version": commit.version + 1},
            ) from None
        with self._lock:
            self._manifests[key] = manifest
        return manifest

    def _check_files(self, commit: VersionCommit) -> None:
        problems = []
        total = sum(f.rows for f in commit.files)
        if total != commit.row_count:
            problems.append(f"row_count {commit.row_count} != sum of file rows {total}")
        names = [f.name for f in commit.schema_]
        if len(set(names)) != len(names):
            problems.append("schema has duplicate column names")
        for f in commit.files:
            try:
                info = self.store.head(self.bucket, f.key)
            except NotFound:
                problems.append(f"file {f.key!r} is not in the store")
                continue
            if info.etag != f.sha256 or info.size != f.bytes:
                problems.append(f"file {f.key!r} does not match its sha256/bytes")
        if problems:
            raise UnprocessableEntity(
                "manifest does not match the store: " + "; ".join(problems),
                details={"problems": problems},
            )
