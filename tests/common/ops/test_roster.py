"""The demo roster generator and ``lakehouse gen-workers`` (SPEC §4, "Demo data").

Content checks run on one 20k-row roster generated in uneven chunks (so chunk boundaries and a
short last chunk are covered); the CLI runs in a subprocess like the real console script.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from lakehouse_common.cli import app
from lakehouse_common.ops import roster
from lakehouse_common.ops.roster import (
    AVAILABILITY,
    CHUNK_ROWS,
    CITIES,
    FIRST_NAMES,
    LAST_NAMES,
    MAX_SKILLS,
    MIN_SKILLS,
    ROLES,
    ROSTER_METADATA_KEY,
    ROSTER_SCHEMA,
    STATE_NAMES,
    ZSTD_LEVEL,
    generate_roster,
    iter_roster_batches,
    write_roster,
)

ROWS = 20_000
SEED = 7
ROLE_BY_NAME = {role.name: role for role in ROLES}
CITY_BY_KEY = {(city.name, city.state): city for city in CITIES}

PHONE = re.compile(r"^\((\d{3})\) 555-01\d{2}$")
EMAIL = re.compile(r"^([a-z0-9]+)\.([a-z0-9]+?)(\d+)@example\.(com|org|net)$")
ID = re.compile(r"^w-[1-9]\d*$")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@pytest.fixture(scope="module")
def table() -> pa.Table:
    # 6_000-row chunks: three full chunks and a short fourth one.
    return generate_roster(ROWS, SEED, chunk_rows=6_000)


@pytest.fixture(scope="module")
def rows(table: pa.Table) -> list[dict[str, Any]]:
    return list(table.to_pylist())


class TestDeterminism:
    def test_same_rows_and_seed_write_identical_bytes(self, tmp_path: Path) -> None:
        a = write_roster(tmp_path / "a.parquet", 5_000, 11, chunk_rows=2_000)
        b = write_roster(tmp_path / "b.parquet", 5_000, 11, chunk_rows=2_000)
        assert a.bytes == b.bytes
        assert sha256(a.path) == sha256(b.path)

    def test_different_seed_gives_different_workers(self, tmp_path: Path) -> None:
        a = write_roster(tmp_path / "a.parquet", 2_000, 1)
        b = write_roster(tmp_path / "b.parquet", 2_000, 2)
        assert sha256(a.path) != sha256(b.path)
        ta, tb = pq.read_table(a.path), pq.read_table(b.path)
        assert ta["id"].equals(tb["id"])  # ids are positional, everything else is drawn
        for column in ("first_name", "last_name", "role", "city", "phone", "hourly_rate"):
            assert not ta[column].equals(tb[column]), column

    def test_head_does_not_depend_on_row_count(self) -> None:
        long = generate_roster(7_000, SEED, chunk_rows=3_000)
        for n in (1, 2_999, 3_000, 3_001, 6_500):
            assert generate_roster(n, SEED, chunk_rows=3_000).equals(long.slice(0, n)), n

    def test_head_with_default_chunks(self) -> None:
        assert generate_roster(300).equals(generate_roster(1_000).slice(0, 300))


class TestSchema:
    def test_generated_schema(self, table: pa.Table) -> None:
        assert table.schema.equals(ROSTER_SCHEMA)
        assert table.schema.names == [
            "id",
            "first_name",
            "last_name",
            "role",
            "city",
            "state",
            "state_name",
            "zip",
            "phone",
            "email",
            "skills",
            "certifications",
            "years_experience",
            "hourly_rate",
            "available",
            "availability",
        ]
        types = {field.name: field.type for field in table.schema}
        assert types["skills"] == pa.list_(pa.string())
        assert types["certifications"] == pa.list_(pa.string())
        assert types["years_experience"] == pa.int32()
        assert types["hourly_rate"] == pa.float64()
        assert types["available"] == pa.bool_()
        assert all(not field.nullable for field in table.schema)
        assert all(column.null_count == 0 for column in table.columns)

    def test_parquet_file_layout(self, tmp_path: Path) -> None:
        written = write_roster(tmp_path / "w.parquet", 5_000, 3, chunk_rows=2_000)
        meta = pq.read_metadata(written.path)
        assert meta.num_rows == 5_000
        assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [
            2_000,
            2_000,
            1_000,
        ]
        column = meta.row_group(0).column(0)
        assert column.compression == "ZSTD"
        assert json.loads(meta.metadata[ROSTER_METADATA_KEY]) == {
            "generator": "lakehouse_common.ops.roster",
            "rows": 5_000,
            "seed": 3,
            "chunk_rows": 2_000,
        }
        back = pq.read_table(written.path)
        assert back.schema.equals(ROSTER_SCHEMA)  # metadata is not compared
        assert back.equals(generate_roster(5_000, 3, chunk_rows=2_000))
        assert written.bytes == written.path.stat().st_size
        assert ZSTD_LEVEL == 3


class TestRowCount:
    @pytest.mark.parametrize("n", [1, 99_999, CHUNK_ROWS, 100_001])
    def test_exact_rows_and_contiguous_ids(self, n: int) -> None:
        batches = list(iter_roster_batches(n, SEED))
        sizes = [batch.num_rows for batch in batches]
        assert sum(sizes) == n
        assert all(size == CHUNK_ROWS for size in sizes[:-1])
        first, last = batches[0].column("id"), batches[-1].column("id")
        assert first[0].as_py() == "w-1"
        assert last[len(last) - 1].as_py() == f"w-{n}"
        if len(batches) > 1:
            assert batches[1].column("id")[0].as_py() == f"w-{CHUNK_ROWS + 1}"

    def test_zero_rows_is_an_empty_roster(self) -> None:
        empty = generate_roster(0)
        assert empty.num_rows == 0
        assert empty.schema.equals(ROSTER_SCHEMA)

    @pytest.mark.parametrize(
        "kwargs", [{"rows": -1}, {"rows": 5, "seed": -1}, {"rows": 5, "chunk_rows": 0}]
    )
    def test_bad_arguments_are_refused(self, kwargs: dict[str, int]) -> None:
        with pytest.raises(ValueError):
            list(iter_roster_batches(**kwargs))


class TestContent:
    def test_ids_are_unique_and_in_order(self, rows: list[dict[str, Any]]) -> None:
        ids = [row["id"] for row in rows]
        assert all(ID.match(worker_id) for worker_id in ids)
        assert ids == [f"w-{n}" for n in range(1, ROWS + 1)]

    def test_names_come_from_the_lists(self, rows: list[dict[str, Any]]) -> None:
        first, last = set(FIRST_NAMES), set(LAST_NAMES)
        assert all(row["first_name"] in first and row["last_name"] in last for row in rows)
        assert len({row["last_name"] for row in rows}) > 250  # the whole list is in use

    def test_roles_are_known_and_industrial_roles_dominate(
        self, rows: list[dict[str, Any]]
    ) -> None:
        counts = Counter(row["role"] for row in rows)
        assert set(counts) == set(ROLE_BY_NAME)  # every role appears, nothing else does
        assert counts["Warehouse Associate"] > 5 * counts["Dental Assistant"]
        assert counts["Forklift Operator"] > 5 * counts["Plumber"]

    def test_city_state_and_zip_belong_together(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            city = CITY_BY_KEY[(row["city"], row["state"])]
            assert row["zip"] == city.zip
            assert row["state_name"] == STATE_NAMES[row["state"]]
        assert len({row["state"] for row in rows}) >= 30
        assert any(row["city"] == "Aurora" and row["state"] == "IL" for row in rows)

    def test_skills_are_from_the_role_pool(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            skills = row["skills"]
            assert MIN_SKILLS <= len(skills) <= MAX_SKILLS
            assert len(set(skills)) == len(skills)
            assert set(skills) <= set(ROLE_BY_NAME[row["role"]].skills), row

    def test_certifications_are_allowed_for_the_role(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            allowed = [name for name, _ in ROLE_BY_NAME[row["role"]].certifications]
            certs = row["certifications"]
            assert len(set(certs)) == len(certs)
            assert set(certs) <= set(allowed), row
            assert certs == [name for name in allowed if name in certs]  # list order

    def test_required_certifications_are_always_held(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if row["role"] == "CDL-A Truck Driver":
                assert "CDL-A" in row["certifications"]
            if row["role"] == "CNA (Certified Nursing Assistant)":
                assert "CNA License" in row["certifications"]
        assert any(row["certifications"] == [] for row in rows)

    def test_experience_and_rates_are_plausible(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            assert 0 <= row["years_experience"] <= 40
            rate = row["hourly_rate"]
            assert 10.0 <= rate <= 100.0, row
            assert round(rate, 2) == rate
        by_role: dict[str, list[float]] = {}
        for row in rows:
            by_role.setdefault(row["role"], []).append(row["hourly_rate"])
        mean = {role: sum(rates) / len(rates) for role, rates in by_role.items()}
        assert mean["Electrician"] > mean["Warehouse Associate"] > mean["Dishwasher"]

    def test_available_agrees_with_availability(self, rows: list[dict[str, Any]]) -> None:
        meaning = {a.label: a.available for a in AVAILABILITY}
        for row in rows:
            assert row["available"] is meaning[row["availability"]]
        assert {row["availability"] for row in rows} == set(meaning)

    def test_phones_are_fictional_with_the_city_area_code(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            match = PHONE.match(row["phone"])
            assert match, row["phone"]
            assert match.group(1) in CITY_BY_KEY[(row["city"], row["state"])].area_codes

    def test_emails_derive_from_name_and_number(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            match = EMAIL.match(row["email"])
            assert match, row["email"]
            assert match.group(1) == slug(row["first_name"])
            assert match.group(2) == slug(row["last_name"])
            assert f"w-{match.group(3)}" == row["id"]
        assert len({row["email"] for row in rows}) == ROWS


class TestTables:
    def test_name_lists_are_large_and_unique(self) -> None:
        for names in (FIRST_NAMES, LAST_NAMES):
            assert len(names) >= 300
            assert len(set(names)) == len(names)
            assert all(slug(name) for name in names)

    def test_roles(self) -> None:
        assert 30 <= len(ROLES) <= 35
        assert len(ROLE_BY_NAME) == len(ROLES)
        for role in ROLES:
            assert len(role.skills) >= MAX_SKILLS and len(set(role.skills)) == len(role.skills)
            assert all(0.0 < p <= 1.0 for _, p in role.certifications)
            assert 10.0 <= role.base_rate <= 60.0

    def test_cities(self) -> None:
        assert len(CITIES) >= 100
        assert len(CITY_BY_KEY) == len(CITIES)
        assert len({city.state for city in CITIES}) >= 30
        for key in [("Aurora", "IL"), ("Chicago", "IL"), ("Joliet", "IL"), ("Naperville", "IL")]:
            assert key in CITY_BY_KEY
        for key in [("Indianapolis", "IN"), ("Columbus", "OH"), ("Dallas", "TX")]:
            assert key in CITY_BY_KEY
        for city in CITIES:
            assert re.fullmatch(r"[A-Z]{2}", city.state)
            assert re.fullmatch(r"\d{5}", city.zip)
            assert city.area_codes and all(
                re.fullmatch(r"[2-9]\d{2}", code) for code in city.area_codes
            )


class TestWriteRoster:
    def test_creates_parents_and_leaves_no_temporary_file(self, tmp_path: Path) -> None:
        target = tmp_path / "a" / "b" / "workers.parquet"
        written = write_roster(target, 10)
        assert written.path == target and written.rows == 10 and written.seed == roster.DEFAULT_SEED
        assert sorted(p.name for p in target.parent.iterdir()) == ["workers.parquet"]

    def test_replaces_an_existing_file(self, tmp_path: Path) -> None:
        target = tmp_path / "workers.parquet"
        target.write_bytes(b"old")
        write_roster(target, 10)
        assert pq.read_metadata(target).num_rows == 10
        assert [p.name for p in tmp_path.iterdir()] == ["workers.parquet"]

    def test_failure_leaves_nothing_behind(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError):
            write_roster(tmp_path / "w.parquet", -1)
        assert list(tmp_path.iterdir()) == []


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lakehouse_common.cli", "gen-workers", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestGenWorkersCommand:
    def test_writes_the_roster_and_prints_one_summary_line(self, tmp_path: Path) -> None:
        out = tmp_path / "data" / "workers.parquet"
        result = run_cli("--rows", "1234", "--out", out, "--seed", "5")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 1
        size = out.stat().st_size
        assert re.fullmatch(
            rf"gen-workers: 1234 rows -> {re.escape(str(out))} \({size} bytes\) "
            r"in \d+\.\d\d s, seed 5",
            lines[0],
        )
        assert pq.read_table(out).equals(generate_roster(1234, 5))

    def test_same_command_twice_gives_the_same_bytes(self, tmp_path: Path) -> None:
        a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
        for out in (a, b):
            result = CliRunner().invoke(app, ["gen-workers", "--rows", "300", "--out", str(out)])
            assert result.exit_code == 0, result.output
        assert sha256(a) == sha256(b)
        assert sha256(a) == sha256(write_roster(tmp_path / "c.parquet", 300, 42).path)

    def test_zero_rows_is_refused_with_exit_2(self, tmp_path: Path) -> None:
        out = tmp_path / "workers.parquet"
        result = run_cli("--rows", "0", "--out", out)
        assert result.returncode == 2
        assert "--rows must be at least 1" in result.stderr
        assert result.stdout == ""
        assert not out.exists()

    @pytest.mark.parametrize(
        "args",
        [["--rows", "-5"], ["--rows", "10", "--seed", "-1"], ["--rows", "ten"], []],
    )
    def test_bad_input_exits_2(self, tmp_path: Path, args: list[str]) -> None:
        out = tmp_path / "w.parquet"
        result = CliRunner().invoke(app, ["gen-workers", *args, "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert not out.exists()

    def test_out_is_a_directory_exits_2(self, tmp_path: Path) -> None:
        result = CliRunner().invoke(app, ["gen-workers", "--rows", "5", "--out", str(tmp_path)])
        assert result.exit_code == 2
        assert "is a directory" in result.stderr

    def test_unwritable_destination_exits_1(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        out = blocker / "workers.parquet"
        result = CliRunner().invoke(app, ["gen-workers", "--rows", "5", "--out", str(out)])
        assert result.exit_code == 1
        assert "cannot write" in result.stderr
