"""Pull the first JSON object out of free-form LLM text (SPEC §3, "extract_json").

Models wrap their JSON in prose, in Markdown fences, or in arrays, and sometimes emit
pseudo-JSON first. :func:`extract_json` finds the first usable object:

1. Fenced blocks first. A fence is ```` ``` ```` or ```` ```json ```` followed by a newline, closed
   by ```` ``` ```` at the start of a line. The first block whose whole content is a JSON object,
   or an array holding an object, wins. Blocks in other languages are not preferred (their
   content is still reached by step 2), and a block whose content is not valid JSON is skipped.
   Requiring real newlines around the content means a fence quoted *inside* a JSON string
   (where a newline can only appear escaped) is never mistaken for one.
2. Otherwise every ``{`` and ``[`` of the text is a candidate, in order. A JSON value is decoded
   starting there (the decoder is the string-aware balanced scanner: escaped quotes and braces
   inside strings are handled, and anything after the value is ignored). An object is the
   answer; an array answers with its first object element, or, holding none, is skipped whole;
   a candidate that does not decode (unbalanced, or balanced but invalid) is dropped and the
   next ``{``/``[`` is tried.

Only strict JSON is accepted, like ``serde_json`` in the original system: ``NaN``,
``Infinity`` and numbers that overflow a float make a candidate invalid.

Cost (the search must stay linear on hostile text, e.g. 100k ``{`` or megabytes of prose):

- a ``{``/``[`` that cannot start a value (``{{``, ``{x``, ``[.``) is rejected by a regex, without
  starting the decoder;
- each attempt decodes a bounded window of the text, grown only while the value is still open
  at its end: a ``JSONDecodeError`` on the full text counts the newlines up to its position,
  which alone would make 100k failing candidates quadratic;
- runs of openers that are each other's first child (``[[[[``, ``{"a":{"a":``) are settled by
  decoding the innermost one (and its parent): when it fails they all fail, instead of each
  decoding to the same distant error;
- as a last bound, once the decoder has read ``_WORK_FACTOR`` times the text's length the search
  gives up and answers no match. Ordinary text never gets near it; hand-built input can (a
  thousand nested ``[`` whose innermost value is valid, before a long array).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NamedTuple

__all__ = ["extract_json"]

# Opening fence: ``` + optional info word + end of line. The newline is required: inside a JSON
# string a newline is always escaped, so a quoted "```json" can never open a block.
_FENCE_OPEN = re.compile(r"```[ \t]*(?:([A-Za-z0-9_+.-]+)[ \t]*)?\r?\n")
# Closing fence: ``` at the start of a line (after optional indentation).
_FENCE_CLOSE = re.compile(r"^[ \t]*```", re.MULTILINE)
_JSON_FENCE_LANGS = frozenset({"", "json"})

# A candidate is a "{" or "[" whose next characters can start a JSON object or array: "{" then
# "}" or a key and a colon, "[" then "]" or the first character of a value. Rejecting "{{",
# "{x", '{"a" and' or "[." here, without starting the decoder, keeps braces in prose cheap. The
# lookaheads stay linear: what one reads ends at the first quote or non-blank after the opener.
_BLANK = r"[ \t\n\r]*"
_KEY = r'"(?:[^"\\\x00-\x1f]|\\.)*"'  # a JSON string on one line (escapes checked loosely)
_CANDIDATE = re.compile(rf'\{{(?={_BLANK}(?:\}}|{_KEY}{_BLANK}:))|\[(?={_BLANK}[-0-9"tfn\[{{\]])')
# From just after an opener to the start of its first value when that value is an object or an
# array: blanks, and for an object a key and a colon.
_FIRST_CHILD = re.compile(rf"{_BLANK}(?:{_KEY}{_BLANK}:{_BLANK})?(?=[{{\[])")

# Decode windows start small (most candidates in prose fail within a few characters) and grow
# 4x while the value is still open at the window's end.
_FIRST_WINDOW = 64
_WINDOW_GROWTH = 4
# An error this close to a truncated window's end may be caused by the truncation (a literal or
# a \uXXXX escape cut in half); decode again with a larger window.
_TRUNCATION_MARGIN = 16
# Give up after failed attempts have read this many times the text's length (plus a floor, so
# short texts never hit it). Legitimate text stays far below: each nesting level of an invalid
# object costs at most one pass over it.
_WORK_FACTOR = 16
_WORK_FLOOR = 1 << 16


class _NotStrictJson(ValueError):
    """A token that Python's json accepts but serde_json does not (NaN, Infinity, 1e999)."""


