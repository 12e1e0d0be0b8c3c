"""embedd's wire format and typed client (SPEC §5): text → L2-normalised vectors.

Endpoints (embedd, :3216):
- `POST /v1/embed` body `EmbedRequest {texts, model?}` → `EmbedResponse {vectors, dimension,
  model}`; every vector has unit L2 norm, in the order of `texts`;
- `GET /v1/embed/models` → `ModelsResponse`: the default model, the local models and their
  dimension, the configured remote providers.

A model name selects its provider (`split_model`): `ollama/nomic-embed-text` → `ollama`,
`openai_compatible/<m>` → `openai_compatible`, `local/<m>` or a plain name → `local` (the
sentence-transformers model shipped in a Python package; `all-MiniLM-L6-v2`, 384-d).

Errors (the envelope of SPEC §3): an empty `texts`, a non-string text, more than
`embed.max_texts` texts or a text longer than `embed.max_text_chars` → 422 `invalid_request`;
an unknown model or provider → 422 `unknown_model` (details list the known ones); a provider
that cannot be reached → 502 `upstream_unavailable`, one that answers an error or garbage →
502 `upstream_error`, one that does not answer in its `timeout_s` → 504 `upstream_timeout`
(details name the provider in each case).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from lakehouse_common.errors import ERROR_CODES, UnprocessableEntity, UpstreamError
from lakehouse_common.http import ServiceClient

AREA: Final = "embed"
EMBED: Final = "/v1/embed"
MODELS: Final = "/v1/embed/models"

LOCAL: Final = "local"
OLLAMA: Final = "ollama"
OPENAI_COMPATIBLE: Final = "openai_compatible"
PROVIDER_KINDS: Final = (LOCAL, OLLAMA, OPENAI_COMPATIBLE)


class UnknownModel(UnprocessableEntity):
    """The requested model or provider is not one embedd knows; details list the known ones."""

    code = "unknown_model"


# Clients rebuild it from an envelope like the core's own classes.
ERROR_CODES.setdefault(UnknownModel.code, UnknownModel)


def split_model(name: str) -> tuple[str, str]:
    """`provider/model` → (provider, model); a plain name (or an unknown prefix) is local.

    `local/all-MiniLM-L6-v2` and `all-MiniLM-L6-v2` are the same model. A name whose prefix is
    not a provider kind (`sentence-transformers/all-MiniLM-L6-v2`) stays whole, as a local name.
    """
    prefix, sep, rest = name.partition("/")
    if sep and prefix in PROVIDER_KINDS and rest:
        return prefix, rest
    return LOCAL, name


class EmbedRequest(BaseModel):
    """`POST /v1/embed`: the texts to embed (1..`embed.max_texts`) and an optional model."""

    model_config = ConfigDict(extra="forbid")

    texts: list[StrictStr] = Field(min_length=1)
    # `embed.default_model` when omitted.
    model: str | None = Field(default=None, min_length=1, max_length=200)


class EmbedResponse(BaseModel):
    """One unit-length vector per text, in request order."""

    vectors: list[list[float]]
    dimension: int
    model: str


class LocalModelInfo(BaseModel):
    """A local model: loaded before embedd answers `/health`, so always ready when listed."""

    name: str
    dimension: int
    load_seconds: float


class ProviderInfo(BaseModel):
    """A configured remote provider (never its key; only the name of the key's variable)."""

    name: str
    base_url: str
    timeout_s: float
    api_key_env: str


class ModelsResponse(BaseModel):
    default_model: str
    local: list[LocalModelInfo]
    providers: list[ProviderInfo]


class EmbedClient:
    """embedd over HTTP (matrixd, ingestd): pooled aiohttp through a `ServiceClient`."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def _post(self, texts: list[str], model: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"texts": texts}
        if model is not None:
            body["model"] = model
        data = await self.client.call_json("POST", EMBED, json=body)
        if not isinstance(data, dict):
            raise UpstreamError(f"{self.client.daemon} answered a non-object to POST {EMBED}")
        return data

    async def embed(self, texts: list[str], model: str | None = None) -> EmbedResponse:
        """Embed `texts` (1..`embed.max_texts` of them) with `model` or the default model."""
        return EmbedResponse.model_validate(await self._post(texts, model))

    async def embed_array(
        self, texts: list[str], model: str | None = None
    ) -> npt.NDArray[np.float32]:
        """The vectors as a `(len(texts), dimension)` float32 array (no pydantic pass: the hot
        path of matrixd and ingestd)."""
        data = await self._post(texts, model)
        try:
            array = np.asarray(data["vectors"], dtype=np.float32)
            dimension = int(data["dimension"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamError(f"{self.client.daemon} answered a malformed embedding") from exc
        if array.shape != (len(texts), dimension):
            raise UpstreamError(
                f"{self.client.daemon} answered {array.shape} vectors for {len(texts)} texts"
            )
        return array

    async def models(self) -> ModelsResponse:
        return ModelsResponse.model_validate(await self.client.call_json("GET", MODELS))
