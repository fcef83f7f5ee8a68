"""The group-commit suites (issue 12): many concurrent callers of one ``Ledger`` against one caller and bare drivers.

Two workloads (``workload.py``): (a) ``mixed``: deposits, spends, holds and
their confirmations and releases on 1,000 agents, 10 % of the traffic on 10
hot agents; (b) ``metering``: one session hold of a buyer, settled a little at
a time to sellers with a fee by every caller at once, the rest released at
the end (the hold and the release are outside the timed span).

Every caller runs its own endless stream for a fixed time, so the same suite
measures a ledger doing a few hundred operations a second and one doing tens
of thousands. Callers warm up (a few calls each) before a common start.
The streams stay valid in any interleaving, so a refused call is a bug in the
benchmark or the ledger and stops the run. Several processes share one clock
(``time.perf_counter`` is the system's monotonic clock): the rate of a run is
all its operations over the span from the first caller's start to the last
caller's end.

The baselines, measured in the same run on the same database
(``bare_calls.py``): the same calls with the bare driver and one commit each
and no chain head (PostgreSQL: several client processes, sequence numbers
from a SEQUENCE), and the minimal transfer shape for a lone caller.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from agentbooks import Ledger
from agentbooks.domain.money import format_micros

from . import suites
from .bare_calls import BareWriter
from .workload import METERED_PRICE_MICROS, agent_address, metering_calls, mixed_calls

WARM_UP_CALLS = 3
SEED_FUNDS_MICROS = 1000 * 10**6  # what ``suites._seeded`` deposits for every agent
SESSION_HOLD_MICROS = 50_000 * 10**6
PROCESS_TIMEOUT_S = 600

Span = tuple[int, float, float]  # operations, first caller's start, last caller's end
Add = Callable[..., None]  # ``__main__``'s row writer


@dataclass(frozen=True)
class Run:
    """One measurement: who writes, which workload, how many callers (threads of one process), for how long."""

    url: str
    writer: str  # "ledger", "bare" (the same calls, bare driver) or "minimal" (the minimal transfer, bare driver)
    workload: str  # "mixed" or "metering"
    callers: int
    seconds: float
    seed: int
    allowance_micros: int = 0  # mixed: each caller's share of every agent's seed funds
    agents: int = 1000
    hot_share: float = 0.1
    buyer: str = ""  # metering: whose hold
    reference: str = ""


def _streams(run: Run) -> list[Any]:
    if run.workload == "metering":
        return [metering_calls(run.buyer, run.reference, sellers=run.agents, seed=run.seed + i) for i in range(run.callers)]
    return [mixed_calls(allowance_micros=run.allowance_micros, agents=run.agents, hot_share=run.hot_share,
                        seed=run.seed + i, tag=f"gc{run.seed}-{i}-") for i in range(run.callers)]


def _steps(run: Run) -> tuple[list[Callable[[], None]], Callable[[], None]]:
    """One step function per caller (each call of it makes one call of the workload), and what closes them."""
    if run.writer == "ledger":
        ledger = Ledger.open(run.url)

        def calling(stream: Any) -> Callable[[], None]:
            def step() -> None:
                name, args, kwargs = next(stream)
                getattr(ledger, name)(*args, **kwargs)
            return step

        return [calling(stream) for stream in _streams(run)], ledger.close
    writers = [BareWriter(run.url) for _ in range(run.callers)]

    def close() -> None:
        for writer in writers:
            writer.close()

    if run.writer == "bare":
        return [lambda w=w, s=s: w.call(next(s)) for w, s in zip(writers, _streams(run))], close
    pairs = [itertools.cycle([(agent_address(i), agent_address((i + 1 + n) % run.agents)) for i in range(run.agents)])
             for n in range(run.callers)]
    return [lambda w=w, p=p: w.minimal_transfer(*next(p), 10_000) for w, p in zip(writers, pairs)], close


def measure(run: Run, *, ready: Callable[[], None] | None = None, go: Any = None) -> Span:
    """Run ``run``'s callers as threads of this process.

    Alone (``ready`` and ``go`` omitted) they start together once all have
    warmed up; across processes each calls ``ready`` when warm and all wait
    for the parent's ``go``.
    """
    steps, close = _steps(run)
    try:
        return _drive(steps, run.seconds, ready, go)
    finally:
        close()


def _drive(steps: list[Callable[[], None]], seconds: float, ready: Callable[[], None] | None, go: Any) -> Span:
    warmed = threading.Barrier(len(steps) + 1)
    go = go or threading.Event()
    spans: list[Span] = []
    errors: list[BaseException] = []

    def caller(step: Callable[[], None]) -> None:
        try:
            for _ in range(WARM_UP_CALLS):
                step()
        except BaseException as exc:  # noqa: BLE001 - reported by the measuring thread
            errors.append(exc)
            warmed.abort()
            return
        try:
            warmed.wait()
        except threading.BrokenBarrierError:
            return
        go.wait()
        started = time.perf_counter()
        deadline, done = started + seconds, 0
        try:
            while time.perf_counter() < deadline:
                step()
                done += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        spans.append((done, started, time.perf_counter()))

    threads = [threading.Thread(target=caller, args=(step,), daemon=True) for step in steps]
    for thread in threads:
        thread.start()
    try:
        warmed.wait()
    except threading.BrokenBarrierError:
        pass
    else:
        (ready or go.set)()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return sum(s[0] for s in spans), min(s[1] for s in spans), max(s[2] for s in spans)


def rate(*spans: Span) -> float:
    return sum(s[0] for s in spans) / (max(s[2] for s in spans) - min(s[1] for s in spans))


def _process(run: Run, results: Any, go: Any) -> None:
    try:
        results.put(("span", measure(run, ready=lambda: results.put(("ready", None)), go=go)))
    except BaseException as exc:  # noqa: BLE001 - the parent raises it
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def across_processes(runs: list[Run]) -> float:
    """Operations per second of one process per run, all started together once every process is warm.

    The processes fork from a server process that has imported the ledger
    once (and holds no threads or connections): a new process costs
    milliseconds, not the seconds of a fresh interpreter's imports.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    results, go = context.Queue(), context.Event()
    processes = [context.Process(target=_process, args=(run, results, go)) for run in runs]
    for process in processes:
        process.start()
    spans, failures, warm = [], [], 0
    try:
        while len(spans) + len(failures) < len(processes):
            kind, value = results.get(timeout=PROCESS_TIMEOUT_S)
            if kind == "ready":
                warm += 1
                if warm == len(processes):
                    go.set()
            elif kind == "span":
                spans.append(value)
            else:
                failures.append(value)
                go.set()  # let the others finish
    except queue.Empty:
        failures.append(f"no answer from a measuring process within {PROCESS_TIMEOUT_S} s")
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
    if failures:
        raise RuntimeError(f"a measuring process failed: {failures[0]}")
    return rate(*spans)


