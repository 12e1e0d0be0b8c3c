"""observerd durability on a real daemon: kill -9 during a burst of concurrent appends, and the
repair of a torn tail on start.

One observerd for the module (its data dir persists across the kills and restarts here).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.support.observe import file_records, read_all, stream_file
from tests.support.stack import LiveStack

pytestmark = pytest.mark.fault


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(tmp_path_factory.mktemp("observerd-durability"))
    with live.running("observerd"):
        yield live


def test_kill_9_during_a_burst_keeps_every_acknowledged_event(stack: LiveStack) -> None:
    stream = "search_runs"
    writers = 12
    acked: set[str] = set()
    lock = threading.Lock()
    enough = threading.Event()
    stop = threading.Event()

    def writer(w: int) -> None:
        n = 0
        with httpx.Client(base_url=stack.url("observerd"), timeout=10) as client:
            while not stop.is_set():
                size = 1 + (n + w) % 7
                ids = [f"{w}-{n}-{k}" for k in range(size)]
                n += 1
                body = {"events": [{"event": {"id": i, "pad": "p" * (w * 37)}} for i in ids]}
                try:
                    resp = client.post(f"/v1/observe/{stream}", json=body)
                except httpx.HTTPError:
                    return  # the daemon is gone: this batch was never acknowledged
                if resp.status_code != 200:
                    return
                with lock:
                    acked.update(ids)
                    if len(acked) >= 1500:
                        enough.set()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    try:
        assert enough.wait(60), "the burst did not get going"
        stack.kill_9("observerd")  # while every writer still has requests in flight
    finally:
        stop.set()
        for t in threads:
            t.join()

    # Every line in the file is whole and valid JSON, even before the restart's repair
    # could have trimmed anything but a partial tail.
    path = stream_file(stack.settings, stream)
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    stack.start("observerd")
    assert path.read_bytes() == complete  # the restart only trimmed a partial tail, if any
    stored = [r["event"]["id"] for r in file_records(stack.settings, stream)]
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert acked <= set(stored), f"{len(acked - set(stored))} acknowledged events lost"

    with stack.client("observerd") as od:
        via_api = [r["event"]["id"] for r in read_all(od, stream, limit=1000)]
        assert via_api == stored
        listing = {s["name"]: s["count"] for s in od.get("/v1/observations").json()["streams"]}
        assert listing[stream] == len(stored)
        # The stream takes appends again, after the surviving lines.
        resp = od.post(f"/v1/observe/{stream}", json={"event": {"id": "after"}})
        assert resp.json()["first_line"] == len(stored)


def test_torn_tail_is_repaired_on_start_and_logged(stack: LiveStack) -> None:
    stream = "chat_runs"
    with stack.client("observerd") as od:
        events = [{"event": {"n": n}} for n in range(10)]
        assert od.post(f"/v1/observe/{stream}", json={"events": events}).status_code == 200
    stack.kill_9("observerd")
    path = stream_file(stack.settings, stream)
    good = path.read_bytes()
    torn = b'{"schema":"observation.v1","recorded_at":"2026-05-02T09:14:03.4614'
    with path.open("ab") as fh:
        fh.write(torn)

    stack.start("observerd")
    assert path.read_bytes() == good
    assert "repaired torn tail" in stack.log("observerd")
    with stack.client("observerd") as od:
        assert od.get(f"/v1/observations/{stream}").json()["total"] == 10
        resp = od.post(f"/v1/observe/{stream}", json={"event": {"n": 10}})
        assert resp.json() == {"stream": stream, "accepted": 1, "first_line": 10, "total": 11}
    assert [r["event"]["n"] for r in file_records(stack.settings, stream)] == list(range(11))


def test_a_file_that_is_only_a_partial_line_becomes_empty(stack: LiveStack) -> None:
    stream = "human_feedback"
    stack.kill_9("observerd")
    path = stream_file(stack.settings, stream)
    path.parent.mkdir(parents=True, exist_ok=True)  # no stream may have been written yet
    path.write_bytes(b'{"schema":"observ')
    stack.start("observerd")
    assert path.read_bytes() == b""
    with stack.client("observerd") as od:
        assert od.get(f"/v1/observations/{stream}").json()["total"] == 0
