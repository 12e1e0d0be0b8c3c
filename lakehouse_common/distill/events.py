"""The two observer streams distillation writes itself (SPEC §7), always through observerd.

- `human_feedback` (`human_feedback.v1`): a coordinator's label on earlier work, written by
  `lakehouse distill feedback` (or any client POSTing to `/v1/observe/human_feedback`). It
  names its target by the evidence's `sig_hash`, or by the `trace_id` of the request that did
  the work (optionally narrowed to one evidence `kind`). The score stage lets the newest label
  of a record override its machine tier.
- `replay_runs` (`replay_run.v1`): one recorded iterate task re-run by `lakehouse distill
  replay` — retrieve → bundle → chat → validate — with the original and the replay verdicts.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "FEEDBACK_SCHEMA",
    "FEEDBACK_STREAM",
    "REPLAY_SCHEMA",
    "REPLAY_STREAM",
    "HumanFeedback",
    "ReplayOriginal",
    "ReplayOutcome",
    "ReplayRun",
    "ReplayStatus",
    "Tier",
]

FEEDBACK_STREAM: Final = "human_feedback"
FEEDBACK_SCHEMA: Final = "human_feedback.v1"
REPLAY_STREAM: Final = "replay_runs"
REPLAY_SCHEMA: Final = "replay_run.v1"
# The `daemon` tag of what distillation appends to observerd.
DAEMON: Final = "distill"

Tier = Literal["accepted", "partial", "rejected"]
ReplayStatus = Literal["accepted", "rejected", "infra_error"]


class HumanFeedback(BaseModel):
    """At least one of `target_sig_hash` and `target_trace_id`."""

    schema_: Literal["human_feedback.v1"] = Field(default=FEEDBACK_SCHEMA, alias="schema")
    label: Tier
    target_sig_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    target_trace_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:\-]{1,128}$")
    # Narrows a trace target to records of this evidence kind (`iterate_session`, …).
    target_kind: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    note: str = Field(default="", max_length=4000)
    coordinator: str = Field(default="", max_length=200)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _has_target(self) -> HumanFeedback:
        if self.target_sig_hash is None and self.target_trace_id is None:
            raise ValueError("name a target: target_sig_hash or target_trace_id")
        return self

    def event(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class ReplayOriginal(BaseModel):
    """The recorded session that was replayed."""

    session_id: str
    trace_id: str
    status: str
    model: str
    source: str
    line_offset: int


class ReplayOutcome(BaseModel):
    """`status`: `accepted` (the reply validated), `rejected` (it did not, or held no JSON) or
    `infra_error` (retrieve, chat or validate failed: `infra_error` says which and why)."""

    status: ReplayStatus
    valid: bool | None
    errors: list[dict[str, Any]]
    final: dict[str, Any] | None
    model: str
    latency_ms: float
    retrieved: list[str]
    usage: dict[str, int]
    infra_error: dict[str, Any] | None = None


class ReplayRun(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_: Literal["replay_run.v1"] = Field(default=REPLAY_SCHEMA, alias="schema")
    kind: str
    prompt: str
    context: dict[str, Any] | None
    original: ReplayOriginal
    replay: ReplayOutcome
    # The original accepted and the replay did not, or the other way round.
    verdict_changed: bool

    def event(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
