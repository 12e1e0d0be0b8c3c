"""``lakehouse gen-workers``: write the deterministic demo roster as Parquet (SPEC §4, "Demo data").

``lakehouse gen-workers --rows N --out FILE.parquet [--seed S]`` generates N workers with
:func:`lakehouse_common.ops.roster.write_roster` (same rows and seed → the same bytes), creating
missing parent directories and replacing ``FILE`` atomically (temp file + fsync + rename). On
success it prints one line on stdout::

    gen-workers: 500000 rows -> data/workers.parquet (17207833 bytes) in 1.41 s, seed 42

Exit codes: 0 written; 1 the file could not be written (reason on stderr); 2 bad input
(``--rows`` below 1, a negative ``--seed``) — the code typer uses for its own usage errors.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from lakehouse_common.ops.roster import DEFAULT_SEED, write_roster

__all__ = ["EXIT_BAD_INPUT", "EXIT_WRITE_FAILED", "gen_workers"]

EXIT_WRITE_FAILED = 1
EXIT_BAD_INPUT = 2  # the same code click/typer use for usage errors


def _fail(reason: str, code: int) -> typer.Exit:
    typer.echo(f"lakehouse gen-workers: {reason}", err=True)
    return typer.Exit(code)


def gen_workers(
    rows: Annotated[
        int, typer.Option("--rows", help="Number of workers to generate (at least 1).")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="FILE.parquet",
            help="Parquet file to write; parent directories are created, an existing file is "
            "replaced atomically.",
        ),
    ],
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed (>= 0): same rows + seed, same bytes.")
    ] = DEFAULT_SEED,
) -> None:
    """Generate a deterministic demo roster of workers as Parquet (zstd)."""
    if rows < 1:
        raise _fail(f"--rows must be at least 1, got {rows}", EXIT_BAD_INPUT)
    if seed < 0:
        raise _fail(f"--seed must be >= 0, got {seed}", EXIT_BAD_INPUT)
    if out.is_dir():
        raise _fail(f"--out {out} is a directory, expected a file path", EXIT_BAD_INPUT)
    started = time.perf_counter()
    try:
        written = write_roster(out, rows, seed)
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc}", EXIT_WRITE_FAILED) from exc
    elapsed = time.perf_counter() - started
    typer.echo(
        f"gen-workers: {written.rows} rows -> {written.path} ({written.bytes} bytes) "
        f"in {elapsed:.2f} s, seed {written.seed}"
    )
