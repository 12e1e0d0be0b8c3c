"""canonical_json's orjson fast path writes exactly what the reference writer writes (SPEC §8).

The fast path (issue 7: appends and verification were dominated by pure-Python canonicalising)
covers strings, 64-bit integers, booleans, null, arrays and string-keyed objects; everything
else — floats, non-integer literals, `-0`, huge integers, subclasses — takes the reference
writer. Any difference would fork the chain's bytes, so this is a property test.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse_common.audit.canonical import (
    _NOT_FAST,
    RawNumber,
    _fast_form,
    _write,
    canonical_bytes_from_raw,
    canonical_json,
)


def reference(value: Any) -> bytes:
    out: list[str] = []
    _write(value, out)
    return "".join(out).encode("utf-8")


texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
scalars = (
    texts
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.booleans()
    | st.none()
    | st.integers().map(lambda n: RawNumber(str(n)))
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_fast_path_writes_the_reference_bytes(value: Any) -> None:
    assert canonical_json(value) == reference(value)


def test_literals_the_fast_path_cannot_keep_take_the_reference_writer() -> None:
    for literal in ("-0", "1.10", "1e5", "123456789012345678901234567890"):
        assert _fast_form(RawNumber(literal)) is _NOT_FAST
        assert canonical_json({"n": RawNumber(literal)}) == f'{{"n":{literal}}}'.encode()
    assert _fast_form(1.5) is _NOT_FAST
    assert _fast_form(2**64) is _NOT_FAST
    assert canonical_bytes_from_raw(b'{"a":-0,"b":1.0,"c":[1E2]}') == b'{"a":-0,"b":1.0,"c":[1E2]}'
