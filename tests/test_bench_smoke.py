"""The benchmark suite still runs end to end (tiny sizes) and writes a well-formed table; no timings asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_quick_benchmark_run_writes_its_table(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "AGENTBOOKS_BENCH_DATABASE_URL"}
    run = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads((tmp_path / "quick.json").read_text())
    groups = {row["group"] for row in result["rows"]}
    assert {"sqlite 1 writer", "sqlite batches", "balance reads", "export", "api (sqlite)"} <= groups
    assert {"group commit, sqlite: mixed", "group commit, sqlite: metering"} <= groups
    if os.environ.get("AGENTBOOKS_TEST_DATABASE_URL"):
        assert {"postgres 1 writer", "postgres 8 writers", "group commit, postgres: mixed",
                "group commit, postgres: metering", "api (postgres)"} <= groups
    assert all(row["value"] > 0 for row in result["rows"])
    assert result["machine"]["cores"] and result["command"] == "python -m bench --quick"
    assert "| group | measure |" in (tmp_path / "quick.md").read_text()


def test_only_the_group_commit_suites_run_alone_into_their_own_table(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("AGENTBOOKS_BENCH_DATABASE_URL", "AGENTBOOKS_TEST_DATABASE_URL")}  # SQLite only: quick
    run = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "group-commit", "--out", str(tmp_path)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads((tmp_path / "quick-group-commit.json").read_text())
    assert {row["group"] for row in result["rows"]} == {"group commit, sqlite: mixed", "group commit, sqlite: metering"}
    assert result["command"] == "python -m bench --quick --only group-commit"
    targets = {row["target"] for row in result["rows"] if row["target"]}
    assert targets == {"≥ 5 × 1 caller", "≥ 2", "≥ 0.5"}
    assert not (tmp_path / "quick.json").exists()
