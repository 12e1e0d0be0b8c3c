"""Bucket-name and key rules (SPEC §4, storaged): tables of known cases and hypothesis
properties (a key that validates always maps strictly inside its bucket directory; no input
makes validation raise anything but InvalidInput)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lakehouse_common.errors import InvalidInput
from lakehouse_common.store.keys import (
    MAX_KEY_BYTES,
    resolve_key,
    validate_bucket,
    validate_key,
    validate_prefix,
)

BUCKET_DIR = Path("/srv/lakehouse/data/lakehouse")


class TestValidateBucket:
    @pytest.mark.parametrize(
        "name", ["lakehouse", "abc", "a-b", "0-9", "---", "x" * 63, "datasets-2024"]
    )
    def test_valid_names_pass(self, name: str) -> None:
        assert validate_bucket(name) == name

    @pytest.mark.parametrize(
        "name",
        ["", "ab", "x" * 64, "Lakehouse", "under_score", "dot.ted", ".meta", ".staging", "a b",
         "ünï", "abc\n", "../x", "a/b"],
    )  # fmt: skip
    def test_invalid_names_raise_invalid_input_naming_bucket_and_rule(self, name: str) -> None:
        with pytest.raises(InvalidInput) as info:
            validate_bucket(name)
        assert repr(name) in info.value.message
        assert "3-63 characters of a-z, 0-9 and '-'" in info.value.message
        assert info.value.status == 400

    @pytest.mark.parametrize("name", [None, 123, b"lakehouse"])
    def test_non_strings_raise_invalid_input(self, name: object) -> None:
        with pytest.raises(InvalidInput):
            validate_bucket(name)


class TestValidateKey:
    @pytest.mark.parametrize(
        "key",
        [
            "a",
            "a/b/c.txt",
            "datasets/workers/v3/part-00000.parquet",
            ".hidden",
            "..hidden",
            "a/...",
            "a/..b",
            "b../c",
            "sp ace/tab-less",
            "unicode/été/ключ/数据",
            "emoji/🙂",
            "/".join(["k" * 255] * 4),
        ],
    )
    def test_valid_keys_pass(self, key: str) -> None:
        assert validate_key(key) == key

    @pytest.mark.parametrize(
        ("key", "reason"),
        [
            ("", "empty"),
            ("../x", "'..' segment"),
            ("a/../b", "'..' segment"),
            ("a/..", "'..' segment"),
            ("/abs", "absolute"),
            ("a//b", "empty segment"),
            ("a/", "empty segment"),
            ("a\x00b", "U+0000"),
            ("a\nb", "U+000A"),
            ("a\x1fb", "U+001F"),
            ("a\x7fb", "U+007F"),
            ("a\x9bb", "U+009B"),
            (".", "'.' segment"),
            ("a/./b", "'.' segment"),
            ("x\\y", "backslash"),
            ("k" * 1025, "1025 bytes"),
            ("ü" * 513, "1026 bytes"),
            ("s" * 256, "segment is longer than 255 bytes"),
            ("bad\udc80", "UTF-8"),
        ],
    )
    def test_invalid_keys_raise_invalid_input_naming_the_reason(
        self, key: str, reason: str
    ) -> None:
        with pytest.raises(InvalidInput) as info:
            validate_key(key)
        assert reason in info.value.message
        assert info.value.message.startswith("invalid key ")

    def test_exactly_1024_bytes_is_allowed(self) -> None:
        key = "/".join(["k" * 255] * 3 + ["k" * 254]) + "/k"
        assert len(key.encode()) == MAX_KEY_BYTES
        assert validate_key(key) == key

    def test_long_key_is_shortened_in_the_message(self) -> None:
        with pytest.raises(InvalidInput) as info:
            validate_key("k" * 5000)
        assert len(info.value.message) < 200

    @pytest.mark.parametrize("key", [None, 7, b"a/b", ["a"]])
    def test_non_strings_raise_invalid_input(self, key: object) -> None:
        with pytest.raises(InvalidInput):
            validate_key(key)


class TestValidatePrefix:
    @pytest.mark.parametrize("prefix", ["", "a", "a/", "datasets/w", "datasets/w/v1/", "é"])
    def test_partial_keys_are_valid_prefixes(self, prefix: str) -> None:
        assert validate_prefix(prefix) == prefix

    @pytest.mark.parametrize("prefix", ["a\x00", "\n", "a\\", "p" * 1025, None])
    def test_invalid_prefixes_raise_invalid_input(self, prefix: object) -> None:
        with pytest.raises(InvalidInput):
            validate_prefix(prefix)


class TestResolveKey:
    def test_segments_become_nested_paths(self) -> None:
        assert resolve_key(BUCKET_DIR, "a/b/c") == BUCKET_DIR / "a" / "b" / "c"

    def test_invalid_key_is_refused_before_any_path_is_built(self) -> None:
        with pytest.raises(InvalidInput):
            resolve_key(BUCKET_DIR, "../../etc/passwd")


# Alphabet that makes traversal-shaped strings likely: separators, dots, a backslash, controls.
_TRICKY_PIECES = [*"ab./\\\x00\n~é", "..", "//", "\udc80"]
_TRICKY = st.lists(st.sampled_from(_TRICKY_PIECES), max_size=30).map("".join)
_CONTROLS: tuple[Literal["Cc"]] = ("Cc",)
_SEGMENT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=_CONTROLS, exclude_characters="/\\"),
    min_size=1,
    max_size=20,
).filter(lambda s: s not in (".", ".."))


def _strictly_inside(path: Path, base: Path) -> bool:
    resolved, root = os.path.normpath(path), os.path.normpath(base)
    return resolved != root and os.path.commonpath([root, resolved]) == root


class TestKeyProperties:
    @given(st.one_of(_TRICKY, st.text(max_size=300)))
    @example("..")
    @example("a/../../b")
    @example("./a")
    @example("a/.")
    def test_any_key_that_validates_resolves_strictly_inside_the_bucket(self, key: str) -> None:
        try:
            validate_key(key)
        except InvalidInput:
            return
        path = resolve_key(BUCKET_DIR, key)
        assert _strictly_inside(path, BUCKET_DIR)
        # No alias: the path spells the key exactly, segment for segment.
        assert path.relative_to(BUCKET_DIR).as_posix() == key

    @given(st.lists(_SEGMENT, min_size=1, max_size=8))
    def test_keys_built_from_valid_segments_validate(self, segments: list[str]) -> None:
        key = "/".join(segments)
        if len(key.encode()) <= MAX_KEY_BYTES:
            assert validate_key(key) == key
            assert _strictly_inside(resolve_key(BUCKET_DIR, key), BUCKET_DIR)

    @given(
        st.one_of(st.text(), _TRICKY, st.binary(), st.integers(), st.none(), st.lists(st.text()))
    )
    def test_random_input_never_raises_anything_but_invalid_input(self, value: object) -> None:
        for check in (validate_key, validate_bucket, validate_prefix):
            try:
                result = check(value)
            except InvalidInput as exc:
                assert exc.status == 400
                exc.message.encode("utf-8")  # always serialisable, even for lone surrogates
            else:
                assert result == value

    @given(st.text(alphabet="abcxyz0129-_.A/", max_size=70))
    def test_bucket_names_validate_exactly_when_they_match_the_rule(self, name: str) -> None:
        valid = re.fullmatch(r"[a-z0-9-]{3,63}", name) is not None
        try:
            validate_bucket(name)
        except InvalidInput:
            assert not valid
        else:
            assert valid
