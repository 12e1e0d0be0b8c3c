"""Configuration: one TOML file plus `LAKEHOUSE_<SECTION>__<KEY>` environment overrides (SPEC §3).

The file is chosen by the `path` argument, else `LAKEHOUSE_CONFIG`, else the repo's
`configs/lakehouse.toml` (the dev stack), else built-in defaults (equal to the dev file).
Environment variables whose name starts with `LAKEHOUSE_` and contains `__` override any key at
any depth: `LAKEHOUSE_STORAGE__BACKEND=s3`,
`LAKEHOUSE_CHAT__PROVIDERS__OPENAI_COMPATIBLE__BASE_URL=http://127.0.0.1:9999`. A value that
starts with `[` or `{` is read as JSON.

Nothing is loaded at import time: daemons call `load_settings()` in `__main__` and pass the
result to `create_app(settings)`, so tests build apps with their own settings. A bad file fails
at start with a `ConfigError` naming the file (or the environment variable), the key and the
reason. Unknown keys are errors: a typo never silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from lakehouse_common.topology import BY_NAME, DAEMON_NAMES, default_routes

ENV_PREFIX = "LAKEHOUSE_"
CONFIG_ENV = "LAKEHOUSE_CONFIG"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "configs" / "lakehouse.toml"
# An observer stream name (SPEC §5): a file name under `<data_dir>/_kb/`.
STREAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the source, the key and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    """`[server]`: what every daemon shares."""

    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    data_dir: Path = Path("data")
    max_body_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    # Seconds an idle keep-alive connection stays open (uvicorn's own default is 5). Must stay
    # above `client.keepalive_s`: a pooled connection the server has just closed, reused by a
    # daemon-to-daemon call, fails that call (the gateway would answer 502).
    keep_alive_s: int = Field(default=30, gt=0)
    # The cyclic garbage collector's thresholds (generations 0, 1, 2) in every daemon; at start
    # the objects alive after imports and app creation are frozen out of collection. Python's
    # default (700, 10, 10) ran gen-2 passes often enough under load to triple matrixd's p99
    # (reports/matrix_bench.md). An empty list keeps Python's default and freezes nothing.
    gc_thresholds: list[int] = Field(default=[20_000, 50, 100])

    @field_validator("gc_thresholds")
    @classmethod
    def _three_thresholds(cls, value: list[int]) -> list[int]:
        if value and (len(value) != 3 or any(v < 0 for v in value)):
            raise ValueError("gc_thresholds is [gen0, gen1, gen2] (non-negative) or []")
        return value


class PortsSettings(_Section):
    """`[ports]`: one port per daemon (SPEC §2)."""

    gateway: int = BY_NAME["gateway"].dev_port
    storaged: int = BY_NAME["storaged"].dev_port
    catalogd: int = BY_NAME["catalogd"].dev_port
    ingestd: int = BY_NAME["ingestd"].dev_port
    queryd: int = BY_NAME["queryd"].dev_port
    vectord: int = BY_NAME["vectord"].dev_port
    embedd: int = BY_NAME["embedd"].dev_port
    pathwayd: int = BY_NAME["pathwayd"].dev_port
    matrixd: int = BY_NAME["matrixd"].dev_port
    observerd: int = BY_NAME["observerd"].dev_port
    chatd: int = BY_NAME["chatd"].dev_port
    validatord: int = BY_NAME["validatord"].dev_port

    @model_validator(mode="after")
    def _ports_valid_and_distinct(self) -> PortsSettings:
        seen: dict[int, str] = {}
        for name in DAEMON_NAMES:
            port = getattr(self, name)
            if not 1 <= port <= 65535:
                raise ValueError(f"{name}: port {port} is outside 1..65535")
            if port in seen:
                raise ValueError(f"{name} and {seen[port]} both use port {port}")
            seen[port] = name
        return self

    def of(self, daemon: str) -> int:
        port: int = getattr(self, daemon)
        return port


class S3Settings(_Section):
    """`[storage.s3]`: the S3 backend (MinIO, AWS, any S3-protocol server)."""

    endpoint_url: str = ""
    region: str = "us-east-1"
    # Names of the environment variables holding the credentials, never the credentials.
    access_key_env: str = "AWS_ACCESS_KEY_ID"
    secret_key_env: str = "AWS_SECRET_ACCESS_KEY"
    bucket_prefix: str = ""


class StorageSettings(_Section):
    """`[storage]`: which `Store` backend daemons use (SPEC §4)."""

    backend: Literal["fs", "s3"] = "fs"
    default_bucket: str = "lakehouse"
    s3: S3Settings = S3Settings()


class GatewaySettings(_Section):
    """`[gateway]`: routing, auth and upstream limits (SPEC §2)."""

    # The gateway is the one public entry; bind it wider than loopback only with a token.
    host: str = "127.0.0.1"
    # When set, every route but `/health` needs `Authorization: Bearer <token>`.
    # Set it through the environment (LAKEHOUSE_GATEWAY__AUTH_TOKEN), not in a file.
    auth_token: SecretStr | None = None
    connect_timeout_s: float = Field(default=2.0, gt=0)
    # Above chatd's cold-start allowance (chat.providers.*.cold_start_timeout_s, 180 s).
    upstream_timeout_s: float = Field(default=200.0, gt=0)
    health_timeout_s: float = Field(default=2.0, gt=0)
    # Bodies of at most this many bytes (by Content-Length) are read whole and sent as one
    # piece; larger or unsized ones stream through. Streaming a small body costs a task group
    # and a thread hop per request for nothing.
    buffer_max_bytes: int = Field(default=1_048_576, ge=0)
    # `area -> daemon`: `/v1/<area>/...` is forwarded to that daemon with the path unchanged.
    routes: dict[str, str] = Field(default_factory=default_routes)

    @field_validator("auth_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @model_validator(mode="after")
    def _routes_name_daemons(self) -> GatewaySettings:
        for area, daemon in self.routes.items():
            if daemon not in BY_NAME or daemon == "gateway":
                raise ValueError(f"routes.{area}: {daemon!r} is not a daemon")
        return self


class ClientSettings(_Section):
    """`[client]`: the pooled daemon-to-daemon HTTP client (SPEC §3)."""

    connect_timeout_s: float = Field(default=2.0, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)
    pool_size: int = Field(default=100, gt=0)
    connect_retries: int = Field(default=2, ge=0)
    # Seconds an idle pooled connection is kept for reuse; below `server.keep_alive_s`.
    keepalive_s: float = Field(default=15.0, gt=0)


class IngestSettings(_Section):
    """`[ingest]`: ingestd (SPEC §4)."""

    # At most this many `{row, column, reason}` entries in a rejected ingest's details.
    max_reported_errors: int = Field(default=100, gt=0)
    # Rows per Parquet row group / per conversion batch: bounds memory while converting.
    batch_rows: int = Field(default=65536, gt=0)
    # Rows per output Parquet file (`part-NNNNN.parquet`).
    rows_per_file: int = Field(default=1_000_000, gt=0)
    zstd_level: int = Field(default=3, ge=1, le=22)
    # Index jobs: a batch whose embed/upsert fails transiently (502/503/504) is retried this
    # many times, waiting index_retry_backoff_s, then twice that, … before the job fails.
    index_retries: int = Field(default=3, ge=0)
    index_retry_backoff_s: float = Field(default=1.0, ge=0)


class QuerySettings(_Section):
    """`[query]`: queryd's sandbox limits (SPEC §4)."""

    default_row_limit: int = Field(default=10_000, gt=0)
    max_row_limit: int = Field(default=1_000_000, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)
    # DuckDB resources: threads and memory (e.g. "2GB").
    threads: int = Field(default=2, gt=0)
    memory_limit: str = "2GB"
    # Seconds a catalog listing is trusted before queryd asks catalogd again.
    catalog_refresh_s: float = Field(default=1.0, ge=0)


