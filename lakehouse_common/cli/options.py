"""Options every `lakehouse` subcommand that talks to a stack shares (one definition each)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config (default: $LAKEHOUSE_CONFIG or the dev one)."),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="LAKEHOUSE_GATEWAY__AUTH_TOKEN",
        help="Bearer token, when the gateway requires one.",
        show_default=False,
    ),
]

GatewayOption = Annotated[
    str | None,
    typer.Option(
        "--gateway",
        envvar="LAKEHOUSE_GATEWAY_URL",
        help="Gateway base URL (default: the configured gateway).",
        show_default=False,
    ),
]

__all__ = ["ConfigOption", "GatewayOption", "TokenOption"]
