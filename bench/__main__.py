"""``python -m bench [--quick] [--skip-api] [--only group-commit] [--out reports/benchmarks]``: the suite, one table.

Figures are ratios against baselines measured in the same run on the same
machine (the raw-SQL limit for writes, beancount's own loader for exports).
PostgreSQL parts run when AGENTBOOKS_BENCH_DATABASE_URL (or
AGENTBOOKS_TEST_DATABASE_URL) names a server; each uses a throw-away database.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sqlite3
import subprocess
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from agentbooks import Ledger

from . import group_commit, suites
from .raw_sql import raw_sqlite_batches
from .reconcile_chain import reconcile_suite
from .workload import workload

FULL = {"single": 2000, "pg_single": 1500, "pg_each": 400, "batch": 20_000, "levels": (10**4, 10**5, 10**6),
        "reads": 2000, "api_seconds": 8, "api_clients": 8,
        "gc_seconds": 5, "gc_callers": 64, "gc_processes": 4, "gc_per_process": 16, "gc_bare_clients": 8,
        "gc_api_seconds": 8, "gc_api_connections": 64, "gc_api_workers": 2, "reconcile": (10**5, 10**6)}
QUICK = {"single": 60, "pg_single": 40, "pg_each": 15, "batch": 600, "levels": (10**3, 3 * 10**3),
         "reads": 50, "api_seconds": 1, "api_clients": 2,
         "gc_seconds": 0.2, "gc_callers": 4, "gc_processes": 2, "gc_per_process": 2, "gc_bare_clients": 2,
         "gc_api_seconds": 1, "gc_api_connections": 4, "gc_api_workers": 1, "reconcile": (10**3,)}
ONLY = {"group-commit": "the group-commit suites of issue 12 (many callers against one and the bare drivers)"}


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip() or "n/a"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory_gb": f"{mem_kb / 2**20:.1f}",
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "postgresql": pg,
            **{pkg: version(pkg) for pkg in ("agentbooks", "sqlalchemy", "psycopg", "fastapi", "uvicorn", "httptools", "beancount")}}


def run(sizes: dict, pg_admin: str | None, skip_api: bool, work: Path, *, agent_count: int = 1000,
        hot_share: float = 0.1, only: str | None = None) -> list[dict]:
    rows: list[dict] = []
    traffic = functools.partial(workload, agents=agent_count, hot_share=hot_share)

    def add(group: str, measure: str, value: float, unit: str, baseline: float | None = None, target: str = "",
            met: bool | None = None) -> None:
        rows.append({"group": group, "measure": measure, "value": round(value, 3), "unit": unit,
                     "ratio": round(value / baseline, 3) if baseline else None, "target": target, "met": met})
        print(f"  {group:<18} {measure:<46} {value:>12.2f} {unit}", flush=True)

    if only is None:
        _core_suites(add, sizes, pg_admin, skip_api, work, agent_count, traffic)
    # 7: group commit (issue 12): many concurrent callers against one, and against the bare drivers.
    group_commit.run_suites(add, sizes, pg_admin, work, agents=agent_count, hot_share=hot_share, skip_api=skip_api)
    return rows


def _core_suites(add, sizes: dict, pg_admin: str | None, skip_api: bool, work: Path,  # type: ignore[no-untyped-def]
                agent_count: int, traffic) -> None:
    """Suites 1-6: single commits and batches against raw SQL, balance reads, export, the API on SQLite."""
    agents = suites.raw_agents(agent_count)
    ops = traffic(sizes["single"], tag="s-")

    # 1-2: single commits on SQLite, ledger vs raw.
    lite = f"sqlite:///{work / 'single.db'}"
    suites._seeded(lite, agent_count)
    ledger_ops = suites.single_commits(lite, ops)
    raw_ops = suites.raw_sqlite(str(work / "single.db"), agents, sizes["single"], 10**9)
    add("sqlite 1 writer", "raw-SQL limit (bare sqlite3)", raw_ops, "ops/s")
    add("sqlite 1 writer", "ledger, one durable commit per operation", ledger_ops, "ops/s", raw_ops,
        "≥ 0.5 × raw", ledger_ops >= 0.5 * raw_ops)

    # 3: batches, against the same rows written with bare executemany in the same run.
    for size in (100, 1000):
        url = f"sqlite:///{work / f'batch{size}.db'}"
        suites._seeded(url, agent_count)
        value = suites.batched(url, traffic(sizes["batch"], seed=7), size)
        raw_batch = raw_sqlite_batches(str(work / f"batch{size}.db"), agents, sizes["batch"], size, 10**9)
        add("sqlite batches", f"raw-SQL limit, {size} deposits a commit (bare executemany)", raw_batch, "ops/s")
        add("sqlite batches", f"ledger.batch, {size} operations a commit", value, "ops/s", raw_batch,
            "≥ 20,000 ops/s", value >= 20_000)

    if pg_admin:
        dbs = suites.PgDatabases(pg_admin)
        try:
            url = dbs.new()
            suites._seeded(url, agent_count)
            pg_ops = traffic(sizes["pg_single"], seed=3, tag="p-")
            one = suites.single_commits(url, pg_ops)
            raw_one = suites.raw_postgres(url.replace("postgresql+psycopg", "postgresql"), agents, sizes["pg_single"], 10**9)
            add("postgres 1 writer", "raw-SQL limit (bare psycopg)", raw_one, "ops/s")
            add("postgres 1 writer", "ledger, one durable commit per operation", one, "ops/s", raw_one,
                "≥ 0.5 × raw", one >= 0.5 * raw_one)
            slices = [(traffic(sizes["pg_each"], seed=100 + i, tag=f"w{i}-"),) for i in range(8)]
            eight = suites.parallel(suites._ledger_slice, url, slices, sizes["pg_each"] * 8)
            raw_slices = [(agents[i::8], sizes["pg_each"], 2 * 10**9 + i * 10**6) for i in range(8)]
            raw_eight = suites.parallel(suites._raw_slice, url.replace("postgresql+psycopg", "postgresql"),
                                        raw_slices, sizes["pg_each"] * 8)
            add("postgres 8 writers", "raw-SQL limit, 8 processes", raw_eight, "ops/s", raw_one)
            add("postgres 8 writers", "ledger, 8 processes", eight, "ops/s", one, "> 1 writer", eight > one)
        finally:
            dbs.drop_all()

    # 4: balance reads as the journal grows; a point-in-time balance in the past.
    grow = Ledger.open(f"sqlite:///{work / 'grow.db'}")
    p99s = []
    for level in sizes["levels"]:
        postings = suites.grow_to(grow, level, seed=11, traffic=traffic)
        p50, p99 = suites.read_latencies(grow, sizes["reads"])
        p99s.append(p99)
        add("balance reads", f"p50 at {postings:,} postings", p50, "ms")
        add("balance reads", f"p99 at {postings:,} postings", p99, "ms", p99s[0], "< 2 ms, flat", p99 < 2)
        past = grow.head()[0] // 2
        p50, p99 = suites.read_latencies(grow, max(10, sizes["reads"] // 10), as_of=past)
        add("balance reads", f"as-of seq {past:,} (half-way) p99 at {postings:,} postings", p99, "ms")
    grow.close()

    # 5: export of the largest journal vs beancount loading the result.
    export = suites.export_vs_loader(f"sqlite:///{work / 'grow.db'}", work)
    add("export", f"beancount export ({export['file_mb']:.0f} MB)", export["export_s"], "s")
    add("export", "beancount's loader on the same file", export["beancount_load_s"], "s")
    add("export", "export time / loader time", export["export_s"] / export["beancount_load_s"], "×",
        target="< 1 (faster than beancount loads it)", met=export["export_s"] < export["beancount_load_s"])
    add("export", "export peak memory", export["export_peak_mb"], "MB", target="flat")
    add("export", "beancount loader peak memory", export["beancount_peak_mb"], "MB")
    add("export", f"trial balance report ({postings:,} postings)", export["trial_balance_s"], "s")
    add("export", "trial balance peak memory", export["trial_balance_peak_mb"], "MB")

    # 6: reconciliation against chain transfers, whole ledger and a window.
    for measure, value, unit in reconcile_suite(work, sizes["reconcile"]):
        add("reconcile", measure, value, unit)

    # 7: the API.
    if not skip_api:
        api = suites.api_load(f"sqlite:///{work / 'single.db'}", sizes["api_seconds"], sizes["api_clients"])
        tool = api.get("balance_tool", "python threads")
        if "floor_rps" in api:
            add("api (sqlite)", f"GET /healthz, {sizes['api_clients']} connections (wrk), 2 workers: the stack's floor",
                api["floor_rps"], "req/s")
        add("api (sqlite)", f"balance reads, {sizes['api_clients']} connections ({tool}), 2 workers",
            api["balance_rps"], "req/s", api.get("floor_rps"),
            target="≥ 1,500 req/s", met=api["balance_rps"] >= 1500)
        add("api (sqlite)", "balance read p99", api["balance_p99_ms"], "ms", target="< 25 ms",
            met=api["balance_p99_ms"] < 25)
        add("api (sqlite)", f"deposits, {sizes['api_clients']} connections ({api.get('deposit_tool', 'python threads')})",
            api["deposit_rps"], "req/s")
        add("api (sqlite)", "deposit p99", api["deposit_p99_ms"], "ms")


def write(rows: list[dict], out: Path, stem: str, command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    quick = stem.startswith("quick")
    (out / f"{stem}.json").write_text(json.dumps({"command": command, "machine": info, "rows": rows}, indent=2) + "\n")
    lines = [f"# agentbooks benchmarks{' (quick)' if quick else ''}", "", f"Reproduce: `{command}`", "",
             "| " + " | ".join(f"{k}: {v}" for k, v in info.items()) + " |", "", 
             "| group | measure | value | unit | ratio to baseline | target | met |",
             "|---|---|---:|---|---:|---|---|"]
    for r in rows:
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['group']} | {r['measure']} | {r['value']:,} | {r['unit']} | "
                     f"{'' if r['ratio'] is None else r['ratio']} | {r['target']} | {met} |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the suite works (seconds)")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--agents", type=int, default=1000, help="agents in the workload (default 1000)")
    parser.add_argument("--hot-share", type=float, default=0.1,
                        help="share of the traffic on the 10 hot agents (default 0.1)")
    parser.add_argument("--only", choices=sorted(ONLY),
                        help="run only this part of the suite, written to <stem>-<name>.{md,json}: "
                             + "; ".join(f"{k}: {v}" for k, v in ONLY.items()))
    parser.add_argument("--seconds", type=float,
                        help="how long each group-commit measurement runs (default 5; 0.2 with --quick): longer "
                             "runs average out a noisy machine")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    args = parser.parse_args()
    pg = os.environ.get("AGENTBOOKS_BENCH_DATABASE_URL") or os.environ.get("AGENTBOOKS_TEST_DATABASE_URL")
    if args.agents < 20 or not 0 <= args.hot_share <= 1:
        parser.error("--agents needs at least 20 agents and --hot-share a share between 0 and 1")
    if args.seconds is not None and not 0.1 <= args.seconds <= 600:
        parser.error("--seconds needs 0.1 to 600 seconds")
    sizes = {**(QUICK if args.quick else FULL), **({"gc_seconds": args.seconds} if args.seconds else {})}
    command = "python -m bench" + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
    if (args.agents, args.hot_share) != (1000, 0.1):
        command += f" --agents {args.agents} --hot-share {args.hot_share}"
    if args.seconds:
        command += f" --seconds {args.seconds:g}"
    stem = ("quick" if args.quick else "results") + (f"-{args.only}" if args.only else "")
    with tempfile.TemporaryDirectory(prefix="agentbooks-bench-") as tmp:
        started = time.perf_counter()
        rows = run(sizes, pg, args.skip_api, Path(tmp), agent_count=args.agents,
                   hot_share=args.hot_share, only=args.only)
        print(f"done in {time.perf_counter() - started:.0f} s", flush=True)
    write(rows, args.out, stem, command)
    print((args.out / f"{stem}.md").read_text())


if __name__ == "__main__":
    main()
