"""catalogd's checkpoint writer (SPEC §8 "Anchored heads", "Torn tail"; issue 18).

:meth:`CheckpointWriter.start` repairs first — a torn checkpoint line is cut, and every subject
log whose last line is torn is cut back to its last verified row with a ``repair`` row appended
(each logged) — then runs a task that, every ``audit.checkpoint_interval_s``, writes one signed
checkpoint of the subject logs appended to since the previous one and publishes the newest
checkpoint to the witness. A failed publish is retried on the next tick (backing off to 30 s),
counted in ``lakehouse_audit_witness_publish_failures_total``, measured by
``lakehouse_audit_witness_lag_checkpoints`` and reported by :meth:`health` (``/health`` shows
``degraded``); it is never dropped. :meth:`aclose` writes and publishes a last checkpoint.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.concurrency import run_in_threadpool

from lakehouse_common.audit.chain import AuditChainError, verify_log
from lakehouse_common.audit.checkpoint import (
    CHECKPOINT_LOG,
    CheckpointLog,
    repair_checkpoint_tail,
)
from lakehouse_common.audit.keys import Keyring
from lakehouse_common.audit.repair import is_torn, repair_torn_tail
from lakehouse_common.audit.signing import (
    Ed25519PrivateKey,
    load_public_key,
    load_signing_key,
    public_key_path,
)
from lakehouse_common.audit.witness import Witness, WitnessError, witness_from_settings
from lakehouse_common.config import LakehouseSettings, signing_key_path
from lakehouse_common.errors import LakehouseError
from lakehouse_common.logging import get_logger
from services.catalogd.audit_logs import SubjectAuditLogs

log = get_logger("lakehouse.catalogd.checkpoints")

_MAX_BACKOFF_S = 30.0


class CheckpointWriter:
    """Writes and publishes checkpoints of the subject logs catalogd appends to."""

    def __init__(
        self,
        logs: SubjectAuditLogs,
        checkpoints: CheckpointLog,
        key: Ed25519PrivateKey,
        witness: Witness,
        *,
        interval_s: float,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.logs = logs
        self.checkpoints = checkpoints
        self.key = key
        self.witness = witness
        self.interval_s = interval_s
        self._dirty: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.publish_error: str | None = None
        self.write_error: str | None = None
        self._retry_at = 0.0
        self._backoff = interval_s
        self.failures = Counter(
            "lakehouse_audit_witness_publish_failures",
            "Checkpoint publishes to the witness that failed (each is retried)",
            registry=registry,
        )
        self.lag = Gauge(
            "lakehouse_audit_witness_lag_checkpoints",
            "Checkpoints written but not yet held by the witness",
            registry=registry,
        )

    @classmethod
    def open(
        cls,
        settings: LakehouseSettings,
        logs: SubjectAuditLogs,
        registry: CollectorRegistry | None = None,
    ) -> CheckpointWriter:
        """Raises AuditKeyError when the signing key is missing or exposed (refuse to start)."""
        key_file = signing_key_path(settings)
        key = load_signing_key(key_file)
        public = load_public_key(public_key_path(key_file))
        checkpoints = CheckpointLog(logs.directory.parent / CHECKPOINT_LOG, public)
        writer = cls(
            logs,
            checkpoints,
            key,
            witness_from_settings(settings),
            interval_s=settings.audit.checkpoint_interval_s,
            registry=registry,
        )
        logs.on_append = writer.note
        logs.checkpoints = checkpoints
        return writer

    # -- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        await run_in_threadpool(self._repair)
        self._task = asyncio.create_task(self._run(), name="audit-checkpoints")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._retry_at = 0.0
        await run_in_threadpool(self.flush)

    def _repair(self) -> None:
        removed = repair_checkpoint_tail(self.checkpoints.path)
        if removed:
            log.warning("cut a torn checkpoint line", bytes_removed=removed)
        self.checkpoints.refresh()
        if self.checkpoints.error:
            log.error("the checkpoint log does not verify", error=self.checkpoints.error)
        keyring = self.logs.keyring()
        try:
            entries = list(os.scandir(self.logs.directory))
        except FileNotFoundError:
            return
        for entry in entries:
            if not entry.name.endswith(".jsonl") or not is_torn(entry.path):
                continue
            subject_id = entry.name[: -len(".jsonl")]
            try:
                repair = repair_torn_tail(Path(entry.path), keyring, subject_id)
            except (AuditChainError, OSError) as exc:
                log.error("torn audit log not repaired", subject_id=subject_id, error=str(exc))
                continue
            if repair is not None:
                log.warning("repaired a torn audit log", **repair.as_dict())
                self.note(subject_id, int(repair.row["seq"]), str(repair.row["hmac"]))
        self._adopt_unanchored(entries, keyring)

    def _adopt_unanchored(self, entries: list[os.DirEntry[str]], keyring: Keyring) -> None:
        """Note the head of every log no checkpoint names yet — logs written before checkpoints
        existed (an upgraded data dir) would otherwise stay unanchored until their next append.
        Only a log that verifies whole is adopted; one that does not is logged and left for
        verify to report. Nothing is adopted while the checkpoint log itself does not verify
        (its anchors are then incomplete)."""
        if self.checkpoints.error:
            return
        adopted = 0
        for entry in entries:
            if not entry.name.endswith(".jsonl"):
                continue
            subject_id = entry.name[: -len(".jsonl")]
            if subject_id in self.checkpoints.by_subject or subject_id in self._dirty:
                continue
            try:
                result = verify_log(entry.path, keyring, retired_at=self.checkpoints.retired)
            except (AuditChainError, OSError) as exc:
                log.error("unanchored audit log not adopted", subject_id=subject_id, error=str(exc))
                continue
            if not result.verified:
                log.error(
                    "unanchored audit log not adopted", subject_id=subject_id, error=result.error
                )
            elif result.count:
                self.note(subject_id, result.count, result.tip)
                adopted += 1
        if adopted:
            log.info("anchoring audit logs no checkpoint names yet", logs=adopted)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await run_in_threadpool(self.flush)
            except Exception as exc:  # the loop must outlive one bad tick
                log.error("checkpoint tick failed", error=str(exc))

    # -- work -----------------------------------------------------------------------------

    def note(self, subject_id: str, count: int, tip: str) -> None:
        """Called after rows are fsynced: the subject's head to checkpoint next."""
        with self._lock:
            known = self._dirty.get(subject_id)
            if known is None or count > known[0]:
                self._dirty[subject_id] = (count, tip)

    def flush(self) -> None:
        """Write a checkpoint of the noted heads (if any) and publish the newest one."""
        with self._write_lock:
            with self._lock:
                heads, self._dirty = self._dirty, {}
            if heads:
                try:
                    self.checkpoints.append(self.key, heads)
                    self.write_error = None
                except (LakehouseError, OSError) as exc:
                    with self._lock:
                        for sid, head in heads.items():
                            if sid not in self._dirty or self._dirty[sid][0] < head[0]:
                                self._dirty[sid] = head
                    self.write_error = str(exc)
                    log.error("checkpoint not written", error=self.write_error)
            self._publish()

    def _publish(self) -> None:
        newest = self.checkpoints.count
        self.lag.set(newest - self.published)
        if newest <= self.published or time.monotonic() < self._retry_at:
            return
        line = self.checkpoints.line_at(newest)
        if line is None:
            return
        try:
            self.witness.publish(newest, line)
        except WitnessError as exc:
            self.failures.inc()
            self.publish_error = exc.message
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, _MAX_BACKOFF_S)
            log.warning("checkpoint not published; will retry", seq=newest, error=exc.message)
            return
        self.published = newest
        self.publish_error = None
        self._backoff = self.interval_s
        self.lag.set(self.checkpoints.count - self.published)

    def health(self) -> dict[str, Any]:
        error = self.publish_error or self.write_error or self.checkpoints.error
        return {
            "status": "degraded" if error else "ok",
            "witness": self.witness.describe(),
            "checkpoints": self.checkpoints.count,
            "published": self.published,
            "error": error,
        }
