"""SIGKILL each stateful daemon in the middle of a stream of writes, restart it, and check that
every acknowledged write is there (issue 9, SPEC §9); stop a daemon behind the gateway and check
the 502 that names it and the recovery when it returns.

One stack for the module: storaged, catalogd, vectord, observerd and the gateway; every write
goes through the gateway (the path clients take), from several writer threads at once. A write
that was in flight when the daemon died was never acknowledged: it may be there or not, but
never half of it. The per-daemon suites hold the deeper single-daemon crash cases (vectord:
upserts and snapshots, tests/services/vectord/test_durability.py; observerd: a torn tail on
start, tests/services/observerd/test_durability.py); this module runs one harness over all four,
and kills them all at once too.
"""

from __future__ import annotations

import hashlib
import json
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from lakehouse_common.audit import GENESIS
from lakehouse_common.cli import app
from lakehouse_common.contracts.catalog import part_key
from lakehouse_common.ops.stack import _stop_process, pid_file, read_pid
from lakehouse_common.store import Store
from lakehouse_common.store.settings import store_from_settings
from tests.support.faults import WriteStream, assert_502_naming, crash_during
from tests.support.stack import LiveStack

pytestmark = pytest.mark.fault

STATEFUL = ("storaged", "catalogd", "vectord", "observerd")
BUCKET = "lakehouse"
DIM = 8


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    # Snapshots now and then, so some crashes land while one is being written.
    live = LiveStack.create(
        tmp_path_factory.mktemp("fault-crash"), {"vector": {"snapshot_every_ops": 40}}
    )
    with live.running(*STATEFUL, "gateway"):
        yield live


@pytest.fixture(scope="module")
def store(stack: LiveStack) -> Iterator[Store]:
    """The stack's object store, in-process (as ingestd writes dataset parts)."""
    with store_from_settings(stack.settings) as s:
        yield s


def ok_or_gone(resp: httpx.Response, *expected: int) -> bool:
    """True for an expected success; False for the gateway's 502 (the daemon is gone); any
    other answer fails the test — a crash must not turn into other errors."""
    if resp.status_code == 502:
        return False
    assert resp.status_code in expected, resp.text
    return True


class Workload:
    """What one daemon is sent during the crash, and how to check it afterwards."""

    daemon: ClassVar[str]
    # A cheap read through the gateway: 502 while the daemon is down, 200 once it is back.
    probe: ClassVar[str]

    def __init__(self, stack: LiveStack, store: Store, tag: str) -> None:
        self.stack = stack
        self.store = store
        self.tag = tag

    def prepare(self, gw: httpx.Client) -> None:
        """Create what the writes need."""

    def write(self, client: httpx.Client, w: int, n: int) -> Any:
        raise NotImplementedError

    def verify(self, gw: httpx.Client, stream: WriteStream[Any]) -> None:
        raise NotImplementedError

    def stream(self) -> WriteStream[Any]:
        return WriteStream(self.stack.url("gateway"), self.write)


# -- storaged -------------------------------------------------------------------------------


def blob(w: int, n: int) -> bytes:
    """Deterministic content of writer w's write n, 1 byte to 96 KiB."""
    rng = random.Random(f"{w}:{n}")
    return rng.randbytes(1 + rng.randrange(96 * 1024))


class Objects(Workload):
    """Object PUTs: each writer cycles over its own 5 keys, so most writes overwrite."""

    daemon = "storaged"
    probe = "/v1/storage/buckets"
    keys_per_writer = 5

    def key(self, w: int, n: int) -> str:
        return f"{self.tag}/w{w}/k{n % self.keys_per_writer}"

    def write(self, client: httpx.Client, w: int, n: int) -> int | None:
        resp = client.put(f"/v1/storage/objects/{BUCKET}/{self.key(w, n)}", content=blob(w, n))
        if not ok_or_gone(resp, 200):
            return None
        assert resp.json()["etag"] == hashlib.sha256(blob(w, n)).hexdigest()
        return n

    def verify(self, gw: httpx.Client, stream: WriteStream[Any]) -> None:
        expected_keys: set[str] = set()
        for w, acked in stream.acked.items():
            for k in range(self.keys_per_writer):
                key = f"{self.tag}/w{w}/k{k}"
                last = max((n for n in acked if n % self.keys_per_writer == k), default=None)
                allowed = [] if last is None else [blob(w, last)]
                flying = stream.in_flight.get(w)
                if flying is not None and flying % self.keys_per_writer == k:
                    allowed.append(blob(w, flying))
                resp = gw.get(f"/v1/storage/objects/{BUCKET}/{key}")
                if last is None and resp.status_code == 404:
                    continue
                assert resp.status_code == 200, (key, resp.text)
                # The whole of one written version: never a torn or mixed file.
                assert resp.content in allowed, f"{key}: content is no version written to it"
                assert resp.headers["etag"] == f'"{hashlib.sha256(resp.content).hexdigest()}"'
                expected_keys.add(key)
        listed = gw.get(f"/v1/storage/objects/{BUCKET}", params={"prefix": f"{self.tag}/"})
        assert {o["key"] for o in listed.json()["objects"]} == expected_keys


