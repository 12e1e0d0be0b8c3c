"""Counting and printing a probe's checks, and calling a live stack (SPEC §9, issue 9).

Every probe prints one line per check (``PASS``/``FAIL``, and ``SKIP`` for a check that cannot
apply, which is not counted) and ends with its totals, so an operator sees exactly what broke and
a script can sum the counts. A section groups the checks of one step: when a call the following
checks depend on fails, the section stops there (:class:`ProbeAborted`) and the probe goes on with
the next section; anything unexpected inside a section is one failed check naming it, never a
crash that hides the remaining sections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pydantic

from lakehouse_common.config import ClientSettings, LakehouseSettings
from lakehouse_common.contracts.clients import Clients
from lakehouse_common.errors import LakehouseError
from lakehouse_common.http import HttpClient, bearer
from lakehouse_common.ops.gateway import refusal, unreachable
from lakehouse_common.tracing import TRACE_HEADER, current_trace_id

__all__ = ["Probe", "ProbeAborted", "Tally", "envelope_problem", "snippet"]

# Characters of a response body quoted in a FAIL line.
_SNIPPET = 300

Answer = TypeVar("Answer")


class ProbeAborted(Exception):
    """A check the rest of the section depends on failed (it is already counted)."""


@dataclass
class Tally:
    """The checks of one probe run."""

    echo: Callable[[str], None]
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            self.echo(f"  PASS  {what}")
        else:
            self.failed += 1
            self.echo(f"  FAIL  {what}" + (f": {detail}" if detail else ""))
        return ok

    def require(self, ok: bool, what: str, detail: str = "") -> None:
        """A check the next ones depend on: on failure the section stops."""
        if not self.check(ok, what, detail):
            raise ProbeAborted(what)

    def skip(self, what: str, why: str) -> None:
        self.skipped += 1
        self.echo(f"  SKIP  {what}: {why}")

    @contextmanager
    def section(self, title: str) -> Iterator[None]:
        self.echo(title)
        try:
            yield
        except ProbeAborted:
            self.echo("  …the rest of this section is skipped")
        except Exception as exc:  # a probe reports what broke and goes on with the next section
            self.check(False, f"{title}: unexpected {type(exc).__name__}", _short(str(exc)))

    def counts(self) -> str:
        """The smoke chain's last line: ``N passed, N failed``."""
        return f"{self.passed} passed, {self.failed} failed"

    def ratio(self) -> str:
        """A parity probe's result: ``passed/total``."""
        return f"{self.passed}/{self.total}"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "…"


def snippet(resp: httpx.Response) -> str:
    return f"HTTP {resp.status_code}: {_short(resp.text)}"


def envelope_problem(resp: httpx.Response, code: str) -> str:
    """Why `resp` is not the error envelope of SPEC §3 with `code` (empty when it is): the
    body is `{"error": {"code", "message", "details"}, "trace_id"}` and `trace_id` is the one the
    response's trace header carries."""
    try:
        body = resp.json()
    except ValueError:
        return f"not JSON: {snippet(resp)}"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(error) != {"code", "message", "details"}:
        return f"not the error envelope: {snippet(resp)}"
    if error["code"] != code:
        return f"code {error['code']!r}, expected {code!r}: {_short(str(error['message']))}"
    if not isinstance(error["message"], str) or not error["message"]:
        return "the envelope has no message"
    trace = resp.headers.get(TRACE_HEADER)
    if not trace or body.get("trace_id") != trace:
        return f"trace_id {body.get('trace_id')!r} is not the {TRACE_HEADER} header {trace!r}"
    return ""


