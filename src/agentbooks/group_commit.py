"""Group commit: concurrent callers in one process share one database transaction.

A caller hands its request (one operation, or one all-or-nothing batch) to
the committer and waits. A caller that finds no commit under way leads: it
takes what is queued, at most ``max_requests`` requests and
``max_operations`` operations, and hands them to ``commit_group``, which
answers every request of the group. Then the lead passes to the next waiting
caller, or lapses when nobody waits. Nobody sleeps to fill a group: a lone
caller leads at once and commits alone, on its own thread, so it pays no
hand-off; under load the group is whatever queued while the previous commit
ran, which is what makes one durable commit and one turn of the chain head
serve many requests.

Two requests with the same idempotency key never share a group: the second
waits for the next one, where it reads the first one's stored answer.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generic, Sequence, TypeVar

from .domain.errors import InvariantViolation

R = TypeVar("R")


@dataclass(eq=False)
class Pending(Generic[R]):
    """One caller's request while it waits for its group's commit."""

    request: Any
    operations: int  # its size, counted against the group's bound
    exclusive_key: tuple[str, str] | None = None  # its idempotency key: one request per key in a group
    _answered: bool = False
    _value: R | None = None
    _error: BaseException | None = None
    _lead: bool = False  # woken to lead the next group, not answered
    _wake: threading.Event | None = None  # made only for a caller that waits (a lone caller never does)

    def answer(self, value: R) -> None:
        self._answered, self._value = True, value

    def fail(self, error: BaseException) -> None:
        self._answered, self._error = True, error

    @property
    def answered(self) -> bool:
        return self._answered

    def outcome(self) -> R:
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


@dataclass(frozen=True)
class GroupStats:
    """What the committer has done so far (for tests, the benchmark and metrics)."""

    groups: int
    requests: int
    largest_group: int


class GroupCommitter(Generic[R]):
    """Hands queued requests to ``commit_group`` in groups; see the module docstring."""

    def __init__(self, commit_group: Callable[[Sequence[Pending[R]]], None], *,
                 max_requests: int = 256, max_operations: int = 10_000) -> None:
        self._commit_group = commit_group
        self.max_requests = max_requests
        self.max_operations = max_operations
        self._lock = threading.Lock()
        self._queue: deque[Pending[R]] = deque()
        self._leading = False
        self._groups = self._requests = self._largest = 0

    def stats(self) -> GroupStats:
        with self._lock:
            return GroupStats(self._groups, self._requests, self._largest)

    def submit(self, request: Any, *, operations: int = 1, exclusive_key: tuple[str, str] | None = None) -> R:
        """Queue ``request`` and return its answer once its group has committed (or raise its error)."""
        mine: Pending[R] = Pending(request, operations, exclusive_key)
        with self._lock:
            self._queue.append(mine)
            lead = not self._leading
            self._leading = True
            if not lead:
                mine._wake = threading.Event()
        while not lead:
            assert mine._wake is not None
            mine._wake.wait()
            mine._wake.clear()
            if mine.answered:
                return mine.outcome()
            lead = mine._lead
        self._lead_until_answered(mine)
        return mine.outcome()

    def _lead_until_answered(self, mine: Pending[R]) -> None:
        while True:
            group = self._take_group()
            try:
                self._commit_group(group)
            except BaseException as exc:  # the committer's own failure: every request of the group gets it
                for pending in group:
                    if not pending.answered:
                        pending.fail(exc)
            finally:
                for pending in group:
                    if not pending.answered:
                        pending.fail(InvariantViolation("the group commit left a request unanswered"))
                    if pending is not mine and pending._wake is not None:
                        pending._wake.set()
                if mine.answered:
                    self._pass_lead()
            if mine.answered:
                return

    def _take_group(self) -> list[Pending[R]]:
        with self._lock:
            group: list[Pending[R]] = []
            keys: set[tuple[str, str]] = set()
            operations = 0
            kept: list[Pending[R]] = []
            while self._queue and len(group) < self.max_requests:
                pending = self._queue[0]
                if group and operations + pending.operations > self.max_operations:
                    break
                self._queue.popleft()
                if pending.exclusive_key is not None and pending.exclusive_key in keys:
                    kept.append(pending)  # same key as one in this group: it reads that answer next time
                    continue
                if pending.exclusive_key is not None:
                    keys.add(pending.exclusive_key)
                group.append(pending)
                operations += pending.operations
            self._queue.extendleft(reversed(kept))
            self._groups += 1
            self._requests += len(group)
            self._largest = max(self._largest, len(group))
            return group

    def _pass_lead(self) -> None:
        """After a group: the first waiting caller leads the next one, or nobody leads."""
        with self._lock:
            if not self._queue:
                self._leading = False
                return
            nxt = self._queue[0]
        nxt._lead = True
        assert nxt._wake is not None  # it waits: it queued while a group was committing
        nxt._wake.set()
