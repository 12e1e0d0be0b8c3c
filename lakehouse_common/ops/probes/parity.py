"""Parity probes (SPEC §9 "Parity probes", issue 9): a live stack against golden fixtures, and
against a second runtime when its gateway URL is given (``peer``).

- :func:`validator_parity` — ValidationError wire bytes (SPEC §3): this checkout's library and
  the daemons' JSON renderer against ``tests/fixtures/validation_error_golden.json``, then
  ``POST /v1/validate`` answers byte for byte against ``tests/fixtures/parity/validate_cases.json``.
- :func:`extract_json_parity` — ``tests/fixtures/extract_json_cases.json`` through the library,
  then through validatord's iterate loop when an *echo model* (a chat model that answers with the
  user's message) makes extract_json observable there: ``final`` is what it extracted.
- :func:`session_log_parity` — session records (SPEC §6): the library writes the known lines of
  ``tests/fixtures/parity/session_records.json`` byte for byte; live sessions run through
  ``POST /v1/iterate`` come back from ``GET /v1/sessions`` (and from the log file when it is on
  this host) with every field, in order, agreeing with the iterate answer.
- :func:`embed_parity` — ``/v1/embed`` through the gateway, from embedd directly, from the peer
  and the recorded vectors of ``tests/fixtures/parity/embed_cases.json`` agree to cosine ≥ 0.99999.

Each assertion is one PASS/FAIL line; a probe ends with ``passed/total``.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any, Final

import httpx

from lakehouse_common.app import JsonResponse
from lakehouse_common.config import REPO_ROOT
from lakehouse_common.contracts.embed import EMBED
from lakehouse_common.contracts.validate import (
    ITERATE,
    MAX_PROMPT_CHARS,
    SESSIONS,
    VALIDATE,
    ValidateResponse,
)
from lakehouse_common.extract_json import extract_json
from lakehouse_common.ops.probes.tally import Probe, envelope_problem, snippet
from lakehouse_common.session_log import (
    SessionRecord,
    append_session,
    read_recent_sessions,
    session_log_path,
)
from lakehouse_common.tracing import TRACE_HEADER
from lakehouse_common.validation_error import ValidationError, ValidationErrorFormatError

__all__ = ["embed_parity", "extract_json_parity", "session_log_parity", "validator_parity"]

FIXTURES: Final = REPO_ROOT / "tests" / "fixtures"
PARITY_FIXTURES: Final = FIXTURES / "parity"
# Newest session records read back when looking for the probe's own sessions.
SESSIONS_WINDOW: Final = 200
# Bytes of the session log's tail searched for a record's raw line.
LOG_TAIL_BYTES: Final = 4 * 1024 * 1024


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _canonical(value: Any) -> str:
    """JSON text that tells 1, 1.0 and true apart (Python's == does not)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _peer_post(p: Probe, peer: str, path: str, what: str, **kwargs: Any) -> httpx.Response | None:
    try:
        return p.direct.post(peer + path, **kwargs)
    except httpx.TransportError as exc:
        p.check(False, what, f"the peer is not reachable: {exc}")
        return None


# -- validator error shapes -------------------------------------------------------------------


def _wire_bytes(body: Any) -> bytes:
    """The serde bytes of a `/v1/validate` answer: what the original system sends."""
    errors = [ValidationError.from_wire(e).to_json() for e in body["errors"]]
    valid = b"true" if body["valid"] is True else b"false"
    return b'{"valid":' + valid + b',"errors":[' + b",".join(errors) + b"]}"


def validator_parity(p: Probe, peer: str | None, echo_model: str | None) -> None:
    """Validator error shapes: ValidationError wire bytes, library and `POST /v1/validate`."""
    golden = _load(FIXTURES / "validation_error_golden.json")
    with p.tally.section("library: ValidationError encodings (validation_error_golden.json)"):
        for case in golden["encode"]:
            value = ValidationError(case["kind"], case["reason"], case["field"])
            expected = case["bytes"].encode("utf-8")
            p.check(
                value.to_json() == expected, f"{case['name']}: to_json", value.to_json().decode()
            )
            rendered = bytes(
                JsonResponse(
                    ValidateResponse(valid=False, errors=[value]).model_dump(mode="json")
                ).body
            )
            p.check(
                rendered == b'{"valid":false,"errors":[' + expected + b"]}",
                f"{case['name']}: as a daemon renders it",
                rendered.decode(errors="replace"),
            )
        for case in golden["legacy"]:
            parsed = ValidationError.from_wire(case["input"]).to_wire()
            p.check(parsed == case["wire"], f"{case['name']}: legacy shape parses", str(parsed))
        for case in golden["reject"]:
            try:
                ValidationError.from_wire(case["input"])
            except ValidationErrorFormatError:
                p.check(True, f"{case['name']}: refused")
            else:
                p.check(False, f"{case['name']}: refused", "parsed without an error")

    cases = _load(PARITY_FIXTURES / "validate_cases.json")["cases"]
    with p.tally.section(f"live: POST {VALIDATE} (parity/validate_cases.json)"):
        for case in cases:
            name = case["name"]
            resp = p.request("POST", VALIDATE, name, json=case["request"])
            if case["status"] != 200:
                problem = (
                    f"expected {case['status']}, got {snippet(resp)}"
                    if resp.status_code != case["status"]
                    else envelope_problem(resp, case["code"])
                )
                p.check(not problem, f"{name}: {case['status']} {case['code']}", problem)
            elif resp.status_code != 200:
                p.check(False, f"{name}: 200", snippet(resp))
                continue
            else:
                try:
                    serde = _wire_bytes(resp.json())
                except (ValueError, KeyError, TypeError) as exc:
                    serde = f"not a ValidateResponse ({exc})".encode()
                p.check(
                    resp.content == serde,
                    f"{name}: every ValidationError in serde's wire bytes",
                    resp.text[:300],
                )
                p.check(
                    resp.content == case["body"].encode("utf-8"),
                    f"{name}: the golden answer, byte for byte",
                    f"got {resp.text[:300]}",
                )
            if peer:
                other = _peer_post(p, peer, VALIDATE, f"{name}: peer", json=case["request"])
                if other is not None:
                    p.check(
                        other.status_code == resp.status_code
                        and (resp.status_code != 200 or other.content == resp.content),
                        f"{name}: the peer answers the same",
                        snippet(other),
                    )


# -- extract_json -----------------------------------------------------------------------------


def extract_json_parity(p: Probe, peer: str | None, echo_model: str | None) -> None:
    """extract_json fixtures: the library, and validatord's iterate loop with an echo model."""
    cases = _load(FIXTURES / "extract_json_cases.json")
    with p.tally.section("library: extract_json (extract_json_cases.json)"):
        for case in cases:
            matched, value = extract_json(case["input"])
            p.check(
                matched == case["matched"] and _canonical(value) == _canonical(case["value"]),
                f"{case['name']}: ({str(case['matched']).lower()}, …)",
                f"got ({matched}, {_canonical(value)[:200]})",
            )
    title = f"live: through validatord (POST {ITERATE}, the echo model's reply is the input)"
    with p.tally.section(title):
        if not echo_model:
            p.tally.skip(
                "extract_json through validatord",
                "give --echo-model (or ECHO_MODEL): a chat model that answers with the prompt",
            )
            return
        for case in cases:
            text = case["input"]
            if not text.strip() or len(text) > MAX_PROMPT_CHARS:
                p.tally.skip(case["name"], "not a valid prompt (blank or too long)")
                continue
            expected = _canonical(case["value"] if case["matched"] else None)
            body = {"kind": "email", "prompt": text, "model": echo_model, "max_iter": 1}
            resp = p.request("POST", ITERATE, case["name"], json=body)
            answer = resp.json() if resp.status_code == 200 else {}
            final = _canonical(answer.get("final"))
            p.check(
                answer.get("iterations") == 1 and final == expected,
                f"{case['name']}: final is what extract_json found",
                snippet(resp) if resp.status_code != 200 else f"{answer.get('status')}: {final}",
            )
            if peer:
                other = _peer_post(p, peer, ITERATE, f"{case['name']}: peer", json=body)
                if other is not None:
                    final = other.json().get("final") if other.status_code == 200 else "error"
                    p.check(
                        _canonical(final) == expected,
                        f"{case['name']}: the peer extracts the same",
                        snippet(other),
                    )


# -- session-log records ----------------------------------------------------------------------


def _raw_line(path: Path, session_id: str) -> bytes | None:
    """The session log's raw line for `session_id`, searched in the file's tail."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - LOG_TAIL_BYTES))
            tail = fh.read()
    except OSError:  # not on this host, or not readable by this user (a systemd stack)
        return None
    needle = b'"session_id":' + json.dumps(session_id).encode()
    for line in reversed(tail.split(b"\n")):
        if needle in line:
            return line + b"\n"
    return None


def _session_cases(echo_model: str | None) -> list[tuple[str, dict[str, Any], bool]]:
    """(what, iterate body, send our own trace id)."""
    if not echo_model:
        prompt = "Draft an SMS to 555-123-4567 about the Monday 7am shift in Aurora."
        return [
            ("a session with the caller's trace id", {"kind": "sms", "prompt": prompt}, True),
            ("a session with a minted trace id", {"kind": "email", "prompt": prompt}, False),
        ]
    good = '{"to": "555-123-4567", "body": "Shift Monday 7am in Aurora, reply YES"}'
    bad = '{"to": "12", "body": ""}'
    return [
        ("an accepted session", {"kind": "sms", "prompt": good, "model": echo_model}, True),
        (
            "a session that exhausts max_iter",
            {"kind": "sms", "prompt": bad, "model": echo_model},
            False,
        ),
    ]


def _check_record(
    p: Probe,
    what: str,
    record: dict[str, Any],
    answer: dict[str, Any],
    body: dict[str, Any],
    spec: dict[str, Any],
) -> None:
    fields: list[str] = spec["fields"]
    p.check(
        list(record)[: len(fields)] == fields,
        f"{what}: fields in SPEC order",
        str(list(record)),
    )
    p.check(
        record.get("schema") == spec["schema"] and record.get("daemon") == "validatord",
        f"{what}: schema {spec['schema']}, daemon validatord",
        f"{record.get('schema')!r}, {record.get('daemon')!r}",
    )
    p.check(
        record.get("session_id") == record.get("trace_id") == answer.get("session_id"),
        f"{what}: session_id = trace_id = the iterate answer's",
    )
    p.check(
        re.fullmatch(spec["timestamp_pattern"], str(record.get("timestamp"))) is not None,
        f"{what}: timestamp is RFC 3339 UTC with nanoseconds",
        str(record.get("timestamp")),
    )
    same = ("kind", "model", "status", "iterations", "errors", "infra_error")
    expected = {**{k: answer.get(k) for k in same}, "kind": body["kind"]}
    got = {k: record.get(k) for k in same}
    p.check(
        _canonical(got) == _canonical(expected) and got["status"] in spec["statuses"],
        f"{what}: kind, model, status ({got['status']}), iterations, errors agree with the answer",
        f"{_canonical(got)[:300]} vs {_canonical(expected)[:300]}",
    )
    try:
        shapes = [ValidationError.from_wire(e).to_wire() for e in record.get("errors", [])]
        p.check(shapes == record.get("errors"), f"{what}: errors in the ValidationError wire shape")
    except ValidationErrorFormatError as exc:
        p.check(False, f"{what}: errors in the ValidationError wire shape", str(exc))


def session_log_parity(p: Probe, peer: str | None, echo_model: str | None) -> None:
    """Session-log records: known lines from the library, live records from validatord."""
    spec = _load(PARITY_FIXTURES / "session_records.json")
    with p.tally.section("library: session records (parity/session_records.json)"):
        for known in spec["records"]:
            written = SessionRecord.model_validate(known["record"]).line()
            sid = known["record"]["session_id"]
            p.check(written == known["line"].encode("utf-8"), f"{sid}: the exact line")
            p.check(list(json.loads(known["line"])) == spec["fields"], f"{sid}: fields in order")
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "sessions.jsonl"
            for known in spec["records"]:
                append_session(log, SessionRecord.model_validate(known["record"]))
            p.check(
                log.read_bytes() == "".join(k["line"] for k in spec["records"]).encode("utf-8"),
                "append_session writes exactly the known lines",
            )
            back = read_recent_sessions(log, len(spec["records"])).records
            p.check(
                [r.line() for r in back]
                == [k["line"].encode("utf-8") for k in reversed(spec["records"])],
                "read_recent_sessions gives them back, newest first",
            )

    with p.tally.section(f"live: POST {ITERATE}, then GET {SESSIONS}"):
        log_file = session_log_path(p.settings)
        if not echo_model:
            p.tally.skip(
                "accepted and max_iter_exhausted sessions",
                "no --echo-model: sessions end as chatd's default model allows",
            )
        for what, body, own_trace in _session_cases(echo_model):
            request = {**body, "max_iter": 1}
            trace = f"parity-session-{secrets.token_hex(6)}" if own_trace else None
            headers = {TRACE_HEADER: trace} if trace else {}
            resp = p.call("POST", ITERATE, f"{what}: iterate", json=request, headers=headers)
            answer = resp.json()
            header = resp.headers.get(TRACE_HEADER, "")
            if trace:
                p.check(answer.get("session_id") == trace, f"{what}: session_id is our trace id")
            else:
                p.check(
                    answer.get("session_id") == header
                    and re.fullmatch(spec["minted_id_pattern"], header) is not None,
                    f"{what}: session_id is the minted trace id",
                    f"{answer.get('session_id')!r}, header {header!r}",
                )
            listing = p.call(
                "GET",
                SESSIONS,
                f"{what}: read the session log",
                params={"limit": SESSIONS_WINDOW},
            ).json()
            record = next(
                (r for r in listing.get("data", []) if r.get("session_id") == answer["session_id"]),
                None,
            )
            p.require(record is not None, f"{what}: GET {SESSIONS} has its record")
            assert record is not None
            _check_record(p, what, record, answer, request, spec)
            raw = _raw_line(log_file, answer["session_id"])
            if raw is None:
                p.tally.skip(f"{what}: the raw log line", f"not found or not readable: {log_file}")
            else:
                p.check(
                    raw == SessionRecord.model_validate(record).line()
                    and json.loads(raw) == record,
                    f"{what}: the log file holds it as one compact line, as served",
                    raw[:300].decode(errors="replace"),
                )
            if peer:
                other = _peer_post(p, peer, ITERATE, f"{what}: peer", json=request)
                if other is None or other.status_code != 200:
                    continue
                theirs = other.json()
                keys = ("status", "iterations", "errors")
                p.check(
                    {k: theirs.get(k) for k in keys} == {k: answer.get(k) for k in keys},
                    f"{what}: the peer's session ends the same",
                    _canonical({k: theirs.get(k) for k in keys})[:300],
                )


# -- embed vectors ----------------------------------------------------------------------------


def _cosine(a: list[float], b: list[float]) -> float:
    if len(a) != len(b) or not a:
        return -2.0
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else -2.0


def embed_parity(p: Probe, peer: str | None, echo_model: str | None) -> None:
    """Embed vectors: gateway vs embedd directly vs the peer vs the recorded vectors."""
    fixture = _load(PARITY_FIXTURES / "embed_cases.json")
    least = float(fixture["min_cosine"])
    embedd = p.settings.url_of("embedd")
    with p.tally.section(f"live: {EMBED}, cosine ≥ {least} (parity/embed_cases.json)"):
        for case in fixture["cases"]:
            name = case["name"]
            body = {"texts": [case["text"]]}
            via = p.call("POST", EMBED, f"{name}: through the gateway", json=body).json()
            vector = via["vectors"][0]
            norm = math.sqrt(sum(x * x for x in vector))
            p.check(
                len(vector) == via["dimension"] and abs(norm - 1.0) <= 1e-3,
                f"{name}: a unit vector of dimension {via['dimension']}",
                f"{len(vector)} values, norm {norm:.6f}",
            )
            direct = p.call("POST", f"{embedd}{EMBED}", f"{name}: from embedd", json=body).json()
            cos = _cosine(vector, direct["vectors"][0])
            p.check(
                cos >= least and direct["model"] == via["model"],
                f"{name}: gateway ≈ embedd directly (cos {cos:.7f})",
            )
            if via["model"] == fixture["model"]:
                cos = _cosine(vector, case["vector"])
                p.check(cos >= least, f"{name}: ≈ the recorded {fixture['model']} (cos {cos:.7f})")
            else:
                p.tally.skip(f"{name}: the recorded vector", f"the live model is {via['model']}")
            if peer:
                other = _peer_post(p, peer, EMBED, f"{name}: peer", json=body)
                if other is None:
                    continue
                if other.status_code != 200:
                    p.check(False, f"{name}: the peer embeds it", snippet(other))
                    continue
                theirs = other.json()
                cos = _cosine(vector, theirs["vectors"][0])
                p.check(
                    cos >= least and theirs.get("dimension") == via["dimension"],
                    f"{name}: ≈ the peer's {theirs.get('model')} (cos {cos:.7f})",
                )