class Probe:
    """A tally plus HTTP clients: the typed clients of `lakehouse_common.contracts` through the
    gateway (:meth:`typed`), and plain httpx for what a probe checks on the wire itself (status,
    bytes, headers, refusals): the gateway (paths) and any daemon directly (full URLs)."""

    def __init__(
        self,
        settings: LakehouseSettings,
        tally: Tally,
        *,
        token: str | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        self.settings = settings
        self.tally = tally
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.gateway_url = settings.url_of("gateway")
        self.gateway = httpx.Client(base_url=self.gateway_url, headers=headers, timeout=timeout_s)
        # Daemons behind the gateway need no token; their URLs are absolute.
        self.direct = httpx.Client(timeout=timeout_s)
        # The typed clients are async: one event loop and one aiohttp pool for the probe's
        # life, opened on the first typed call.
        self._http = HttpClient(ClientSettings(timeout_s=timeout_s), headers=bearer(token))
        self._loop: asyncio.Runner | None = None

    def close(self) -> None:
        self.gateway.close()
        self.direct.close()
        if self._loop is not None:
            self._loop.run(self._http.close())
            self._loop.close()
            self._loop = None

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- checks ------------------------------------------------------------------------------

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        return self.tally.check(ok, what, detail)

    def require(self, ok: bool, what: str, detail: str = "") -> None:
        self.tally.require(ok, what, detail)

    def typed(
        self,
        what: str,
        call: Callable[[Clients], Awaitable[Answer]],
        *,
        poll: bool = False,
        trace_id: str | None = None,
    ) -> Answer:
        """A call through the typed clients (via the gateway) whose answer the next checks
        need: it passes when the daemon answers within its contract; an error answer, a
        transport failure or an answer outside the contract is a failed check that ends the
        section. `poll`: one of a bounded series (only a failure is a check, as :meth:`poll`).
        `trace_id` is sent as the request's trace id."""
        if self._loop is None:
            self._loop = asyncio.Runner()
            self._loop.run(self._http.open())
        clients = Clients.via_gateway(self._http, self.gateway_url)

        async def traced() -> Answer:
            # The runner keeps one context across calls: set the trace id for this call only.
            token = current_trace_id.set(trace_id) if trace_id is not None else None
            try:
                return await call(clients)
            finally:
                if token is not None:
                    current_trace_id.reset(token)

        try:
            answer = self._loop.run(traced())
        except LakehouseError as exc:
            detail = f"{exc.code}: {exc.message}" if unreachable(exc) else refusal(exc)
            self.tally.check(False, what, _short(detail))
            raise ProbeAborted(what) from exc
        except pydantic.ValidationError as exc:
            self.tally.check(False, what, f"outside the contract: {_short(str(exc))}")
            raise ProbeAborted(what) from exc
        if not poll:
            self.tally.require(True, what)
        return answer

    def request(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        """`url` is a gateway path (`/v1/...`) or an absolute URL. A transport error is a failed
        check that ends the section."""
        client = self.direct if url.startswith("http") else self.gateway
        try:
            return client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            self.tally.check(False, what, f"{type(exc).__name__}: {exc}")
            raise ProbeAborted(what) from exc

    def call(
        self,
        method: str,
        url: str,
        what: str,
        *,
        expect: int | tuple[int, ...] = 200,
        **kwargs: Any,
    ) -> httpx.Response:
        """A call whose answer the next checks need: its status must be one of `expect`."""
        statuses = (expect,) if isinstance(expect, int) else expect
        resp = self.request(method, url, what, **kwargs)
        self.tally.require(resp.status_code in statuses, what, snippet(resp))
        return resp

    def poll(
        self, method: str, url: str, what: str, *, expect: int = 200, **kwargs: Any
    ) -> httpx.Response:
        """One of a bounded series of calls (polling): only a failure is a check, so the count
        of checks does not depend on how many rounds the wait took."""
        resp = self.request(method, url, what, **kwargs)
        if resp.status_code != expect:
            self.tally.require(False, what, snippet(resp))
        return resp

    def refused(
        self, method: str, url: str, what: str, *, status: int, code: str, **kwargs: Any
    ) -> httpx.Response:
        """A request that must be refused with `status` in the error envelope naming `code`."""
        resp = self.request(method, url, what, **kwargs)
        if resp.status_code != status:
            self.tally.check(False, what, f"expected {status}, got {snippet(resp)}")
        else:
            problem = envelope_problem(resp, code)
            self.tally.check(not problem, what, problem)
        return resp

    def health(self, daemon: str) -> None:
        """`GET /health` of the daemon itself (not through the gateway)."""
        url = self.settings.url_of(daemon)
        what = f"{daemon} /health at {url}"
        resp = self.call("GET", f"{url}/health", what + " answers 200")
        body = resp.json()
        # Daemons that own a named check (catalogd's witness) add "checks" and "degraded".
        self.tally.require(
            isinstance(body, dict)
            and body.get("status") == "ok"
            and body.get("service") == daemon
            and not body.get("degraded", False),
            what + ' is {"status":"ok","service":"' + daemon + '"} and not degraded',
            _short(resp.text),
        )

    def quietly(self, method: str, url: str, **kwargs: Any) -> None:
        """A clean-up call: its outcome is not a check."""
        client = self.direct if url.startswith("http") else self.gateway
        try:
            client.request(method, url, **kwargs)
        except httpx.HTTPError:
            pass
