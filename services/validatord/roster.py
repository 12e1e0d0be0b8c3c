"""Roster facts for fill proposals, read through queryd (SPEC §6: "every worker exists").

One parameterised statement per proposal, over the configured view (`validator.roster_dataset`,
default `workers` = the latest version of the dataset)::

    SELECT id, role, city, state FROM "workers" WHERE id IN (?, ?, …)

Ids are bound as parameters, never spliced into the SQL; the view name comes from the config,
where it must be a plain lowercase identifier, and is quoted anyway. When queryd cannot answer
(down, timed out, busy) or the view cannot be read (no such dataset, missing columns),
`RosterUnavailable` (503) names queryd and the view: a proposal that cannot be checked is
neither valid nor invalid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lakehouse_common.audit.access import AccessAuditor
from lakehouse_common.contracts.query import QueryClient
from lakehouse_common.contracts.validate import RosterUnavailable
from lakehouse_common.errors import InvalidInput, LakehouseError


@dataclass(frozen=True)
class WorkerFacts:
    """What the roster says about one worker."""

    id: str
    role: str
    city: str
    state: str


class Roster:
    """The roster view in queryd, looked up by worker id."""

    def __init__(self, query: QueryClient, dataset: str, auditor: AccessAuditor) -> None:
        self.query = query
        self.dataset = dataset
        self.auditor = auditor

    async def facts(self, ids: list[str]) -> dict[str, WorkerFacts]:
        """Facts of each id found (absent ids are simply missing from the answer)."""
        unique = list(dict.fromkeys(ids))
        if not unique:
            return {}
        placeholders = ", ".join("?" for _ in unique)
        sql = f'SELECT id, role, city, state FROM "{self.dataset}" WHERE id IN ({placeholders})'
        try:
            # A roster with duplicate ids answers more rows than asked: leave room, keep the first.
            answer = await self.query.query(sql, unique, limit=2 * len(unique))
        except InvalidInput as exc:
            raise RosterUnavailable(
                f"queryd cannot read the roster view {self.dataset!r} "
                f"(validator.roster_dataset): {exc.message}",
                details={"daemon": "queryd", "view": self.dataset},
            ) from exc
        except LakehouseError as exc:
            raise RosterUnavailable(
                f"queryd is unavailable, so fill proposals cannot be checked against the "
                f"roster: {exc.message}",
                details={"daemon": "queryd", "view": self.dataset, "code": exc.code},
            ) from exc
        found: dict[str, WorkerFacts] = {}
        for row in answer.rows:
            worker_id, role, city, state = (_text(value) for value in row)
            if worker_id and worker_id not in found:
                found[worker_id] = WorkerFacts(worker_id, role, city, state)
        # The verdict discloses these workers' roster facts: audited before answering (SPEC §8;
        # a 503 naming catalogd when that cannot be written and audit.fail_closed is on).
        await self.auditor.record_if_governed(
            dataset=self.dataset,
            row_keys=list(found),
            fields=["city", "role", "state"],
            purpose="validation",
        )
        return found


def _text(value: Any) -> str:
    return "" if value is None else str(value)