class ProviderSettings(_Section):
    """`[embed.providers.<name>]`: one remote provider (`[chat.providers.<name>]` extends it)."""

    base_url: str = ""
    # The *name* of the environment variable holding the key, never the key itself.
    api_key_env: str = ""
    timeout_s: float = Field(default=30.0, gt=0)


class EmbedSettings(_Section):
    """`[embed]`: embedd (SPEC §5)."""

    # A plain model name uses the `local` provider; `ollama/<model>` and
    # `openai_compatible/<model>` select a remote one.
    default_model: str = "all-MiniLM-L6-v2"
    cache_size: int = Field(default=10_000, ge=0)
    max_texts: int = Field(default=256, gt=0)
    max_text_chars: int = Field(default=8_000, gt=0)
    # Micro-batching: concurrent requests wait at most this long to share one model call.
    batch_wait_ms: float = Field(default=5.0, ge=0)
    batch_max_texts: int = Field(default=64, gt=0)
    providers: dict[str, ProviderSettings] = Field(
        default_factory=lambda: {
            "ollama": ProviderSettings(base_url="http://127.0.0.1:11434"),
            "openai_compatible": ProviderSettings(
                base_url="http://127.0.0.1:8000", api_key_env="OPENAI_API_KEY"
            ),
        }
    )