# --- the suites -------------------------------------------------------------------------------------

def _open_session(url: str, buyer: str, reference: str) -> None:
    with Ledger.open(url) as ledger:
        ledger.deposit(buyer, format_micros(SESSION_HOLD_MICROS), f"0xsession-{reference}")
        ledger.hold(buyer, format_micros(SESSION_HOLD_MICROS), reference)


def _close_session(url: str, buyer: str, reference: str) -> None:
    """Release what the settlements left of the session hold."""
    with Ledger.open(url) as ledger:
        left = ledger.get_hold(buyer, reference).remaining_micros
        if left:
            ledger.release_hold(buyer, format_micros(left), reference)


class Measurer:
    """Runs of one workload on one database; a metering run gets a session hold of its own, released after."""

    def __init__(self, url: str, workload: str, seconds: float, seeds: Iterator[int], *, agents: int,
                 hot_share: float, total_callers: int) -> None:
        """``seeds``: shared by every run on the database, so streams' tx hashes and references differ."""
        self.url, self.workload, self.seconds = url, workload, seconds
        self.agents, self.hot_share = agents, hot_share
        self.allowance = SEED_FUNDS_MICROS // total_callers
        self.seeds = seeds.__next__
        self.buyer, self.bare_buyer = agent_address(agents + 10), agent_address(agents + 11)

    def run(self, writer: str, callers: int, *, reference: str = "") -> Run:
        return Run(self.url, writer, self.workload, callers, self.seconds, self.seeds(), self.allowance, self.agents,
                   self.hot_share, self.buyer if writer == "ledger" else self.bare_buyer, reference)

    def ledger(self, callers: int, processes: int = 0) -> float:
        """``processes`` 0: ``callers`` threads in this process; else that many processes of ``callers`` each."""
        reference = f"session-{self.seeds()}" if self.workload == "metering" else ""
        if reference:
            _open_session(self.url, self.buyer, reference)
        try:
            if not processes:
                return rate(measure(self.run("ledger", callers, reference=reference)))
            return across_processes([self.run("ledger", callers, reference=reference) for _ in range(processes)])
        finally:
            if reference:
                _close_session(self.url, self.buyer, reference)

    def bare(self, clients: int, *, minimal: bool = False) -> float:
        """The bare driver, one client a process (one client in this process on SQLite: one writer there)."""
        reference = f"bare-session-{self.seeds()}" if self.workload == "metering" and not minimal else ""
        if reference:
            with Ledger.open(self.url) as ledger:  # the bare buyer's agent and balance rows
                ledger.deposit(self.bare_buyer, "1", f"0xbare-buyer-{reference}")
            writer = BareWriter(self.url)
            writer.open_bare_hold(self.bare_buyer, reference, SESSION_HOLD_MICROS)
            writer.close()
        kind = "minimal" if minimal else "bare"
        if clients == 1:
            return rate(measure(self.run(kind, 1, reference=reference)))
        return across_processes([self.run(kind, 1, reference=reference) for _ in range(clients)])


def _session_covers(sizes: dict) -> None:
    """The session hold must cover every settlement a run can make (a generous bound on the rate)."""
    if SESSION_HOLD_MICROS < METERED_PRICE_MICROS[1] * 200_000 * sizes["gc_seconds"]:
        raise ValueError("the metering runs are too long for the session hold: raise SESSION_HOLD_MICROS")


