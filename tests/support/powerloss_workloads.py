"""The durable logs the power-loss harness proves (issue 18): one workload per component.

Each workload writes below a fresh data directory through the real domain object a daemon uses
(not HTTP), acknowledging each operation when the object returns, and checks a crashed copy by
running that daemon's own start-up recovery on it. `WORKLOADS` is the table the tests iterate;
add a component by adding a line. The audit checkpoints (issue 18) are `AuditCheckpoints`: their
witness lives outside the data directory, beyond the power cut, and must never be ahead of the
durable checkpoint log.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson

from lakehouse_common.appendlog import AppendLog
from lakehouse_common.audit import generate_key
from lakehouse_common.audit.anchors import check_witness
from lakehouse_common.audit.checkpoint import CheckpointLog, line_digest
from lakehouse_common.audit.signing import generate_signing_key
from lakehouse_common.audit.witness import DirectoryWitness, Witness, WitnessHead
from lakehouse_common.config import (
    AuditSettings,
    LakehouseSettings,
    ObserveSettings,
    ServerSettings,
    VectorSettings,
    audit_key_path,
    witness_dir_path,
)
from lakehouse_common.contracts.catalog import DataFile, SchemaField, VersionCommit
from lakehouse_common.contracts.observe import EventIn
from lakehouse_common.contracts.vectors import CreateIndexRequest, Item
from lakehouse_common.errors import NotFound
from lakehouse_common.session_log import SessionRecord, append_session, read_recent_sessions
from lakehouse_common.store.fs import FsStore
from services.catalogd.audit_logs import SubjectAuditLogs
from services.catalogd.checkpoints import CheckpointWriter
from services.catalogd.governance import SUBJECTS_DIR
from services.catalogd.service import DatasetCatalog
from services.observerd.service import ObservationStore, kb_dir
from services.vectord.service import VectorService
from tests.support.powerloss import PowerLossRecorder, Workload

ABSENT: Final = object()


@dataclass
class History:
    """The operations attempted on each key, in order, each with its id; an acknowledged
    operation pins the key's state to its result or a later operation's (never an older one)."""

    ops: dict[Any, list[tuple[int, Any]]] = field(default_factory=dict)
    _next: int = 0

    def attempt(self, key: Any, value: Any) -> int:
        self._next += 1
        self.ops.setdefault(key, []).append((self._next, value))
        return self._next

    def allowed(self, key: Any, acked: set[int]) -> list[Any]:
        ops = self.ops[key]
        done = [n for n, (op, _) in enumerate(ops) if op in acked]
        if not done:
            return [ABSENT, *(value for _, value in ops)]
        return [value for _, value in ops[done[-1] :]]


def _describe(value: Any) -> str:
    return "absent" if value is ABSENT else repr(value)[:80]


def _check_history(
    history: History, acked: Sequence[Any], read: Callable[[Any], Any], same: Any = None
) -> list[str]:
    equal: Callable[[Any, Any], bool] = same or (lambda a, b: a == b)
    done = set(acked)
    problems = []
    for key in history.ops:
        found = read(key)
        allowed = history.allowed(key, done)
        if not any(
            (found is ABSENT and want is ABSENT)
            or (found is not ABSENT and want is not ABSENT and equal(found, want))
            for want in allowed
        ):
            problems.append(
                f"{key}: found {_describe(found)}, expected one of "
                f"{[_describe(v) for v in allowed][:4]}"
            )
    return problems


# -- observerd: `_kb/{stream}.jsonl`, one group-committed AppendLog per stream -----------------


@dataclass
class ObserverdStreams:
    """observerd's `ObservationStore`: concurrent appends to two streams (group commit)."""

    appends: int = 24
    name: str = "observerd streams (AppendLog)"
    torn_tails: bool = True
    streams: tuple[str, ...] = ("search_runs", "chat_runs")

    def _settings(self) -> ObserveSettings:
        return ObserveSettings(streams=list(self.streams))

    def run(self, root: Path, recorder: PowerLossRecorder) -> None:
        async def go() -> None:
            store = ObservationStore(kb_dir(root), self._settings())
            store.open()
            await store.start()

            async def one(n: int) -> None:
                stream = self.streams[n % len(self.streams)]
                events = [EventIn(event={"n": n, "k": k}) for k in range(1 + n % 3)]
                await store.append(stream, events, f"trace-{n}")
                recorder.ack((stream, n, len(events)))

            # Waves of concurrent appends: the writer commits each wave in one or two groups.
            for wave in range(0, self.appends, 4):
                await asyncio.gather(*(one(n) for n in range(wave, min(wave + 4, self.appends))))
            await store.close()

        asyncio.run(go())

    def check(self, root: Path, acked: Sequence[Any]) -> list[str]:
        async def go() -> list[str]:
            store = ObservationStore(kb_dir(root), self._settings())
            store.open()
            problems: list[str] = []
            found: dict[str, set[tuple[int, int]]] = {}
            for stream, stream_log in store.logs.items():
                seen = found.setdefault(stream, set())
                for line in stream_log.iter_lines():
                    record = orjson.loads(line)
                    seen.add((record["event"]["n"], record["event"]["k"]))
            for stream, n, count in acked:
                missing = [k for k in range(count) if (n, k) not in found.get(stream, set())]
                if missing:
                    problems.append(f"{stream}: acknowledged append {n} lost events {missing}")
            # The restarted daemon appends after whatever the crash left.
            await store.start()
            await store.append(self.streams[0], [EventIn(event={"n": -1, "k": 0})], "after")
            await store.close()
            again = ObservationStore(kb_dir(root), self._settings())
            again.open()
            last = list(again.logs[self.streams[0]].iter_lines())[-1]
            if orjson.loads(last)["event"]["n"] != -1:
                problems.append("an append after the restart is not the stream's last line")
            return problems

        return asyncio.run(go())


