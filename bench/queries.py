"""Query and as-of latencies as the journal grows: the transaction listing and past balances.

    python -m bench.queries            # 10^4 and 10^6 postings on SQLite (PostgreSQL too when
                                       # AGENTBOOKS_BENCH_DATABASE_URL or AGENTBOOKS_TEST_DATABASE_URL is set)
    python -m bench.queries --quick    # 10^3 and 10^4: checks that it runs

Each figure is a p50/p99 over many calls. A past balance is read at moments spread over the whole
history (times and sequences, early to late): its cost should not depend on where the moment falls
nor on the history's length. A listing page (100 transactions) is read with each filter from
cursors spread over the journal: its cost should follow the page, not the journal.
Writes ``reports/benchmarks/queries.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from agentbooks import Ledger

from . import suites
from .workload import agent_address, workload

OUT = Path("reports/benchmarks")


def with_metadata(operations: int, *, seed: int = 0, tag: str = "") -> list[dict]:
    """The suite's workload, every third operation carrying an order id (the metadata filter's target)."""
    ops = workload(operations, seed=seed, tag=tag)
    for i, op in enumerate(ops[::3]):
        op["metadata"] = {"orderId": f"{tag}o{i % 500}"}
    return ops


def latencies(call: Callable[[int], Any], count: int) -> tuple[float, float]:
    samples = []
    for i in range(count):
        started = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - started)
    return suites.percentile(samples, 0.5) * 1000, suites.percentile(samples, 0.99) * 1000


def measure(ledger: Ledger, postings: int, reads: int, rng: random.Random) -> list[dict]:
    rows: list[dict] = []
    head = ledger.head()[0]
    seqs = [rng.randint(1, head) for _ in range(reads)]
    times = [t.occurred_at for t in ledger.find_transactions(from_seq=1, limit=1).transactions]
    times += [t.occurred_at for s in seqs[:64] for t in ledger.find_transactions(from_seq=s, limit=1).transactions]
    hot = agent_address(0)  # a hot agent: the most history

    def add(measure_name: str, p50: float, p99: float, target: str = "", met: bool | None = None) -> None:
        rows.append({"postings": postings, "measure": measure_name, "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
                     "target": target, "met": met})
        print(f"  {postings:>9,} postings  {measure_name:<52} p50 {p50:8.3f} ms  p99 {p99:8.3f} ms", flush=True)

    p50, p99 = latencies(lambda i: ledger.get_balance(hot, as_of=seqs[i]), reads)
    add("as-of balance, hot agent, random past sequence", p50, p99, "p99 < 2 ms", p99 < 2)
    p50, p99 = latencies(lambda i: ledger.get_balance(hot, as_of=times[i % len(times)]), reads)
    add("as-of balance, hot agent, random past time", p50, p99, "p99 < 2 ms", p99 < 2)
    p50, p99 = latencies(lambda i: ledger.get_balance(hot), reads)
    add("balance now (baseline)", p50, p99)
    page = 100
    filters: dict[str, dict[str, Any]] = {
        "agent": {"agent": hot}, "kind": {"kind": "spend"}, "metadata key/value": {"meta_key": "orderId"},
        "amount range": {"min_amount": "1", "max_amount": "5"}, "time range": {"from_time": times[0]},
        "agent + kind": {"agent": hot, "kind": "deposit"},
    }
    for name, where in filters.items():
        p50, p99 = latencies(lambda i: ledger.find_transactions(limit=page, cursor=seqs[i] // 2, **where),
                             max(10, reads // 5))
        add(f"listing page of {page}, {name}", p50, p99)
    return rows


def run(levels: list[int], reads: int, urls: dict[str, str]) -> list[dict]:
    rows = []
    for engine, url in urls.items():
        print(f"{engine}:", flush=True)
        with Ledger.open(url) as ledger:
            for level in levels:
                postings = suites.grow_to(ledger, level, seed=21, traffic=with_metadata)
                for row in measure(ledger, postings, reads, random.Random(level)):
                    rows.append({"engine": engine, **row})
    return rows


def write(rows: list[dict], quick: bool) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    stem = "queries-quick" if quick else "queries"
    (OUT / f"{stem}.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["| engine | postings | measure | p50 ms | p99 ms | target | met |", "|---|---:|---|---:|---:|---|---|"]
    lines += [f"| {r['engine']} | {r['postings']:,} | {r['measure']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
              f"{r['target']} | {'' if r['met'] is None else ('yes' if r['met'] else 'NO')} |" for r in rows]
    (OUT / f"{stem}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    levels, reads = ([1_000, 10_000], 50) if args.quick else ([10_000, 1_000_000], 2000)
    pg_admin = os.environ.get("AGENTBOOKS_BENCH_DATABASE_URL") or os.environ.get("AGENTBOOKS_TEST_DATABASE_URL")
    with tempfile.TemporaryDirectory() as work:
        urls = {"sqlite": f"sqlite:///{Path(work) / 'queries.db'}"}
        dbs = suites.PgDatabases(pg_admin) if pg_admin and not args.quick else None
        try:
            if dbs is not None:
                urls["postgresql"] = dbs.new()
            write(run(levels, reads, urls), args.quick)
        finally:
            if dbs is not None:
                dbs.drop_all()


if __name__ == "__main__":
    main()
