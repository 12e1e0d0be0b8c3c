"""embedd routes (SPEC §5): embed texts; list the models and providers."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from lakehouse_common.app import parse_json_body, request_body_schema
from lakehouse_common.contracts.embed import EmbedRequest, EmbedResponse, ModelsResponse
from services.embedd.service import Embedder
from services.embedd.state import text_embedder

router = APIRouter(prefix="/v1/embed", tags=["embed"])


@router.post(
    "",
    response_model=EmbedResponse,
    summary="Embed texts into unit-length vectors (cached, micro-batched).",
    openapi_extra=request_body_schema(EmbedRequest),
)
async def embed_texts(
    request: Request, embedder: Annotated[Embedder, Depends(text_embedder)]
) -> Response:
    """422 on an empty list, too many or too long texts, a non-string text or an unknown
    model; 502/504 when a remote provider is down, answers garbage or is too slow."""
    body = await parse_json_body(request, EmbedRequest)
    vectors, model = await embedder.embed(body.texts, body.model)
    # Serialised straight from the float32 matrix: a pydantic pass over 256 × 384 floats would
    # cost more than the cached lookup itself.
    content = orjson.dumps(
        {"vectors": vectors, "dimension": int(vectors.shape[1]), "model": model},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    return Response(content, media_type="application/json")


@router.get(
    "/models",
    response_model=ModelsResponse,
    summary="The default model, the local models and the configured remote providers.",
)
async def list_models(embedder: Annotated[Embedder, Depends(text_embedder)]) -> ModelsResponse:
    """Local models are loaded before embedd answers, so every one listed is ready."""
    return embedder.models()