# -- pathwayd: `pathways/pathways.jsonl`, one AppendLog -------------------------------------------


@dataclass
class PathwaydLog:
    """pathwayd's pathway log (an `AppendLog` of its own, created on first append)."""

    appends: int = 16
    name: str = "pathwayd log (AppendLog)"
    torn_tails: bool = True

    @staticmethod
    def path(root: Path) -> Path:
        return root / "pathways" / "pathways.jsonl"

    def run(self, root: Path, recorder: PowerLossRecorder) -> None:
        async def go() -> None:
            log = AppendLog(self.path(root))
            log.open()
            await log.start()
            for n in range(self.appends):
                line = orjson.dumps({"pathway_id": f"p{n}", "pad": "x" * (n * 7 % 50)}) + b"\n"
                await log.append([line])
                recorder.ack(f"p{n}")
            await log.close()

        asyncio.run(go())

    def check(self, root: Path, acked: Sequence[Any]) -> list[str]:
        log = AppendLog(self.path(root))
        log.open()
        ids = [orjson.loads(line)["pathway_id"] for line in log.iter_lines()]
        problems = [f"acknowledged pathway {p} lost" for p in acked if p not in ids]
        if ids != [f"p{n}" for n in range(len(ids))]:
            problems.append(f"the log is not a prefix of what was written: {ids[:10]}")
        return problems


# -- the session log: `sessions/sessions.jsonl` ---------------------------------------------------


@dataclass
class SessionLog:
    """validatord's session log (`append_session`: flock, O_APPEND, fsync)."""

    appends: int = 12
    name: str = "session log"
    torn_tails: bool = True

    @staticmethod
    def path(root: Path) -> Path:
        return root / "sessions" / "sessions.jsonl"

    @staticmethod
    def record(n: int) -> SessionRecord:
        return SessionRecord(
            session_id=f"s{n}",
            trace_id=f"t{n}",
            daemon="validatord",
            kind="fill",
            model="fake",
            status="accepted",
            iterations=1 + n % 3,
        )

    def run(self, root: Path, recorder: PowerLossRecorder) -> None:
        for n in range(self.appends):
            append_session(self.path(root), self.record(n))
            recorder.ack(f"s{n}")

    def check(self, root: Path, acked: Sequence[Any]) -> list[str]:
        path = self.path(root)
        found = {r.session_id for r in read_recent_sessions(path, 10_000).records}
        problems = [f"acknowledged session {s} lost" for s in acked if s not in found]
        # A restarted validatord appends a whole record after whatever the crash left.
        append_session(path, self.record(999))
        after = read_recent_sessions(path, 10_000).records
        if not after or after[0].session_id != "s999":
            problems.append("an append after the restart is not the newest record")
        if {r.session_id for r in after} != found | {"s999"}:
            problems.append("an append after the restart changed the older records")
        return problems


