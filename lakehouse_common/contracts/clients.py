"""Every daemon's typed client, built in one place over one connection pool.

Daemons reach each other at their own URLs (:meth:`Clients.direct`); tooling reaches every area
through the gateway's one URL (:meth:`Clients.via_gateway`) — the gateway forwards a path
unchanged (SPEC §2), so the same typed client works both ways.
"""

from __future__ import annotations

from collections.abc import Callable

from lakehouse_common.config import LakehouseSettings
from lakehouse_common.contracts.catalog import CatalogClient
from lakehouse_common.contracts.chat import ChatClient
from lakehouse_common.contracts.embed import EmbedClient
from lakehouse_common.contracts.ingest import IngestClient
from lakehouse_common.contracts.matrix import MatrixClient
from lakehouse_common.contracts.observe import ObserveClient
from lakehouse_common.contracts.pathways import PathwayClient
from lakehouse_common.contracts.query import QueryClient
from lakehouse_common.contracts.storage import StorageClient
from lakehouse_common.contracts.subjects import SubjectsClient
from lakehouse_common.contracts.validate import ValidateClient
from lakehouse_common.contracts.vectors import VectorClient
from lakehouse_common.http import HttpClient, ServiceClient

__all__ = ["Clients"]


class Clients:
    """Typed clients over `http`; `url_of(daemon)` says where each daemon answers and
    `name_of(daemon)` what a transport error names (the daemon itself by default)."""

    def __init__(
        self,
        http: HttpClient,
        url_of: Callable[[str], str],
        name_of: Callable[[str], str] | None = None,
    ) -> None:
        self.http = http
        self._url_of = url_of
        self._name_of = name_of or (lambda daemon: daemon)

    @classmethod
    def direct(cls, http: HttpClient, settings: LakehouseSettings) -> Clients:
        """Each daemon at its own address (daemon-to-daemon calls)."""
        return cls(http, settings.url_of)

    @classmethod
    def via_gateway(cls, http: HttpClient, gateway_url: str) -> Clients:
        """Every area through the gateway (tooling, tests of the public surface). A failed
        connection names the gateway: that is what could not be reached."""
        return cls(http, lambda _daemon: gateway_url, lambda _daemon: "gateway")

    def service(self, daemon: str) -> ServiceClient:
        """The untyped JSON client of one daemon (for calls no typed client makes)."""
        return self.http.client_for(self._name_of(daemon), self._url_of(daemon))

    def storage(self) -> StorageClient:
        return StorageClient(self.service("storaged"))

    def catalog(self) -> CatalogClient:
        return CatalogClient(self.service("catalogd"))

    def subjects(self) -> SubjectsClient:
        return SubjectsClient(self.service("catalogd"))

    def ingest(self) -> IngestClient:
        return IngestClient(self.service("ingestd"))

    def query(self) -> QueryClient:
        return QueryClient(self.service("queryd"))

    def embed(self) -> EmbedClient:
        return EmbedClient(self.service("embedd"))

    def vectors(self) -> VectorClient:
        return VectorClient(self.service("vectord"))

    def pathways(self) -> PathwayClient:
        return PathwayClient(self.service("pathwayd"))

    def matrix(self) -> MatrixClient:
        return MatrixClient(self.service("matrixd"))

    def observe(self) -> ObserveClient:
        return ObserveClient(self.service("observerd"))

    def chat(self, *, timeout_s: float | None = None) -> ChatClient:
        return ChatClient(self.service("chatd"), timeout_s=timeout_s)

    def validate(self, *, timeout_s: float | None = None) -> ValidateClient:
        return ValidateClient(self.service("validatord"), timeout_s=timeout_s)
