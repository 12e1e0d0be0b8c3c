"""The multi-scenario harness (SPEC §9 "Load tools", issue 9): the exact weighted mix, its drafts,
and `lakehouse multitier` through the gateway of a real stack holding a 300-worker demo roster
loaded by `lakehouse demo load` (one stack for the module; chatd and pathwayd are not needed).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from lakehouse_common.cli import app
from lakehouse_common.ops.scenario_mix import (
    SCENARIO_NAMES,
    SCENARIOS,
    HarnessError,
    MixConfig,
    Query,
    RosterGroup,
    dealing_order,
    query_pool,
    run_mix,
    sms_draft,
)
from tests.support.stack import LiveStack

WORKERS = 300
DAEMONS = (
    "storaged",
    "catalogd",
    "ingestd",
    "queryd",
    "embedd",
    "vectord",
    "observerd",
    "matrixd",
    "validatord",
    "gateway",
)


class TestMix:
    def test_dealing_order_is_the_spec_weights(self) -> None:
        order = dealing_order()
        assert len(order) == 20
        assert Counter(order) == {s.name: s.weight // 5 for s in SCENARIOS}
        assert sum(s.weight for s in SCENARIOS) == 100
        # Spread out, not in runs: the heaviest scenario never comes three times in a row.
        assert all(len(set(order[i : i + 3])) > 1 for i in range(len(order) - 2))

    def test_query_pool_is_distinct_deterministic_and_from_the_roster(self) -> None:
        groups = [
            RosterGroup("Forklift Operator", "Aurora", "IL", 40),
            RosterGroup("Welder", "Houston", "TX", 10),
        ]
        pool = query_pool(groups, 30, seed=1)
        assert pool == query_pool(groups, 30, seed=1)
        # 2 groups x 5 head counts: only 10 distinct texts exist, and the pool finds them all.
        assert len({q.text for q in pool}) == len(pool) == 10
        assert {q.text for q in pool} >= {
            "Need 1 Welder in Houston TX",
            "Need 4 Welders in Houston TX",
            "Need 3 Forklift Operators in Aurora IL",
        }
        assert all(
            (q.role, q.city, q.state) in {(g.role, g.city, g.state) for g in groups} for q in pool
        )
        assert len(query_pool(groups, 4, seed=1)) == 4

    def test_sms_drafts_fit_and_carry_a_phone_number(self) -> None:
        rng = random.Random(3)
        longest = Query("x", "Registered Dental Assistant", "Colorado Springs", "CO")
        for _ in range(50):
            draft = sms_draft(longest, rng)
            assert len(draft["body"]) <= 160
            assert "555-01" in draft["to"] and "555-01" in draft["body"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack.create(
        tmp_path_factory.mktemp("multitier"), {"server": {"log_level": "warning"}}
    )
    with live.running(*DAEMONS, timeout_s=120):
        lakehouse = str(Path(sys.executable).with_name("lakehouse"))
        subprocess.run(
            [lakehouse, "demo", "load", "--workers", str(WORKERS)]
            + ["--config", str(live.config_path)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        yield live


@pytest.mark.slow
class TestAgainstAStack:
    def test_every_scenario_runs_in_its_share_without_failures(self, stack: LiveStack) -> None:
        config = MixConfig(
            gateway=stack.url("gateway"),
            concurrency=4,
            duration_s=300,
            max_scenarios=60,
            workers=WORKERS,
            queries=40,
        )
        report = asyncio.run(run_mix(config))
        summary = report.to_dict()
        assert summary["workers"] == WORKERS and summary["scenarios"] == 60
        counts = {name: s["count"] for name, s in summary["per_scenario"].items()}
        assert counts == {s.name: s.weight * 60 // 100 for s in SCENARIOS}
        failing = {
            n: s["failure_examples"] for n, s in summary["per_scenario"].items() if s["failures"]
        }
        assert summary["failures"] == 0, failing
        assert summary["validator"] == {
            "email": {"passed": 21, "failed": 0},
            "fill": {"passed": 9, "failed": 0},
            "sms": {"passed": 6, "failed": 0},
        }
        requests = {name: s["requests"] for name, s in summary["per_scenario"].items()}
        # email 2, fill 2, swap 2, repeat 5, sms 1, record-replay 3 requests per scenario
        assert requests == {
            "cold_search_email": 42,
            "surge_fill_validate": 18,
            "profile_swap": 18,
            "repeat_cache": 45,
            "sms_validate": 6,
            "playbook_record_replay": 18,
        }
        for s in summary["per_scenario"].values():
            assert 0 < s["p50_ms"] <= s["p99_ms"] <= s["max_ms"]

    def test_command_prints_a_table_and_a_json_summary(self, stack: LiveStack) -> None:
        result = CliRunner().invoke(
            app,
            ["multitier", "--gateway", stack.url("gateway"), "--workers", str(WORKERS)]
            + ["-c", "2", "-n", "20", "--queries", "10"],
        )
        assert result.exit_code == 0, result.output
        for name in SCENARIO_NAMES:
            assert name in result.stdout
        assert "validator passes: email 7 passed / 0 failed" in result.stdout
        summary = orjson.loads(result.stderr.strip().splitlines()[-1])
        assert summary["scenarios"] == 20 and summary["failures"] == 0
        assert all(s["count"] > 0 for s in summary["per_scenario"].values())

    def test_a_rejected_draft_is_a_counted_failure_and_the_run_goes_on(
        self, stack: LiveStack
    ) -> None:
        """An index whose items the roster dataset does not know: every fill proposal built from
        it is rejected by validatord (unknown workers); the other scenarios still pass."""
        gw = httpx.Client(base_url=stack.url("gateway"), timeout=60)
        rows = gw.post(
            "/v1/query",
            json={"sql": "SELECT role, state, city FROM workers GROUP BY ALL ORDER BY ALL"},
        ).json()["rows"]
        texts = [f"{r} in {c}, {s}" for r, s, c in rows]
        vectors = [
            vector
            for at in range(0, len(texts), 100)
            for vector in gw.post("/v1/embed", json={"texts": texts[at : at + 100]}).json()[
                "vectors"
            ]
        ]
        assert gw.put(
            "/v1/vectors/indexes/strangers", json={"dim": len(vectors[0]), "space": "cosine"}
        ).is_success
        items = [
            {"id": f"x-{n}", "vector": v, "metadata": {"role": r, "state": s, "city": c}}
            for n, ((r, s, c), v) in enumerate(zip(rows, vectors, strict=True))
        ]
        assert gw.post("/v1/vectors/indexes/strangers/add", json={"items": items}).is_success
        result = CliRunner().invoke(
            app,
            ["multitier", "--gateway", stack.url("gateway"), "--index", "strangers"]
            + ["-c", "2", "-n", "20", "--queries", "10"],
        )
        assert result.exit_code == 1, result.output
        summary = orjson.loads(result.stderr.strip().splitlines()[-1])
        fill = summary["per_scenario"]["surge_fill_validate"]
        assert fill["failures"] == fill["count"] == 3
        assert fill["failure_reasons"] == {"fill rejected by the validator": 3}
        assert "Consistency" in fill["failure_examples"]["fill rejected by the validator"][0]
        assert summary["validator"]["fill"] == {"passed": 0, "failed": 3}
        assert summary["failures"] == 3
        assert "! surge_fill_validate: fill rejected by the validator x3" in result.stdout

    def test_refuses_a_roster_of_another_size(self, stack: LiveStack) -> None:
        result = CliRunner().invoke(
            app, ["multitier", "--gateway", stack.url("gateway"), "--workers", "1000", "-n", "1"]
        )
        assert result.exit_code == 2
        assert "holds 300 workers, not 1,000" in result.stderr
        assert "lakehouse demo load --workers 1000" in result.stderr

    def test_refuses_a_missing_index(self, stack: LiveStack) -> None:
        with pytest.raises(HarnessError, match="cannot read index 'nope'"):
            asyncio.run(run_mix(MixConfig(gateway=stack.url("gateway"), index="nope")))


@pytest.mark.parametrize("url", ["http://10.1.2.3:3110", "http://example.com"])
def test_multitier_refuses_anything_but_loopback(url: str) -> None:
    result = CliRunner().invoke(app, ["multitier", "--gateway", url, "-n", "1"])
    assert result.exit_code == 2
    assert "loopback" in result.stderr
