"""The group-committed append log in-process: tail repair, line index, paged reads, failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lakehouse_common.appendlog import CHECKPOINT_EVERY, AppendLog, repair_tail, scan
from lakehouse_common.errors import ServiceUnavailable


def line(n: int) -> bytes:
    return b'{"n":%d}\n' % n


class TestRepair:
    @pytest.mark.parametrize(
        ("content", "kept"),
        [
            (b"", b""),
            (b"a\nb\n", b"a\nb\n"),
            (b"a\nb\npart", b"a\nb\n"),
            (b"partial only", b""),
            (b"a\n" + b"x" * (3 * 1024 * 1024), b"a\n"),  # tail longer than one read chunk
        ],
    )
    def test_truncates_after_the_last_newline(
        self, tmp_path: Path, content: bytes, kept: bytes
    ) -> None:
        path = tmp_path / "s.jsonl"
        path.write_bytes(content)
        assert repair_tail(path) == len(content) - len(kept)
        assert path.read_bytes() == kept


class TestScanAndRead:
    async def test_pages_across_checkpoints_after_reopen(self, tmp_path: Path) -> None:
        path = tmp_path / "s.jsonl"
        total = 3 * CHECKPOINT_EVERY + 17
        path.write_bytes(b"".join(line(n) for n in range(total)))
        found = scan(path)
        assert (found.lines, found.size, len(found.checkpoints)) == (total, path.stat().st_size, 4)

        log = AppendLog(path)
        log.open()
        await log.start()
        more = [line(n) for n in range(total, total + CHECKPOINT_EVERY)]
        assert await log.append(more) == (total, total + CHECKPOINT_EVERY)
        await log.close()
        end = total + CHECKPOINT_EVERY
        for since in (
            0,
            5,
            CHECKPOINT_EVERY - 1,
            CHECKPOINT_EVERY,
            2 * CHECKPOINT_EVERY + 3,
            end - 2,
        ):
            assert log.read_lines(since, 4) == [line(n) for n in range(since, min(since + 4, end))]
        assert log.read_lines(end, 10) == []
        assert list(log.iter_lines()) == [line(n) for n in range(end)]

    async def test_concurrent_appends_get_contiguous_ranges(self, tmp_path: Path) -> None:
        commits: list[tuple[int, int]] = []
        log = AppendLog(
            tmp_path / "s.jsonl",
            commit_window_s=0.01,
            on_commit=lambda lines, appends, _: commits.append((lines, appends)),
        )
        log.open()
        await log.start()
        batches = [[line(w * 100 + k) for k in range(1 + w % 4)] for w in range(20)]
        answers = await asyncio.gather(*(log.append(b) for b in batches))
        await log.close()
        stored = log.read_lines(0, 1000)
        for batch, (first, _) in zip(batches, answers, strict=True):
            assert stored[first : first + len(batch)] == batch
        assert sum(a for _, a in commits) == 20 and len(commits) < 20
        assert (tmp_path / "s.jsonl").read_bytes() == b"".join(stored)


class TestFailures:
    async def test_append_after_close_is_refused(self, tmp_path: Path) -> None:
        log = AppendLog(tmp_path / "s.jsonl")
        log.open()
        await log.start()
        await log.close()
        with pytest.raises(ServiceUnavailable):
            await log.append([line(1)])

    async def test_failed_write_is_refused_and_leaves_no_partial_line(self, tmp_path: Path) -> None:
        directory = tmp_path / "kb"
        log = AppendLog(directory / "s.jsonl")
        log.open()
        await log.start()
        directory.write_bytes(b"")  # a file where the directory should be: the write fails
        with pytest.raises(ServiceUnavailable):
            await log.append([line(1)])
        directory.unlink()
        assert (log.lines, log.size) == (0, 0)
        assert await log.append([line(2)]) == (0, 1)  # and the log recovers once it can write
        await log.close()
        assert (directory / "s.jsonl").read_bytes() == line(2)
