"""``python -m bench.head_hold [OPS]``: how long PostgreSQL writers hold the chain head, for 1, 2 and 8 writers.

A diagnostic, not part of the table: it explains the 8-writer figure. Each
writer process times, around its own calls, the span from the moment the
``journal_head`` row lock is granted (its ``SELECT … FOR UPDATE`` returns) to
the end of the commit. When the spans of all writers add up to the whole
wall time, the head is the bottleneck; the span per operation shows what it
costs. Needs AGENTBOOKS_BENCH_DATABASE_URL or AGENTBOOKS_TEST_DATABASE_URL.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import sys
import time

from .suites import PgDatabases, _ledger_single_commits, _seeded
from .workload import workload


def _writer(url: str, ops: list[dict]) -> tuple[float, float, float]:
    """Run ``ops`` one commit each; return (start, end, seconds the head was held)."""
    import psycopg

    held, granted = [0.0], [None]
    execute, commit = psycopg.Cursor.execute, psycopg.Connection.commit

    def timed_execute(self, query, params=None, **kwargs):  # type: ignore[no-untyped-def]
        result = execute(self, query, params, **kwargs)
        if "journal_head WHERE id = 1 FOR UPDATE" in str(query):
            granted[0] = time.perf_counter()  # type: ignore[assignment]
        return result

    def timed_commit(self):  # type: ignore[no-untyped-def]
        result = commit(self)
        if granted[0] is not None:
            held[0] += time.perf_counter() - granted[0]
            granted[0] = None
        return result

    psycopg.Cursor.execute, psycopg.Connection.commit = timed_execute, timed_commit  # type: ignore[method-assign]
    started, ended = _ledger_single_commits(url, ops)
    return started, ended, held[0]


def main() -> None:
    admin = os.environ.get("AGENTBOOKS_BENCH_DATABASE_URL") or os.environ.get("AGENTBOOKS_TEST_DATABASE_URL")
    if not admin:
        sys.exit("set AGENTBOOKS_BENCH_DATABASE_URL (or AGENTBOOKS_TEST_DATABASE_URL) to a PostgreSQL server")
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 2400
    dbs = PgDatabases(admin)
    try:
        url = dbs.new()
        _seeded(url, 1000)
        for writers in (1, 2, 8):
            each = total // writers
            context = multiprocessing.get_context("spawn")
            with futures.ProcessPoolExecutor(writers, mp_context=context) as pool:
                jobs = [pool.submit(_writer, url, workload(each, seed=300 + 10 * writers + i, tag=f"hh{writers}-{i}-"))
                        for i in range(writers)]
                spans = [job.result() for job in jobs]
            wall = max(end for _, end, _ in spans) - min(start for start, _, _ in spans)
            held = sum(h for _, _, h in spans)
            print(f"{writers} writer(s): {each * writers / wall:,.0f} ops/s; head held {held / wall:.0%} of the wall "
                  f"time, {held / (each * writers) * 1000:.2f} ms per operation", flush=True)
    finally:
        dbs.drop_all()


if __name__ == "__main__":
    main()
