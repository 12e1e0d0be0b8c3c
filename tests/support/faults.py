"""Helpers of the fault tests (issue 9, SPEC §9): kill a daemon in the middle of a stream of
writes, wait for it to go, and check what the gateway says about it meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from tests.support.envelope import assert_envelope
from tests.support.stack import LiveStack

T = TypeVar("T")

# A write: (client, writer number, write number) → what was acknowledged, or None when the answer
# was not a success (the stream then stops: the daemon is going away).
Write = Callable[[httpx.Client, int, int], T | None]


def assert_502_naming(resp: httpx.Response, daemon: str) -> None:
    """The gateway's answer for a daemon it cannot reach: 502, the envelope, the daemon named."""
    body = assert_envelope(resp, 502, "upstream_unavailable")
    assert daemon in body["error"]["message"], body
    assert body["error"]["details"] == {"daemon": daemon}, body
    assert body["trace_id"]


@dataclass
class WriteStream(Generic[T]):
    """`writers` threads, each writing through its own client in a loop until the daemon dies.

    `acked[w]` lists, in order, what writer `w` got acknowledged; `in_flight[w]` is the number of
    the write it had sent when the stream stopped without an acknowledgement (it may or may not
    have been applied: never acknowledged, so either is allowed, but never half of it).
    """

    base_url: str
    write: Write[T]
    writers: int = 4
    acked: dict[int, list[T]] = field(default_factory=dict)
    in_flight: dict[int, int] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self, w: int) -> None:
        done = self.acked.setdefault(w, [])
        try:
            with httpx.Client(base_url=self.base_url, timeout=30.0) as client:
                n = 0
                while not self._stop.is_set():
                    self.in_flight[w] = n
                    try:
                        result = self.write(client, w, n)
                    except httpx.HTTPError:
                        return  # the daemon died under this write: never acknowledged
                    if result is None:
                        return
                    done.append(result)
                    del self.in_flight[w]
                    n += 1
                    with self._lock:
                        self._count += 1
        except BaseException as exc:  # an assertion in `write`: fail the test, not the thread
            self.errors.append(exc)

    def start(self) -> WriteStream[T]:
        for w in range(self.writers):
            thread = threading.Thread(target=self._run, args=(w,), daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def wait_for(self, count: int, timeout_s: float = 60.0) -> None:
        """Block until `count` writes in all are acknowledged (the stream is well under way)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                if self._count >= count:
                    return
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"only {self._count} of {count} writes acked"
            assert any(t.is_alive() for t in self._threads), "every writer stopped early"
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
            assert not thread.is_alive(), "a writer is stuck"
        assert not self.errors, self.errors

    def all_acked(self) -> list[T]:
        return [item for w in sorted(self.acked) for item in self.acked[w]]

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.acked.values())


def crash_during(
    stack: LiveStack, name: str, stream: WriteStream[Any], *, after: int
) -> WriteStream[Any]:
    """Start `stream`, SIGKILL `name` once `after` writes are acknowledged (writers still
    writing), then stop the stream."""
    stream.start()
    try:
        stream.wait_for(after)
        stack.kill_9(name)
    finally:
        stream.stop()
    return stream
