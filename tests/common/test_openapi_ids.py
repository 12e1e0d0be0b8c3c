"""Every daemon's OpenAPI document gives each operation its own operationId (code generators
refuse duplicates; the gateway's multi-method proxy route once shared one across 7 methods)."""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path

import pytest

from lakehouse_common.ops.stack import ephemeral_config
from lakehouse_common.topology import DAEMON_NAMES


@pytest.mark.parametrize("daemon", DAEMON_NAMES)
def test_operation_ids_are_unique(daemon: str, tmp_path: Path) -> None:
    _, settings = ephemeral_config(tmp_path)  # with the audit key catalogd insists on
    app = importlib.import_module(f"services.{daemon}.app").create_app(settings)
    ids = Counter(
        op["operationId"]
        for path in app.openapi()["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    )
    assert ids, f"{daemon} documents no operations"
    assert [op for op, n in ids.items() if n > 1] == []
