"""The smoke chain, the story and `lakehouse demo story` in process, through a gateway that
requires a bearer token (issue 15: the tooling calls the daemons through the typed clients of
`lakehouse_common.contracts`, and those carry the token).

One stack for the module, holding a 300-worker demo roster loaded by `lakehouse demo load`; its
chatd has no reachable provider, so chatd's smoke skips its chat call (`test_smoke_parity.py`
makes it, against an echo provider).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakehouse_common.cli import app
from lakehouse_common.ops.probes import Probe, Tally, parity
from lakehouse_common.ops.probes.smoke import run_smokes
from lakehouse_common.ops.probes.story import run_story
from lakehouse_common.ops.scenario_mix import HarnessError, MixConfig, run_mix
from lakehouse_common.ops.stack import ephemeral_config
from lakehouse_common.topology import DAEMON_NAMES
from tests.support.stack import LiveStack

TOKEN = "probe-chain-token-1"
WORKERS = 300
# The smokes that make at least one call through the typed clients.
TYPED_SMOKES = ("pathwayd", "observerd", "matrixd", "validatord")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(
        tmp_path_factory.mktemp("probe_chain"),
        {"server": {"log_level": "warning"}, "gateway": {"auth_token": TOKEN}},
    )
    with live.running(*DAEMON_NAMES, timeout_s=120):
        loaded = CliRunner().invoke(
            app,
            ["demo", "load", "--workers", str(WORKERS), "--config", str(live.config_path)]
            + ["--token", TOKEN],
        )
        assert loaded.exit_code == 0, loaded.output
        yield live


def _probe(stack: LiveStack, token: str | None) -> tuple[Probe, Tally, list[str]]:
    lines: list[str] = []
    tally = Tally(lines.append)
    return Probe(stack.settings, tally, token=token), tally, lines


@pytest.mark.slow
class TestThroughTheTypedClients:
    def test_every_smoke_passes_with_the_token(self, stack: LiveStack) -> None:
        probe, tally, lines = _probe(stack, TOKEN)
        with probe:
            run_smokes(probe, DAEMON_NAMES)
        out = "\n".join(lines)
        skips = [line for line in lines if "SKIP" in line]
        assert tally.failed == 0, out
        assert all(line.startswith("  SKIP  a chat call to ") for line in skips), out
        assert tally.passed >= 60, out
        for line in (
            "PASS  GET /v1/pathways/smoke-pathway-1",
            "PASS  the smoke pathway is found and its next step is shortlist",
            "PASS  GET /v1/observations",
            "PASS  search 'Need 3 Forklift Operators in Aurora IL'",
            "PASS  3 ranked results, nearest first",
            "PASS  GET /v1/matrix/playbooks",
            "PASS  it is invalid with one Policy error",
            "PASS  GET /v1/sessions",
        ):
            assert line in out, out

    def test_the_story_passes_with_the_token(self, stack: LiveStack) -> None:
        probe, tally, lines = _probe(stack, TOKEN)
        with probe:
            run_story(probe)
        out = "\n".join(lines)
        assert tally.failed == 0 and tally.skipped == 0, out
        assert "[story 6/6] audit verify" in out
        assert "PASS  playbook → boosted search → role gate → exclude swap" in out
        assert "PASS  the valid result reached observerd with its trace id" in out

    def test_typed_calls_without_the_token_are_refused(self, stack: LiveStack) -> None:
        probe, tally, lines = _probe(stack, None)
        with probe:
            run_smokes(probe, TYPED_SMOKES)
        out = "\n".join(lines)
        # Each smoke stops at its first gateway call, a typed one in the first three.
        assert tally.failed == len(TYPED_SMOKES), out
        assert "FAIL  record pathway smoke-pathway-1 (201, or 200 when already there): " in out
        assert "HTTP 401 unauthorized" in out

    def test_demo_story_through_matrixd_s_client(self, stack: LiveStack) -> None:
        config = ["--config", str(stack.config_path)]
        told = CliRunner().invoke(app, ["demo", "story", *config, "--token", TOKEN])
        assert told.exit_code == 0, told.output
        assert "1. Cold search: 'Need 3 Forklift Operators in Aurora IL'" in told.stdout
        assert "✓ the distance is halved" in told.stdout
        assert "The story holds" in told.stdout
        refused = CliRunner().invoke(app, ["demo", "story", *config], env={})
        assert refused.exit_code == 1
        assert "demo failed: HTTP 401 unauthorized" in refused.stderr

    @pytest.mark.parametrize("run", [parity.validator_parity, parity.embed_parity])
    def test_parity_probes_pass_with_the_token(
        self, stack: LiveStack, run: Callable[[Probe, str | None, str | None], None]
    ) -> None:
        probe, tally, lines = _probe(stack, TOKEN)
        with probe:
            run(probe, None, None)
        out = "\n".join(lines)
        assert tally.failed == 0 and tally.passed > 0, out
        assert "live: POST /v1/validate" in out or "live: /v1/embed" in out

    def test_multitier_mix_carries_the_token(self, stack: LiveStack) -> None:
        config = MixConfig(
            gateway=stack.url("gateway"),
            concurrency=2,
            duration_s=300,
            max_scenarios=20,
            workers=WORKERS,
            queries=10,
            token=TOKEN,
        )
        report = asyncio.run(run_mix(config))
        assert report.total == 20 and report.failures == 0, report.table()
        with pytest.raises(HarnessError, match="HTTP 401 unauthorized"):
            asyncio.run(run_mix(replace(config, token=None)))


def test_demo_story_to_an_unreachable_gateway(tmp_path: Path) -> None:
    config, _ = ephemeral_config(tmp_path)  # nothing runs on its ports
    told = CliRunner().invoke(app, ["demo", "story", "--config", str(config)])
    assert told.exit_code == 1
    assert "demo failed: the gateway is not reachable: gateway is unreachable at" in told.stderr
