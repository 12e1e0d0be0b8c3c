"""catalogd dataset versions, in process (tests/support/inprocess.py), on both Store backends."""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.catalog import manifest_key, part_key
from lakehouse_common.store import Store
from lakehouse_common.store.settings import store_from_settings
from services.catalogd.app import create_app
from tests.support.envelope import assert_envelope
from tests.support.inprocess import daemon_settings, in_process
from tests.support.stack import backend_config


@pytest.fixture(scope="module", params=["fs", "s3"])
def settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> LakehouseSettings:
    extra = backend_config(request, request.param)
    return daemon_settings(tmp_path_factory.mktemp(f"catalogd-{request.param}"), extra)


@pytest.fixture(scope="module")
def store(settings: LakehouseSettings) -> Iterator[Store]:
    with store_from_settings(settings) as s:
        yield s


@pytest.fixture(scope="module")
def cd(settings: LakehouseSettings) -> Iterator[httpx.Client]:
    with in_process(create_app, settings) as client:
        yield client


def dataset_name() -> str:
    return f"ds_{secrets.token_hex(4)}"


def commit_body(store: Store, name: str, version: int, rows: int = 3) -> dict[str, Any]:
    """A real data file in the store and the commit that describes it."""
    data = os.urandom(64)
    key = part_key(name, version, 0)
    store.put_bytes("lakehouse", key, data)
    return {
        "version": version,
        "schema": [{"name": "id", "type": "VARCHAR"}, {"name": "n", "type": "BIGINT"}],
        "files": [
            {
                "key": key,
                "rows": rows,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        ],
        "row_count": rows,
        "source": {"format": "test"},
    }


def commit(cd: httpx.Client, name: str, body: dict[str, Any]) -> httpx.Response:
    return cd.post(f"/v1/catalog/datasets/{name}/versions", json=body)


class TestCommitVersion:
    def test_first_commit_answers_the_manifest(self, cd: httpx.Client, store: Store) -> None:
        name = dataset_name()
        resp = commit(cd, name, commit_body(store, name, 1))
        assert resp.status_code == 201, resp.text
        manifest = resp.json()
        assert manifest["name"] == name
        assert manifest["version"] == 1
        assert manifest["row_count"] == 3
        assert manifest["schema"][0] == {"name": "id", "type": "VARCHAR"}
        assert manifest["created_at"]

    def test_manifest_is_persisted_in_the_store(self, cd: httpx.Client, store: Store) -> None:
        name = dataset_name()
        commit(cd, name, commit_body(store, name, 1))
        assert store.head("lakehouse", manifest_key(name, 1)).size > 0

    def test_recommitting_a_version_is_409(self, cd: httpx.Client, store: Store) -> None:
        name = dataset_name()
        body = commit_body(store, name, 1)
        assert commit(cd, name, body).status_code == 201
        resp = commit(cd, name, body)
        assert resp.status_code == 409
        assert resp.json()["error"]["details"]["expected_version"] == 2

    def test_skipping_a_version_is_409(self, cd: httpx.Client, store: Store) -> None:
        name = dataset_name()
        resp = commit(cd, name, commit_body(store, name, 2))
        assert resp.status_code == 409
        assert resp.json()["error"]["details"]["expected_version"] == 1

    def test_concurrent_commits_of_one_version_have_one_winner(
        self, cd: httpx.Client, store: Store
    ) -> None:
        name = dataset_name()
        body = commit_body(store, name, 1)
        statuses: list[int] = []
        barrier = threading.Barrier(8)

        def race() -> None:
            barrier.wait()
            statuses.append(commit(cd, name, body).status_code)

        threads = [threading.Thread(target=race) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [201] + [409] * 7

    def test_files_missing_from_the_store_are_422(self, cd: httpx.Client, store: Store) -> None:
        name = dataset_name()
        body = commit_body(store, name, 1)
        body["files"][0]["key"] = "datasets/nowhere/part-00000.parquet"
        resp = commit(cd, name, body)
        assert resp.status_code == 422
        assert "not in the store" in resp.json()["error"]["message"]
        assert cd.get(f"/v1/catalog/datasets/{name}").status_code == 404

    def test_row_count_mismatch_is_422(self, cd: httpx.Client, store: Store) -> None:
        name = dataset_name()
        body = commit_body(store, name, 1)
        body["row_count"] = 99
        assert commit(cd, name, body).status_code == 422

    def test_wrong_sha256_is_422(self, cd: httpx.Client, store: Store) -> None:
        name = dataset_name()
        body = commit_body(store, name, 1)
        body["files"][0]["sha256"] = "0" * 64
        assert commit(cd, name, body).status_code == 422

    @pytest.mark.parametrize("bad", ["Workers", "1abc", "a__b", "a-b", "x_", "a" * 64])
    def test_bad_dataset_name_is_400(self, cd: httpx.Client, store: Store, bad: str) -> None:
        resp = commit(cd, bad, commit_body(store, "placeholder", 1))
        assert_envelope(resp, 400, "invalid_input")

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda b: b.pop("schema"),
            lambda b: b.update(version=0),
            lambda b: b.update(row_count=-1),
            lambda b: b["files"][0].update(sha256="xyz"),
        ],
    )
    def test_malformed_body_is_422(self, cd: httpx.Client, store: Store, mutate: Any) -> None:
        name = dataset_name()
        body = commit_body(store, name, 1)
        mutate(body)
        resp = commit(cd, name, body)
        assert_envelope(resp, 422, "invalid_request")


class TestReadDatasets:
    def test_latest_versions_and_history(self, cd: httpx.Client, store: Store) -> None:
        name = dataset_name()
        for v in (1, 2, 3):
            assert commit(cd, name, commit_body(store, name, v, rows=v)).status_code == 201
        detail = cd.get(f"/v1/catalog/datasets/{name}").json()
        assert detail["versions"] == [1, 2, 3]
        assert detail["latest"]["version"] == 3
        history = cd.get(f"/v1/catalog/datasets/{name}/versions").json()
        assert [m["row_count"] for m in history["versions"]] == [1, 2, 3]
        assert history["count"] == 3
        v2 = cd.get(f"/v1/catalog/datasets/{name}/versions/2").json()
        assert v2["version"] == 2
        listed = {d["name"]: d for d in cd.get("/v1/catalog/datasets").json()["datasets"]}
        assert listed[name]["latest_version"] == 3
        assert listed[name]["row_count"] == 3

    def test_unknown_dataset_is_404(self, cd: httpx.Client) -> None:
        assert cd.get(f"/v1/catalog/datasets/{dataset_name()}").status_code == 404
        assert cd.get(f"/v1/catalog/datasets/{dataset_name()}/versions").status_code == 404

    def test_unknown_version_is_404(self, cd: httpx.Client, store: Store) -> None:
        name = dataset_name()
        commit(cd, name, commit_body(store, name, 1))
        resp = cd.get(f"/v1/catalog/datasets/{name}/versions/7")
        assert resp.status_code == 404
        assert cd.get(f"/v1/catalog/datasets/{name}/versions/0").status_code == 422

    def test_catalog_survives_restart(
        self, cd: httpx.Client, settings: LakehouseSettings, store: Store
    ) -> None:
        """A new catalogd on the same store (its lifespan opened afresh) knows the version."""
        name = dataset_name()
        assert commit(cd, name, commit_body(store, name, 1)).status_code == 201
        with in_process(create_app, settings) as fresh:
            assert fresh.get(f"/v1/catalog/datasets/{name}").json()["latest"]["version"] == 1
