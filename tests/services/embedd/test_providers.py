"""embedd's remote providers (SPEC §5) against a real HTTP server on loopback that speaks the
Ollama and OpenAI embedding APIs (tests/support/embed_providers.py), with its failure modes."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.embed import API_KEY, PROVIDER_TIMEOUT_S, embed, unique, vectors_of
from tests.support.embed_providers import DIMENSION, FakeProviders, raw_vector, unit
from tests.support.envelope import assert_envelope
from tests.support.metrics import metric
from tests.support.stack import LiveStack

PROVIDERS = ["ollama", "openai_compatible"]
PATHS = {"ollama": "/api/embed", "openai_compatible": "/v1/embeddings"}


class TestRemoteEmbeddings:
    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_remote_vectors_are_normalised_in_order(
        self, embedd: httpx.Client, fake: FakeProviders, provider: str
    ) -> None:
        texts = [unique("forklift operator"), unique("dental assistant")]
        resp = embed(embedd, texts, model=f"{provider}/nomic-embed-text")
        body = resp.json()
        assert body["model"] == f"{provider}/nomic-embed-text"
        assert body["dimension"] == DIMENSION
        expected = np.asarray([unit(raw_vector(t)) for t in texts])
        np.testing.assert_allclose(vectors_of(resp), expected, atol=1e-6)
        last = fake.calls[-1]
        assert (last.path, last.model, last.texts) == (PATHS[provider], "nomic-embed-text", 2)

    def test_openai_compatible_sends_the_bearer_key_and_ollama_none(
        self, embedd: httpx.Client, fake: FakeProviders
    ) -> None:
        embed(embedd, [unique("x")], model="openai_compatible/m")
        assert fake.calls[-1].authorization == f"Bearer {API_KEY}"
        embed(embedd, [unique("x")], model="ollama/m")
        assert fake.calls[-1].authorization is None

    def test_openai_items_are_put_back_in_index_order(self, embedd: httpx.Client) -> None:
        texts = [unique("a"), unique("b"), unique("c")]
        resp = embed(embedd, texts, model="openai_compatible/shuffled")
        expected = np.asarray([unit(raw_vector(t)) for t in texts])
        np.testing.assert_allclose(vectors_of(resp), expected, atol=1e-6)

    def test_remote_answers_are_cached_per_model(
        self, embedd: httpx.Client, fake: FakeProviders
    ) -> None:
        text = unique("cached remotely")
        first = vectors_of(embed(embedd, [text], model="ollama/cache-me"))
        seen = len(fake.calls)
        second = vectors_of(embed(embedd, [text], model="ollama/cache-me"))
        np.testing.assert_array_equal(first, second)
        assert len(fake.calls) == seen
        embed(embedd, [text], model="ollama/other-model")
        assert len(fake.calls) == seen + 1
        hits = metric(embedd, "lakehouse_embed_cache_hits_total", model="ollama/cache-me")
        assert hits >= 1


class TestRemoteFailures:
    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_http_500_is_502_upstream_error_naming_the_provider(
        self, embedd: httpx.Client, provider: str
    ) -> None:
        body = assert_envelope(
            embed(embedd, [unique("x")], model=f"{provider}/fail-500"), 502, "upstream_error"
        )
        assert body["error"]["details"]["provider"] == provider
        assert body["error"]["details"]["status"] == 500
        assert provider in body["error"]["message"]

    @pytest.mark.parametrize("provider", PROVIDERS)
    @pytest.mark.parametrize("mode", ["malformed", "wrong-count", "ragged", "nan"])
    def test_malformed_answer_is_502_upstream_error(
        self, embedd: httpx.Client, provider: str, mode: str
    ) -> None:
        texts = [unique("x"), unique("y")]
        body = assert_envelope(
            embed(embedd, texts, model=f"{provider}/{mode}"), 502, "upstream_error"
        )
        assert body["error"]["details"]["provider"] == provider
        assert "malformed" in body["error"]["message"]

    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_slow_provider_is_504_upstream_timeout(
        self, embedd: httpx.Client, provider: str
    ) -> None:
        body = assert_envelope(
            embed(embedd, [unique("x")], model=f"{provider}/slow"), 504, "upstream_timeout"
        )
        assert body["error"]["details"]["provider"] == provider
        assert body["error"]["details"]["timeout_s"] == PROVIDER_TIMEOUT_S

    def test_provider_down_is_502_upstream_unavailable(
        self, embedd: httpx.Client, fake: FakeProviders
    ) -> None:
        fake.stop()
        try:
            for provider in PROVIDERS:
                body = assert_envelope(
                    embed(embedd, [unique("x")], model=f"{provider}/m"),
                    502,
                    "upstream_unavailable",
                )
                assert body["error"]["details"]["provider"] == provider
                assert provider in body["error"]["message"]
        finally:
            fake.start()  # same port: the daemon's config still points there
        assert vectors_of(embed(embedd, [unique("x")], model="ollama/m")).shape == (1, DIMENSION)

    def test_failed_calls_are_counted_and_not_cached(
        self, embedd: httpx.Client, fake: FakeProviders
    ) -> None:
        labels = {"model": "ollama/fail-500", "provider": "ollama", "code": "upstream_error"}
        before = metric(embedd, "lakehouse_embed_provider_errors_total", **labels)
        text = unique("x")
        seen = len(fake.calls)
        for _ in range(2):
            assert_envelope(embed(embedd, [text], model="ollama/fail-500"), 502, "upstream_error")
        assert len(fake.calls) == seen + 2
        assert metric(embedd, "lakehouse_embed_provider_errors_total", **labels) == before + 2


class TestKeyNeverLeaks:
    def test_key_is_not_in_errors_logs_or_metrics(
        self, embedd: httpx.Client, stack: LiveStack
    ) -> None:
        resp = embed(embedd, [unique("x")], model="openai_compatible/unauthorized")
        body: dict[str, Any] = assert_envelope(resp, 502, "upstream_error")
        assert body["error"]["details"]["status"] == 401
        assert "***" in body["error"]["details"]["body"]  # the provider quoted it; we redacted
        assert API_KEY not in resp.text
        assert API_KEY not in embedd.get("/metrics").text
        assert API_KEY not in embedd.get("/v1/embed/models").text
        assert API_KEY not in stack.log("embedd")
