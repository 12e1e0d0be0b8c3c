"""The daemon table is declared once; configs, systemd units and packages agree with it."""

from __future__ import annotations

import ast
from pathlib import Path

from lakehouse_common.topology import DAEMONS, default_routes, installed_daemons
from tests.conftest import repo_root

ROOT = repo_root()
SPEC_START_ORDER = [
    "storaged", "catalogd", "ingestd", "queryd", "embedd", "vectord",
    "pathwayd", "observerd", "matrixd", "chatd", "validatord", "gateway",
]  # fmt: skip


def test_start_order_is_the_spec_order() -> None:
    assert [d.name for d in DAEMONS] == SPEC_START_ORDER


def test_every_area_has_exactly_one_owner() -> None:
    areas = [a for d in DAEMONS for a in d.areas]
    assert len(areas) == len(set(areas))
    assert default_routes()["storage"] == "storaged"


def test_installed_daemons_are_the_service_packages() -> None:
    packages = {p.parent.name for p in (ROOT / "services").glob("*/__main__.py")}
    assert {d.name for d in installed_daemons()} == packages


def test_systemd_order_follows_start_order() -> None:
    units = ROOT / "configs/systemd"
    for before, after in zip(SPEC_START_ORDER, SPEC_START_ORDER[1:], strict=False):
        conf = (units / f"lakehouse@{after}.service.d/order.conf").read_text()
        assert f"After=lakehouse@{before}.service" in conf
    target = (units / "lakehouse.target").read_text()
    assert all(f"lakehouse@{name}.service" in target for name in SPEC_START_ORDER)


def test_no_daemon_imports_another_daemon() -> None:
    """Daemons talk over HTTP through `lakehouse_common.contracts`, never by import."""
    offenders = []
    for path in (ROOT / "services").rglob("*.py"):
        own = path.relative_to(ROOT / "services").parts[0]
        if own.endswith(".py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "services" and len(parts) > 1 and parts[1] != own:
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_core_never_imports_a_daemon() -> None:
    offenders = []
    for path in Path(ROOT / "lakehouse_common").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("services"):
                offenders.append(str(path.relative_to(ROOT)))
            if isinstance(node, ast.Import) and any(
                a.name.startswith("services") for a in node.names
            ):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
