"""The measurements. Each returns plain numbers; ``__main__`` prints and stores them."""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from agentbooks import Ledger, LedgerError
from .raw_sql import raw_postgres, raw_sqlite
from .workload import agent_address, workload


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- databases ------------------------------------------------------------------------

class PgDatabases:
    """Throw-away PostgreSQL databases, dropped at the end of the run."""

    def __init__(self, admin_url: str) -> None:
        self.admin = make_url(admin_url).set(drivername="postgresql+psycopg")
        self.engine = create_engine(self.admin.set(database="postgres"), isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def new(self) -> str:
        name = f"agentbooks_bench_{uuid.uuid4().hex[:10]}"
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.admin.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.engine.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.engine.dispose()


def _seeded(url: str, agents: int) -> None:
    """Fund every agent so the raw deposits' guards and the workload's spends can pass."""
    with Ledger.open(url) as ledger:
        ops = [{"op": "deposit", "agent": agent_address(i), "amount": "1000", "tx_hash": f"0xseed{i}"}
               for i in range(agents + 2)]
        for i in range(0, len(ops), 1000):
            ledger.batch(ops[i:i + 1000])


# --- 1 and 2: single commits, ledger vs raw SQL ------------------------------------------

def _ledger_single_commits(url: str, ops: list[dict]) -> tuple[float, float]:
    with Ledger.open(url) as ledger:
        started = time.perf_counter()
        for op in ops:
            try:
                ledger.batch([op])
            except LedgerError:
                pass  # writers share hot agents: another writer may have spent what this plan expected
        return started, time.perf_counter()


def single_commits(url: str, ops: list[dict]) -> float:
    started, ended = _ledger_single_commits(url, ops)
    return len(ops) / (ended - started)


def _raw_slice(url: str, agents: list[str], count: int, first: int) -> tuple[float, float]:
    started = time.perf_counter()
    (raw_sqlite(url, agents, count, first) if url.endswith(".db") else raw_postgres(url, agents, count, first))
    return started, time.perf_counter()


def parallel(target, url: str, slices: list[tuple], total_ops: int) -> float:  # type: ignore[no-untyped-def]
    """Total operations per second of one process per slice, each writing its own slice."""
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(len(slices), mp_context=context) as pool:
        spans = [job.result() for job in [pool.submit(target, url, *args) for args in slices]]
    return total_ops / (max(e for _, e in spans) - min(s for s, _ in spans))


def _ledger_slice(url: str, ops: list[dict]) -> tuple[float, float]:
    return _ledger_single_commits(url, ops)


def raw_agents(agents: int) -> list[str]:
    return [agent_address(i) for i in range(agents)]


# --- 3: batches ---------------------------------------------------------------------------

def batched(url: str, ops: list[dict], size: int) -> float:
    with Ledger.open(url) as ledger:
        started = time.perf_counter()
        for i in range(0, len(ops), size):
            ledger.batch(ops[i:i + size])
        return len(ops) / (time.perf_counter() - started)


# --- 4: balance reads as the journal grows ---------------------------------------------------

def grow_to(ledger: Ledger, postings: int, seed: int, traffic=workload) -> int:  # type: ignore[no-untyped-def]
    """Add workload batches until the journal holds at least ``postings`` postings; return the count."""
    def count() -> int:
        return ledger.service.read(lambda c: c.execute(text("SELECT COUNT(*) FROM postings")).scalar())

    chunk = 0
    while (have := count()) < postings:
        chunk += 1
        ops = traffic(min(5000, max(100, (postings - have) // 2)), seed=seed + chunk, tag=f"g{have}-")
        for i in range(0, len(ops), 1000):
            ledger.batch(ops[i:i + 1000])
    return count()


def read_latencies(ledger: Ledger, reads: int, *, as_of: int | None = None) -> tuple[float, float]:
    agent = agent_address(0)  # a hot agent: the most history
    samples = []
    for _ in range(reads):
        started = time.perf_counter()
        ledger.get_balance(agent, as_of=as_of)
        samples.append(time.perf_counter() - started)
    return percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000


# --- 5: export vs beancount's loader -----------------------------------------------------------

_EXPORT_SCRIPT = """
import resource, sys, time
from pathlib import Path
from agentbooks import Ledger
from agentbooks.export.beancount import export_file
with Ledger.open(sys.argv[1]) as ledger:
    t = time.perf_counter(); export_file(ledger, Path(sys.argv[2])); export_s = time.perf_counter() - t
print(export_s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

# Its own process, so its peak memory is its own.
_TRIAL_BALANCE_SCRIPT = """
import resource, sys, time
from agentbooks import Ledger
from agentbooks.reports import build_report
with Ledger.open(sys.argv[1]) as ledger:
    t = time.perf_counter(); build_report(ledger, "trial-balance"); trial_s = time.perf_counter() - t
print(trial_s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

_LOAD_SCRIPT = """
import resource, sys, time
from beancount import loader
t = time.perf_counter(); entries, errors, _ = loader.load_file(sys.argv[1]); s = time.perf_counter() - t
assert not errors, errors[:3]
print(s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def export_vs_loader(url: str, workdir: Path) -> dict[str, float]:
    out = workdir / "bench.beancount"
    def measured(*args: str) -> list[float]:
        run = subprocess.run([sys.executable, "-c", *args], capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"measurement failed: {run.stderr[-3000:]}")
        return [float(x) for x in run.stdout.split()]

    export_s, export_kb = measured(_EXPORT_SCRIPT, url, str(out))
    trial_s, trial_kb = measured(_TRIAL_BALANCE_SCRIPT, url)
    load_s, load_kb = measured(_LOAD_SCRIPT, str(out))
    return {"export_s": export_s, "trial_balance_s": trial_s, "export_peak_mb": export_kb / 1024,
            "trial_balance_peak_mb": trial_kb / 1024, "beancount_load_s": load_s,
            "beancount_peak_mb": load_kb / 1024, "file_mb": out.stat().st_size / 2**20}


# --- 6: the API under load ------------------------------------------------------------------------

def api_load(url: str, seconds: float, clients: int, workers: int = 2) -> dict[str, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "AGENTBOOKS_ADMIN_SECRET": "bench", "AGENTBOOKS_DATABASE_URL": url}
    server = subprocess.Popen([sys.executable, "-m", "agentbooks.cli", "serve", "--port", str(port),
                               "--workers", str(workers)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        results = {}
        agent = agent_address(0)
        if shutil.which("wrk"):
            wrk_load("warm-up", f"{base}/healthz", 2, clients)  # both workers up and warm before measuring
            # The floor of the stack in the same run: uvicorn, the middleware and FastAPI's routing, no ledger.
            results.update(wrk_load("floor", f"{base}/healthz", seconds, clients))
            results.update(wrk_load("balance", f"{base}/v1/agents/{agent}/balance", seconds, clients))
            results.update(wrk_load("deposit", f"{base}/v1/admin/deposits", seconds, clients,
                                    script=_WRK_DEPOSITS.replace("AGENT", agent)))
        fallbacks = (
            ("floor", lambda c, i: c.get("/healthz")),
            ("balance", lambda c, i: c.get(f"/v1/agents/{agent}/balance")),
            ("deposit", lambda c, i: c.post("/v1/admin/deposits", json={
                "agentAddress": agent, "amount": "1", "txHash": f"0xapi{i}-{uuid.uuid4().hex[:8]}"})),
        )
        for name, make in [(n, m) for n, m in fallbacks if f"{n}_rps" not in results]:
            latencies: list[float] = []
            lock = threading.Lock()
            deadline = time.perf_counter() + seconds

            def client(n: int) -> None:
                local = []
                with httpx.Client(base_url=base, headers={"X-Admin-Secret": "bench"}, timeout=30) as http:
                    i = 0
                    while time.perf_counter() < deadline:
                        started = time.perf_counter()
                        response = make(http, f"{n}-{i}")
                        local.append(time.perf_counter() - started)
                        assert response.status_code < 300, response.text
                        i += 1
                with lock:
                    latencies.extend(local)

            started = time.perf_counter()
            threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            results[f"{name}_rps"] = len(latencies) / elapsed
            results[f"{name}_p50_ms"] = percentile(latencies, 0.5) * 1000
            results[f"{name}_p99_ms"] = percentile(latencies, 0.99) * 1000
        return results
    finally:
        server.terminate()
        server.wait(timeout=15)


def _wrk_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


# Each request a new deposit: a unique tx hash per wrk thread (``setup`` numbers them) and request.
_WRK_DEPOSITS = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tag", threads)
end
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local body = '{"agentAddress":"AGENT","amount":"1","txHash":"0xwrk' .. os.time() .. '-' .. tag .. '-' .. counter .. '"}'
  return wrk.format(nil, nil, nil, body)
end
"""


def wrk_load(name: str, url: str, seconds: float, connections: int, *, script: str | None = None) -> dict:
    """wrk (a C load generator) measures the server, not a Python client competing for the same cores."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--latency", "-H", "X-Admin-Secret: bench"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        if script:
            lua.write(script)
            lua.flush()
            args += ["-s", lua.name]
        out = subprocess.run([*args, url], capture_output=True, text=True, timeout=120).stdout
    found = [re.search(pattern, out) for pattern in (r"Requests/sec:\s+([0-9.]+)", r"50%\s+([0-9.]+(?:us|ms|s))\b",
                                                     r"99%\s+([0-9.]+(?:us|ms|s))\b")]
    if not all(found):
        raise RuntimeError(f"wrk printed no figures for {name}:\n{out[-2000:]}")
    rps, p50, p99 = float(found[0].group(1)), _wrk_ms(found[1].group(1)), _wrk_ms(found[2].group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert errors is None, f"wrk saw {errors.group(1)} error responses for {name}"
    return {f"{name}_rps": rps, f"{name}_p50_ms": p50, f"{name}_p99_ms": p99, f"{name}_tool": "wrk"}
