"""Agent profiles: the display name and metadata an admin gives an agent (not money, not in the journal).

Shown on statements and exported as account metadata. One row per agent,
replaced whole on every change.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from sqlalchemy import Connection, delete, select

from .tables import agent_profiles


def upsert_profile(conn: Connection, address: str, display_name: str | None, metadata: Mapping[str, str],
                   at_us: int) -> None:
    conn.execute(delete(agent_profiles).where(agent_profiles.c.address == address))
    conn.execute(agent_profiles.insert(), {"address": address, "display_name": display_name,
                                           "metadata_json": json.dumps(dict(metadata), sort_keys=True),
                                           "updated_at_us": at_us})


def read_profiles(conn: Connection, addresses: list[str] | None = None) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """address → (display name, metadata), for the given agents or every agent with a profile."""
    query = select(agent_profiles).order_by(agent_profiles.c.address)
    if addresses is not None:
        query = query.where(agent_profiles.c.address.in_(addresses))
    return {r.address: (r.display_name, json.loads(r.metadata_json)) for r in conn.execute(query)}