CHAT_PROVIDER_KINDS = ("ollama", "openai", "anthropic", "openrouter", "openai_compatible")


class ChatProviderSettings(ProviderSettings):
    """`[chat.providers.<name>]`: one LLM provider (SPEC §6); `timeout_s` bounds one call."""

    # The wire API: one of `CHAT_PROVIDER_KINDS`; empty = the table's name (so a second
    # OpenAI-compatible server is `[chat.providers.vllm] kind = "openai_compatible"`).
    kind: Literal["", "ollama", "openai", "anthropic", "openrouter", "openai_compatible"] = ""
    timeout_s: float = Field(default=60.0, gt=0)
    # Timeout of the first call of each model until one succeeds: a local model loading from
    # disk answers its first call slowly (the original system's 5 s probe reported infra_error).
    cold_start_timeout_s: float = Field(default=180.0, gt=0)


def _default_chat_providers() -> dict[str, ChatProviderSettings]:
    return {
        "ollama": ChatProviderSettings(base_url="http://127.0.0.1:11434"),
        "openai": ChatProviderSettings(
            base_url="https://api.openai.com/v1", api_key_env="OPENAI_API_KEY"
        ),
        "anthropic": ChatProviderSettings(
            base_url="https://api.anthropic.com", api_key_env="ANTHROPIC_API_KEY"
        ),
        "openrouter": ChatProviderSettings(
            base_url="https://openrouter.ai/api/v1", api_key_env="OPENROUTER_API_KEY"
        ),
        "openai_compatible": ChatProviderSettings(api_key_env="OPENAI_COMPATIBLE_API_KEY"),
    }


class ChatSettings(_Section):
    """`[chat]`: chatd's providers, retries and fallback chain (SPEC §6)."""

    # `provider/model`; a request's plain model name goes to this model's provider.
    default_model: str = Field(default="ollama/qwen2.5", min_length=1)
    # Models tried in order when the requested one fails (after its retries).
    fallback: list[str] = Field(default_factory=list)
    # Retries of one provider call on 429, 5xx and connection errors, with jittered
    # exponential backoff: a random wait in [0, retry_backoff_s * 2**attempt], at most
    # retry_max_backoff_s (a longer Retry-After is not waited for: the call fails over).
    max_retries: int = Field(default=2, ge=0)
    retry_backoff_s: float = Field(default=0.5, ge=0)
    retry_max_backoff_s: float = Field(default=8.0, ge=0)
    # `GET /v1/chat/providers` and `GET /v1/models` ask each provider with this timeout.
    probe_timeout_s: float = Field(default=2.0, gt=0)
    # `max_tokens` sent when a request has none and the API demands one (Anthropic).
    default_max_tokens: int = Field(default=1024, gt=0)
    providers: dict[str, ChatProviderSettings] = Field(default_factory=_default_chat_providers)

    @model_validator(mode="after")
    def _providers_have_kinds(self) -> ChatSettings:
        for name, provider in self.providers.items():
            if not provider.kind and name not in CHAT_PROVIDER_KINDS:
                raise ValueError(
                    f"providers.{name}: set kind (one of {', '.join(CHAT_PROVIDER_KINDS)})"
                )
            if "/" in name or not name:
                raise ValueError(f"providers.{name!r}: a provider name cannot contain '/'")
        return self