# -- catalogd: subject audit logs `subjects/audit/<subject>.jsonl` ---------------------------------


@dataclass
class SubjectAudit:
    """catalogd's `SubjectAuditLogs`: single and fan-out appends; the chain must verify."""

    appends: int = 10
    name: str = "subject audit logs"
    # A torn unacknowledged row makes the log refuse appends until it is repaired; the repair
    # is catalogd's `CheckpointWriter.start`, so `AuditCheckpoints` proves the torn case.
    torn_tails: bool = False
    subjects: tuple[str, ...] = ("subj-a", "subj-b", "subj-c")

    @staticmethod
    def key_file(root: Path) -> Path:
        # The key lives outside the data directory (as `audit.key_file` does in production).
        key = root.parent / "audit.key"
        if not key.exists():
            generate_key(key)
        return key

    def logs(self, root: Path) -> SubjectAuditLogs:
        return SubjectAuditLogs(root / "subjects" / "audit", self.key_file(root), workers=2)

    @staticmethod
    def row(subject: str, n: int) -> dict[str, Any]:
        return {
            "subject_id": subject,
            "ts": f"2026-05-01T00:00:{n % 60:02d}.000000000Z",
            "accessor": {"daemon": "catalogd", "purpose": "test", "trace_id": f"t{n}"},
            "action": "read",
            "fields": ["name"],
        }

    def run(self, root: Path, recorder: PowerLossRecorder) -> None:
        async def go() -> None:
            logs = self.logs(root)
            try:
                for n in range(self.appends):
                    if n % 3 == 2:  # one row to every subject, in parallel
                        rows = {s: self.row(s, n) for s in self.subjects}
                        await logs.append_each(rows)
                        for s in self.subjects:
                            recorder.ack((s, n))
                    else:
                        s = self.subjects[n % len(self.subjects)]
                        await logs.append(s, [self.row(s, n)])
                        recorder.ack((s, n))
            finally:
                logs.close()

        asyncio.run(go())

    def check(self, root: Path, acked: Sequence[Any]) -> list[str]:
        logs = self.logs(root)
        problems: list[str] = []
        try:
            for s in self.subjects:
                result = logs.verify(s)
                if not result.verified:
                    problems.append(f"{s}: the chain does not verify: {result.error}")
                rows, _ = logs.read(s, 0, 10_000)
                present = {int(r["accessor"]["trace_id"][1:]) for r in rows}
                lost = [n for subject, n in acked if subject == s and n not in present]
                if lost:
                    problems.append(f"{s}: acknowledged rows {lost} lost")
        finally:
            logs.close()
        return problems


# -- catalogd: signed checkpoints `subjects/checkpoints.jsonl`, published to a witness -----------


class _AckedWitness:
    """The configured witness, acknowledging each checkpoint it holds once `publish` returns.

    The witness is another machine (or an Object Lock bucket): the power cut does not reach it,
    so what it holds at a crash point is every checkpoint published by then."""

    def __init__(self, inner: Witness, recorder: PowerLossRecorder) -> None:
        self.inner = inner
        self.recorder = recorder

    def describe(self) -> str:
        return self.inner.describe()

    def publish(self, seq: int, line: bytes) -> None:
        self.inner.publish(seq, line)
        self.recorder.ack(("published", seq, bytes(line)))

    def head(self) -> WitnessHead | None:
        return self.inner.head()


