"""A full disk under the stateful daemons (issue 9, SPEC §9): each write is refused cleanly —
507 `insufficient_storage` (observerd: 503) in the error envelope, nothing of it kept, no torn
file — the daemons keep serving reads, write again once space is freed, and after a kill -9
everything that was acknowledged is there and every audit chain verifies.

The full disk is real, not simulated: the data directory is a 1 MiB tmpfs. Mounting one needs no
root: a holder process makes a user + mount namespace (`unshare --user --map-root-user --mount`)
and mounts the tmpfs over the stack's data dir there; storaged, catalogd, vectord and observerd
run inside that namespace (`nsenter`), so they share the small disk while every other path
(config, audit key, logs, pid files) is the real file system. The test reads the tmpfs through
`/proc/<holder>/root`. Where the platform forbids user namespaces, the module is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lakehouse_common.config import REPO_ROOT
from lakehouse_common.contracts.catalog import part_key
from lakehouse_common.ops.stack import (
    _daemon_env,
    _write_pid,
    health_of,
    log_file,
    pid_file,
    tail,
)
from tests.support.envelope import assert_envelope
from tests.support.stack import LiveStack

pytestmark = pytest.mark.fault

DISK = "1m"
IN_NAMESPACE = ("storaged", "catalogd", "vectord", "observerd")
BUCKET = "lakehouse"
DATASET = "full_people"
INDEX = "full-ix"
STREAM = "human_feedback"
DIM = 16


class Namespace:
    """A process holding a user + mount namespace in which `directory` is a small tmpfs."""

    def __init__(self, directory: Path, size: str) -> None:
        self.directory = directory
        script = (
            f'mount -t tmpfs -o size={size},mode=0755 lakehouse-full "{directory}" '
            "&& echo ready && exec sleep 86400"
        )
        self.proc = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]
            + ["sh", "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.proc.kill()
            _, err = self.proc.communicate()
            raise OSError(err.strip() or "the namespace holder exited")

    def path(self, inside: Path) -> Path:
        """Where the test process sees a path as the namespace's processes see it."""
        return Path(f"/proc/{self.proc.pid}/root") / inside.relative_to("/")

    def start(self, stack: LiveStack, name: str, timeout_s: float = 60.0) -> None:
        """Start a daemon inside the namespace, as `lakehouse_common.ops.stack` would outside."""
        log_path = log_file(stack.settings, name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = ["nsenter", f"--target={self.proc.pid}", "--user", "--mount"]
        command += [f"--wd={REPO_ROOT}", sys.executable, "-m", f"services.{name}"]
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=_daemon_env(stack.settings, stack.config_path),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _write_pid(pid_file(stack.settings, name), proc.pid)  # nsenter execs: same pid
        deadline = time.monotonic() + timeout_s
        while health_of(stack.url(name), name, timeout_s=0.5) != "ok":
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"{name} did not start in the namespace:\n{tail(log_path)}")
            time.sleep(0.1)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def ns_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveStack, Namespace]]:
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.skip("needs unshare and nsenter (util-linux) for a private tmpfs")
    root = tmp_path_factory.mktemp("fault-disk")
    # The audit keys live off the data disk (as /etc would hold them), so catalogd sees them.
    extra: dict[str, dict[str, Any]] = {
        "audit": {
            "key_file": str(root / "keys" / "audit.key"),
            "signing_key_file": str(root / "keys" / "checkpoint.key"),
        }
    }
    stack = LiveStack.create(root, extra)
    stack.settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        ns = Namespace(stack.settings.data_dir, DISK)
    except OSError as exc:
        pytest.skip(f"this platform does not allow a private tmpfs (user namespaces): {exc}")
    try:
        for name in IN_NAMESPACE:
            ns.start(stack, name)
        stack.start("gateway")
        yield stack, ns
    finally:
        stack.stop()
        ns.close()


@pytest.fixture(scope="module")
def stack(ns_stack: tuple[LiveStack, Namespace]) -> LiveStack:
    return ns_stack[0]


@pytest.fixture(scope="module")
def ns(ns_stack: tuple[LiveStack, Namespace]) -> Namespace:
    return ns_stack[1]


@pytest.fixture(scope="module")
def gw(stack: LiveStack) -> Iterator[httpx.Client]:
    with stack.client("gateway") as client:
        yield client


