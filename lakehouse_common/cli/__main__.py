"""`python -m lakehouse_common.cli`: the same command as the `lakehouse` console script."""

from lakehouse_common.cli import app

app()