@dataclass
class AuditCheckpoints:
    """catalogd's `CheckpointWriter` over its `SubjectAuditLogs`: single and fan-out rows, a
    checkpoint every few appends and one at shutdown, each written (fsynced) and then published
    to a `DirectoryWitness` outside the data dir. Recovery is `CheckpointWriter.start` (a torn
    checkpoint line is cut, torn subject logs are repaired); after it every acknowledged row and
    checkpoint is there, the checkpoint log verifies and holds the witness's head, and every
    subject verifies against the checkpoints. The restarted daemon then appends, checkpoints
    and publishes again."""

    appends: int = 12
    name: str = "audit checkpoints (CheckpointLog + witness)"
    torn_tails: bool = True
    # A checkpoint after every `every` appends (catalogd's timer, made deterministic).
    every: int = 2
    subjects: tuple[str, ...] = ("subj-a", "subj-b", "subj-c")

    @staticmethod
    def settings(root: Path) -> LakehouseSettings:
        # Both keys outside the data directory; the witness in its default place, the sibling
        # `<root>-witness` (outside the data directory: the power cut leaves it alone).
        signing_key = root.parent / "checkpoint.key"
        if not signing_key.exists():
            generate_signing_key(signing_key)
        return LakehouseSettings(
            server=ServerSettings(data_dir=root),
            audit=AuditSettings(
                key_file=SubjectAudit.key_file(root),
                signing_key_file=signing_key,
                checkpoint_interval_s=3600,  # never ticks: the workload flushes itself
            ),
        )

    def open(self, root: Path) -> tuple[SubjectAuditLogs, CheckpointWriter]:
        """What catalogd's `open_state` opens: the subject logs, then the checkpoint writer."""
        settings = self.settings(root)
        logs = SubjectAuditLogs(
            settings.data_dir / SUBJECTS_DIR / "audit", audit_key_path(settings), workers=2
        )
        return logs, CheckpointWriter.open(settings, logs)

    @staticmethod
    def _ack_checkpoints(
        writer: CheckpointWriter, before: int, recorder: PowerLossRecorder
    ) -> None:
        if writer.write_error or writer.publish_error:
            raise RuntimeError(f"checkpoint not written or not published: {writer.health()}")
        for seq in range(before + 1, writer.checkpoints.count + 1):
            line = writer.checkpoints.line_at(seq)
            if line is None:
                raise RuntimeError(f"checkpoint {seq} written but not readable")
            recorder.ack(("checkpoint", seq, line_digest(line)))

    def run(self, root: Path, recorder: PowerLossRecorder) -> None:
        async def go() -> None:
            logs, writer = self.open(root)
            writer.witness = _AckedWitness(writer.witness, recorder)
            await writer.start()
            try:
                for n in range(self.appends):
                    if n % 3 == 2:  # one row to every subject, in parallel
                        await logs.append_each({s: SubjectAudit.row(s, n) for s in self.subjects})
                        for s in self.subjects:
                            recorder.ack(("row", s, n))
                    else:
                        s = self.subjects[n % len(self.subjects)]
                        await logs.append(s, [SubjectAudit.row(s, n)])
                        recorder.ack(("row", s, n))
                    if n % self.every == self.every - 1:
                        before = writer.checkpoints.count
                        writer.flush()
                        self._ack_checkpoints(writer, before, recorder)
                before = writer.checkpoints.count
                await writer.aclose()  # catalogd's last checkpoint, at shutdown
                self._ack_checkpoints(writer, before, recorder)
            finally:
                logs.close()

        asyncio.run(go())

    def check(self, root: Path, acked: Sequence[Any]) -> list[str]:
        # The witness as it stood at the crash: every checkpoint published by then.
        witness = DirectoryWitness(witness_dir_path(self.settings(root)))
        for item in acked:
            if item[0] == "published":
                witness.publish(item[1], item[2])
        try:
            return asyncio.run(self._check(root, acked))
        finally:
            shutil.rmtree(witness.directory, ignore_errors=True)

    async def _check(self, root: Path, acked: Sequence[Any]) -> list[str]:
        logs, writer = self.open(root)
        try:
            await writer.start()  # catalogd's start-up recovery: the repairs, then the timer
            problems = self._verify(logs, writer.checkpoints, writer.witness, acked)
            # The restarted daemon appends after whatever the crash left; its shutdown writes
            # and publishes a checkpoint anchoring it all.
            await logs.append_each({s: SubjectAudit.row(s, 999) for s in self.subjects})
        finally:
            await writer.aclose()
            logs.close()
        if writer.write_error or writer.publish_error:
            problems.append(
                "after the restart, a checkpoint was not written or not published: "
                f"{writer.write_error or writer.publish_error}"
            )
        logs, writer = self.open(root)
        try:
            writer.checkpoints.refresh()
            later = [*acked, *(("row", s, 999) for s in self.subjects)]
            problems += [
                f"after the restart: {p}"
                for p in self._verify(logs, writer.checkpoints, writer.witness, later)
            ]
            unwitnessed = check_witness(writer.checkpoints, writer.witness).unwitnessed
            if unwitnessed:
                problems.append(f"after the restart: {unwitnessed} checkpoints not published")
            for s in self.subjects:
                result = logs.verify_anchored(s)
                if not result.anchored or result.unanchored:
                    problems.append(
                        f"after the restart: {s} is not anchored by the shutdown checkpoint "
                        f"({result.unanchored} of {result.chain.count} rows unanchored)"
                    )
        finally:
            logs.close()
        return problems

    def _verify(
        self,
        logs: SubjectAuditLogs,
        checkpoints: CheckpointLog,
        witness: Witness,
        acked: Sequence[Any],
    ) -> list[str]:
        problems: list[str] = []
        if checkpoints.error is not None:
            problems.append(f"the checkpoint log does not verify: {checkpoints.error}")
        if checkpoints.torn:
            problems.append("the checkpoint log still ends in a torn line")
        # The witness ahead of the durable checkpoint log is the "checkpoint log cut" alarm: a
        # checkpoint published before it was durable.
        witnessed = check_witness(checkpoints, witness)
        if witnessed.error is not None:
            problems.append(f"the checkpoint log against the witness: {witnessed.error}")
        for item in acked:
            if item[0] == "checkpoint":
                _, seq, digest = item
                if seq > checkpoints.count or checkpoints.digests[seq - 1] != digest:
                    problems.append(
                        f"acknowledged checkpoint {seq} lost (the checkpoint log verifies "
                        f"{checkpoints.count})"
                    )
        for s in self.subjects:
            result = logs.verify_anchored(s)
            if not result.verified:
                problems.append(f"{s}: does not verify against the checkpoints: {result.error}")
            rows, _ = logs.read(s, 0, 10_000)
            present = {row["accessor"]["trace_id"] for row in rows}
            lost = [
                item[2]
                for item in acked
                if item[0] == "row" and item[1] == s and f"t{item[2]}" not in present
            ]
            if lost:
                problems.append(f"{s}: acknowledged rows {lost} lost")
        return problems