# -- catalogd -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditAck:
    subject: str
    seq: int
    hmac: str


class Catalog(Workload):
    """Writers 0-2 append audit rows to their own subject and, every third write, to one subject
    they share (concurrent appends to one chain); writer 3 commits dataset versions."""

    daemon = "catalogd"
    probe = "/v1/catalog/datasets"
    committer = 3

    @property
    def dataset(self) -> str:
        return f"{self.tag}_versions"

    @property
    def shared(self) -> str:
        return f"F-{self.tag}-shared"

    def subject_of(self, w: int, n: int) -> str:
        return self.shared if n % 3 == 2 else f"F-{self.tag}-{w}"

    def commit_body(self, version: int) -> dict[str, Any]:
        data = f"{self.dataset} v{version}".encode()
        key = part_key(self.dataset, version, 0)
        self.store.put_bytes(BUCKET, key, data)
        return {
            "version": version,
            "schema": [{"name": "id", "type": "VARCHAR"}, {"name": "phone", "type": "VARCHAR"}],
            "files": [
                {
                    "key": key,
                    "rows": 1,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            ],
            "row_count": 1,
            "source": {"format": "test"},
        }

    def prepare(self, gw: httpx.Client) -> None:
        # Version 1 holds the subjects' PII column; the stream commits 2, 3, …
        resp = gw.post(f"/v1/catalog/datasets/{self.dataset}/versions", json=self.commit_body(1))
        assert resp.status_code == 201, resp.text
        subjects = [self.shared] + [f"F-{self.tag}-{w}" for w in range(self.committer)]
        for sid in subjects:
            manifest = {"dataset": self.dataset, "row_key": f"r-{sid}", "pii_fields": ["phone"]}
            resp = gw.put(f"/v1/catalog/subjects/{sid}", json=manifest)
            assert resp.status_code == 201, resp.text

    def write(self, client: httpx.Client, w: int, n: int) -> AuditAck | int | None:
        if w == self.committer:
            version = n + 2
            body = self.commit_body(version)
            resp = client.post(f"/v1/catalog/datasets/{self.dataset}/versions", json=body)
            return version if ok_or_gone(resp, 201) else None
        sid = self.subject_of(w, n)
        access = {"accessor": {"daemon": "faultd", "purpose": f"w{w}n{n}"}, "fields": ["phone"]}
        resp = client.post(f"/v1/catalog/subjects/{sid}/audit", json=access)
        if not ok_or_gone(resp, 201):
            return None
        row = resp.json()
        return AuditAck(sid, row["seq"], row["hmac"])

    def verify(self, gw: httpx.Client, stream: WriteStream[Any]) -> None:
        # Dataset versions: every acknowledged commit, and at most the one in flight.
        versions = stream.acked.get(self.committer, [])
        history = gw.get(f"/v1/catalog/datasets/{self.dataset}").json()
        listed = history["versions"]
        acked_versions = [1, *versions]
        assert listed[: len(acked_versions)] == acked_versions
        assert len(listed) - len(acked_versions) <= 1
        for version in acked_versions:
            resp = gw.get(f"/v1/catalog/datasets/{self.dataset}/versions/{version}")
            assert resp.status_code == 200 and resp.json()["version"] == version

        # Audit chains: every acknowledged row at its seq, the chain verifying end to end.
        acks = [a for a in stream.all_acked() if isinstance(a, AuditAck)]
        flying = {self.subject_of(w, n) for w, n in stream.in_flight.items() if w != self.committer}
        for sid in {f"F-{self.tag}-{w}" for w in range(self.committer)} | {self.shared}:
            rows = gw.get(f"/v1/catalog/subjects/{sid}/audit", params={"limit": 10_000}).json()
            by_seq = {r["seq"]: r for r in rows["rows"]}
            mine = [a for a in acks if a.subject == sid]
            for ack in mine:
                assert by_seq[ack.seq]["hmac"] == ack.hmac, f"{sid}: acknowledged row lost"
            extra = len(by_seq) - len(mine)
            in_flight_here = sum(
                1
                for w, n in stream.in_flight.items()
                if w != self.committer and self.subject_of(w, n) == sid
            )
            assert 0 <= extra <= in_flight_here, (sid, extra, flying)
            result = gw.get(f"/v1/catalog/subjects/{sid}/audit/verify").json()
            assert result["verified"] is True, result
            assert result["count"] == len(by_seq)
            # The chain goes on from the surviving tip.
            nxt = gw.post(
                f"/v1/catalog/subjects/{sid}/audit",
                json={"accessor": {"daemon": "faultd", "purpose": "after"}, "fields": []},
            )
            assert nxt.status_code == 201, nxt.text
            assert nxt.json()["prev_hmac"] == (result["tip"] if by_seq else GENESIS)

        # The operator's offline check agrees: every log catalogd wrote verifies.
        audit_dir = self.stack.settings.data_dir / "subjects" / "audit"
        result = CliRunner().invoke(
            app,
            ["audit", "verify-all", str(audit_dir), "--config", str(self.stack.config_path)]
            + ["--json"],
        )
        assert result.exit_code == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert all(log["verified"] for log in report["logs"]), report


# -- vectord --------------------------------------------------------------------------------


def item_vector(item_id: str) -> list[float]:
    rng = np.random.default_rng(zlib.crc32(item_id.encode()))
    row = rng.normal(size=DIM)
    vector: list[float] = (row / np.linalg.norm(row)).tolist()
    return vector


class Vectors(Workload):
    """Batches of 4 new items per write."""

    daemon = "vectord"
    probe = "/v1/vectors/indexes"
    batch = 4

    @property
    def index(self) -> str:
        return f"{self.tag}-ix"

    def ids(self, w: int, n: int) -> list[str]:
        return [f"w{w}-n{n}-{i}" for i in range(self.batch)]

    def prepare(self, gw: httpx.Client) -> None:
        resp = gw.put(f"/v1/vectors/indexes/{self.index}", json={"dim": DIM, "space": "cosine"})
        assert resp.status_code == 201, resp.text

    def write(self, client: httpx.Client, w: int, n: int) -> int | None:
        items = [
            {"id": i, "vector": item_vector(i), "metadata": {"w": w, "n": n}}
            for i in self.ids(w, n)
        ]
        resp = client.post(f"/v1/vectors/indexes/{self.index}/add", json={"items": items})
        return n if ok_or_gone(resp, 200) else None

    def present(self, gw: httpx.Client, item_id: str) -> bool:
        resp = gw.get(f"/v1/vectors/indexes/{self.index}/items/{item_id}")
        if resp.status_code == 404:
            return False
        assert resp.status_code == 200, resp.text
        got = resp.json()
        np.testing.assert_allclose(got["vector"], item_vector(item_id), atol=1e-6)
        w, n = (int(part[1:]) for part in item_id.split("-")[:2])
        assert got["metadata"] == {"w": w, "n": n}
        return True

    def verify(self, gw: httpx.Client, stream: WriteStream[Any]) -> None:
        expected = 0
        for w, acked in stream.acked.items():
            for n in acked:
                assert all(self.present(gw, i) for i in self.ids(w, n)), (w, n)
                expected += self.batch
        for w, n in stream.in_flight.items():
            seen = {self.present(gw, i) for i in self.ids(w, n)}
            assert len(seen) == 1, f"writer {w}'s batch {n} is half there"
            expected += self.batch if seen == {True} else 0
        info = gw.get(f"/v1/vectors/indexes/{self.index}").json()
        assert info["count"] == expected


# -- observerd ------------------------------------------------------------------------------


class Events(Workload):
    """Batches of 1-5 events per write, to one stream shared by every writer."""

    daemon = "observerd"
    probe = "/v1/observations"
    stream_name = "human_feedback"

    def ids(self, w: int, n: int) -> list[str]:
        return [f"{self.tag}-{w}-{n}-{k}" for k in range(1 + (w + n) % 5)]

    def write(self, client: httpx.Client, w: int, n: int) -> int | None:
        events = [{"event": {"id": i, "pad": "x" * (n % 97)}} for i in self.ids(w, n)]
        resp = client.post(f"/v1/observe/{self.stream_name}", json={"events": events})
        return n if ok_or_gone(resp, 200) else None

    def verify(self, gw: httpx.Client, stream: WriteStream[Any]) -> None:
        stored: list[str] = []
        since = 0
        while True:
            page = gw.get(
                f"/v1/observations/{self.stream_name}", params={"since": since, "limit": 1000}
            ).json()
            stored += [r["event"].get("id", "") for r in page["records"]]
            if page["count"] == 0:
                break
            since = page["next"]
        mine = [i for i in stored if i.startswith(f"{self.tag}-")]
        assert len(mine) == len(set(mine)), "an event was stored twice"
        acked = {i for w, ns in stream.acked.items() for n in ns for i in self.ids(w, n)}
        assert acked <= set(mine), f"{len(acked - set(mine))} acknowledged events lost"
        for w, n in stream.in_flight.items():
            seen = {i in set(mine) for i in self.ids(w, n)}
            assert len(seen) == 1, f"writer {w}'s batch {n} is half there"
        # Every line on disk is whole (the restart trims only a partial tail).
        path = self.stack.settings.data_dir / "_kb" / f"{self.stream_name}.jsonl"
        data = path.read_bytes()
        assert data.endswith(b"\n")
        assert all(json.loads(line) for line in data.splitlines())


WORKLOADS: dict[str, type[Workload]] = {w.daemon: w for w in (Objects, Catalog, Vectors, Events)}


@pytest.fixture
def gw(stack: LiveStack) -> Iterator[httpx.Client]:
    with stack.client("gateway") as client:
        yield client


class TestKill9MidStream:
    @pytest.mark.parametrize("daemon", STATEFUL)
    def test_every_acknowledged_write_survives(
        self, stack: LiveStack, store: Store, gw: httpx.Client, daemon: str
    ) -> None:
        work = WORKLOADS[daemon](stack, store, f"k9{daemon[:3]}")
        work.prepare(gw)
        stream = crash_during(stack, daemon, work.stream(), after=40)
        assert stream.total >= 40
        # While it is down the gateway says so, naming it.
        assert_502_naming(gw.get(work.probe), daemon)
        stack.start(daemon)
        assert gw.get(work.probe).status_code == 200
        work.verify(gw, stream)

    def test_all_four_killed_at_once(
        self, stack: LiveStack, store: Store, gw: httpx.Client
    ) -> None:
        works = [WORKLOADS[d](stack, store, f"all{d[:3]}") for d in STATEFUL]
        for work in works:
            work.prepare(gw)
        streams = [work.stream().start() for work in works]
        try:
            for stream in streams:
                stream.wait_for(20)
            for work in works:
                stack.kill_9(work.daemon)
        finally:
            for stream in streams:
                stream.stop()
        stack.start(*STATEFUL)
        for work, stream in zip(works, streams, strict=True):
            work.verify(gw, stream)


class TestGatewayOutage:
    @pytest.mark.parametrize("daemon", STATEFUL)
    def test_stopped_daemon_is_502_naming_it_until_it_returns(
        self, stack: LiveStack, gw: httpx.Client, daemon: str
    ) -> None:
        probe = WORKLOADS[daemon].probe
        assert gw.get(probe).status_code == 200
        record = read_pid(pid_file(stack.settings, daemon))
        assert record is not None
        assert _stop_process(record, grace_s=30.0) == "stopped"  # SIGTERM: a graceful stop
        try:
            assert_502_naming(gw.get(probe), daemon)
            # Writes too, and the aggregate health names it.
            assert_502_naming(gw.post(probe, json={}), daemon)
            health = gw.get("/v1/health").json()
            assert health["daemons"][daemon]["status"] == "down"
        finally:
            stack.start(daemon)
        assert gw.get(probe).status_code == 200
        health = gw.get("/v1/health").json()
        assert health["daemons"][daemon]["status"] == "ok"
