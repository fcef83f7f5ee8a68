"""Who is calling: the initiator and request id recorded in every journal transaction.

The HTTP API (per request: the API key's id and role, or the admin), the CLI (the OS user),
the demo and background jobs set ``call_context`` around their calls. ``LedgerService.execute``
reads it on the caller's thread, before the request goes to the group committer, and records it
in each transaction's hashed metadata (``initiator``, ``request_id``): tamper-evident, exported.
A direct Python call outside any context is initiator ``library`` with no request id.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

LIBRARY = "library"


@dataclass(frozen=True, slots=True)
class CallContext:
    initiator: str  # "api-key:<id>:<role>", "admin", "demo", "cli:<user>", "job:<name>", "library"
    request_id: str | None = None

    def annotations(self) -> dict[str, str]:
        """The transaction metadata this context contributes."""
        out = {"initiator": self.initiator}
        if self.request_id is not None:
            out["request_id"] = self.request_id
        return out


call_context: ContextVar[CallContext | None] = ContextVar("agentbooks_call_context", default=None)


def current() -> CallContext:
    return call_context.get() or CallContext(LIBRARY)


@contextmanager
def calling(initiator: str, request_id: str | None = None) -> Iterator[CallContext]:
    """Run the block as ``initiator`` (restored afterwards, also on error)."""
    context = CallContext(initiator, request_id)
    token = call_context.set(context)
    try:
        yield context
    finally:
        call_context.reset(token)


@contextmanager
def unless_called(initiator: str, request_id: str | None = None) -> Iterator[CallContext]:
    """``calling(initiator)`` only when no caller set a context (a job run from a route keeps the route's)."""
    existing = call_context.get()
    if existing is not None:
        yield existing
        return
    with calling(initiator, request_id) as context:
        yield context
