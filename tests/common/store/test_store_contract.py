"""The object-store contract (SPEC §4, storaged), run against every backend: FsStore in a temp
dir and S3Store against a real moto S3 server process. Backend-specific behaviour (FS crash
recovery, sidecars, folder collisions; S3 metadata and unreachable endpoints) follows."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from lakehouse_common.errors import Conflict, InvalidInput, NotFound, UpstreamUnavailable
from lakehouse_common.store import (
    DEFAULT_BUCKET,
    DEFAULT_CONTENT_TYPE,
    FsStore,
    S3Options,
    S3Store,
    Store,
    open_store,
)
from lakehouse_common.store.base import CHUNK_SIZE, MAX_LIST_LIMIT

B = DEFAULT_BUCKET
MIB = 1024 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def all_keys(store: Store, bucket: str, *, prefix: str = "", limit: int = 1000) -> list[str]:
    keys: list[str] = []
    cursor: str | None = None
    while True:
        page = store.list(bucket, prefix=prefix, limit=limit, cursor=cursor)
        keys.extend(o.key for o in page.objects)
        if page.next_cursor is None:
            return keys
        assert page.next_cursor == page.objects[-1].key
        cursor = page.next_cursor


def staged_files(store: Store) -> list[str]:
    assert isinstance(store, FsStore | S3Store)
    return sorted(os.listdir(store.staging_dir)) if store.staging_dir.exists() else []


class TestRoundTrip:
    def test_put_then_get_and_head_return_content_and_sha256_etag(self, store: Store) -> None:
        data = b"hello lakehouse"
        written = store.put_bytes(B, "docs/hello.txt", data, content_type="text/plain")
        assert written.etag == sha(data)
        assert written.size == len(data)
        assert (written.bucket, written.key) == (B, "docs/hello.txt")
        assert store.get_bytes(B, "docs/hello.txt") == data
        info = store.head(B, "docs/hello.txt")
        assert (info.size, info.etag, info.content_type) == (len(data), sha(data), "text/plain")
        assert isinstance(info.modified, datetime) and info.modified.tzinfo is not None

    def test_content_type_defaults_to_octet_stream(self, store: Store) -> None:
        assert store.put_bytes(B, "blob", b"x").content_type == DEFAULT_CONTENT_TYPE
        assert store.head(B, "blob").content_type == DEFAULT_CONTENT_TYPE

    def test_overwrite_replaces_content_and_etag(self, store: Store) -> None:
        store.put_bytes(B, "k", b"first version")
        info = store.put_bytes(B, "k", b"second")
        assert store.get_bytes(B, "k") == b"second"
        assert store.head(B, "k").etag == info.etag == sha(b"second")
        assert store.head(B, "k").size == 6

    def test_empty_object_round_trips(self, store: Store) -> None:
        store.put_bytes(B, "empty", b"")
        assert store.get_bytes(B, "empty") == b""
        assert store.head(B, "empty").etag == sha(b"")

    def test_unicode_and_dotted_keys_round_trip(self, store: Store) -> None:
        for key in ("données/été ü/ключ.txt", ".hidden", "a/..b/c..", "sp ace/x"):
            store.put_bytes(B, key, key.encode())
            assert store.get_bytes(B, key) == key.encode()

    def test_open_read_reports_info_and_streams_content(self, store: Store) -> None:
        store.put_bytes(B, "s", b"abc")
        info, stream = store.open_read(B, "s")
        assert info.etag == sha(b"abc")
        assert b"".join(stream) == b"abc"


class TestCreateOnly:
    def test_create_only_succeeds_then_conflicts(self, store: Store) -> None:
        store.put_bytes(B, "v/1", b"winner", create_only=True)
        with pytest.raises(Conflict, match="v/1"):
            store.put_bytes(B, "v/1", b"loser", create_only=True)
        assert store.get_bytes(B, "v/1") == b"winner"
        assert store.head(B, "v/1").etag == sha(b"winner")

    def test_concurrent_create_only_commits_have_exactly_one_winner(self, store: Store) -> None:
        writers = 8
        barrier = threading.Barrier(writers)
        winners: list[int] = []
        losers: list[int] = []
        errors: list[BaseException] = []

        def write(n: int) -> None:
            with store.stage() as staged:
                staged.write(f"writer {n}".encode())
                barrier.wait()
                try:
                    store.commit(staged, B, "manifest/v7", create_only=True)
                    winners.append(n)
                except Conflict:
                    losers.append(n)
                except BaseException as exc:
                    errors.append(exc)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(winners) == 1 and len(losers) == writers - 1
        assert store.get_bytes(B, "manifest/v7") == f"writer {winners[0]}".encode()
        assert staged_files(store) == []

    def test_create_only_after_delete_succeeds(self, store: Store) -> None:
        store.put_bytes(B, "once", b"1", create_only=True)
        store.delete(B, "once")
        store.put_bytes(B, "once", b"2", create_only=True)
        assert store.get_bytes(B, "once") == b"2"


class TestDelete:
    def test_delete_then_not_found(self, store: Store) -> None:
        store.put_bytes(B, "gone/soon", b"x")
        store.delete(B, "gone/soon")
        with pytest.raises(NotFound):
            store.head(B, "gone/soon")
        with pytest.raises(NotFound):
            store.get_bytes(B, "gone/soon")
        assert all_keys(store, B) == []

    @pytest.mark.parametrize(
        "operation",
        [
            lambda s, b, k: s.get_bytes(b, k),
            lambda s, b, k: s.head(b, k),
            lambda s, b, k: s.delete(b, k),
            lambda s, b, k: s.open_read(b, k),
        ],
        ids=["get", "head", "delete", "open_read"],
    )
    @pytest.mark.parametrize("bucket", [B, "never-written"])
    def test_missing_object_is_not_found_naming_bucket_and_key(
        self, store: Store, operation: Callable[[Store, str, str], Any], bucket: str
    ) -> None:
        store.put_bytes(B, "present", b"x")
        with pytest.raises(NotFound) as info:
            operation(store, bucket, "no/such/key")
        assert f"{bucket}/no/such/key" in info.value.message
        assert info.value.status == 404

    def test_prefix_folder_is_not_an_object(self, store: Store) -> None:
        store.put_bytes(B, "dir/file", b"x")
        with pytest.raises(NotFound):
            store.head(B, "dir")
        with pytest.raises(NotFound):
            store.delete(B, "dir")
        assert store.get_bytes(B, "dir/file") == b"x"


LISTED_KEYS = sorted(
    [
        "a",
        "a-c",
        "a.b",
        "a0",
        "ab/c",
        "a~",
        "b/x/1",
        "b/x/2",
        "b/x-y",
        "b/y",
        "b0",
        "data/v1/part-0.parquet",
        "data/v1/part-1.parquet",
        "data/v10/part-0.parquet",
        "data/v2/part-0.parquet",
        "z",
        "é/1",
        "zz/deep/deeper/deepest",
    ]
)


@pytest.fixture(scope="module", params=["fs", "s3"])
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """A store of each backend holding LISTED_KEYS, shared by the read-only listing tests (moto
    answers in ~10 ms per request, so filling a store per test would dominate the run time)."""
    store: Store
    if request.param == "fs":
        store = FsStore(tmp_path_factory.mktemp("listed"))
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        store = S3Store(endpoint, "us-east-1", "testing", "testing", bucket_prefix="listed-")
    for key in reversed(LISTED_KEYS):
        store.put_bytes(B, key, key.encode())
    yield store
    store.close()


class TestList:
    def test_list_returns_every_key_in_lexicographic_order(self, filled: Store) -> None:
        page = filled.list(B)
        assert [o.key for o in page.objects] == LISTED_KEYS
        assert page.next_cursor is None
        assert LISTED_KEYS == sorted(LISTED_KEYS, key=lambda k: k.encode())

    def test_listed_objects_carry_size_and_etag(self, filled: Store) -> None:
        for info in filled.list(B).objects:
            assert info.etag == sha(info.key.encode())
            assert info.size == len(info.key.encode())
            assert info.bucket == B

    @pytest.mark.parametrize("prefix", ["b/", "b", "data/v1", "data/v1/", "a", "nope", "é"])
    def test_list_with_prefix(self, filled: Store, prefix: str) -> None:
        expected = [k for k in LISTED_KEYS if k.startswith(prefix)]
        assert [o.key for o in filled.list(B, prefix=prefix).objects] == expected

    @pytest.mark.parametrize("limit", [1, 2, 5, 7, len(LISTED_KEYS) - 1, len(LISTED_KEYS)])
    def test_pagination_covers_every_key_exactly_once_in_order(
        self, filled: Store, limit: int
    ) -> None:
        assert all_keys(filled, B, limit=limit) == LISTED_KEYS

    def test_pagination_with_prefix(self, filled: Store) -> None:
        expected = [k for k in LISTED_KEYS if k.startswith("data/")]
        assert all_keys(filled, B, prefix="data/", limit=2) == expected

    def test_page_sizes_and_cursors(self, filled: Store) -> None:
        first = filled.list(B, limit=5)
        assert [o.key for o in first.objects] == LISTED_KEYS[:5]
        assert first.next_cursor == LISTED_KEYS[4]
        last = filled.list(B, limit=100, cursor=LISTED_KEYS[-2])
        assert [o.key for o in last.objects] == LISTED_KEYS[-1:]
        assert last.next_cursor is None

    def test_cursor_that_is_not_a_key_starts_after_it(self, filled: Store) -> None:
        page = filled.list(B, cursor="b/x")
        assert [o.key for o in page.objects] == [k for k in LISTED_KEYS if k > "b/x"]

    def test_cursor_past_the_last_key_lists_empty(self, filled: Store) -> None:
        assert filled.list(B, cursor="\u00ff").objects == []

    def test_unknown_bucket_lists_empty(self, store: Store) -> None:
        page = store.list("never-written")
        assert page.objects == [] and page.next_cursor is None

    def test_emptied_bucket_lists_empty(self, store: Store) -> None:
        store.put_bytes(B, "x/y/z", b"1")
        store.delete(B, "x/y/z")
        assert store.list(B).objects == []

    @pytest.mark.parametrize("limit", [0, -1, MAX_LIST_LIMIT + 1])
    def test_limit_out_of_range_is_invalid_input(self, store: Store, limit: int) -> None:
        with pytest.raises(InvalidInput, match="limit"):
            store.list(B, limit=limit)

    def test_max_limit_is_accepted(self, filled: Store) -> None:
        assert len(filled.list(B, limit=MAX_LIST_LIMIT).objects) == len(LISTED_KEYS)

    def test_buckets_come_into_being_on_first_write(self, store: Store) -> None:
        assert "fresh-bucket" not in store.list_buckets()
        store.put_bytes("fresh-bucket", "k", b"x")
        store.put_bytes("another-1", "k", b"x")
        buckets = store.list_buckets()
        assert {"fresh-bucket", "another-1"} <= set(buckets)
        assert buckets == sorted(buckets)
        assert [o.key for o in store.list("fresh-bucket").objects] == ["k"]

    def test_buckets_are_separate_namespaces(self, store: Store) -> None:
        store.put_bytes("bucket-a", "k", b"a")
        store.put_bytes("bucket-b", "k", b"b")
        assert store.get_bytes("bucket-a", "k") == b"a"
        assert store.get_bytes("bucket-b", "k") == b"b"


BAD_KEYS = [
    pytest.param("../x", id="dotdot-first"),
    pytest.param("a/../b", id="dotdot-middle"),
    pytest.param("a/..", id="dotdot-last"),
    pytest.param("/abs", id="absolute"),
    pytest.param("a//b", id="empty-segment"),
    pytest.param("a/", id="trailing-slash"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\x7fb", id="del"),
    pytest.param("a\x85b", id="c1-control"),
    pytest.param(".", id="dot"),
    pytest.param("a/./b", id="dot-segment"),
    pytest.param("x\\y", id="backslash"),
    pytest.param("", id="empty"),
    pytest.param("k" * 1025, id="1025-bytes"),
    pytest.param("é" * 513, id="1026-utf8-bytes"),
    pytest.param("s" * 256, id="256-byte-segment"),
    pytest.param("bad\udc80", id="lone-surrogate"),
]

BAD_BUCKETS = [
    pytest.param("ab", id="too-short"),
    pytest.param("b" * 64, id="too-long"),
    pytest.param("Upper", id="uppercase"),
    pytest.param("under_score", id="underscore"),
    pytest.param("dot.ted", id="dot"),
    pytest.param(".meta", id="meta-dir"),
    pytest.param(".staging", id="staging-dir"),
    pytest.param("../etc", id="traversal"),
    pytest.param("", id="empty"),
    pytest.param("bücket", id="non-ascii"),
    pytest.param("abc\n", id="trailing-newline"),
]

OPERATIONS: list[Any] = [
    pytest.param(lambda s, b, k: s.put_bytes(b, k, b"x"), id="put"),
    pytest.param(lambda s, b, k: s.put_bytes(b, k, b"x", create_only=True), id="put-create"),
    pytest.param(lambda s, b, k: s.get_bytes(b, k), id="get"),
    pytest.param(lambda s, b, k: s.open_read(b, k), id="open_read"),
    pytest.param(lambda s, b, k: s.head(b, k), id="head"),
    pytest.param(lambda s, b, k: s.delete(b, k), id="delete"),
]


class TestValidation:
    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_bad_keys_are_invalid_input_for_every_operation(self, store: Store, key: str) -> None:
        for param in OPERATIONS:
            operation = param.values[0]
            with pytest.raises(InvalidInput) as info:
                operation(store, B, key)
            assert info.value.status == 400 and "key" in info.value.message
        assert store.list(B).objects == []
        assert staged_files(store) == []

    @pytest.mark.parametrize("bucket", BAD_BUCKETS)
    def test_bad_bucket_names_are_invalid_input_for_every_operation(
        self, store: Store, bucket: str
    ) -> None:
        for param in OPERATIONS:
            operation = param.values[0]
            with pytest.raises(InvalidInput) as info:
                operation(store, bucket, "k")
            assert repr(bucket) in info.value.message
        with pytest.raises(InvalidInput):
            store.list(bucket)
        assert store.list_buckets() == []

    def test_bad_key_on_commit_consumes_the_staged_object(self, store: Store) -> None:
        staged = store.stage()
        staged.write(b"data")
        with pytest.raises(InvalidInput):
            store.commit(staged, B, "../escape")
        assert staged_files(store) == []

    @pytest.mark.parametrize("prefix", ["a\x00", "a\\b", "\n"])
    def test_bad_list_prefix_is_invalid_input(self, store: Store, prefix: str) -> None:
        with pytest.raises(InvalidInput):
            store.list(B, prefix=prefix)

    def test_header_injection_in_content_type_is_invalid_input(self, store: Store) -> None:
        with pytest.raises(InvalidInput, match="content type"):
            store.put_bytes(B, "k", b"x", content_type="text/plain\r\nX-Evil: 1")
        assert store.list(B).objects == []


class TestStreaming:
    def test_multi_megabyte_object_streams_in_chunks(self, store: Store) -> None:
        block = os.urandom(64 * 1024)
        total = 12 * MIB  # above the S3 fixture's multipart threshold: exercises multipart
        digest = hashlib.sha256()
        with store.stage() as staged:
            for _ in range(total // len(block)):
                staged.write(block)
                digest.update(block)
            committed = store.commit(staged, B, "big/blob.bin", create_only=True)
        assert committed.size == total and committed.etag == digest.hexdigest()

        info, stream = store.open_read(B, "big/blob.bin")
        assert info.size == total and info.etag == digest.hexdigest()
        read_back = hashlib.sha256()
        chunks = 0
        size = 0
        with stream:
            for chunk in stream:
                assert 0 < len(chunk) <= CHUNK_SIZE
                read_back.update(chunk)
                size += len(chunk)
                chunks += 1
        assert size == total and read_back.hexdigest() == digest.hexdigest()
        assert chunks >= total // CHUNK_SIZE
        with pytest.raises(Conflict):
            store.put_bytes(B, "big/blob.bin", b"small", create_only=True)
        assert store.head(B, "big/blob.bin").etag == digest.hexdigest()

    def test_stream_closed_early_can_be_abandoned(self, store: Store) -> None:
        store.put_bytes(B, "two-chunks", b"z" * (CHUNK_SIZE + 10))
        _, stream = store.open_read(B, "two-chunks")
        assert len(next(stream)) > 0
        stream.close()
        assert list(stream) == []
        store.delete(B, "two-chunks")  # nothing holds it


class TestStaging:
    def test_aborted_stage_leaves_nothing_behind(self, store: Store) -> None:
        staged = store.stage()
        staged.write(b"never published")
        assert staged_files(store) != []
        staged.abort()
        assert staged_files(store) == []
        assert store.list(B).objects == []
        with pytest.raises(ValueError):
            staged.write(b"more")

    def test_leaving_the_block_without_commit_aborts(self, store: Store) -> None:
        with pytest.raises(RuntimeError), store.stage() as staged:
            staged.write(b"x")
            raise RuntimeError("client went away")
        with store.stage() as staged:
            staged.write(b"forgotten")
        assert staged_files(store) == []
        assert store.list(B).objects == []

    def test_failed_create_only_commit_consumes_the_staged_object(self, store: Store) -> None:
        store.put_bytes(B, "k", b"1")
        staged = store.stage()
        staged.write(b"2")
        with pytest.raises(Conflict):
            store.commit(staged, B, "k", create_only=True)
        assert staged_files(store) == []
        with pytest.raises(ValueError):
            store.commit(staged, B, "other")

    def test_staged_object_tracks_size_and_sha256(self, store: Store) -> None:
        with store.stage() as staged:
            staged.write(b"ab")
            staged.write(memoryview(b"cd"))
            assert staged.size == 4 and staged.sha256 == sha(b"abcd")
            info = store.commit(staged, B, "k")
        assert info.etag == sha(b"abcd")
        assert staged_files(store) == []

    def test_staged_object_of_another_store_is_refused(self, store: Store, tmp_path: Path) -> None:
        other = FsStore(tmp_path / "other")
        with other.stage() as staged, pytest.raises(ValueError):
            store.commit(staged, B, "k")


class TestFsOnly:
    def test_crash_between_stage_and_commit_leaves_no_visible_object(self, tmp_path: Path) -> None:
        root = tmp_path / "data"
        FsStore(root).put_bytes(B, "existing", b"old")
        script = (
            "import os, sys\n"
            "from lakehouse_common.store import FsStore\n"
            "store = FsStore(sys.argv[1])\n"
            "staged = store.stage()\n"
            "staged.write(b'half-written' * 1000)\n"
            "os._exit(3)\n"
        )
        done = subprocess.run([sys.executable, "-c", script, str(root)], timeout=30)
        assert done.returncode == 3
        leftovers = list((root / ".staging").iterdir())
        assert len(leftovers) == 1  # the crashed writer's staged file

        store = FsStore(root)  # within the grace period: left for now
        assert [o.key for o in store.list(B).objects] == ["existing"]
        assert store.get_bytes(B, "existing") == b"old"
        assert leftovers[0].exists()

        os.utime(leftovers[0], (1, 1))  # long abandoned
        FsStore(root)
        assert list((root / ".staging").iterdir()) == []

    def test_cleanup_never_removes_a_live_staged_file(self, fs_store: FsStore) -> None:
        with fs_store.stage() as staged:
            staged.write(b"slow upload")
            os.utime(staged.path, (1, 1))
            assert fs_store.clean_staging(grace_s=0) == 0
            assert staged.path.exists()
            info = fs_store.commit(staged, B, "slow")
        assert info.etag == sha(b"slow upload")

    def test_object_where_a_folder_is_needed_is_conflict(self, fs_store: FsStore) -> None:
        fs_store.put_bytes(B, "a/b", b"file")
        for key in ("a/b/c", "a/b/c/d"):
            for create_only in (False, True):
                with pytest.raises(Conflict, match="a/b is an object"):
                    fs_store.put_bytes(B, key, b"x", create_only=create_only)
        assert all_keys(fs_store, B) == ["a/b"]
        assert fs_store.staging_dir.exists() and staged_files(fs_store) == []

    def test_folder_where_an_object_is_needed_is_conflict(self, fs_store: FsStore) -> None:
        fs_store.put_bytes(B, "a/b/c", b"file")
        for key in ("a", "a/b"):
            for create_only in (False, True):
                with pytest.raises(Conflict, match="other keys start with"):
                    fs_store.put_bytes(B, key, b"x", create_only=create_only)
        assert all_keys(fs_store, B) == ["a/b/c"]

    def test_key_becomes_a_folder_again_after_delete(self, fs_store: FsStore) -> None:
        fs_store.put_bytes(B, "a", b"file")
        fs_store.delete(B, "a")
        fs_store.put_bytes(B, "a/b", b"nested")
        fs_store.delete(B, "a/b")
        fs_store.put_bytes(B, "a", b"file again")
        assert all_keys(fs_store, B) == ["a"]
        assert fs_store.head(B, "a").etag == sha(b"file again")

    def test_concurrent_writes_and_deletes_on_nested_keys_only_raise_contract_errors(
        self, fs_store: FsStore
    ) -> None:
        # Deletes prune empty folders while other writers create folders below them, and "x"
        # and "x/y" fight over being a file or a folder: only NotFound/Conflict may come out.
        keys = ["x", "x/y", "x/y/z", "x/q", "w/v/u"]
        errors: list[str] = []

        def work(seed: int) -> None:
            rng = random.Random(seed)
            for i in range(150):
                key = rng.choice(keys)
                roll = rng.random()
                try:
                    if roll < 0.45:
                        fs_store.put_bytes(B, key, b"%d-%d" % (seed, i), create_only=roll < 0.1)
                    elif roll < 0.8:
                        fs_store.delete(B, key)
                    elif roll < 0.9:
                        info, stream = fs_store.open_read(B, key)
                        assert sha(stream.read_all()) == info.etag
                    else:
                        fs_store.list(B)
                except (NotFound, Conflict):
                    pass
                except Exception as exc:  # collected for the assertion below
                    errors.append(repr(exc))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert staged_files(fs_store) == []
        for info in fs_store.list(B).objects:
            assert sha(fs_store.get_bytes(B, info.key)) == info.etag

    def test_stale_sidecar_after_file_replaced_behind_the_store_yields_correct_etag(
        self, fs_store: FsStore, tmp_path: Path
    ) -> None:
        fs_store.put_bytes(B, "k/v", b"original", content_type="text/plain")
        path = fs_store.path_of(B, "k/v")
        replacement = tmp_path / "replacement"
        replacement.write_bytes(b"swapped in by hand")
        os.replace(replacement, path)  # new inode, same path

        assert fs_store.head(B, "k/v").etag == sha(b"swapped in by hand")
        assert fs_store.list(B).objects[0].etag == sha(b"swapped in by hand")
        info, stream = fs_store.open_read(B, "k/v")
        assert (
            info.etag == sha(b"swapped in by hand") and stream.read_all() == b"swapped in by hand"
        )

        with open(path, "r+b") as f:  # rewritten in place: same inode, new size
            f.write(b"in place, longer than before")
        assert fs_store.head(B, "k/v").etag == sha(b"in place, longer than before")

    def test_missing_sidecar_is_rebuilt(self, fs_store: FsStore) -> None:
        fs_store.put_bytes(B, "x/y", b"content")
        (fs_store.root / ".meta" / B / "x" / "y").unlink()
        assert fs_store.head(B, "x/y").etag == sha(b"content")
        assert (fs_store.root / ".meta" / B / "x" / "y").exists()

    def test_stale_sidecar_where_a_folder_is_needed_does_not_break_writes(
        self, fs_store: FsStore
    ) -> None:
        (fs_store.root / ".meta" / B).mkdir(parents=True)
        (fs_store.root / ".meta" / B / "a").write_text("{}")  # left by a crash mid-delete
        info = fs_store.put_bytes(B, "a/b", b"nested")
        assert fs_store.head(B, "a/b") == info

    def test_delete_prunes_empty_folders_but_keeps_the_bucket(self, fs_store: FsStore) -> None:
        fs_store.put_bytes(B, "p/q/r/s", b"x")
        fs_store.put_bytes(B, "p/keep", b"y")
        fs_store.delete(B, "p/q/r/s")
        assert not (fs_store.root / B / "p" / "q").exists()
        assert not (fs_store.root / ".meta" / B / "p" / "q").exists()
        fs_store.delete(B, "p/keep")
        assert (fs_store.root / B).is_dir()
        assert list((fs_store.root / B).iterdir()) == []
        assert fs_store.list_buckets() == [B]

    def test_symlinks_planted_in_the_tree_are_never_followed(
        self, fs_store: FsStore, tmp_path: Path
    ) -> None:
        secret = tmp_path / "secret.txt"
        secret.write_bytes(b"outside the store")
        fs_store.put_bytes(B, "real", b"x")
        (fs_store.root / B / "link").symlink_to(secret)
        (fs_store.root / B / "dirlink").symlink_to(tmp_path)
        with pytest.raises(NotFound):
            fs_store.get_bytes(B, "link")
        with pytest.raises(NotFound):
            fs_store.head(B, "link")
        assert all_keys(fs_store, B) == ["real"]

    def test_reserved_folders_are_not_buckets(self, fs_store: FsStore) -> None:
        fs_store.put_bytes(B, "k", b"x")
        (fs_store.root / "Not_A_Bucket").mkdir()
        assert fs_store.list_buckets() == [B]

    def test_objects_live_at_root_bucket_key(self, fs_store: FsStore) -> None:
        fs_store.put_bytes(B, "datasets/w/v1/part-0.parquet", b"pq")
        path = fs_store.root / B / "datasets" / "w" / "v1" / "part-0.parquet"
        assert path.read_bytes() == b"pq"
        assert fs_store.path_of(B, "datasets/w/v1/part-0.parquet") == path


class TestS3Only:
    def test_unreachable_endpoint_is_upstream_unavailable(self, unreachable_endpoint: str) -> None:
        endpoint = unreachable_endpoint
        store = S3Store(
            endpoint, "us-east-1", "k", "s", max_attempts=1, connect_timeout=0.5, read_timeout=1
        )
        try:
            calls: list[Callable[[], Any]] = [
                lambda: store.head(B, "k"),
                lambda: store.get_bytes(B, "k"),
                lambda: store.put_bytes(B, "k", b"x"),
                lambda: store.list(B),
                lambda: store.list_buckets(),
            ]
            for call in calls:
                with pytest.raises(UpstreamUnavailable) as info:
                    call()
                assert endpoint in info.value.message and info.value.status == 502
            assert staged_files(store) == []
        finally:
            store.close()

    def test_sha256_is_kept_in_object_metadata(self, s3_store: S3Store, moto_endpoint: str) -> None:
        s3_store.put_bytes(B, "meta/k", b"payload", content_type="application/json")
        raw = self._client(moto_endpoint).head_object(
            Bucket=s3_store.physical_bucket(B), Key="meta/k"
        )
        assert raw["Metadata"]["sha256"] == sha(b"payload")
        assert raw["ContentType"] == "application/json"

    def test_object_written_by_someone_else_is_hashed(
        self, s3_store: S3Store, moto_endpoint: str
    ) -> None:
        s3_store.put_bytes(B, "mine", b"x")  # creates the bucket
        self._client(moto_endpoint).put_object(
            Bucket=s3_store.physical_bucket(B), Key="foreign", Body=b"no metadata"
        )
        assert s3_store.head(B, "foreign").etag == sha(b"no metadata")
        info, stream = s3_store.open_read(B, "foreign")
        assert info.etag == sha(b"no metadata") and stream.read_all() == b"no metadata"
        assert [o.etag for o in s3_store.list(B, prefix="f").objects] == [sha(b"no metadata")]

    def test_foreign_keys_that_break_the_key_rules_are_not_listed(
        self, s3_store: S3Store, moto_endpoint: str
    ) -> None:
        s3_store.put_bytes(B, "ok", b"x")
        client = self._client(moto_endpoint)
        for key in ("a//b", "back\\slash", "trailing/"):
            client.put_object(Bucket=s3_store.physical_bucket(B), Key=key, Body=b"x")
        assert all_keys(s3_store, B, limit=1) == ["ok"]

    def test_bucket_prefix_names_the_s3_bucket(self, s3_store: S3Store, moto_endpoint: str) -> None:
        s3_store.put_bytes("my-bucket", "k", b"x")
        names = {b["Name"] for b in self._client(moto_endpoint).list_buckets()["Buckets"]}
        assert s3_store.bucket_prefix + "my-bucket" in names
        assert s3_store.list_buckets() == ["my-bucket"]

    def test_name_s3_cannot_hold_is_invalid_on_write_and_empty_on_read(
        self, s3_store: S3Store
    ) -> None:
        with pytest.raises(InvalidInput, match="S3"):
            s3_store.put_bytes("bucket-", "k", b"x")  # valid store name, S3 wants alnum last
        with pytest.raises(NotFound):
            s3_store.head("bucket-", "k")
        assert s3_store.list("bucket-").objects == []

    def test_bucket_deleted_behind_the_store_is_recreated(
        self, s3_store: S3Store, moto_endpoint: str
    ) -> None:
        s3_store.put_bytes(B, "k", b"x")
        s3_store.delete(B, "k")
        self._client(moto_endpoint).delete_bucket(Bucket=s3_store.physical_bucket(B))
        s3_store.put_bytes(B, "k", b"again")
        assert s3_store.get_bytes(B, "k") == b"again"

    @staticmethod
    def _client(endpoint: str) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


class TestOpenStore:
    def test_fs_backend(self, tmp_path: Path) -> None:
        with open_store("fs", root=tmp_path) as store:
            assert isinstance(store, FsStore)
            store.put_bytes(B, "k", b"x")
            assert (tmp_path / B / "k").read_bytes() == b"x"

    def test_s3_backend_stages_below_root_when_given(
        self, tmp_path: Path, moto_endpoint: str
    ) -> None:
        options = S3Options(moto_endpoint, "us-east-1", "testing", "testing", "factory-")
        with open_store("s3", root=tmp_path, s3=options) as store:
            assert isinstance(store, S3Store)
            assert store.staging_dir == tmp_path / ".staging-s3"
            store.put_bytes(B, "k", b"x")
            assert store.get_bytes(B, "k") == b"x"

    def test_fs_backend_needs_a_root(self) -> None:
        with pytest.raises(ValueError, match="root"):
            open_store("fs")

    def test_unknown_backend_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="unknown"):
            open_store("gcs", root=tmp_path)  # type: ignore[arg-type]


def test_s3_fixture_stores_are_isolated(s3_store_factory: Callable[[], S3Store]) -> None:
    """Each S3 fixture store gets its own bucket prefix, so tests cannot see each other."""
    first, second = s3_store_factory(), s3_store_factory()
    first.put_bytes(B, "k", b"x")
    assert second.list(B).objects == [] and second.list_buckets() == []
