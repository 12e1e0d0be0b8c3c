"""One path per wire format (issue 15, STYLE.md "The shape of the house"): the tooling calls the
daemons through the typed clients and the path constants of `lakehouse_common.contracts`, so no
hand-written ``"/v1/…"`` string is left in `lakehouse_common.ops`, `.cli` or `.distill`.

Docstrings may name endpoints (they document them); any other string literal — f-string parts
included — may not. A probe that sends a deliberately malformed request builds its path from a
contract constant too (`gateway.area_path("smoke-no-such-area")`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from tests.support.paths import repo_root

ROOT = repo_root()
TOOLING = tuple(ROOT / "lakehouse_common" / name for name in ("ops", "cli", "distill"))
WIRE_PATH = re.compile(r"/v1(/|$)")


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring nodes of the module, its classes and its functions."""
    owners = [tree] + [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    found = set()
    for owner in owners:
        body = owner.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            found.add(id(body[0].value))
    return found


def hand_written_paths(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every string literal, outside docstrings, that holds a `/v1` path."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and WIRE_PATH.search(node.value)
        ):
            yield node.lineno, node.value


def test_the_check_finds_hand_written_paths() -> None:
    source = '''
"""Module docs may say POST /v1/validate."""
def f(gateway: str, name: str) -> None:
    """So may a function's: GET /v1/health."""
    call("POST", "/v1/validate")
    call("GET", f"{gateway}/v1/vectors/indexes/{name}")
    print("try: curl -s " + gateway + "/v1")
    call("GET", VALIDATE)
'''
    assert [line for line, _ in hand_written_paths(source)] == [5, 6, 7]


def test_no_hand_written_wire_path_in_the_tooling() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for package in TOOLING
        for path in sorted(package.rglob("*.py"))
        for line, text in hand_written_paths(path.read_text())
    ]
    assert offenders == [], "use the contracts' path constants:\n" + "\n".join(offenders)


def test_the_tooling_is_there() -> None:
    """The walk above must not pass because it found nothing to read."""
    files = [path for package in TOOLING for path in package.rglob("*.py")]
    assert len(files) >= 15
    assert any(p.name == "smoke.py" for p in files)
