"""ingestd's view of embedd and vectord for index jobs: the two ports `jobs.IndexJobs` needs."""

from __future__ import annotations

from typing import Any

from lakehouse_common.contracts.embed import EmbedClient
from lakehouse_common.contracts.vectors import VectorClient


class EmbeddPort:
    def __init__(self, client: EmbedClient) -> None:
        self.client = client

    async def embed_texts(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = (await self.client.embed_array(texts)).tolist()
        return vectors


class VectordPort:
    def __init__(self, client: VectorClient) -> None:
        self.client = client

    async def ensure_index(self, name: str, dim: int) -> None:
        """Create `name` (cosine) when missing; vectord answers 409 when it exists with another
        dimension or space, and the job fails with that message."""
        await self.client.create_index(name, dim, "cosine")

    async def upsert(self, name: str, items: list[dict[str, Any]]) -> None:
        await self.client.add(name, items)