class VectorSettings(_Section):
    """`[vector]`: vectord's index defaults and durability (SPEC §5)."""

    default_space: Literal["cosine", "l2", "ip"] = "cosine"
    default_m: int = Field(default=16, gt=1)
    default_ef_construction: int = Field(default=200, gt=0)
    default_ef: int = Field(default=128, gt=0)
    max_k: int = Field(default=1000, gt=0)
    # Indexes with fewer live items than this are searched exactly (brute force).
    exact_threshold: int = Field(default=2000, ge=0)
    initial_capacity: int = Field(default=1024, gt=0)
    # glibc allocator settings vectord applies at start (0 = leave glibc's default): at most
    # this many malloc arenas (each worker thread otherwise keeps its own freed memory), and
    # allocations from this size up served by mmap and returned to the system when freed
    # (glibc otherwise raises the threshold to 32 MiB and keeps big request buffers). At 100k
    # vectors they cut vectord's RSS by ~90 MiB (reports/retrieval_bench.md).
    malloc_arena_max: int = Field(default=2, ge=0)
    malloc_mmap_threshold_bytes: int = Field(default=128 * 1024, ge=0, le=32 * 1024 * 1024)
    # A background snapshot is taken after this many WAL records or seconds, whichever first.
    snapshot_every_ops: int = Field(default=50_000, gt=0)
    snapshot_interval_s: float = Field(default=60.0, gt=0)


class ObserveSettings(_Section):
    """`[observe]`: observerd's streams and limits, and the `Observer` reporter (SPEC §5)."""

    # Streams observerd accepts writes for; each matches `[a-z][a-z0-9_]{0,63}`.
    streams: list[str] = Field(
        default_factory=lambda: [
            "search_runs",
            "playbook_records",
            "chat_runs",
            "validation_results",
            "iterate_sessions",
            "replay_runs",
            "human_feedback",
            "pathways",
        ]
    )
    # observerd: limits of one `POST /v1/observe/{stream}`.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    max_batch_events: int = Field(default=1000, gt=0)
    max_event_bytes: int = Field(default=1024 * 1024, gt=0)
    # observerd: group commit waits at most this long for more appends before one write + fsync.
    commit_window_ms: float = Field(default=0.0, ge=0)
    # observerd: `GET /v1/observations/{stream}` page sizes.
    default_limit: int = Field(default=100, gt=0)
    max_limit: int = Field(default=1000, gt=0)
    # The `Observer` reporter in every daemon: off = `report()` does nothing.
    reporter_enabled: bool = True
    reporter_queue_size: int = Field(default=10_000, gt=0)
    reporter_batch_max: int = Field(default=200, gt=0)
    # After the first queued event, wait this long for more before sending, so a busy daemon
    # posts one batch per interval instead of one request per event (0: send at once).
    reporter_linger_s: float = Field(default=0.05, ge=0, le=5)
    # A batch observerd does not take is retried this many times, then dropped and counted.
    reporter_retries: int = Field(default=2, ge=0)
    reporter_retry_backoff_s: float = Field(default=0.2, ge=0)
    reporter_timeout_s: float = Field(default=5.0, gt=0)
    # `close()` waits at most this long for queued events to be sent.
    reporter_close_timeout_s: float = Field(default=2.0, ge=0)

    @field_validator("streams")
    @classmethod
    def _stream_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not STREAM_NAME.fullmatch(name):
                raise ValueError(f"stream {name!r} does not match [a-z][a-z0-9_]{{0,63}}")
        return value


class PathwaySettings(_Section):
    """`[pathway]`: pathwayd's suggestions (SPEC §5)."""

    # Embedding model of demand texts (empty = `embed.default_model`).
    model: str = ""
    default_k: int = Field(default=5, gt=0)
    max_k: int = Field(default=50, gt=0)
    # `next_step` is tallied over this many most similar same-role pathways ...
    neighbors: int = Field(default=20, gt=0)
    # ... whose cosine similarity to the demand is at least this.
    min_similarity: float = Field(default=0.0, ge=-1.0, le=1.0)
    max_list: int = Field(default=1000, gt=0)


