"""embedd's building blocks in-process with plain objects: the LRU cache, the micro-batcher,
model-name routing and normalisation."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from lakehouse_common.contracts.embed import split_model
from lakehouse_common.embed_cache import EmbeddingCache
from lakehouse_common.errors import UpstreamError
from services.embedd.batching import Matrix, MicroBatcher
from services.embedd.service import normalise


def rows_for(texts: list[str]) -> Matrix:
    """One distinguishable row per text: [len(text), ord(first char)]."""
    return np.asarray([[len(t), ord(t[0])] for t in texts], dtype=np.float32)


class RecordingModel:
    """A model stand-in that records the batches it was called with."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, texts: list[str]) -> Matrix:
        self.batches.append(list(texts))
        await self.release.wait()
        if self.fail:
            raise UpstreamError("model failed")
        return rows_for(texts)


class TestEmbeddingCache:
    def test_least_recently_used_entry_leaves_first(self) -> None:
        cache = EmbeddingCache(2)
        vec = np.zeros(2, dtype=np.float32)
        cache.put("m", "a", vec)
        cache.put("m", "b", vec)
        assert cache.get("m", "a") is not None  # a is now the most recent
        cache.put("m", "c", vec)
        assert cache.get("m", "b") is None
        assert cache.get("m", "a") is not None and cache.get("m", "c") is not None
        assert len(cache) == 2

    def test_key_includes_the_model(self) -> None:
        cache = EmbeddingCache(4)
        cache.put("m1", "a", np.ones(2, dtype=np.float32))
        assert cache.get("m2", "a") is None

    def test_size_zero_disables_it(self) -> None:
        cache = EmbeddingCache(0)
        cache.put("m", "a", np.ones(2, dtype=np.float32))
        assert cache.get("m", "a") is None and len(cache) == 0


class TestMicroBatcher:
    async def test_concurrent_callers_share_one_call_and_get_their_own_rows(self) -> None:
        model = RecordingModel()
        batcher = MicroBatcher(model, wait_s=0.05, max_texts=64)
        texts = [f"t{i}" * (i + 1) for i in range(20)]
        results = await asyncio.gather(*(batcher.embed([t]) for t in texts))
        assert len(model.batches) < len(texts)
        for text, result in zip(texts, results, strict=True):
            np.testing.assert_array_equal(result, rows_for([text]))
        await batcher.close()

    async def test_batches_never_exceed_max_texts(self) -> None:
        model = RecordingModel()
        batcher = MicroBatcher(model, wait_s=0.05, max_texts=4)
        texts = [f"text-{i}" for i in range(10)]
        result = await batcher.embed(texts)
        np.testing.assert_array_equal(result, rows_for(texts))
        assert max(len(b) for b in model.batches) <= 4
        assert sum(len(b) for b in model.batches) == 10
        await batcher.close()

    async def test_requests_queue_while_the_model_is_busy(self) -> None:
        model = RecordingModel()
        model.release.clear()
        batcher = MicroBatcher(model, wait_s=0.0, max_texts=64, max_in_flight=1)
        first = asyncio.ensure_future(batcher.embed(["first"]))
        while not model.batches:
            await asyncio.sleep(0)
        rest = [asyncio.ensure_future(batcher.embed([f"r{i}"])) for i in range(5)]
        await asyncio.sleep(0.01)
        assert len(model.batches) == 1  # one slot: the others wait for it
        model.release.set()
        await asyncio.gather(first, *rest)
        assert model.batches[1] == [f"r{i}" for i in range(5)]
        await batcher.close()

    async def test_same_text_from_two_callers_is_embedded_once(self) -> None:
        model = RecordingModel()
        batcher = MicroBatcher(model, wait_s=0.05, max_texts=64)
        a, b = await asyncio.gather(batcher.embed(["same", "x"]), batcher.embed(["same"]))
        assert sorted(t for batch in model.batches for t in batch) == ["same", "x"]
        np.testing.assert_array_equal(a[0], b[0])
        await batcher.close()

    async def test_a_failed_call_fails_every_caller_of_the_batch(self) -> None:
        batcher = MicroBatcher(RecordingModel(fail=True), wait_s=0.05, max_texts=64)
        results = await asyncio.gather(
            batcher.embed(["a"]), batcher.embed(["b"]), return_exceptions=True
        )
        assert all(isinstance(r, UpstreamError) for r in results)
        await batcher.close()

    async def test_a_cancelled_caller_does_not_disturb_the_others(self) -> None:
        model = RecordingModel()
        batcher = MicroBatcher(model, wait_s=0.05, max_texts=64)
        doomed = asyncio.ensure_future(batcher.embed(["doomed"]))
        kept = asyncio.ensure_future(batcher.embed(["kept"]))
        await asyncio.sleep(0)
        doomed.cancel()
        np.testing.assert_array_equal(await kept, rows_for(["kept"]))
        assert "doomed" not in [t for batch in model.batches for t in batch]
        await batcher.close()

    async def test_an_unused_batcher_holds_no_task(self) -> None:
        batcher = MicroBatcher(RecordingModel(), wait_s=0.0, max_texts=8)
        assert batcher.idle
        await batcher.embed(["a"])
        while not batcher.idle:
            await asyncio.sleep(0)
        np.testing.assert_array_equal(await batcher.embed(["bb"]), rows_for(["bb"]))
        await batcher.close()


class TestModelNames:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("all-MiniLM-L6-v2", ("local", "all-MiniLM-L6-v2")),
            ("local/all-MiniLM-L6-v2", ("local", "all-MiniLM-L6-v2")),
            ("ollama/nomic-embed-text", ("ollama", "nomic-embed-text")),
            ("ollama/library/nomic:v1.5", ("ollama", "library/nomic:v1.5")),
            ("openai_compatible/te-3-small", ("openai_compatible", "te-3-small")),
            ("sentence-transformers/m", ("local", "sentence-transformers/m")),
            ("ollama/", ("local", "ollama/")),
        ],
    )
    def test_split_model(self, name: str, expected: tuple[str, str]) -> None:
        assert split_model(name) == expected


class TestNormalise:
    def test_rows_get_unit_length(self) -> None:
        rows = np.asarray([[3, 4], [0, 2]], dtype=np.float32)
        np.testing.assert_allclose(normalise(rows, "m"), np.asarray([[0.6, 0.8], [0.0, 1.0]]))

    def test_zero_row_is_a_provider_error(self) -> None:
        with pytest.raises(UpstreamError):
            normalise(np.zeros((1, 3), dtype=np.float32), "m")
