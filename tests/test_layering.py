"""The shape of the house (STYLE.md), kept true by walking every module's imports.

- a daemon never imports another daemon's package (they talk through `contracts` clients);
- the kernel never imports a daemon;
- neither a daemon nor the kernel imports the tooling (`lakehouse_common.cli`, `.ops`,
  `.distill`): tooling may import the kernel, never the other way round;
- no import cycle anywhere in `lakehouse_common`, lazy (function-level) imports included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import repo_root

ROOT = repo_root()
CORE = ROOT / "lakehouse_common"
TOOLING = ("lakehouse_common.cli", "lakehouse_common.ops", "lakehouse_common.distill")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[str]:
    """Every module `path` imports (`from pkg import name` names `pkg.name` when that is a
    module, else `pkg`), at any depth of the file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"


def is_under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def kernel_modules() -> Iterator[Path]:
    for path in CORE.rglob("*.py"):
        if not any(is_under(module_name(path), tool) for tool in TOOLING):
            yield path


def test_no_daemon_imports_another_daemon() -> None:
    """Daemons talk over HTTP through `lakehouse_common.contracts`, never by import."""
    offenders = []
    for path in (ROOT / "services").rglob("*.py"):
        own = path.relative_to(ROOT / "services").parts[0]
        for name in imports_of(path):
            parts = name.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] != own:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_core_never_imports_a_daemon() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in CORE.rglob("*.py")
        for name in imports_of(path)
        if is_under(name, "services")
    ]
    assert offenders == []


def test_daemons_and_kernel_never_import_the_tooling() -> None:
    sources = [*(ROOT / "services").rglob("*.py"), *kernel_modules()]
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources
        for name in imports_of(path)
        if any(is_under(name, tool) for tool in TOOLING)
    ]
    assert offenders == []


def test_the_tooling_packages_exist() -> None:
    """The rule above means nothing if a rename moved the tooling elsewhere."""
    for tool in TOOLING:
        assert (ROOT / tool.replace(".", "/") / "__init__.py").is_file(), tool


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in CORE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {dep for dep in imports_of(path) if dep in modules and dep != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as a path that ends where it starts, or None."""
    done: set[str] = set()
    for root in sorted(graph):
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        on_path = [root]
        if root in done:
            continue
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                done.add(node)
                stack.pop()
                on_path.pop()
            elif child in on_path:
                return [*on_path[on_path.index(child) :], child]
            elif child not in done:
                stack.append((child, iter(sorted(graph[child]))))
                on_path.append(child)
    return None


def test_no_import_cycle_in_lakehouse_common() -> None:
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    """Guard against a walker that can never fail."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_tests_take_helpers_from_support_not_from_conftests_or_test_modules() -> None:
    """A conftest only defines fixtures and a test module only tests: shared helpers live in
    `tests/support/`, so moving or deleting a test never breaks another."""
    offenders = []
    for path in (ROOT / "tests").rglob("*.py"):
        for name in imports_of(path):
            last = name.split(".")[-1]
            if name.startswith("tests.") and (last == "conftest" or last.startswith("test_")):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_daemons_reach_their_state_through_the_typed_dependencies() -> None:
    """`request.app.state.<x>` is untyped and fails late; every daemon keeps its resources in
    its `state.py` State, reached through the async dependencies there."""
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "services").rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "app.state." in line and not line.lstrip().startswith("#")
    ]
    assert offenders == []
