"""``lakehouse audit …``: offline verification and key handling of audit logs (SPEC §8, issue 7).

``lakehouse audit verify --key-file KEY [--key-file OLD …] LOG.jsonl`` prints exactly one compact
JSON object on stdout, ``{"count":N,"tip":"<hex>","verified":true|false,"error":null|"..."}``,
and exits

- 0 when the chain verifies,
- 1 when it does not (``error`` names the first bad row by line and seq),
- 2 on bad input: the log or a key file is missing or unreadable, or a key is shorter than
  32 bytes. The same JSON object is printed (``verified`` false, ``count`` 0, ``tip`` the
  genesis value, ``error`` the reason) so scripts parse one shape, and the reason is repeated
  on stderr for people. Usage errors from typer itself (unknown option, missing argument) also
  exit 2, with typer's usage message on stderr and nothing on stdout.

A log that spans key rotations needs every epoch's key: give ``--key-file`` once per key.

``lakehouse audit verify-all [DIR]`` verifies every ``*.jsonl`` in DIR (default: catalogd's
``<data_dir>/subjects/audit``) under the configured key ring (current + retired keys; or the
``--key-file`` options) and prints a table (``--json``: one JSON object); exit 0 when every log
verifies, 1 when any does not, 2 on bad input.

``lakehouse audit keygen`` writes a new random key (mode 0600) to the configured ``audit.key_file``
(or ``--key-file``); it never overwrites one (``--if-missing`` makes an existing key a no-op,
``--dev-only`` skips non-development configs: what ``make run`` calls).

``lakehouse audit rotate`` starts a new key epoch: the current key moves to
``<key_file>.retired/epoch-NNNN.key`` and a new one takes its place. catalogd notices on its next
append (no restart); each log's next row is an epoch-start row recording the previous tip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lakehouse_common.audit.chain import GENESIS, AuditLogNotFound, VerifyResult, verify_log
from lakehouse_common.audit.keys import (
    AuditKeyError,
    Keyring,
    generate_key,
    key_id,
    load_key,
    load_keyring,
    load_private_key,
    rotate_key,
)
from lakehouse_common.config import ConfigError, LakehouseSettings, audit_key_path, load_settings

__all__ = [
    "AUDIT_SUBDIR",
    "EXIT_BAD_INPUT",
    "EXIT_NOT_VERIFIED",
    "EXIT_VERIFIED",
    "audit_app",
]

EXIT_VERIFIED = 0
EXIT_NOT_VERIFIED = 1
EXIT_BAD_INPUT = 2  # the same code click/typer use for usage errors
# Where catalogd keeps the subject logs, below server.data_dir.
AUDIT_SUBDIR = Path("subjects") / "audit"

audit_app = typer.Typer(
    name="audit",
    help="Subject audit logs: verify HMAC chains offline, make and rotate keys (SPEC §8).",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config (default: $LAKEHOUSE_CONFIG or the dev config)."),
]


def _emit(result: VerifyResult) -> None:
    # ASCII-only JSON: the output parses the same whatever the terminal's encoding.
    typer.echo(json.dumps(result.as_dict(), separators=(",", ":"), ensure_ascii=True))


def _bad_input(reason: str) -> typer.Exit:
    _emit(VerifyResult(count=0, tip=GENESIS, verified=False, error=reason))
    typer.echo(f"lakehouse audit verify: {reason}", err=True)
    return typer.Exit(EXIT_BAD_INPUT)


def _fail(command: str, reason: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    typer.echo(f"lakehouse audit {command}: {reason}", err=True)
    return typer.Exit(code)


def _settings(command: str, config: Path | None) -> LakehouseSettings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        raise _fail(command, str(exc)) from None


@audit_app.command("verify")
def verify(
    log: Annotated[
        Path,
        typer.Argument(
            metavar="LOG.jsonl", help="Audit log (JSONL, one row per line).", show_default=False
        ),
    ],
    key_file: Annotated[
        list[Path],
        typer.Option(
            "--key-file",
            metavar="KEY",
            help="HMAC key file: its raw bytes are the key (at least 32). Repeat it to give "
            "every epoch's key of a log that spans rotations.",
            show_default=False,
        ),
    ],
) -> None:
    """Verify an audit log's HMAC chain and print {count, tip, verified, error} as JSON."""
    try:
        keyring = Keyring.of(*(load_key(path) for path in key_file))
    except AuditKeyError as exc:
        raise _bad_input(exc.message) from None
    try:
        result = verify_log(log, keyring)
    except AuditLogNotFound as exc:
        raise _bad_input(exc.message) from None
    except OSError as exc:
        raise _bad_input(f"audit log {str(log)!r} is unreadable: {exc.strerror or exc}") from None
    _emit(result)
    raise typer.Exit(EXIT_VERIFIED if result.verified else EXIT_NOT_VERIFIED)


