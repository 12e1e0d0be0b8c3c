"""The materializer parity probe passes against the checked-in golden evidence."""

from __future__ import annotations

import subprocess

from tests.support.paths import repo_root


def test_materializer_parity_script_passes() -> None:
    root = repo_root()
    run = subprocess.run(
        ["bash", str(root / "scripts/parity/materializer_parity.sh")],
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    last = run.stdout.strip().splitlines()[-1]
    passed, total = last.split()[1].split("/")
    assert passed == total and int(total) >= 20