# -- storaged objects and catalogd manifests: FsStore below `objects/` -----------------------------


@dataclass
class StoreAndCatalog:
    """storaged's `FsStore` (overwrites, deletes, nested keys) and catalogd's create-only
    manifests committed through `DatasetCatalog` on the same store."""

    rounds: int = 6
    name: str = "storaged objects + catalogd manifests (FsStore)"
    torn_tails: bool = False  # objects are written whole and renamed: no tails to tear
    bucket: str = "lakehouse"
    history: History = field(default_factory=History)
    versions: dict[tuple[str, int], int] = field(default_factory=dict)

    @staticmethod
    def store(root: Path) -> FsStore:
        return FsStore(root / "objects")

    def run(self, root: Path, recorder: PowerLossRecorder) -> None:
        self.history, self.versions = History(), {}
        store = self.store(root)
        catalog = DatasetCatalog(store, self.bucket)
        for n in range(self.rounds):
            key = f"raw/batch-{n % 3}/part.bin"  # rewritten every third round
            data = f"round {n} ".encode() * (n + 1)
            op = self.history.attempt(key, data)
            store.put_bytes(self.bucket, key, data)
            recorder.ack(op)
            if n % 4 == 3:
                gone = f"raw/batch-{(n - 1) % 3}/part.bin"
                op = self.history.attempt(gone, ABSENT)
                store.delete(self.bucket, gone)
                recorder.ack(op)
            # ingestd's pattern: a data file, then the next version's manifest naming it.
            dataset = ("workers", "jobs")[n % 2]
            version = n // 2 + 1
            file_key = f"datasets/{dataset}/v{version}/part-0.parquet"
            body = f"{dataset} v{version} ".encode() * 3
            op = self.history.attempt(file_key, body)
            store.put_bytes(self.bucket, file_key, body, create_only=True)
            recorder.ack(op)
            commit = VersionCommit(
                version=version,
                schema=[SchemaField(name="id", type="BIGINT")],
                files=[
                    DataFile(
                        key=file_key,
                        rows=version,
                        bytes=len(body),
                        sha256=hashlib.sha256(body).hexdigest(),
                    )
                ],
                row_count=version,
            )
            manifest = catalog.commit(dataset, commit)
            self.versions[(dataset, version)] = manifest.row_count
            recorder.ack(("manifest", dataset, version))

    def check(self, root: Path, acked: Sequence[Any]) -> list[str]:
        store = self.store(root)

        def read(key: str) -> Any:
            try:
                return store.get_bytes(self.bucket, key)
            except NotFound:
                return ABSENT

        problems = _check_history(self.history, [a for a in acked if isinstance(a, int)], read)
        listed = {info.key for info in store.list(self.bucket, limit=1000).objects}
        for key in self.history.ops:
            if (key in listed) != (read(key) is not ABSENT):
                problems.append(f"{key}: the listing and a read disagree")
        catalog = DatasetCatalog(store, self.bucket)
        for item in acked:
            if not isinstance(item, tuple):
                continue
            _, dataset, version = item
            try:
                manifest = catalog.get_version(dataset, version)
            except NotFound:
                problems.append(f"acknowledged manifest {dataset} v{version} lost")
                continue
            for f in manifest.files:
                if read(f.key) is ABSENT:
                    problems.append(f"{dataset} v{version} names {f.key}, which is lost")
        return problems