def run_suites(add: Add, sizes: dict, pg_admin: str | None, work: Path, *, agents: int, hot_share: float,
               skip_api: bool) -> None:
    """Every group-commit figure of issue 12, as rows of the table."""
    _session_covers(sizes)
    # Everyone who draws on the agents' seed funds: each caller gets its share (``mixed_calls``).
    callers = 1 + sizes["gc_callers"] + sizes["gc_per_process"] * (1 + sizes["gc_processes"]) + sizes["gc_bare_clients"]
    seeds = itertools.count(1000, 1000)

    def both_workloads(url: str, engine: str) -> None:
        # One database an engine: the metering runs only credit the mixed workload's agents (as sellers),
        # and the bare metering runs settle a buyer of their own.
        for workload in ("mixed", "metering"):
            _workload_rows(add, Measurer(url, workload, sizes["gc_seconds"], seeds, agents=agents, hot_share=hot_share,
                                         total_callers=callers), engine, sizes)

    url = f"sqlite:///{work / 'group-commit.db'}"
    suites._seeded(url, agents)
    both_workloads(url, "sqlite")
    if not pg_admin:
        return
    dbs = suites.PgDatabases(pg_admin)
    try:
        url = dbs.new()
        suites._seeded(url, agents)
        BareWriter.prepare_postgres(url)
        both_workloads(url, "postgres")
        if not skip_api:
            connections, workers = sizes["gc_api_connections"], sizes["gc_api_workers"]
            _api_rows(add, suites.api_load(url, sizes["gc_api_seconds"], connections, workers), connections, workers)
    finally:
        dbs.drop_all()


def _workload_rows(add: Add, m: Measurer, engine: str, sizes: dict) -> None:
    """One workload on one engine: 1 caller, many, the bare driver; PostgreSQL: processes; mixed: the lone caller."""
    postgres = engine == "postgres"
    group, many = f"group commit, {engine}: {m.workload}", sizes["gc_callers"]
    # SQLite has one writer at a time: its bare baseline is one client.
    driver, clients = ("psycopg", sizes["gc_bare_clients"]) if postgres else ("sqlite3", 1)
    many_target, bare_target, lone_target = (8, 1, 0.6) if postgres else (5, 2, 0.5)
    # Every ledger run before the bare ones: those move balances the ledger's journal does not explain.
    one, concurrent = m.ledger(1), m.ledger(many)
    if postgres:
        per_process, processes = sizes["gc_per_process"], sizes["gc_processes"]
        single, several = m.ledger(per_process, processes=1), m.ledger(per_process, processes=processes)
    bare = m.bare(clients)
    add(group, "ledger, 1 caller", one, "ops/s")
    add(group, f"bare {driver}, {clients} client{' processes' if clients > 1 else ''}, the same calls, "
               f"one durable commit each, no head row{' (a SEQUENCE)' if postgres else ''}", bare, "ops/s")
    add(group, f"ledger, {many} concurrent callers (threads of one process)", concurrent, "ops/s", one,
        f"≥ {many_target} × 1 caller", concurrent >= many_target * one)
    add(group, f"ledger, {many} callers ÷ bare {driver}", concurrent / bare, "×", target=f"≥ {bare_target}",
        met=concurrent >= bare_target * bare)
    if postgres:
        add(group, f"ledger, 1 process × {per_process} callers", single, "ops/s")
        add(group, f"ledger, {processes} processes × {per_process} callers", several, "ops/s", single,
            "≥ 1.5 × 1 process", several >= 1.5 * single)
    if m.workload == "mixed":
        minimal = m.bare(1, minimal=True)
        add(group, f"bare {driver}, minimal transfer in one durable commit (1 client"
                   f"{', a SEQUENCE' if postgres else ', WAL, synchronous=FULL'})", minimal, "ops/s")
        add(group, "lone caller: ledger 1 caller ÷ minimal transfer", one / minimal, "×", target=f"≥ {lone_target}",
            met=one >= lone_target * minimal)


def _api_rows(add: Add, api: dict, connections: int, workers: int) -> None:
    group, floor = "api (postgres)", api["floor_rps"]
    tool = lambda name: api.get(f"{name}_tool", "python threads")  # noqa: E731
    add(group, f"GET /healthz, {connections} connections ({tool('floor')}), {workers} workers: the floor", floor,
        "req/s")
    add(group, f"deposits, {connections} connections ({tool('deposit')})", api["deposit_rps"], "req/s", floor,
        "≥ 0.4 × floor", api["deposit_rps"] >= 0.4 * floor)
    add(group, "deposit p99", api["deposit_p99_ms"], "ms")
    add(group, f"balance reads, {connections} connections ({tool('balance')})", api["balance_rps"], "req/s", floor,
        "≥ 0.7 × floor", api["balance_rps"] >= 0.7 * floor)
    add(group, "balance read p99", api["balance_p99_ms"], "ms")
