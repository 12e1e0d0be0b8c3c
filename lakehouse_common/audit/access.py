"""How a daemon audits the PII it is about to return: one batched call to catalogd per request,
awaited before the answer (SPEC §8, issue 7: "audit before disclosure").

::

    clients = Clients.direct(http, settings)                     # in the lifespan
    auditor = AccessAuditor(settings, "queryd", clients.subjects())
    ...
    await auditor.record(dataset="workers", row_keys=["w-17", "w-18"], purpose="query",
                         fields=["phone"])               # before returning the rows
    # or, holding a result whose columns may or may not be PII:
    await auditor.record_disclosure(dataset="workers", row_keys=ids, columns=row_columns,
                                    purpose="query")
    # or, for an answer about named subjects of a governed dataset whatever its columns
    # (matrixd's ranked matches, validatord's checks against roster rows):
    await auditor.record_if_governed(dataset="workers", row_keys=ids, fields=["role"],
                                     purpose="matching")

- :meth:`AccessAuditor.record` sends ``POST /v1/catalog/audit/access`` (split only beyond
  ``audit.max_access_keys`` keys); catalogd maps the row keys to subjects through their manifests
  and appends one fsynced row per subject, carrying this daemon's name, the purpose and the trace
  id (the current request's by default). Keys without a manifest are skipped by catalogd.
- When the record cannot be written (catalogd down, slow or refusing) and ``audit.fail_closed``
  is on (the default), it raises :class:`~lakehouse_common.errors.ServiceUnavailable` (503)
  naming catalogd, so the caller answers with an error instead of the data. With it off, the
  failure is logged and the caller answers.
- :meth:`AccessAuditor.policies` is the governance policy — which datasets have manifests,
  their key column and PII fields — cached for ``audit.policy_refresh_s``, so deciding whether
  a result needs auditing costs nothing per request.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable, Mapping, Sequence

from lakehouse_common.config import AuditSettings, LakehouseSettings
from lakehouse_common.contracts.subjects import AccessRecord, DatasetPolicy, SubjectsClient
from lakehouse_common.errors import LakehouseError, ServiceUnavailable
from lakehouse_common.logging import get_logger
from lakehouse_common.tracing import current_trace_id

__all__ = ["AccessAuditor"]

CATALOGD = "catalogd"
# A manifest's row key is 1-256 characters without control characters: anything else cannot
# name a subject, so it is not sent.
_ROW_KEY = re.compile(r"[^\x00-\x1f\x7f]{1,256}")

log = get_logger("lakehouse.audit.access")


class AccessAuditor:
    """Records PII reads in the subjects' audit logs on catalogd (one call per request)."""

    def __init__(self, settings: LakehouseSettings, daemon: str, client: SubjectsClient) -> None:
        self.daemon = daemon
        self.settings: AuditSettings = settings.audit
        self.client = client
        self._policies: dict[str, DatasetPolicy] | None = None
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()

    # -- the governance policy ----------------------------------------------------------------

    def _fresh(self) -> bool:
        return (
            self._policies is not None
            and time.monotonic() - self._fetched_at < self.settings.policy_refresh_s
        )

    async def policies(self) -> Mapping[str, DatasetPolicy]:
        """``dataset → policy`` for every governed dataset (cached for ``policy_refresh_s``).

        When catalogd cannot be asked, the last answer is used; before any answer, fail closed
        raises 503 (nobody can tell which data is personal) and fail open answers ``{}``.
        """
        if self._fresh():
            assert self._policies is not None
            return self._policies
        async with self._lock:
            if self._fresh():
                assert self._policies is not None
                return self._policies
            try:
                answer = await self.client.governance()
            except LakehouseError as exc:
                if self._policies is not None:
                    log.warning("governance policy unavailable; using the last one", error=str(exc))
                    self._fetched_at = time.monotonic()  # ask again after the interval
                    return self._policies
                if self.settings.fail_closed:
                    raise self._unavailable(
                        "which datasets hold personal data is unknown", exc
                    ) from None
                log.warning("governance policy unavailable; auditing nothing", error=str(exc))
                return {}
            self._policies = {p.dataset: p for p in answer.datasets}
            self._fetched_at = time.monotonic()
            return self._policies

    async def policy(self, dataset: str) -> DatasetPolicy | None:
        """The dataset's policy, or None when it is not governed."""
        return (await self.policies()).get(dataset)

    # -- recording ----------------------------------------------------------------------------

    async def record(
        self,
        *,
        dataset: str,
        row_keys: Sequence[str],
        purpose: str,
        fields: Sequence[str] = (),
        trace_id: str | None = None,
    ) -> None:
        """Append one audit row per subject among ``row_keys`` (fields disclosed: ``fields``,
        or every PII field when empty); returns once every row is durable.

        Raises ServiceUnavailable (503, naming catalogd) when the rows cannot be written and
        ``audit.fail_closed`` is on.
        """
        keys = [k for k in dict.fromkeys(str(k) for k in row_keys) if _ROW_KEY.fullmatch(k)]
        if not keys:
            return
        trace = trace_id if trace_id is not None else current_trace_id.get() or None
        step = self.settings.max_access_keys
        try:
            for start in range(0, len(keys), step):
                await self.client.record_access(
                    AccessRecord(
                        dataset=dataset,
                        row_keys=keys[start : start + step],
                        accessor=self.daemon,
                        purpose=purpose,
                        fields=list(fields),
                        trace_id=trace,
                    )
                )
        except LakehouseError as exc:
            if self.settings.fail_closed:
                raise self._unavailable("the access could not be audited", exc) from None
            log.warning(
                "access not audited (audit.fail_closed is off)",
                dataset=dataset,
                subjects=len(keys),
                error=str(exc),
            )

    async def record_disclosure(
        self,
        *,
        dataset: str,
        row_keys: Sequence[str],
        columns: Iterable[str],
        purpose: str,
        trace_id: str | None = None,
    ) -> None:
        """:meth:`record` when ``dataset`` is governed and ``columns`` (what the answer carries)
        include PII fields; a no-op otherwise."""
        if not row_keys:
            return
        policy = await self.policy(dataset)
        if policy is None:
            return
        fields = sorted(set(columns).intersection(policy.pii_fields))
        if fields:
            await self.record(
                dataset=dataset,
                row_keys=row_keys,
                purpose=purpose,
                fields=fields,
                trace_id=trace_id,
            )

    async def record_if_governed(
        self,
        *,
        dataset: str,
        row_keys: Sequence[str],
        fields: Sequence[str],
        purpose: str,
        trace_id: str | None = None,
    ) -> None:
        """:meth:`record` when ``dataset`` is governed, for answers that identify subjects
        (a ranked match, a verdict on their row) even without a PII column: the dataset's key
        column is added to ``fields``, so each subject gets a row naming the key and whichever
        of ``fields`` are PII. A no-op for an ungoverned dataset."""
        if not row_keys:
            return
        policy = await self.policy(dataset)
        if policy is not None:
            await self.record(
                dataset=dataset,
                row_keys=row_keys,
                purpose=purpose,
                fields=sorted({policy.key_column, *fields}),
                trace_id=trace_id,
            )

    def _unavailable(self, what: str, exc: LakehouseError) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"{what}, so the data is withheld: {CATALOGD} (the subject audit log) failed: "
            f"{exc.message}",
            details={"daemon": CATALOGD, "cause": exc.code, "fail_closed": True},
        )
