"""chatd routes (SPEC §6): the native chat call, the OpenAI surface, the providers' view."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response, StreamingResponse

from lakehouse_common.contracts.chat import (
    ChatRequest,
    ChatResponse,
    Completion,
    CompletionRequest,
    ModelEntry,
    ModelList,
    ProvidersResponse,
)
from lakehouse_common.errors import NotFound
from services.chatd.openai_api import sse_events, to_chat_request, to_completion
from services.chatd.service import ChatService
from services.chatd.state import chat_service

router = APIRouter(tags=["chat"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "Malformed request (the error envelope)."},
    502: {"description": "The provider answered an error or a malformed body, or hung up."},
    503: {
        "description": "No provider configured or reachable (`no_provider`, the message says "
        "what to set), or still rate-limited after the retries (`provider_rate_limited`, "
        "with `Retry-After`)."
    },
    504: {"description": "The provider did not answer within its timeout."},
}


@router.post(
    "/v1/chat",
    response_model=ChatResponse,
    summary="One chat call through the model's provider (retries, fallback chain).",
    responses=_ERRORS,
)
async def chat(
    service: Annotated[ChatService, Depends(chat_service)], body: ChatRequest
) -> ChatResponse:
    """`model` is `provider/model`; a plain name goes to `chat.default_model`'s provider and no
    model means `chat.default_model`. `json: true` asks the provider for JSON output where its
    API can (OpenAI `response_format`, Ollama `format`)."""
    return await service.chat(body)


@router.post(
    "/v1/chat/completions",
    response_model=Completion,
    summary="OpenAI-compatible chat completion (`stream: true` answers server-sent events).",
    responses=_ERRORS,
)
async def create_completion(
    service: Annotated[ChatService, Depends(chat_service)], body: CompletionRequest
) -> Response | Completion:
    """The OpenAI API, so stock OpenAI clients work against chatd and through the gateway.
    Errors before the first token keep their status; a failure mid-stream is a final
    `data: {"error": ...}` event."""
    chat_request = to_chat_request(body)
    if not body.stream:
        return to_completion(await service.chat(chat_request, endpoint="completions"))
    opened = await service.open_stream(chat_request, endpoint="completions")
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    return StreamingResponse(
        sse_events(opened, include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/v1/models",
    response_model=ModelList,
    summary="OpenAI-compatible model list: configured models, then what providers list.",
)
async def list_models(service: Annotated[ChatService, Depends(chat_service)]) -> ModelList:
    """Ids are `provider/model`, as `model` in a chat request takes them."""
    return ModelList(data=await service.models())


@router.get(
    "/v1/models/{model:anypath}",
    response_model=ModelEntry,
    summary="OpenAI-compatible model lookup.",
    responses={404: {"description": "Not a configured or listed model."}},
)
async def get_model(
    service: Annotated[ChatService, Depends(chat_service)], model: str
) -> ModelEntry:
    """404 when neither the configuration nor a reachable provider knows the model."""
    label = service.target(model).label
    for entry in await service.models():
        if entry.id in (model, label):
            return entry
    raise NotFound(f"model {model!r} is not configured or listed by a provider")


@router.get(
    "/v1/chat/providers",
    response_model=ProvidersResponse,
    summary="Each provider: configured, key present, reachable (probed now), last error.",
)
async def list_providers(
    service: Annotated[ChatService, Depends(chat_service)],
) -> ProvidersResponse:
    """Never a key: only the name of the variable holding it and whether it is set."""
    return await service.providers_status()
