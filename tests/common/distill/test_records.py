"""The hashes that name evidence: canonical bytes (SPEC §8) and text normalisation."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse_common.audit import canonical_json
from lakehouse_common.distill.records import canonical, normalise_text, task_id

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(JSON)
def test_canonical_is_the_audit_chains_canonical_json(value: Any) -> None:
    assert canonical(value) == canonical_json(value)


def test_positive_exponents_take_the_reference_path() -> None:
    assert canonical({"b": 1e16, "a": [1.5e-7, 1e22]}) == b'{"a":[1.5e-7,1e22],"b":1e16}'


def test_normalise_text() -> None:
    assert normalise_text("  Need 3  Forklift-Operators!") == "need 3 forklift operators"
    assert normalise_text("ＮＥＥＤ_3") == "need 3"
    assert normalise_text("Ünïcode  Straße") == "ünïcode strasse"


def test_task_ids_are_16_hex_and_separate_their_parts() -> None:
    assert len(task_id("a", "b")) == 16
    assert task_id("ab", "c") != task_id("a", "bc")
