"""Where the repository and its checked-in fixtures are."""

from __future__ import annotations

from pathlib import Path


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


FIXTURES = repo_root() / "tests" / "fixtures"
