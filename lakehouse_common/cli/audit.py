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
append (no restart). With the config (or ``--logs DIR``) rotation is eager (issue 18): every log
gets its epoch-start row now, and a signed checkpoint records their heads and the retirement.

Issue 18: ``verify-all`` also checks each log against the signed checkpoints (``--checkpoints``,
``--public-key``; a clean cut, an emptied, deleted or older log is named with the checkpoint it
contradicts, rows past it are ``unanchored``) and the checkpoint log against the witness
(``--witness-dir`` or the configured one); ``--no-anchors`` checks the chains only. ``keygen``
with a config also writes the Ed25519 checkpoint signing pair. ``lakehouse audit repair [DIR]``
cuts torn last lines and appends a repair row (what catalogd does at start).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lakehouse_common.audit.anchors import (
    AnchoredVerification,
    WitnessCheck,
    check_witness,
    verify_subject,
)
from lakehouse_common.audit.chain import (
    GENESIS,
    AuditChainError,
    AuditLogNotFound,
    VerifyResult,
    start_epoch,
    verify_log,
)
from lakehouse_common.audit.checkpoint import CHECKPOINT_LOG, CheckpointError, CheckpointLog
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
from lakehouse_common.audit.repair import is_torn, repair_torn_tail
from lakehouse_common.audit.signing import (
    generate_signing_key,
    load_public_key,
    load_signing_key,
    public_key_id,
    public_key_path,
)
from lakehouse_common.audit.witness import (
    DirectoryWitness,
    Witness,
    WitnessError,
    witness_from_settings,
)
from lakehouse_common.clock import now_rfc3339_nanos
from lakehouse_common.config import (
    ConfigError,
    LakehouseSettings,
    audit_key_path,
    load_settings,
    signing_key_path,
)

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
    checkpoints_file: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="Also check the log against this checkpoint log (needs --public-key); the "
            "answer then adds anchored, checkpoint, unanchored, repairs and anchors.",
            show_default=False,
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="Ed25519 public key of the checkpoints."),
    ] = None,
    witness_dir: Annotated[
        Path | None,
        typer.Option("--witness-dir", help="A directory witness to check the checkpoints with."),
    ] = None,
) -> None:
    """Verify an audit log's HMAC chain and print {count, tip, verified, error} as JSON
    (with --checkpoints: also against the signed checkpoints and the witness)."""
    try:
        keyring = Keyring.of(*(load_key(path) for path in key_file))
    except AuditKeyError as exc:
        raise _bad_input(exc.message) from None
    if checkpoints_file is not None:
        _verify_anchored(log, keyring, checkpoints_file, public_key, witness_dir)
    try:
        result = verify_log(log, keyring)
    except AuditLogNotFound as exc:
        raise _bad_input(exc.message) from None
    except OSError as exc:
        raise _bad_input(f"audit log {str(log)!r} is unreadable: {exc.strerror or exc}") from None
    _emit(result)
    raise typer.Exit(EXIT_VERIFIED if result.verified else EXIT_NOT_VERIFIED)


def _verify_anchored(
    log: Path,
    keyring: Keyring,
    checkpoints_file: Path,
    public_key: Path | None,
    witness_dir: Path | None,
) -> None:
    """``verify --checkpoints``: a missing log is verified against what checkpoints say of it
    (a deleted log is a finding, not bad input); exits."""
    if public_key is None:
        raise _bad_input("--checkpoints needs --public-key (the checkpoint key's .pub)")
    try:
        checkpoints = CheckpointLog.load(checkpoints_file, load_public_key(public_key))
    except AuditKeyError as exc:
        raise _bad_input(exc.message) from None
    check = check_witness(
        checkpoints, DirectoryWitness(witness_dir) if witness_dir is not None else None
    )
    try:
        result = verify_subject(log, log.stem, keyring, checkpoints)
    except OSError as exc:
        raise _bad_input(f"audit log {str(log)!r} is unreadable: {exc.strerror or exc}") from None
    answer = result.as_dict()
    answer["anchors"] = check.as_dict()
    typer.echo(json.dumps(answer, separators=(",", ":"), ensure_ascii=True))
    ok = result.verified and check.verified
    raise typer.Exit(EXIT_VERIFIED if ok else EXIT_NOT_VERIFIED)


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
    checkpoints_file: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="Checkpoint log (default: checkpoints.jsonl beside DIR).",
            show_default=False,
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="Ed25519 public key of the checkpoints (default: the configured one's .pub).",
            show_default=False,
        ),
    ] = None,
    witness_dir: Annotated[
        Path | None,
        typer.Option(
            "--witness-dir",
            help="A directory witness (default without DIR: the configured witness).",
            show_default=False,
        ),
    ] = None,
    no_anchors: Annotated[
        bool, typer.Option("--no-anchors", help="Check the HMAC chains only.")
    ] = False,
) -> None:
    """Verify every subject log in DIR against its chain and the signed checkpoints, and the
    checkpoint log against the witness; a table, and exit 1 if anything fails."""
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
    checkpoints: CheckpointLog | None = None
    check: WitnessCheck | None = None
    if not no_anchors:
        checkpoints, witness = _anchors(
            root, settings, directory is None, checkpoints_file, public_key, witness_dir
        )
        if checkpoints is not None:
            check = check_witness(checkpoints, witness)
    names = {path.stem for path in root.glob("*.jsonl")}
    if checkpoints is not None:
        names |= set(checkpoints.by_subject)
    results: list[AnchoredVerification] = []
    for name in sorted(names):
        try:
            result = verify_subject(root / f"{name}.jsonl", name, keyring, checkpoints)
        except (AuditLogNotFound, OSError) as exc:
            result = AnchoredVerification(
                name, VerifyResult(0, GENESIS, False, str(exc)), None, None
            )
        results.append(result)
    failed = sum(not r.verified for r in results)
    anchors_ok = check is None or check.verified
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "directory": str(root),
                    "logs": [{"subject_id": r.subject_id, **r.as_dict()} for r in results],
                    "count": len(results),
                    "verified": len(results) - failed,
                    "failed": failed,
                    "anchors": check.as_dict() if check is not None else None,
                },
                separators=(",", ":"),
                ensure_ascii=True,
            )
        )
    else:
        _print_table(root, results, failed, check, anchored=not no_anchors)
    raise typer.Exit(EXIT_NOT_VERIFIED if failed or not anchors_ok else EXIT_VERIFIED)


