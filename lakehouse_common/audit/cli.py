"""``lakehouse audit …``: offline verification of audit logs (SPEC §8, "a CLI verifies logs").

``lakehouse audit verify --key-file KEY LOG.jsonl`` prints exactly one compact JSON object on
stdout, ``{"count":N,"tip":"<hex>","verified":true|false,"error":null|"..."}``, and exits

- 0 when the chain verifies,
- 1 when it does not (``error`` names the first bad row by line and seq),
- 2 on bad input: the log or key file is missing or unreadable, or the key is shorter than
  32 bytes. The same JSON object is printed (``verified`` false, ``count`` 0, ``tip`` the
  genesis value, ``error`` the reason) so scripts parse one shape, and the reason is repeated
  on stderr for people. Usage errors from typer itself (unknown option, missing argument) also
  exit 2, with typer's usage message on stderr and nothing on stdout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lakehouse_common.audit.chain import GENESIS, AuditLogNotFound, VerifyResult, verify_log
from lakehouse_common.audit.keys import AuditKeyError, load_key

__all__ = ["EXIT_BAD_INPUT", "EXIT_NOT_VERIFIED", "EXIT_VERIFIED", "audit_app"]

EXIT_VERIFIED = 0
EXIT_NOT_VERIFIED = 1
EXIT_BAD_INPUT = 2  # the same code click/typer use for usage errors

audit_app = typer.Typer(
    name="audit",
    help="Subject audit logs: verify HMAC chains offline (SPEC §8).",
    no_args_is_help=True,
    add_completion=False,
)


def _emit(result: VerifyResult) -> None:
    # ASCII-only JSON: the output parses the same whatever the terminal's encoding.
    typer.echo(json.dumps(result.as_dict(), separators=(",", ":"), ensure_ascii=True))


def _bad_input(reason: str) -> typer.Exit:
    _emit(VerifyResult(count=0, tip=GENESIS, verified=False, error=reason))
    typer.echo(f"lakehouse audit verify: {reason}", err=True)
    return typer.Exit(EXIT_BAD_INPUT)


@audit_app.command("verify")
def verify(
    log: Annotated[
        Path,
        typer.Argument(
            metavar="LOG.jsonl", help="Audit log (JSONL, one row per line).", show_default=False
        ),
    ],
    key_file: Annotated[
        Path,
        typer.Option(
            "--key-file",
            metavar="KEY",
            help="HMAC key file: its raw bytes are the key (at least 32).",
            show_default=False,
        ),
    ],
) -> None:
    """Verify an audit log's HMAC chain and print {count, tip, verified, error} as JSON."""
    try:
        key = load_key(key_file)
    except AuditKeyError as exc:
        raise _bad_input(exc.message) from None
    try:
        result = verify_log(log, key)
    except AuditLogNotFound as exc:
        raise _bad_input(exc.message) from None
    except OSError as exc:
        raise _bad_input(f"audit log {str(log)!r} is unreadable: {exc.strerror or exc}") from None
    _emit(result)
    raise typer.Exit(EXIT_VERIFIED if result.verified else EXIT_NOT_VERIFIED)
