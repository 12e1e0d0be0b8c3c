"""A real HTTP server on loopback that speaks Ollama's and the OpenAI embeddings API.

It runs aiohttp on its own event loop in a thread, so embedd (a separate process) reaches it
over TCP like a real provider. The model name picks the behaviour:

- any ordinary name: deterministic raw vectors (`raw_vector(text)`, 8-d, not unit length);
- `fail-500`: HTTP 500; `malformed`: a body that is not JSON; `wrong-count`: one embedding
  too few; `ragged`: embeddings of different lengths; `nan`: a NaN in a vector;
- `slow`: answers after `SLOW_S` seconds (longer than the provider timeout the tests set);
- `unauthorized`: HTTP 401 whose body quotes the bearer key it received (as some APIs do);
- `shuffled` (OpenAI only): `data` items in reverse `index` order.

Every request is recorded in `calls` (path, model, number of texts, Authorization header).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

DIMENSION = 8
SLOW_S = 5.0


def raw_vector(text: str) -> list[float]:
    """A deterministic, never-zero, not-normalised vector for `text`."""
    digest = hashlib.sha256(text.encode()).digest()
    return [float(b) - 127.5 for b in digest[:DIMENSION]]


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


@dataclass
class Call:
    path: str
    model: str
    texts: int
    authorization: str | None


class FakeProviders:
    """Start with `start()`; `url` is the base URL for both providers; `stop()` frees the port."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen on `self.port` (a free one the first time; the same one after a `stop`)."""
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    def close(self) -> None:
        self.stop()
        asyncio.run_coroutine_threadsafe(self._cancel_handlers(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/embed", self._ollama)
        app.router.add_post("/v1/embeddings", self._openai)
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def _cancel_handlers(self) -> None:
        """Handlers still sleeping (`slow`) would be destroyed pending when the loop stops."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _common(self, request: web.Request) -> tuple[str, list[str], web.Response | None]:
        body: dict[str, Any] = await request.json()
        model = str(body["model"])
        raw_input = body["input"]
        texts = [raw_input] if isinstance(raw_input, str) else list(raw_input)
        self.calls.append(
            Call(request.path, model, len(texts), request.headers.get("Authorization"))
        )
        if model == "fail-500":
            return model, texts, web.json_response({"error": "boom"}, status=500)
        if model == "malformed":
            return model, texts, web.Response(text='{"embeddings": [[1, 2', status=200)
        if model == "slow":
            await asyncio.sleep(SLOW_S)
        if model == "unauthorized":
            auth = request.headers.get("Authorization", "")
            message = f"Incorrect API key provided: {auth.removeprefix('Bearer ')}"
            return model, texts, web.json_response({"error": {"message": message}}, status=401)
        return model, texts, None

    @staticmethod
    def _vectors(model: str, texts: list[str]) -> list[list[float]]:
        vectors = [raw_vector(text) for text in texts]
        if model == "wrong-count":
            return vectors[:-1]
        if model == "ragged":
            return [vectors[0][:4], *vectors[1:]] if len(vectors) > 1 else [[]]
        if model == "nan":
            return [[math.nan] + vectors[0][1:], *vectors[1:]]
        return vectors

    async def _ollama(self, request: web.Request) -> web.Response:
        model, texts, early = await self._common(request)
        if early is not None:
            return early
        return web.json_response({"model": model, "embeddings": self._vectors(model, texts)})

    async def _openai(self, request: web.Request) -> web.Response:
        model, texts, early = await self._common(request)
        if early is not None:
            return early
        data = [
            {"object": "embedding", "index": i, "embedding": vector}
            for i, vector in enumerate(self._vectors(model, texts))
        ]
        if model == "shuffled":
            data.reverse()
        return web.json_response({"object": "list", "data": data, "model": model})
