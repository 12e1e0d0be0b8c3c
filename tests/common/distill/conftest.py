"""Distillation fixtures: a data dir with a `_kb` of its own, written line by line or copied
from the checked-in fixture (tests/fixtures/distill/_kb)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lakehouse_common.config import DistillSettings
from lakehouse_common.distill.layout import DistillLayout
from tests.support.distill import FIXTURES, Kb


@pytest.fixture
def settings() -> DistillSettings:
    return DistillSettings()


@pytest.fixture
def layout(tmp_path: Path) -> DistillLayout:
    return DistillLayout(tmp_path / "data")


@pytest.fixture
def kb(layout: DistillLayout) -> Kb:
    return Kb(layout.data_dir)


@pytest.fixture
def fixture_layout(tmp_path: Path) -> DistillLayout:
    """A data dir holding a copy of the fixture `_kb`."""
    data = tmp_path / "fixture"
    shutil.copytree(FIXTURES / "_kb", data / "_kb")
    return DistillLayout(data)