@audit_app.command("verify-all")
def verify_all(
    directory: Annotated[
        Path | None,
        typer.Argument(
            metavar="[DIR]",
            help="Directory of subject logs (*.jsonl); default <data_dir>/subjects/audit.",
            show_default=False,
        ),
    ] = None,
    key_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--key-file",
            metavar="KEY",
            help="Key file(s) to verify with (default: the configured key and its retired keys).",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
) -> None:
    """Verify every subject log in DIR; a table, and exit 1 if any log fails."""
    settings = None
    if directory is None or not key_file:
        settings = _settings("verify-all", config)
    try:
        if key_file:
            keyring = Keyring.of(*(load_key(path) for path in key_file))
        else:
            assert settings is not None
            keyring = load_keyring(audit_key_path(settings), private=False)
        if directory is not None:
            root = directory
        else:
            assert settings is not None
            root = settings.data_dir / AUDIT_SUBDIR
    except AuditKeyError as exc:
        raise _fail("verify-all", exc.message) from None
    if not root.is_dir():
        raise _fail("verify-all", f"{root} is not a directory")
    results: list[tuple[str, VerifyResult]] = []
    for path in sorted(root.glob("*.jsonl")):
        try:
            result = verify_log(path, keyring)
        except (AuditLogNotFound, OSError) as exc:
            result = VerifyResult(count=0, tip=GENESIS, verified=False, error=str(exc))
        results.append((path.stem, result))
    failed = sum(not r.verified for _, r in results)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "directory": str(root),
                    "logs": [_log_json(name, r) for name, r in results],
                    "count": len(results),
                    "verified": len(results) - failed,
                    "failed": failed,
                },
                separators=(",", ":"),
                ensure_ascii=True,
            )
        )
    else:
        _print_table(root, results, failed)
    raise typer.Exit(EXIT_NOT_VERIFIED if failed else EXIT_VERIFIED)


def _log_json(name: str, result: VerifyResult) -> dict[str, Any]:
    return {"subject_id": name, **result.as_dict(), "epochs": result.epochs}


def _print_table(root: Path, results: list[tuple[str, VerifyResult]], failed: int) -> None:
    console = Console(highlight=False)
    table = Table("subject", "rows", "epochs", "verified", "tip", "error", title=str(root))
    for name, result in results:
        table.add_row(
            name,
            str(result.count),
            str(result.epochs),
            "yes" if result.verified else "[red]NO[/red]",
            result.tip[:16],
            result.error or "",
        )
    console.print(table)
    console.print(f"{len(results)} logs: {len(results) - failed} verified, {failed} failed")


@audit_app.command("keygen")
def keygen(
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="Where to write (default: the configured audit.key_file)."),
    ] = None,
    config: ConfigOption = None,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="An existing key is fine: do nothing.")
    ] = False,
    dev_only: Annotated[
        bool,
        typer.Option(
            "--dev-only", help="Do nothing unless the config's server.env is development."
        ),
    ] = False,
) -> None:
    """Write a new random audit key (64 bytes, mode 0600); never overwrites one."""
    if key_file is None or dev_only:
        settings = _settings("keygen", config)
        if dev_only and settings.server.env != "development":
            return
        path = key_file if key_file is not None else audit_key_path(settings)
    else:
        path = key_file
    if path.exists():
        if if_missing:
            try:
                load_private_key(path)
            except AuditKeyError as exc:
                raise _fail("keygen", f"{exc.message}", 1) from None
            return
        raise _fail("keygen", f"{path} exists; `lakehouse audit rotate` replaces a key", 1)
    try:
        key = generate_key(path)
    except OSError as exc:
        raise _fail("keygen", f"cannot write {path}: {exc.strerror or exc}", 1) from None
    typer.echo(f"audit key {key_id(key)} written to {path} (mode 0600)")


@audit_app.command("rotate")
def rotate(
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="The key to rotate (default: the configured one)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Start a new key epoch: retire the current key, write a new one (catalogd follows)."""
    path = key_file if key_file is not None else audit_key_path(_settings("rotate", config))
    try:
        rotation = rotate_key(path)
    except AuditKeyError as exc:
        raise _fail("rotate", exc.message, 1) from None
    except OSError as exc:
        raise _fail("rotate", f"cannot rotate {path}: {exc.strerror or exc}", 1) from None
    typer.echo(
        f"epoch {rotation.epoch}: key {rotation.key_id} now signs new rows; key "
        f"{rotation.previous_key_id} retired to {rotation.retired_path}. Keep both: verifying "
        "needs every epoch's key."
    )