# -- vectord: WAL segments and snapshots below `vectors/<index>/` --------------------------------


@dataclass
class VectordIndexes:
    """vectord's `VectorService`: index creation, upserts and deletes (WAL), snapshots with
    WAL rotation; recovery is `VectorService.open` (snapshot load + WAL replay)."""

    rounds: int = 10
    name: str = "vectord WAL + snapshots"
    torn_tails: bool = True
    dim: int = 4
    history: History = field(default_factory=History)
    indexes: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def service(root: Path) -> VectorService:
        service = VectorService(root / "vectors", VectorSettings())
        service.open()
        return service

    def _vector(self, n: int, item: int) -> list[float]:
        return [float(n * 10 + item + d / 10) for d in range(self.dim)]

    def run(self, root: Path, recorder: PowerLossRecorder) -> None:
        self.history, self.indexes = History(), {}
        service = self.service(root)
        try:
            for n in range(self.rounds):
                name = ("alpha", "beta")[0 if n < 4 else n % 2]
                if name not in self.indexes:
                    service.create_index(name, CreateIndexRequest(dim=self.dim, space="l2"))
                    self.indexes[name] = n
                    recorder.ack(("index", name))
                items = [
                    Item(id=f"i{(n + k) % 5}", vector=self._vector(n, k), metadata={"n": n})
                    for k in range(2)
                ]
                ops = [self.history.attempt((name, it.id), it.vector) for it in items]
                service.add(name, items)
                for op in ops:
                    recorder.ack(op)
                if n % 3 == 1:
                    victim = f"i{n % 5}"
                    op = self.history.attempt((name, victim), ABSENT)
                    service.delete(name, [victim])
                    recorder.ack(op)
                if n % 4 == 2:
                    service.index(name).snapshot()
        finally:
            service.close()

    def check(self, root: Path, acked: Sequence[Any]) -> list[str]:
        service = self.service(root)
        try:
            problems = [
                f"acknowledged index {item[1]} lost"
                for item in acked
                if isinstance(item, tuple) and item[1] not in self.indexes_of(service)
            ]

            def read(key: tuple[str, str]) -> Any:
                name, item_id = key
                try:
                    return service.get_item(name, item_id)[0]
                except NotFound:
                    return ABSENT

            def same(a: list[float], b: list[float]) -> bool:
                return bool(np.allclose(a, b))

            problems += _check_history(
                self.history, [a for a in acked if isinstance(a, int)], read, same
            )
            return problems
        finally:
            # Like a crash again: no closing snapshot, so the next check starts from this state.
            for name in self.indexes_of(service):
                service.index(name).close(snapshot=False)

    @staticmethod
    def indexes_of(service: VectorService) -> set[str]:
        return {summary.name for summary in service.list_indexes()}


# The table of durable components the harness proves. `scale` multiplies each workload's size
# (the long run under `make fuzz` uses more).
WORKLOADS: Final[dict[str, Callable[[int], Workload]]] = {
    "observerd": lambda scale: ObserverdStreams(appends=24 * scale),
    "pathwayd": lambda scale: PathwaydLog(appends=16 * scale),
    "session_log": lambda scale: SessionLog(appends=12 * scale),
    "audit": lambda scale: SubjectAudit(appends=10 * scale),
    "audit_checkpoints": lambda scale: AuditCheckpoints(appends=12 * scale),
    "store_catalog": lambda scale: StoreAndCatalog(rounds=6 * scale),
    "vectord": lambda scale: VectordIndexes(rounds=10 * scale),
}