def disk_path(stack: LiveStack, ns: Namespace, *parts: str) -> Path:
    return ns.path(stack.settings.data_dir.joinpath(*parts))


def assert_refused(resp: httpx.Response, *statuses: int) -> dict[str, Any]:
    """A clean refusal: one of `statuses`, in the error envelope, saying why."""
    assert resp.status_code in statuses, resp.text
    body = assert_envelope(resp, resp.status_code)
    assert body["error"]["code"] in {"insufficient_storage", "service_unavailable"}, body
    message = body["error"]["message"].lower()
    assert "space" in message or "storage" in message, body
    return body


def vector(n: int) -> list[float]:
    return [1.0 if i == n % DIM else 0.0 for i in range(DIM)]


def items(prefix: str, count: int, pad: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}-{n}", "vector": vector(n), "metadata": {"pad": "p" * pad}}
        for n in range(count)
    ]


def big_fields(count: int = 100) -> list[str]:
    """An access naming many long fields: one row larger than a page, so it cannot slip into
    the slack of the log's last page."""
    return [f"f{n:03d}_" + "x" * 120 for n in range(count)]


def commit_body(data: bytes, version: int) -> dict[str, Any]:
    return {
        "version": version,
        "schema": [{"name": "id", "type": "VARCHAR"}, {"name": "phone", "type": "VARCHAR"}],
        "files": [
            {
                "key": part_key(DATASET, version, 0),
                "rows": 1,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        ],
        "row_count": 1,
        "source": {"format": "test"},
    }


class Acked:
    """What the stack acknowledged, to check after the crash at the end."""

    objects: dict[str, bytes] = {}
    vectors: set[str] = set()
    events: int = 0
    audit_tips: dict[str, str] = {}
    versions: list[int] = []


@pytest.fixture(scope="module")
def prepared(gw: httpx.Client) -> None:
    """Before the disk fills: an object, a dataset (v1, and v2's part file staged), two subjects
    with audit rows, an index with items, a stream with events."""
    data = b"kept"
    assert gw.put(f"/v1/storage/objects/{BUCKET}/keep/one", content=data).status_code == 200
    Acked.objects["keep/one"] = data
    for version in (1, 2):
        part = f"{DATASET} part v{version}".encode()
        resp = gw.put(f"/v1/storage/objects/{BUCKET}/{part_key(DATASET, version, 0)}", content=part)
        assert resp.status_code == 200
        Acked.objects[part_key(DATASET, version, 0)] = part
    body = commit_body(f"{DATASET} part v1".encode(), 1)
    resp = gw.post(f"/v1/catalog/datasets/{DATASET}/versions", json=body)
    assert resp.status_code == 201, resp.text
    Acked.versions = [1]
    for sid in ("FULL-1", "FULL-2"):
        manifest = {"dataset": DATASET, "row_key": f"r-{sid}", "pii_fields": ["phone"]}
        assert gw.put(f"/v1/catalog/subjects/{sid}", json=manifest).status_code == 201
    row = gw.post(
        "/v1/catalog/subjects/FULL-1/audit",
        json={"accessor": {"daemon": "faultd", "purpose": "before"}, "fields": ["phone"]},
    )
    assert row.status_code == 201, row.text
    Acked.audit_tips["FULL-1"] = row.json()["hmac"]
    resp = gw.put(f"/v1/vectors/indexes/{INDEX}", json={"dim": DIM, "space": "l2"})
    assert resp.status_code == 201, resp.text
    resp = gw.post(f"/v1/vectors/indexes/{INDEX}/add", json={"items": items("before", 10)})
    assert resp.status_code == 200, resp.text
    Acked.vectors |= {f"before-{n}" for n in range(10)}
    events = [{"event": {"n": n}} for n in range(5)]
    assert gw.post(f"/v1/observe/{STREAM}", json={"events": events}).status_code == 200
    Acked.events = 5


def fill_disk(gw: httpx.Client) -> list[str]:
    """Write filler objects until not even 4 KiB fit; answer their keys."""
    keys: list[str] = []
    for size in (256 * 1024, 64 * 1024, 4 * 1024):
        while True:
            key = f"filler/{len(keys)}"
            resp = gw.put(f"/v1/storage/objects/{BUCKET}/{key}", content=b"f" * size)
            if resp.status_code != 200:
                assert_refused(resp, 507)
                break
            keys.append(key)
            assert len(keys) < 1000, "the disk never filled"
    return keys


def staging_is_empty(stack: LiveStack, ns: Namespace) -> bool:
    return not any(disk_path(stack, ns, "objects", ".staging").iterdir())


def stream_file(stack: LiveStack, ns: Namespace) -> bytes:
    return disk_path(stack, ns, "_kb", f"{STREAM}.jsonl").read_bytes()


def audit_log(stack: LiveStack, ns: Namespace, sid: str) -> Path:
    return disk_path(stack, ns, "subjects", "audit", f"{sid}.jsonl")


@pytest.mark.usefixtures("prepared")
class TestDiskFull:
    """In order: an object too large for the disk, then a full disk, then space freed."""

    fillers: list[str] = []

    def test_object_larger_than_the_disk_is_507_and_leaves_nothing(
        self, stack: LiveStack, ns: Namespace, gw: httpx.Client
    ) -> None:
        too_big = os.urandom(2 * 1024 * 1024)
        assert_refused(gw.put(f"/v1/storage/objects/{BUCKET}/big/new", content=too_big), 507)
        assert gw.get(f"/v1/storage/objects/{BUCKET}/big/new").status_code == 404
        # An overwrite that does not fit leaves the old content whole.
        assert_refused(gw.put(f"/v1/storage/objects/{BUCKET}/keep/one", content=too_big), 507)
        assert gw.get(f"/v1/storage/objects/{BUCKET}/keep/one").content == b"kept"
        assert staging_is_empty(stack, ns)

    def test_every_write_is_refused_cleanly_on_a_full_disk(
        self, stack: LiveStack, ns: Namespace, gw: httpx.Client
    ) -> None:
        TestDiskFull.fillers = fill_disk(gw)
        stream_before = stream_file(stack, ns)
        log_before = audit_log(stack, ns, "FULL-1").read_bytes()
        count_before = gw.get(f"/v1/vectors/indexes/{INDEX}").json()["count"]

        # storaged: a new object.
        assert_refused(gw.put(f"/v1/storage/objects/{BUCKET}/full/x", content=b"y" * 65536), 507)
        assert gw.get(f"/v1/storage/objects/{BUCKET}/full/x").status_code == 404
        assert staging_is_empty(stack, ns)

        # catalogd: a dataset version (its manifest is a new object in the store).
        body = commit_body(f"{DATASET} part v2".encode(), 2)
        assert_refused(gw.post(f"/v1/catalog/datasets/{DATASET}/versions", json=body), 507)
        assert gw.get(f"/v1/catalog/datasets/{DATASET}").json()["versions"] == [1]

        # catalogd: an audit row larger than a page, and the first row of a new log.
        access = {"accessor": {"daemon": "faultd", "purpose": "full"}, "fields": big_fields()}
        assert_refused(gw.post("/v1/catalog/subjects/FULL-1/audit", json=access), 507)
        assert audit_log(stack, ns, "FULL-1").read_bytes() == log_before  # truncated back
        access["fields"] = ["phone"]
        assert_refused(gw.post("/v1/catalog/subjects/FULL-2/audit", json=access), 507)
        for sid in ("FULL-1", "FULL-2"):
            result = gw.get(f"/v1/catalog/subjects/{sid}/audit/verify").json()
            assert result["verified"] is True, result
        assert gw.get("/v1/catalog/subjects/FULL-2/audit").json()["rows"] == []

        # catalogd: a subject manifest (SQLite).
        manifest = {"dataset": DATASET, "row_key": "r-FULL-3", "pii_fields": ["phone"]}
        resp = gw.put("/v1/catalog/subjects/FULL-3", json=manifest)
        assert_refused(resp, 507)
        assert gw.get("/v1/catalog/subjects/FULL-3").status_code == 404

        # vectord: a batch larger than a page.
        add = {"items": items("full", 40, pad=200)}
        assert_refused(gw.post(f"/v1/vectors/indexes/{INDEX}/add", json=add), 507)
        assert gw.get(f"/v1/vectors/indexes/{INDEX}").json()["count"] == count_before
        assert gw.get(f"/v1/vectors/indexes/{INDEX}/items/full-0").status_code == 404

        # observerd: a batch larger than a page.
        events = {"events": [{"event": {"pad": "e" * 8192}} for _ in range(2)]}
        assert_refused(gw.post(f"/v1/observe/{STREAM}", json=events), 503, 507)
        assert stream_file(stack, ns) == stream_before  # truncated back, no torn line
        assert gw.get(f"/v1/observations/{STREAM}").json()["total"] == Acked.events

        # Reads are served throughout.
        assert gw.get(f"/v1/storage/objects/{BUCKET}/keep/one").content == b"kept"
        search = {"vector": vector(3), "k": 3}
        assert gw.post(f"/v1/vectors/indexes/{INDEX}/search", json=search).status_code == 200

    def test_writes_succeed_again_once_space_is_freed(
        self, stack: LiveStack, ns: Namespace, gw: httpx.Client
    ) -> None:
        assert TestDiskFull.fillers, "the full-disk test did not run first"
        for key in TestDiskFull.fillers:
            assert gw.delete(f"/v1/storage/objects/{BUCKET}/{key}").status_code == 204

        resp = gw.put(f"/v1/storage/objects/{BUCKET}/full/x", content=b"y" * 65536)
        assert resp.status_code == 200, resp.text
        Acked.objects["full/x"] = b"y" * 65536

        body = commit_body(f"{DATASET} part v2".encode(), 2)
        resp = gw.post(f"/v1/catalog/datasets/{DATASET}/versions", json=body)
        assert resp.status_code == 201, resp.text
        Acked.versions.append(2)

        for sid, fields in (("FULL-1", big_fields()), ("FULL-2", ["phone"])):
            access = {"accessor": {"daemon": "faultd", "purpose": "after"}, "fields": fields}
            resp = gw.post(f"/v1/catalog/subjects/{sid}/audit", json=access)
            assert resp.status_code == 201, resp.text
            row = resp.json()
            assert row["prev_hmac"] == Acked.audit_tips.get(sid, "0" * 64)
            Acked.audit_tips[sid] = row["hmac"]

        manifest = {"dataset": DATASET, "row_key": "r-FULL-3", "pii_fields": ["phone"]}
        assert gw.put("/v1/catalog/subjects/FULL-3", json=manifest).status_code == 201

        add = {"items": items("after", 40, pad=200)}
        assert gw.post(f"/v1/vectors/indexes/{INDEX}/add", json=add).status_code == 200
        Acked.vectors |= {f"after-{n}" for n in range(40)}

        events = {"events": [{"event": {"n": n}} for n in range(5, 8)]}
        resp = gw.post(f"/v1/observe/{STREAM}", json=events)
        assert resp.status_code == 200, resp.text
        assert resp.json()["first_line"] == Acked.events
        Acked.events += 3

    def test_after_kill_9_everything_acknowledged_is_there(
        self, stack: LiveStack, ns: Namespace, gw: httpx.Client
    ) -> None:
        for name in IN_NAMESPACE:
            stack.kill_9(name)
        for name in IN_NAMESPACE:
            ns.start(stack, name)

        for key, data in Acked.objects.items():
            resp = gw.get(f"/v1/storage/objects/{BUCKET}/{key}")
            assert resp.status_code == 200 and resp.content == data, key
        listed = gw.get(f"/v1/storage/objects/{BUCKET}", params={"prefix": "filler/"}).json()
        assert listed["objects"] == []

        assert gw.get(f"/v1/catalog/datasets/{DATASET}").json()["versions"] == Acked.versions
        for sid, tip in Acked.audit_tips.items():
            result = gw.get(f"/v1/catalog/subjects/{sid}/audit/verify").json()
            assert result["verified"] is True and result["tip"] == tip, result
        assert gw.get("/v1/catalog/subjects/FULL-3").status_code == 200

        info = gw.get(f"/v1/vectors/indexes/{INDEX}").json()
        assert info["count"] == len(Acked.vectors)  # the refused batch did not come back
        for item_id in sorted(Acked.vectors):
            assert gw.get(f"/v1/vectors/indexes/{INDEX}/items/{item_id}").status_code == 200
        assert gw.get(f"/v1/vectors/indexes/{INDEX}/items/full-0").status_code == 404

        page = gw.get(f"/v1/observations/{STREAM}", params={"limit": 100}).json()
        assert page["total"] == Acked.events
        lines = stream_file(stack, ns).splitlines(keepends=True)
        assert len(lines) == Acked.events and all(line.endswith(b"\n") for line in lines)
        assert all(json.loads(line) for line in lines)