def _reject_constant(name: str) -> Any:
    raise _NotStrictJson(f"{name} is not JSON")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _NotStrictJson(f"number out of range: {literal}")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def extract_json(text: str) -> tuple[bool, dict[str, Any] | None]:
    """Return ``(True, obj)`` for the first JSON object in ``text``, else ``(False, None)``."""
    found = _from_fences(text)
    if found is None:
        found = _from_candidates(text)
    if found is None:
        return False, None
    return True, found


def _first_object(value: object) -> dict[str, Any] | None:
    """The object a decoded value answers with: itself, or an array's first object element."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                return item
    return None


def _from_fences(text: str) -> dict[str, Any] | None:
    pos = 0
    while (opening := _FENCE_OPEN.search(text, pos)) is not None:
        closing = _FENCE_CLOSE.search(text, opening.end())
        if closing is None:
            return None  # an unclosed fence: the candidate scan still sees its content
        pos = closing.end()
        lang = (opening.group(1) or "").lower()
        if lang not in _JSON_FENCE_LANGS:
            continue
        content = text[opening.end() : closing.start()].strip()
        if not content:
            continue
        try:
            value = _DECODER.decode(content)
        except (ValueError, RecursionError):
            continue
        found = _first_object(value)
        if found is not None:
            return found
    return None


class _Decoded(NamedTuple):
    """One decode attempt: the value and where it ends (None: no value there), and its cost."""

    value: object
    end: int | None
    cost: int


_DOOMED = _Decoded(None, None, 0)


def _from_candidates(text: str) -> dict[str, Any] | None:
    budget = _WORK_FACTOR * len(text) + _WORK_FLOOR
    known: dict[int, _Decoded] = {}  # outcomes settled ahead of their turn
    walked: set[int] = set()  # openers already on a first-child chain
    pos = 0
    while (match := _CANDIDATE.search(text, pos)) is not None:
        start = match.start()
        pos = start + 1
        if start not in walked:
            chain = _first_child_chain(text, start, walked)
            if len(chain) > 1:
                budget -= _settle_chain(text, chain, known)
        decoded = known.pop(start, None) or _decode_at(text, start)
        budget -= decoded.cost
        if decoded.end is None:
            if budget < 0:
                return None
            continue
        found = _first_object(decoded.value)
        if found is not None:
            return found
        pos = decoded.end  # an array with no object element: its contents are data, not candidates
    return None


def _first_child_chain(text: str, start: int, walked: set[int]) -> list[int]:
    """``start``, the opener of its first element or member value, that one's, and so on.

    A value can only decode if its first child does, so when a member of the chain fails, all
    the members before it fail too. (Where the pattern matches something that is not a first
    child, such as ``["key": {``, the outer value is invalid anyway.) The walk stops at an
    opener an earlier walk has passed, so every opener is walked once.
    """
    chain = [start]
    while (child := _FIRST_CHILD.match(text, chain[-1] + 1)) is not None:
        chain.append(child.end())
        if child.end() in walked:
            break
    walked.update(chain)
    return chain


def _settle_chain(text: str, chain: list[int], known: dict[int, _Decoded]) -> int:
    """Decode a chain's innermost member, and its parent if that succeeds; return the cost.

    Runs like ``[[[[...`` or ``{"a":{"a":...`` then cost one or two decodes instead of one
    per opener, each reading to the same distant error.
    """
    cost = 0
    for depth in (-1, -2):
        decoded = known.get(chain[depth]) or _decode_at(text, chain[depth])
        known[chain[depth]] = decoded
        cost += decoded.cost
        if decoded.end is None:
            for outer in chain[:depth]:
                known[outer] = _DOOMED
            break
    return cost


def _decode_at(text: str, start: int) -> _Decoded:
    """Decode one JSON value at ``start``; ``cost`` counts the characters read, over retries."""
    size = len(text)
    window = _FIRST_WINDOW
    cost = 0
    while True:
        stop = min(size, start + window)
        chunk = text[start:stop]
        truncated = stop < size
        try:
            value, consumed = _DECODER.raw_decode(chunk)
        except json.JSONDecodeError as exc:
            # An unterminated string is reported at its *opening* quote, however far the
            # decoder read, so it is only conclusive when the window is the whole rest.
            cut_short = exc.pos >= len(chunk) - _TRUNCATION_MARGIN or exc.msg.startswith(
                "Unterminated string"
            )
            if truncated and cut_short:
                cost += len(chunk)
                window *= _WINDOW_GROWTH
                continue
            return _Decoded(None, None, cost + exc.pos + 1)
        except (ValueError, RecursionError):
            # _NotStrictJson, or nesting deeper than the interpreter's recursion limit.
            return _Decoded(None, None, cost + len(chunk))
        return _Decoded(value, start + consumed, cost + consumed)