def _anchors(
    root: Path,
    settings: LakehouseSettings | None,
    configured: bool,
    checkpoints_file: Path | None,
    public_key: Path | None,
    witness_dir: Path | None,
) -> tuple[CheckpointLog | None, Witness | None]:
    """The checkpoint log (None when there is none and no witness to say there should be)."""
    path = checkpoints_file or root.parent / CHECKPOINT_LOG
    witness: Witness | None = None
    if witness_dir is not None:
        witness = DirectoryWitness(witness_dir)
    elif configured and settings is not None:
        try:
            witness = witness_from_settings(settings)
        except Exception as exc:  # e.g. boto3 misconfigured: unusable input
            raise _fail("verify-all", f"cannot reach the witness: {exc}") from None
    if not path.exists() and witness is None:
        return None, None
    if public_key is None and settings is None and path.exists():
        settings = _settings("verify-all", None)
    try:
        key_path = public_key or public_key_path(signing_key_path(settings))  # type: ignore[arg-type]
        key = load_public_key(key_path)
    except AuditKeyError as exc:
        if not path.exists():
            key = None
        else:
            raise _fail("verify-all", exc.message) from None
    return CheckpointLog.load(path, key), witness


def _print_table(
    root: Path,
    results: list[AnchoredVerification],
    failed: int,
    check: WitnessCheck | None,
    *,
    anchored: bool,
) -> None:
    console = Console(highlight=False)
    table = Table(
        "subject",
        "rows",
        "epochs",
        "verified",
        "anchored",
        "unanchored",
        "tip",
        "error",
        title=str(root),
    )
    for result in results:
        table.add_row(
            result.subject_id,
            str(result.chain.count),
            str(result.chain.epochs),
            "yes" if result.verified else "[red]NO[/red]",
            ("yes" if result.anchored else "no") if anchored else "-",
            str(result.unanchored) if anchored else "-",
            result.chain.tip[:16],
            result.error or "",
        )
    console.print(table)
    console.print(f"{len(results)} logs: {len(results) - failed} verified, {failed} failed")
    if not anchored:
        console.print("anchors: not checked (--no-anchors)")
    elif check is None:
        console.print("anchors: no checkpoint log and no witness: logs are not anchored")
    else:
        state = "verified" if check.verified else "[red]NOT VERIFIED[/red]"
        console.print(
            f"checkpoints: {check.checkpoints}, witness {check.witness} holds "
            f"{check.head if check.head is not None else 'none'} "
            f"({check.unwitnessed} not yet published): {state}"
            + (f": {check.error}" if check.error else "")
        )


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
    """Write a new random audit key (64 bytes, mode 0600) and, from the config, the Ed25519
    checkpoint signing pair; never overwrites one."""
    settings: LakehouseSettings | None = None
    if key_file is None or dev_only:
        settings = _settings("keygen", config)
        if dev_only and settings.server.env != "development":
            return
        path = key_file if key_file is not None else audit_key_path(settings)
    else:
        path = key_file
    if settings is not None:
        _signing_keygen(signing_key_path(settings), if_missing=if_missing)
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


