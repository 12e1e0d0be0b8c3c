"""The ``lakehouse`` command line: one typer app, one sub-app per area (SPEC §7, §8, §9).

Each area keeps its commands in its own module and is registered here, so adding an area
(``stack``, ``distill``, …) is one ``add_typer`` line. Nothing runs at import time; the console
script ``lakehouse`` (pyproject) and ``python -m lakehouse_common.cli`` both call :data:`app`.
"""

from __future__ import annotations

import typer

from lakehouse_common.cli.audit import audit_app
from lakehouse_common.cli.demo import demo_app
from lakehouse_common.cli.distill import distill_app
from lakehouse_common.cli.ingest import ingest
from lakehouse_common.cli.load import loadgen, multitier
from lakehouse_common.cli.probe import probe_app
from lakehouse_common.cli.roster import gen_workers
from lakehouse_common.cli.stack import stack_app
from lakehouse_common.cli.subjects import subjects_app

app = typer.Typer(
    name="lakehouse",
    help="Lakehouse operator commands.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(audit_app, name="audit")
app.add_typer(stack_app, name="stack")
app.add_typer(subjects_app, name="subjects")
app.add_typer(demo_app, name="demo")
app.add_typer(probe_app, name="probe")
app.add_typer(distill_app, name="distill")
app.command("gen-workers")(gen_workers)
app.command("ingest")(ingest)
app.command("loadgen")(loadgen)
app.command("multitier")(multitier)
