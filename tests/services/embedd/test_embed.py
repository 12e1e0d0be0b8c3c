"""embedd's `POST /v1/embed` with the real local model (SPEC §5), on a live daemon."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pytest

from lakehouse_common.config import ClientSettings
from lakehouse_common.contracts.embed import EmbedClient, UnknownModel
from lakehouse_common.http import HttpClient
from tests.support.embed import (
    BATCH_MAX_TEXTS,
    CACHE_SIZE,
    MAX_TEXT_CHARS,
    MAX_TEXTS,
    MODEL,
    embed,
    unique,
    vectors_of,
)
from tests.support.envelope import assert_envelope
from tests.support.metrics import metric
from tests.support.stack import LiveStack


class TestEmbedLocal:
    def test_answers_unit_vectors_of_384_dimensions(self, embedd: httpx.Client) -> None:
        resp = embed(embedd, [unique("forklift operator"), unique("welder")])
        body = resp.json()
        assert body["model"] == MODEL
        assert body["dimension"] == 384
        vectors = vectors_of(resp)
        assert vectors.shape == (2, 384)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    def test_default_model_equals_the_named_and_prefixed_local_model(
        self, embedd: httpx.Client
    ) -> None:
        text = unique("warehouse associate")
        plain = vectors_of(embed(embedd, [text]))
        for name in (MODEL, f"local/{MODEL}", f"sentence-transformers/{MODEL}"):
            resp = embed(embedd, [text], model=name)
            assert resp.json()["model"] == MODEL
            np.testing.assert_array_equal(vectors_of(resp), plain)

    def test_similar_texts_are_closer_than_unrelated_ones(self, embedd: httpx.Client) -> None:
        vectors = vectors_of(
            embed(embedd, ["forklift operator", "forklift driver", "dental assistant"])
        )
        sims = vectors @ vectors.T
        assert sims[0, 1] > sims[0, 2]
        assert sims[0, 1] > sims[1, 2]

    def test_vectors_come_back_in_request_order_with_duplicates(self, embedd: httpx.Client) -> None:
        a, b = unique("nurse"), unique("electrician")
        single_a = vectors_of(embed(embedd, [a]))[0]
        single_b = vectors_of(embed(embedd, [b]))[0]
        vectors = vectors_of(embed(embedd, [b, a, b]))
        np.testing.assert_array_equal(vectors[0], single_b)
        np.testing.assert_array_equal(vectors[1], single_a)
        np.testing.assert_array_equal(vectors[2], single_b)

    def test_a_request_larger_than_one_model_batch_is_split_and_rejoined(
        self, embedd: httpx.Client
    ) -> None:
        texts = [unique(f"picker {i}") for i in range(MAX_TEXTS)]
        assert MAX_TEXTS > BATCH_MAX_TEXTS
        vectors = vectors_of(embed(embedd, texts))
        assert vectors.shape == (MAX_TEXTS, 384)
        again = vectors_of(embed(embedd, [texts[-1], texts[0]]))
        np.testing.assert_array_equal(again, vectors[[-1, 0]])

    def test_through_the_gateway(self, stack: LiveStack) -> None:
        with stack.client("gateway") as gw:
            resp = embed(gw, ["forklift operator"])
        assert vectors_of(resp).shape == (1, 384)


class TestCache:
    def test_repeated_text_is_a_cache_hit(self, embedd: httpx.Client) -> None:
        text = unique("cnc machinist")
        hits = metric(embedd, "lakehouse_embed_cache_hits_total", model=MODEL)
        misses = metric(embedd, "lakehouse_embed_cache_misses_total", model=MODEL)
        calls = metric(embedd, "lakehouse_embed_model_calls_total", model=MODEL, provider="local")
        first = vectors_of(embed(embedd, [text]))
        second = vectors_of(embed(embedd, [text]))
        np.testing.assert_array_equal(first, second)
        assert metric(embedd, "lakehouse_embed_cache_misses_total", model=MODEL) == misses + 1
        assert metric(embedd, "lakehouse_embed_cache_hits_total", model=MODEL) == hits + 1
        after = metric(embedd, "lakehouse_embed_model_calls_total", model=MODEL, provider="local")
        assert after == calls + 1

    def test_evicted_text_is_recomputed_to_the_same_vector(self, embedd: httpx.Client) -> None:
        """Least recently used entries leave; the model is deterministic for the same text."""
        text = unique("forklift operator in Aurora IL")
        first = vectors_of(embed(embedd, [text]))
        for start in range(0, CACHE_SIZE, MAX_TEXTS):
            embed(embedd, [unique(f"filler {i}") for i in range(start, start + MAX_TEXTS)])
        misses = metric(embedd, "lakehouse_embed_cache_misses_total", model=MODEL)
        again = vectors_of(embed(embedd, [text]))
        assert metric(embedd, "lakehouse_embed_cache_misses_total", model=MODEL) == misses + 1
        np.testing.assert_allclose(again, first, atol=1e-6)


class TestBatching:
    def test_concurrent_requests_share_model_calls(self, embedd: httpx.Client) -> None:
        requests = 20
        calls = metric(embedd, "lakehouse_embed_model_calls_total", model=MODEL, provider="local")
        batches = metric(embedd, "lakehouse_embed_batch_texts_count", model=MODEL)
        texts = [unique(f"concurrent request {i}") for i in range(requests)]

        async def fire() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=str(embedd.base_url), timeout=60) as client:
                return await asyncio.gather(
                    *(client.post("/v1/embed", json={"texts": [t]}) for t in texts)
                )

        responses = asyncio.run(fire())
        made = (
            metric(embedd, "lakehouse_embed_model_calls_total", model=MODEL, provider="local")
            - calls
        )
        assert 1 <= made < requests
        assert metric(embedd, "lakehouse_embed_batch_texts_count", model=MODEL) - batches == made
        # Each request got its own text's vector back, not a neighbour's.
        batched = np.stack([vectors_of(resp)[0] for resp in responses])
        alone = vectors_of(embed(embedd, texts))  # cached now: the same rows, in order
        np.testing.assert_array_equal(batched, alone)


class TestLimits:
    def test_empty_list_is_422(self, embedd: httpx.Client) -> None:
        assert_envelope(embed(embedd, []), 422, "invalid_request")

    def test_missing_texts_is_422(self, embedd: httpx.Client) -> None:
        assert_envelope(embedd.post("/v1/embed", json={"model": MODEL}), 422, "invalid_request")

    def test_more_than_max_texts_is_422(self, embedd: httpx.Client) -> None:
        body = assert_envelope(embed(embedd, ["x"] * (MAX_TEXTS + 1)), 422, "invalid_request")
        assert body["error"]["details"]["limit"] == MAX_TEXTS

    def test_text_over_max_chars_is_422_naming_its_index(self, embedd: httpx.Client) -> None:
        body = assert_envelope(
            embed(embedd, ["ok", "y" * (MAX_TEXT_CHARS + 1)]), 422, "invalid_request"
        )
        assert body["error"]["details"]["index"] == 1
        assert body["error"]["details"]["limit"] == MAX_TEXT_CHARS

    def test_text_of_exactly_max_chars_is_accepted(self, embedd: httpx.Client) -> None:
        assert vectors_of(embed(embedd, ["z" * MAX_TEXT_CHARS])).shape == (1, 384)

    @pytest.mark.parametrize("bad", [1, None, ["nested"], {"t": "x"}])
    def test_non_string_text_is_422(self, embedd: httpx.Client, bad: Any) -> None:
        assert_envelope(embed(embedd, ["fine", bad]), 422, "invalid_request")

    def test_unknown_local_model_is_422_listing_known_models(self, embedd: httpx.Client) -> None:
        body = assert_envelope(embed(embedd, ["x"], model="bert-base"), 422, "unknown_model")
        assert body["error"]["details"]["local"] == [MODEL]
        assert MODEL in body["error"]["message"]

    def test_unknown_provider_prefix_is_an_unknown_local_model(self, embedd: httpx.Client) -> None:
        body = assert_envelope(embed(embedd, ["x"], model="cohere/embed-v3"), 422, "unknown_model")
        assert body["error"]["details"]["providers"] == ["ollama", "openai_compatible"]

    def test_unknown_field_is_422(self, embedd: httpx.Client) -> None:
        assert_envelope(embed(embedd, ["x"], normalize=False), 422, "invalid_request")


class TestModels:
    def test_lists_the_local_model_and_the_providers_without_keys(
        self, embedd: httpx.Client
    ) -> None:
        body = embedd.get("/v1/embed/models").json()
        assert body["default_model"] == MODEL
        assert body["local"][0]["name"] == MODEL
        assert body["local"][0]["dimension"] == 384
        assert body["local"][0]["load_seconds"] > 0
        assert [p["name"] for p in body["providers"]] == ["ollama", "openai_compatible"]

    def test_load_time_is_on_metrics(self, embedd: httpx.Client) -> None:
        assert metric(embedd, "lakehouse_embed_model_load_seconds", model=MODEL) > 0


class TestEmbedClient:
    """The typed client matrixd and ingestd use, over the pooled aiohttp client."""

    def test_embed_embed_array_and_models(self, stack: LiveStack) -> None:
        async def run() -> None:
            async with HttpClient(ClientSettings()) as http:
                client = EmbedClient(http.client_for("embedd", stack.url("embedd")))
                texts = ["forklift operator", unique("dental assistant")]
                answer = await client.embed(texts)
                assert answer.model == MODEL and answer.dimension == 384
                array = await client.embed_array(texts)
                assert array.dtype == np.float32 and array.shape == (2, 384)
                np.testing.assert_allclose(array, np.asarray(answer.vectors), atol=1e-6)
                assert (await client.models()).local[0].dimension == 384
                with pytest.raises(UnknownModel) as info:
                    await client.embed(["x"], model="nope")
                assert info.value.trace_id

        asyncio.run(run())
