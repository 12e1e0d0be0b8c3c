"""`lakehouse probe …`: the smoke chain and the parity probes against a live stack (SPEC §9,
issue 9). ``scripts/smoke/*.sh`` and ``scripts/parity/*.sh`` are thin wrappers around these.

- ``probe smoke [DAEMON…] [--story]``: one smoke per daemon (all, in start order, when none is
  named), then with ``--story`` the end-to-end story; ends with ``N passed, N failed``.
- ``probe story``: the end-to-end story alone.
- ``probe validator | extract-json | session-log | embed``: a parity probe; ends with
  ``<name>_parity: passed/total assertions passed``.
- ``probe materializer [--kb DIR] [--expected DIR] [--other DIR]``: the materializer over the
  fixture ``_kb`` against the expected evidence; needs no stack.
- ``probe subject-audit [--config FILE] [--gateway URL] [--other URL] [--limit N]
  [--skip-live]``: the audit known answers, then every live subject log.

Every command that probes a stack takes ``--config`` (default ``$LAKEHOUSE_CONFIG`` or the dev
config) and exits 0 when every check passed, 1 when one failed, 2 on bad usage or an unusable
config (``subject-audit``: 1, as its script always did). A peer runtime (``--peer URL`` or
``PEER_URL``; ``--other`` for the last two) is compared where a probe can.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from lakehouse_common.cli.options import ConfigOption, GatewayOption, TokenOption
from lakehouse_common.config import ConfigError, LakehouseSettings, load_settings
from lakehouse_common.ops.probes import Probe, Tally, parity, subject_audit
from lakehouse_common.ops.probes.materializer import (
    DEFAULT_EXPECTED,
    DEFAULT_KB,
    materializer_parity,
)
from lakehouse_common.ops.probes.smoke import SMOKES, run_smokes
from lakehouse_common.ops.probes.story import run_story
from lakehouse_common.topology import installed_daemons

probe_app = typer.Typer(
    help="Smoke chain and parity probes against a live stack (scripts/smoke, scripts/parity).",
    no_args_is_help=True,
)

PeerOption = Annotated[
    str | None,
    typer.Option(
        "--peer",
        envvar="PEER_URL",
        help="A second runtime's gateway URL to compare with.",
        show_default=False,
    ),
]
EchoModelOption = Annotated[
    str | None,
    typer.Option(
        "--echo-model",
        envvar="ECHO_MODEL",
        help="A chat model (provider/model) that answers with the user's message verbatim: "
        "lets a probe observe extract_json and session records through validatord.",
        show_default=False,
    ),
]


def _settings(config: Path | None) -> LakehouseSettings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        typer.echo(f"lakehouse probe: {exc}", err=True)
        raise typer.Exit(2) from None


def _finish(tally: Tally, last_line: str) -> None:
    typer.echo(last_line)
    if not tally.ok:
        raise typer.Exit(1)


@probe_app.command("smoke")
def smoke(
    daemons: Annotated[
        list[str] | None,
        typer.Argument(help="Daemons to smoke (default: every installed one, in start order)."),
    ] = None,
    story: Annotated[bool, typer.Option("--story", help="Then tell the end-to-end story.")] = False,
    config: ConfigOption = None,
    token: TokenOption = None,
) -> None:
    """Health and a few real calls per daemon (and the story); ends with `N passed, N failed`."""
    names = daemons or [d.name for d in installed_daemons()]
    unknown = [name for name in names if name not in SMOKES]
    if unknown:
        typer.echo(f"lakehouse probe smoke: no such daemon {', '.join(unknown)}", err=True)
        raise typer.Exit(2)
    settings = _settings(config)
    tally = Tally(typer.echo)
    with Probe(settings, tally, token=token) as probe:
        run_smokes(probe, names)
        if story:
            run_story(probe)
    _finish(tally, tally.counts())


@probe_app.command("story")
def story_only(config: ConfigOption = None, token: TokenOption = None) -> None:
    """The end-to-end story alone; ends with `N passed, N failed`."""
    tally = Tally(typer.echo)
    with Probe(_settings(config), tally, token=token) as probe:
        run_story(probe)
    _finish(tally, tally.counts())


def _parity_command(
    name: str, run: Callable[[Probe, str | None, str | None], None]
) -> Callable[..., None]:
    def command(
        config: ConfigOption = None,
        token: TokenOption = None,
        peer: PeerOption = None,
        echo_model: EchoModelOption = None,
    ) -> None:
        settings = _settings(config)
        tally = Tally(typer.echo)
        with Probe(settings, tally, token=token) as probe:
            run(probe, peer.rstrip("/") if peer else None, echo_model)
        if tally.skipped:
            typer.echo(f"({tally.skipped} skipped)")
        _finish(tally, f"{name}_parity: {tally.ratio()} assertions passed")

    command.__doc__ = (run.__doc__ or "").strip().splitlines()[0]
    return command


probe_app.command("validator")(_parity_command("validator", parity.validator_parity))
probe_app.command("extract-json")(_parity_command("extract_json", parity.extract_json_parity))
probe_app.command("session-log")(_parity_command("session_log", parity.session_log_parity))
probe_app.command("embed")(_parity_command("embed", parity.embed_parity))


@probe_app.command("materializer")
def materializer(
    kb: Annotated[
        Path, typer.Option("--kb", help="The _kb to materialize (relative: to the repo root).")
    ] = DEFAULT_KB,
    expected: Annotated[
        Path,
        typer.Option(
            "--expected", help="The expected evidence/ and receipt (relative: to the repo root)."
        ),
    ] = DEFAULT_EXPECTED,
    other: Annotated[
        Path | None,
        typer.Option("--other", help="Another runtime's evidence/ directory.", show_default=False),
    ] = None,
) -> None:
    """The materializer over the fixture _kb against the expected evidence (no stack needed)."""
    tally = Tally(typer.echo)
    materializer_parity(tally, kb=kb, expected=expected, other=other)
    _finish(tally, f"materializer_parity: {tally.ratio()} assertions passed")


@probe_app.command("subject-audit")
def subject_audit_probe(
    config: ConfigOption = None,
    gateway: GatewayOption = None,
    other: Annotated[
        str | None,
        typer.Option("--other", help="A second runtime's gateway URL.", show_default=False),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=0, help="Verify at most N live logs (0: all).")
    ] = 0,
    skip_live: Annotated[
        bool, typer.Option("--skip-live", help="Only the known answers (no stack needed).")
    ] = False,
    token: TokenOption = None,
) -> None:
    """Audit known answers, then every live subject log verified by catalogd and offline alike."""
    tally = Tally(typer.echo)
    subject_audit.known_answers(tally)
    if skip_live:
        typer.echo("phase 2: skipped (--skip-live)")
    else:
        try:
            settings = load_settings(config)
        except ConfigError as exc:
            typer.echo(f"subject_audit_parity: {exc}", err=True)
            raise typer.Exit(1) from None
        subject_audit.live_logs(
            tally, settings, gateway=gateway, other=other, limit=limit, token=token
        )
    _finish(tally, f"subject_audit_parity: {tally.ratio()} assertions passed")


if __name__ == "__main__":  # `python -m lakehouse_common.cli.probe`: what the scripts run
    probe_app()