def _signing_keygen(path: Path, *, if_missing: bool) -> None:
    if path.exists() or public_key_path(path).exists():
        if if_missing:
            return
        raise _fail("keygen", f"{path} (or its .pub) exists; it is never overwritten", 1)
    try:
        public = generate_signing_key(path)
    except OSError as exc:
        raise _fail("keygen", f"cannot write {path}: {exc.strerror or exc}", 1) from None
    typer.echo(
        f"checkpoint signing key {public_key_id(public)} written to {path} (mode 0600), "
        f"public key {public_key_path(path)}"
    )


@audit_app.command("rotate")
def rotate(
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="The key to rotate (default: the configured one)."),
    ] = None,
    config: ConfigOption = None,
    logs: Annotated[
        Path | None,
        typer.Option(
            "--logs",
            help="Subject logs to start the new epoch in (default without --key-file: the "
            "configured <data_dir>/subjects/audit).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start a new key epoch: retire the current key, write a new one, append an epoch-start
    row to every log and a signed checkpoint recording the retirement (eager rotation)."""
    settings = _settings("rotate", config) if key_file is None else None
    path = key_file if key_file is not None else audit_key_path(settings)  # type: ignore[arg-type]
    if logs is None and settings is not None:
        logs = settings.data_dir / AUDIT_SUBDIR
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
    retired_at = now_rfc3339_nanos()
    if logs is None or not logs.is_dir():
        typer.echo("no logs given (--logs): each log starts the new epoch on its next append")
        return
    keyring = load_keyring(path)
    heads: dict[str, tuple[int, str]] = {}
    failed = 0
    for log_path in sorted(logs.glob("*.jsonl")):
        try:
            start_epoch(log_path, keyring, log_path.stem, daemon="lakehouse audit rotate")
            result = verify_log(log_path, keyring)
        except (AuditChainError, OSError) as exc:
            typer.echo(f"lakehouse audit rotate: {log_path.stem}: {exc}", err=True)
            failed += 1
            continue
        if result.verified and result.count:
            heads[log_path.stem] = (result.count, result.tip)
    typer.echo(f"epoch-start rows in {len(heads)} logs ({failed} failed)")
    signing = signing_key_path(settings) if settings is not None else None
    if signing is None or not signing.exists():
        typer.echo("no checkpoint signing key: no rotation checkpoint written", err=True)
        raise typer.Exit(1 if failed else 0)
    try:
        checkpoints = CheckpointLog.load(
            logs.parent / CHECKPOINT_LOG, load_public_key(public_key_path(signing))
        )
        line = checkpoints.append(
            load_signing_key(signing), heads, retired={rotation.previous_key_id: retired_at}
        )
    except (AuditKeyError, CheckpointError) as exc:
        raise _fail("rotate", exc.message, 1) from None
    typer.echo(f"checkpoint {checkpoints.count} records the retirement at {retired_at}")
    try:
        assert settings is not None
        witness_from_settings(settings).publish(checkpoints.count, line)
    except WitnessError as exc:
        typer.echo(f"lakehouse audit rotate: not published (catalogd retries): {exc}", err=True)
    raise typer.Exit(1 if failed else 0)


@audit_app.command("repair")
def repair(
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
        typer.Option("--key-file", metavar="KEY", help="Key file(s), the current one first."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Cut torn last lines back to the last verified row and append a repair row recording
    the bytes removed and their sha256 (what catalogd does at start). Exit 1 if any torn log
    could not be repaired."""
    settings = _settings("repair", config) if directory is None or not key_file else None
    try:
        if key_file:
            keyring = Keyring.of(*(load_private_key(p) for p in key_file))
        else:
            assert settings is not None
            keyring = load_keyring(audit_key_path(settings))
    except AuditKeyError as exc:
        raise _fail("repair", exc.message) from None
    root = directory if directory is not None else settings.data_dir / AUDIT_SUBDIR  # type: ignore[union-attr]
    if not root.is_dir():
        raise _fail("repair", f"{root} is not a directory")
    failed = repaired = 0
    for log_path in sorted(root.glob("*.jsonl")):
        if not is_torn(log_path):
            continue
        try:
            done = repair_torn_tail(
                log_path, keyring, log_path.stem, daemon="lakehouse audit repair"
            )
        except (AuditChainError, OSError) as exc:
            typer.echo(f"lakehouse audit repair: {log_path.stem}: {exc}", err=True)
            failed += 1
            continue
        if done is not None:
            repaired += 1
            typer.echo(json.dumps(done.as_dict(), separators=(",", ":")))
    typer.echo(f"{repaired} logs repaired, {failed} not repaired", err=True)
    raise typer.Exit(EXIT_NOT_VERIFIED if failed else EXIT_VERIFIED)