class ValidatorSettings(_Section):
    """`[validator]`: validatord's validators and iterate loop (SPEC §6)."""

    # The queryd view fill proposals are checked against (`SELECT id, role, city, state FROM
    # <roster_dataset> WHERE id IN (...)`): a dataset name, or a pinned version (`workers__v3`).
    roster_dataset: str = Field(default="workers", pattern=r"^[a-z][a-z0-9_]{0,79}$")
    # A fill proposal naming more workers than this is a schema error (bounds the roster query).
    max_fill_workers: int = Field(default=500, gt=0)
    # Email length bounds, in characters.
    email_subject_max_chars: int = Field(default=200, gt=0)
    email_body_max_chars: int = Field(default=20_000, gt=0)
    # Read timeout of one `POST /v1/chat` from the iterate loop (a cold model can be slow).
    chat_timeout_s: float = Field(default=300.0, gt=0)
    # `GET /v1/sessions`: records answered without `limit`, and the largest `limit` accepted.
    sessions_default_limit: int = Field(default=50, gt=0)
    sessions_max_limit: int = Field(default=1000, gt=0)


class MatrixSettings(_Section):
    """`[matrix]`: matrixd's search, playbooks and retrieve (SPEC §5; docs/matrix.md)."""

    # The vectord index holding playbook recordings (query embedding + record as metadata).
    playbook_index: str = Field(default="playbook_memory", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    # A recording applies when the cosine distance between its stored query embedding and the
    # search's query is at most this (measured values for all-MiniLM-L6-v2 in docs/matrix.md).
    playbook_max_distance: float = Field(default=0.15, ge=0.0, le=2.0)
    # Same-role recordings fetched per search (nearest first) before the distance threshold.
    playbook_fanout: int = Field(default=32, gt=0, le=1000)
    # Query embeddings matrixd keeps (LRU, keyed by text): a repeated query skips the embedd
    # call. Embeddings are deterministic per model; 0 disables.
    query_cache_size: int = Field(default=4096, ge=0)
    # Largest `k` of `/v1/matrix/search` and `/v1/matrix/retrieve`.
    max_k: int = Field(default=100, gt=0, le=1000)
    # `/v1/matrix/retrieve` fetches `k × retrieve_overfetch` semantic candidates (at most
    # `retrieve_max_candidates`) before queryd applies `sql_filter`.
    retrieve_overfetch: int = Field(default=10, gt=0)
    retrieve_max_candidates: int = Field(default=1000, gt=0, le=10_000)
    # Longest `sql_filter` accepted, in characters.
    max_sql_filter_chars: int = Field(default=2000, gt=0)


class AuditSettings(_Section):
    """`[audit]`: the HMAC key of the subject audit chains (SPEC §8)."""

    # Relative paths are below `server.data_dir`. catalogd refuses to start unless the file
    # exists, holds at least 32 bytes and is not accessible by group or other users; retired
    # keys (`lakehouse audit rotate`) live in `<key_file>.retired/`.
    key_file: Path = Path("keys/audit.key")
    # When catalogd cannot record an access, the daemon that would disclose the PII answers
    # 503 naming catalogd (true), or answers anyway and logs a warning (false).
    fail_closed: bool = True
    # Seconds a daemon trusts its copy of which datasets are governed (have subject manifests).
    policy_refresh_s: float = Field(default=1.0, ge=0)
    # catalogd threads appending (and fsyncing) the rows of different subjects in parallel.
    append_workers: int = Field(default=8, gt=0, le=512)
    # Row keys one access record may name (larger batches are split by the AccessAuditor).
    max_access_keys: int = Field(default=50_000, gt=0)
    # Anchored heads (SPEC §8, issue 18). catalogd writes a signed checkpoint of the subject
    # logs changed since the previous one at most this often (and at shutdown).
    checkpoint_interval_s: float = Field(default=1.0, gt=0)
    # Ed25519 private key signing checkpoints (relative: below `server.data_dir`; mode 0600);
    # its public key is beside it with the suffix `.pub`.
    signing_key_file: Path = Path("keys/checkpoint.key")
    # Where the newest checkpoint is published, out of the audit writer's reach: a directory
    # (development) or an S3 bucket with Object Lock (production).
    witness: Literal["dir", "s3"] = "dir"
    # `dir` witness: "" is the sibling `<data_dir>-witness`; relative paths are below the data
    # dir's parent. Must not be inside `server.data_dir`.
    witness_dir: str = ""
    # `s3` witness: bucket (created with Object Lock enabled), key prefix and the COMPLIANCE
    # retention of each published checkpoint. Endpoint and credentials are `[storage.s3]`'s.
    witness_bucket: str = ""
    witness_prefix: str = "audit-checkpoints/"
    witness_retention_days: int = Field(default=365, gt=0)

    @model_validator(mode="after")
    def _witness_complete(self) -> AuditSettings:
        if self.witness == "s3" and not self.witness_bucket:
            raise ValueError("audit.witness is s3 but audit.witness_bucket is empty")
        return self


class DistillSettings(_Section):
    """`[distill]`: the batch jobs of `lakehouse distill …` (SPEC §7; docs/distill.md)."""

    # The held-out evaluation prompts (JSONL, `{"prompt": …}` per line) no exported row may
    # leak into. Relative paths are below `server.data_dir`; "" or a missing file: no check.
    heldout_file: str = "distill/heldout_eval.jsonl"
    # A roster file (Parquet or CSV with `phone` and `email` columns) whose workers' contacts
    # the firewall quarantines. Relative paths are below `server.data_dir`; "": no check.
    roster_file: str = ""
    # Near-duplicates of a held-out prompt: at least `ngram_overlap` of its word n-grams
    # (n = `ngram_n`) appear in the row's prompt.
    ngram_n: int = Field(default=3, ge=1, le=32)
    ngram_overlap: float = Field(default=0.8, gt=0.0, le=1.0)
    # Preference pairs made per task at most (accepted × rejected, in recording order).
    max_pairs_per_task: int = Field(default=4, gt=0)
    # A playbook recording's score at or above these is accepted / partial, else rejected.
    playbook_accept_score: float = Field(default=0.8, ge=0.0, le=1.0)
    playbook_partial_score: float = Field(default=0.5, ge=0.0, le=1.0)
    # `lakehouse distill drift`: a metric changing by more than this fraction warns.
    drift_threshold: float = Field(default=0.2, gt=0.0)
    # Skipped input lines listed one by one in the materialize receipt (all are counted).
    max_listed_skips: int = Field(default=1000, ge=0)
    # `lakehouse distill replay`: retrieve's `k` and index, and one call's read timeout.
    replay_k: int = Field(default=5, gt=0)
    replay_index: str = Field(default="workers", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    replay_timeout_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _score_bands_ordered(self) -> DistillSettings:
        if self.playbook_partial_score > self.playbook_accept_score:
            raise ValueError("playbook_partial_score is above playbook_accept_score")
        return self


class LakehouseSettings(_Section):
    server: ServerSettings = ServerSettings()
    ports: PortsSettings = PortsSettings()
    storage: StorageSettings = StorageSettings()
    gateway: GatewaySettings = GatewaySettings()
    client: ClientSettings = ClientSettings()
    ingest: IngestSettings = IngestSettings()
    query: QuerySettings = QuerySettings()
    embed: EmbedSettings = EmbedSettings()
    vector: VectorSettings = VectorSettings()
    audit: AuditSettings = AuditSettings()
    matrix: MatrixSettings = MatrixSettings()
    validator: ValidatorSettings = ValidatorSettings()
    observe: ObserveSettings = ObserveSettings()
    pathway: PathwaySettings = PathwaySettings()
    chat: ChatSettings = ChatSettings()
    distill: DistillSettings = DistillSettings()

    # Where the settings came from, for messages; not a configurable key.
    source: str = Field(default="<defaults>", exclude=True)

    @model_validator(mode="after")
    def _safe_outside_development(self) -> LakehouseSettings:
        if self.server.env == "production" and self.gateway.auth_token is None:
            if not is_loopback_host(self.gateway.host):
                raise ValueError(
                    "gateway.host binds beyond loopback in production without "
                    "gateway.auth_token (set LAKEHOUSE_GATEWAY__AUTH_TOKEN)"
                )
        if self.audit.witness == "dir":
            data = os.path.abspath(self.data_dir)
            witness = os.path.abspath(witness_dir_path(self))
            if witness == data or witness.startswith(data.rstrip(os.sep) + os.sep):
                raise ValueError(
                    f"audit.witness_dir ({witness}) is inside server.data_dir: the audit writer "
                    "could rewrite it; use a directory outside the data dir"
                )
        if self.client.keepalive_s >= self.server.keep_alive_s:
            raise ValueError(
                f"client.keepalive_s ({self.client.keepalive_s}) must be below "
                f"server.keep_alive_s ({self.server.keep_alive_s}): a daemon would reuse "
                "connections the server side has already closed"
            )
        return self

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def url_of(self, daemon: str) -> str:
        """Base URL a client uses to reach `daemon` on this host."""
        host = self.gateway.host if daemon == "gateway" else self.server.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.ports.of(daemon)}"

    def bind_host(self, daemon: str) -> str:
        return self.gateway.host if daemon == "gateway" else self.server.host


def is_loopback_host(host: str) -> bool:
    """`localhost`, or an IPv4/IPv6 loopback address (127.0.0.0/8, ::1): the one test of "stays
    on this machine", for the gateway's bind address and the load tools' targets."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _env_overrides(environ: Mapping[str, str]) -> dict[tuple[str, ...], tuple[str, Any]]:
    out: dict[tuple[str, ...], tuple[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == CONFIG_ENV:
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        if any(not part for part in path):
            raise ConfigError(f"environment {name}: empty key segment")
        value: Any = raw
        if raw.lstrip().startswith(("[", "{")):
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise ConfigError(f"environment {name}: value is not valid JSON: {exc}") from exc
        out[path] = (name, value)
    return out


def _set_path(data: dict[str, Any], path: tuple[str, ...], value: Any, origin: str) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: {'.'.join(path)}: {part!r} is not a table")
        node = child
    node[path[-1]] = value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> LakehouseSettings:
    """Load the config file, apply environment overrides, then `overrides` (dotted keys).

    Relative `server.data_dir` is resolved against the working directory at load time, so a
    daemon keeps writing to the same place whatever it does later.
    """
    env = os.environ if environ is None else environ
    chosen = path if path is not None else env.get(CONFIG_ENV) or None
    data: dict[str, Any] = {}
    source = "<defaults>"
    if chosen is not None:
        file = Path(chosen)
        data = _read_toml(file)
        source = str(file)
    elif DEFAULT_CONFIG.exists():
        data = _read_toml(DEFAULT_CONFIG)
        source = str(DEFAULT_CONFIG)

    env_origin: dict[tuple[str, ...], str] = {}
    for key_path, (name, value) in _env_overrides(env).items():
        _set_path(data, key_path, value, f"environment {name}")
        env_origin[key_path] = name
    for dotted, value in (overrides or {}).items():
        _set_path(data, tuple(dotted.split(".")), value, "override")
    data["source"] = source

    try:
        settings = LakehouseSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, env_origin)) from None

    data_dir = settings.server.data_dir.expanduser()
    if not data_dir.is_absolute():
        data_dir = Path.cwd() / data_dir
    server = settings.server.model_copy(update={"data_dir": data_dir})
    return settings.model_copy(update={"server": server})


def _describe(exc: ValidationError, source: str, env_origin: Mapping[tuple[str, ...], str]) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(str(part) for part in err["loc"])
        key = ".".join(loc) or "<root>"
        origin = source
        for depth in range(len(loc), 0, -1):
            if loc[:depth] in env_origin:
                origin = f"environment {env_origin[loc[:depth]]}"
                break
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown key"
        lines.append(f"{origin}: {key}: {reason}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def audit_key_path(settings: LakehouseSettings) -> Path:
    key = settings.audit.key_file.expanduser()
    return key if key.is_absolute() else settings.data_dir / key


def signing_key_path(settings: LakehouseSettings) -> Path:
    """The Ed25519 checkpoint signing key (`audit.signing_key_file`); `.pub` beside it."""
    key = settings.audit.signing_key_file.expanduser()
    return key if key.is_absolute() else settings.data_dir / key


def witness_dir_path(settings: LakehouseSettings) -> Path:
    """The `dir` witness: `audit.witness_dir`, by default the sibling `<data_dir>-witness`."""
    data = Path(os.path.abspath(settings.data_dir))
    if not settings.audit.witness_dir:
        return data.parent / f"{data.name}-witness"
    path = Path(settings.audit.witness_dir).expanduser()
    return path if path.is_absolute() else data.parent / path
