"""extract_json: every behaviour SPEC §3 lists, golden fixtures, properties, adversarial input."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakehouse_common.extract_json import extract_json

FENCE = "```"
CASES_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "extract_json_cases.json"
CASES: list[dict[str, Any]] = json.loads(CASES_PATH.read_text(encoding="utf-8"))


class TestFencedBlocks:
    def test_fenced_json_block(self) -> None:
        text = f'Here you go:\n{FENCE}json\n{{"status": "ok"}}\n{FENCE}\nDone.'
        assert extract_json(text) == (True, {"status": "ok"})

    def test_unfenced_block(self) -> None:
        assert extract_json(f'Result:\n{FENCE}\n{{"a": 1}}\n{FENCE}') == (True, {"a": 1})

    def test_fence_language_tag_is_case_insensitive(self) -> None:
        assert extract_json(f'{FENCE}JSON\n{{"a": 1}}\n{FENCE}') == (True, {"a": 1})

    def test_fenced_block_takes_precedence_over_bare_braces(self) -> None:
        text = f'Draft: {{"draft": true}}\n{FENCE}json\n{{"final": true}}\n{FENCE}'
        assert extract_json(text) == (True, {"final": True})

    def test_invalid_fenced_block_falls_back_to_scanning(self) -> None:
        text = f'{FENCE}json\n{{"a": 1,}}\n{FENCE}\nActually: {{"b": 2}}'
        assert extract_json(text) == (True, {"b": 2})

    def test_later_valid_fenced_block_is_used_when_the_first_is_invalid(self) -> None:
        text = (
            f'Bare {{"bare": 1}}\n{FENCE}json\nnot json\n{FENCE}\n'
            f'{FENCE}json\n{{"second_fence": 2}}\n{FENCE}'
        )
        assert extract_json(text) == (True, {"second_fence": 2})

    def test_fenced_array_yields_its_first_object(self) -> None:
        text = f'{FENCE}json\n[1, {{"a": 1}}, {{"b": 2}}]\n{FENCE}'
        assert extract_json(text) == (True, {"a": 1})

    def test_other_language_fence_is_not_preferred(self) -> None:
        text = f'{{"bare": 1}}\n{FENCE}python\n{{"py": 2}}\n{FENCE}'
        assert extract_json(text) == (True, {"bare": 1})

    def test_fence_quoted_inside_a_json_string_is_not_a_fence(self) -> None:
        # Inside a JSON string the newlines around the inner fence are escaped (\n), so it can
        # never open a block: the whole object is the answer, not the {"x": 1} it quotes.
        text = '{"md": "```json\\n{\\"x\\": 1}\\n```"}'
        assert extract_json(text) == (True, {"md": '```json\n{"x": 1}\n```'})

    def test_unclosed_fence_is_still_scanned(self) -> None:
        assert extract_json(f'{FENCE}json\n{{"a": 1}}') == (True, {"a": 1})


class TestBareObjects:
    def test_bare_braces_inside_prose(self) -> None:
        text = 'I think the answer is {"answer": 42} - hope that helps.'
        assert extract_json(text) == (True, {"answer": 42})

    def test_first_balanced_object_wins_when_there_are_several(self) -> None:
        assert extract_json('{"first": 1} and then {"second": 2}') == (True, {"first": 1})

    def test_nested_objects(self) -> None:
        text = 'Output: {"outer": {"inner": {"deep": [1, {"x": null}]}}, "ok": true} end'
        assert extract_json(text) == (
            True,
            {"outer": {"inner": {"deep": [1, {"x": None}]}}, "ok": True},
        )

    def test_unicode_in_strings(self) -> None:
        text = 'Réponse : {"name": "Zoë 🙂 名前", "escaped": "\\u00e9\\ud83d\\ude42"}'
        assert extract_json(text) == (True, {"name": "Zoë 🙂 名前", "escaped": "é🙂"})

    def test_escaped_quotes_and_braces_inside_strings(self) -> None:
        assert extract_json('{"a": "x\\"}{"}') == (True, {"a": 'x"}{'})

    def test_backslash_before_closing_quote(self) -> None:
        text = 'see {"path": "C:\\\\dir\\\\", "next": "}"} ok'
        assert extract_json(text) == (True, {"path": "C:\\dir\\", "next": "}"})

    def test_empty_object(self) -> None:
        assert extract_json("Nothing to report: {}") == (True, {})

    def test_pretty_printed_object_across_lines(self) -> None:
        text = 'Sure!\n{\n  "worker": "w-1",\n  "skills": [\n    "welding"\n  ]\n}\nBye.'
        assert extract_json(text) == (True, {"worker": "w-1", "skills": ["welding"]})

    def test_trailing_garbage_after_a_valid_object(self) -> None:
        assert extract_json('{"a": 1}}}} and some garbage ``` ]') == (True, {"a": 1})


class TestTopLevelArrays:
    def test_top_level_array_yields_its_first_object_element(self) -> None:
        assert extract_json('[{"a":1},{"b":2}]') == (True, {"a": 1})

    def test_scalars_before_the_first_object_element_are_skipped(self) -> None:
        assert extract_json('[1, "two", {"c": 3}]') == (True, {"c": 3})

    def test_array_without_object_element_keeps_looking(self) -> None:
        assert extract_json('[1, 2, 3] and then {"e": 5}') == (True, {"e": 5})

    def test_array_without_object_element_alone_is_no_match(self) -> None:
        assert extract_json("[1, 2, 3]") == (False, None)

    def test_strings_inside_a_valid_array_are_not_candidates(self) -> None:
        assert extract_json('["{}", "{\\"x\\": 1}"]') == (False, None)


class TestNoMatchAndInvalidCandidates:
    def test_no_json_is_no_match(self) -> None:
        assert extract_json("There is no JSON here at all.") == (False, None)

    def test_empty_text_is_no_match(self) -> None:
        assert extract_json("") == (False, None)

    def test_stray_braces_are_no_match(self) -> None:
        assert extract_json("use {braces} and [brackets] freely }{ ][") == (False, None)

    def test_balanced_but_invalid_json_tries_the_next_candidate(self) -> None:
        assert extract_json('{not: valid} but {"valid": true}') == (True, {"valid": True})

    def test_balanced_but_invalid_json_alone_is_no_match(self) -> None:
        assert extract_json("{'single': 'quotes'}") == (False, None)

    def test_trailing_comma_is_invalid(self) -> None:
        assert extract_json('{"a": 1,} {"b": 2}') == (True, {"b": 2})

    def test_nan_and_infinity_are_not_json(self) -> None:
        # serde_json (the original system) rejects them; Python's json would accept them.
        assert extract_json('{"a": NaN} {"b": Infinity} {"c": 1e999} {"d": 1}') == (
            True,
            {"d": 1},
        )

    def test_invalid_outer_object_yields_its_first_valid_inner_object(self) -> None:
        assert extract_json('{"outer": {"inner": 1}, oops}') == (True, {"inner": 1})

    def test_truncated_output_yields_the_first_complete_object(self) -> None:
        text = '{"items": [{"id": 1}, {"id": 2}, {"id"'
        assert extract_json(text) == (True, {"id": 1})


class TestLargeAndAdversarialInput:
    """Inputs of 100k-1M characters built to make a naive scanner quadratic.

    The work is linear: each of these takes well under a second on the 2-core dev machine,
    while a quadratic scanner takes tens of seconds on them. The limit leaves room for a
    loaded CI machine.
    """

    LIMIT_SECONDS = 5.0

    def _timed(self, text: str) -> tuple[tuple[bool, object], float]:
        started = time.perf_counter()
        result = extract_json(text)
        return result, time.perf_counter() - started

    def test_a_long_string_value_is_decoded_whole(self) -> None:
        value = "y" * 200_000 + "é"
        result, _ = self._timed('prefix {"big": "' + value + '"} suffix')
        assert result == (True, {"big": value})

    def test_a_large_object_beyond_the_first_decode_window(self) -> None:
        items = [{"id": i, "name": f"worker {i}", "tags": ["a", "b"]} for i in range(5000)]
        result, _ = self._timed("Here:\n" + json.dumps({"items": items}, indent=2) + "\nEnd.")
        assert result == (True, {"items": items})

    def test_open_braces_before_an_object(self) -> None:
        result, elapsed = self._timed("{" * 200_000 + '{"a": 1}')
        assert result == (True, {"a": 1})
        assert elapsed < self.LIMIT_SECONDS

    def test_open_brackets_before_an_object(self) -> None:
        result, elapsed = self._timed("[" * 200_000 + ' {"a": 1}')
        assert result == (True, {"a": 1})
        assert elapsed < self.LIMIT_SECONDS

    def test_nested_openers_before_an_object(self) -> None:
        result, elapsed = self._timed('{"a": [' * 30_000 + '{"ok": true}')
        assert result == (True, {"ok": True})
        assert elapsed < self.LIMIT_SECONDS

    def test_quoted_braces_that_never_become_keys(self) -> None:
        result, elapsed = self._timed('{"' * 150_000 + '{"a": 1}')
        assert result == (True, {"a": 1})
        assert elapsed < self.LIMIT_SECONDS

    def test_unterminated_string_full_of_braces(self) -> None:
        result, elapsed = self._timed('{"k": "' + "{" * 200_000)
        assert result == (False, None)
        assert elapsed < self.LIMIT_SECONDS

    def test_deep_nesting_before_a_long_array(self) -> None:
        # Each "[" decodes through the whole array before failing; the first-child chain
        # settles all 900 with one decode.
        result, elapsed = self._timed("[" * 900 + "1.5," * 50_000)
        assert result == (False, None)
        assert elapsed < self.LIMIT_SECONDS

    def test_many_candidates_that_each_fail_after_a_few_characters(self) -> None:
        # Decoding each against the whole text would be quadratic: a JSONDecodeError counts the
        # newlines before its position (~20 s here).
        result, elapsed = self._timed('{"a":1,\n' * 100_000 + '{"a": 1}')
        assert result == (True, {"a": 1})
        assert elapsed < self.LIMIT_SECONDS

    def test_long_prose_before_the_object(self) -> None:
        result, elapsed = self._timed("lorem ipsum {dolor} [sit] " * 40_000 + '{"a": 1}')
        assert result == (True, {"a": 1})
        assert elapsed < self.LIMIT_SECONDS

    def test_many_fences_with_invalid_content(self) -> None:
        result, elapsed = self._timed(f"{FENCE}json\n{{x}}\n{FENCE}\n" * 10_000 + '{"a": 1}')
        assert result == (True, {"a": 1})
        assert elapsed < self.LIMIT_SECONDS

    def test_nesting_deeper_than_the_recursion_limit_is_not_a_crash(self) -> None:
        result, elapsed = self._timed("[" * 20_000 + "]" * 20_000)
        assert result == (False, None)
        assert elapsed < self.LIMIT_SECONDS


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_golden_fixture(case: dict[str, Any]) -> None:
    assert extract_json(case["input"]) == (case["matched"], case["value"])


def test_golden_fixtures_are_well_formed() -> None:
    names = [case["name"] for case in CASES]
    assert len(names) >= 12
    assert len(set(names)) == len(names)
    for case in CASES:
        assert set(case) == {"name", "input", "matched", "value"}
        assert case["matched"] == (case["value"] is not None)


# -- properties --------------------------------------------------------------------------------

# Strings rich in the characters a scanner can trip on.
_tricky_text = st.one_of(
    st.text(max_size=20),
    st.text(alphabet='{}[]"\\`:,\n\t é🙂名\u2028', max_size=20),
)
_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    _tricky_text,
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_tricky_text, children, max_size=4),
    ),
    max_leaves=20,
)
_json_objects = st.dictionaries(_tricky_text, _json_values, max_size=5)
# Prose may hold anything but the characters that start a candidate, including fences, quotes
# and closing brackets.
_prose = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(exclude_characters="{["), max_size=30),
        st.sampled_from([FENCE, f"{FENCE}json\n", f"\n{FENCE}\n", "\n", '"', "}", "]", "\\"]),
    ),
    max_size=5,
).map("".join)
_dump_options = st.sampled_from(
    [{}, {"ensure_ascii": False}, {"indent": 2}, {"separators": (",", ":")}]
)


@given(obj=_json_objects, before=_prose, after=_prose, options=_dump_options)
def test_any_object_between_prose_is_found(
    obj: dict[str, Any], before: str, after: str, options: dict[str, Any]
) -> None:
    assert extract_json(before + json.dumps(obj, **options) + after) == (True, obj)


@given(text=st.text(alphabet=st.sampled_from('{}[]":,\\` \nax1-tn'), max_size=60) | st.text())
def test_any_text_gives_a_well_formed_answer(text: str) -> None:
    matched, value = extract_json(text)
    assert (matched and isinstance(value, dict)) or (not matched and value is None)
