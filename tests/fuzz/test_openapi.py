"""Schemathesis against every daemon's OpenAPI schema on one live stack (issue 9, SPEC §9).

For each installed daemon, `schemathesis run <daemon>/openapi.json` generates requests from the
schema — valid ones and deliberately invalid ones (wrong types, out-of-range numbers, odd
strings in paths and queries) — sends them to the real daemon and checks every answer:

- `not_a_server_error`: no 5xx. Bad input is a 4xx in the envelope, never a 500;
- `response_schema_conformance`: a documented answer matches the response model.

One stack serves every daemon (embedd included: matrixd and pathwayd embed); chatd's default
provider points at a fake LLM on loopback, so chat and iterate answer instead of failing over.

The budget is small by default, for CI: `LAKEHOUSE_FUZZ_EXAMPLES` examples per operation (10)
in the `examples,fuzzing` phases with a fixed seed, so CI is repeatable. `make fuzz` raises it:
100 examples, plus the `coverage` phase (boundary and wrong-type values of every parameter,
~20 s for a daemon like catalogd) and the `stateful` phase (chains of calls), and a fresh seed
each run. A failure prints schemathesis's report with a `curl` line that reproduces it, the
seed to replay the run, and the daemon's logged tracebacks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lakehouse_common.topology import installed_daemons
from tests.support.llm import FakeLLM
from tests.support.stack import LiveStack

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

DAEMONS = [d.name for d in installed_daemons()]
CHECKS = "not_a_server_error,response_schema_conformance"
EXAMPLES = int(os.environ.get("LAKEHOUSE_FUZZ_EXAMPLES", "10"))
PHASES = os.environ.get("LAKEHOUSE_FUZZ_PHASES", "examples,fuzzing")
# "random": a fresh seed each run (printed in the report, so a failure can be replayed).
SEED = os.environ.get("LAKEHOUSE_FUZZ_SEED", "20260501")
REQUEST_TIMEOUT_S = 60
TRACE_ID = re.compile(r'"trace_id"\s*:\s*"([0-9a-f]{16}-[0-9a-f]{8})"')


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM) -> Iterator[LiveStack]:
    extra: dict[str, dict[str, Any]] = {
        "chat.providers.ollama": {"base_url": llm.url},
        "gateway": {"upstream_timeout_s": REQUEST_TIMEOUT_S},
    }
    live = LiveStack.create(tmp_path_factory.mktemp("fuzz"), extra)
    with live.running(*DAEMONS, timeout_s=120):
        yield live


def schemathesis(url: str, report_dir: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(EXAMPLES),
        "--phases",
        PHASES,
        "--workers",
        "1",
        "--request-timeout",
        str(REQUEST_TIMEOUT_S),
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    if SEED != "random":
        command += ["--seed", SEED]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1", "COLUMNS": "120"}
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        cwd=report_dir,
        timeout=1800,
        check=False,
    )


@pytest.mark.parametrize("daemon", DAEMONS)
def test_schema_fuzz_finds_no_server_error_or_schema_violation(
    stack: LiveStack, daemon: str, tmp_path: Path
) -> None:
    result = schemathesis(stack.url(daemon), tmp_path)
    report = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(
            f"schemathesis against {daemon} failed:\n{report}\n{tracebacks(stack, daemon, report)}",
            pytrace=False,
        )
    assert "passed" in report, report


def tracebacks(stack: LiveStack, daemon: str, report: str) -> str:
    """The daemon's logged tracebacks of the failing answers (found by their trace ids)."""
    wanted = set(TRACE_ID.findall(report))
    found = []
    for line in stack.log(daemon).splitlines():
        if '"exception"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("trace_id") in wanted:
            found.append(f"--- {daemon} log, trace {record['trace_id']}:\n{record['exception']}")
    where = stack.settings.data_dir / "logs"
    return "\n".join(found[-3:]) + f"\n(daemon logs: {where})"
