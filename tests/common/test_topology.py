"""The daemon table is declared once; configs, systemd units and packages agree with it."""

from __future__ import annotations

from lakehouse_common.topology import DAEMONS, default_routes, installed_daemons
from tests.support.paths import repo_root

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
