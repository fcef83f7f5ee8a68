"""The published messages: one per journal transaction, one per monitor crossing.

A transaction's body is the API's transaction shape (as ``GET /v1/journal``) plus ``balances``
(each account it posted to, beancount-signed, after it) and ``agents`` (each agent it touched,
after it). Its message id is ``journal.<seq>``; the headers repeat the sequence and the hashes so a
consumer can deduplicate and check the chain (``prevHash`` of one = ``hash`` of the one before)
without parsing the body.
"""

from __future__ import annotations

import json
from typing import Any

from ..api.schemas import time_text, transaction_out
from ..domain.model import AgentState
from ..domain.money import format_micros
from ..domain.monitors import Metric, TargetKind, agent_measure, credit_use_percent
from .changes import Change, Crossing
from .sinks import OutboundMessage

SEQ_HEADER = "Agentbooks-Seq"
HASH_HEADER = "Agentbooks-Hash"
PREV_HASH_HEADER = "Agentbooks-Prev-Hash"


def journal_subject(prefix: str) -> str:
    return f"{prefix}.journal"


def monitor_subject(prefix: str, monitor_id: str) -> str:
    return f"{prefix}.monitors.{monitor_id}"


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def agent_out(state: AgentState) -> dict[str, str]:
    return {"address": state.agent, "available": format_micros(state.available_micros),
            "pending": format_micros(state.pending_micros), "escrowed": format_micros(state.escrowed_micros),
            "creditUsed": format_micros(state.credit_used_micros),
            "creditLimit": format_micros(state.credit_limit_micros)}


def _headers(change: Change) -> dict[str, str]:
    tx = change.transaction
    return {SEQ_HEADER: str(tx.seq), HASH_HEADER: tx.hash, PREV_HASH_HEADER: tx.prev_hash}


def transaction_message(prefix: str, change: Change) -> OutboundMessage:
    tx = change.transaction
    body = transaction_out(tx).model_dump(by_alias=True, mode="json")
    body["type"] = "transaction"
    body["balances"] = [{"account": a, "balance": format_micros(v)} for a, v in sorted(change.balances.items())]
    body["agents"] = [agent_out(s) for s in change.agents.values()]
    return OutboundMessage(journal_subject(prefix), f"journal.{tx.seq}", encode(body), _headers(change))


def _measured(crossing: Crossing, value: AgentState | int) -> str | None:
    metric = crossing.monitor.condition.metric
    if isinstance(value, int):
        return format_micros(value)
    if metric is Metric.CREDIT_USE_PERCENT:
        percent = credit_use_percent(value)
        return None if percent is None else str(percent)
    return format_micros(agent_measure(metric, value))


def crossing_body(change: Change, crossing: Crossing) -> dict[str, Any]:
    """What a monitor event says (on the broker and in the webhook's body)."""
    tx, monitor = change.transaction, crossing.monitor
    condition = monitor.condition
    body: dict[str, Any] = {
        "type": "balance_monitor", "monitorId": monitor.id,
        "target": {"kind": condition.target_kind.value, "id": condition.target},
        "metric": condition.metric.value, "comparison": condition.comparison.value,
        "threshold": format_micros(condition.threshold_micros),
        "before": _measured(crossing, crossing.before), "value": _measured(crossing, crossing.after),
        "seq": tx.seq, "hash": tx.hash, "transactionId": tx.id, "kind": tx.kind.value,
        "occurredAt": time_text(tx.occurred_at),
    }
    if condition.target_kind is TargetKind.AGENT:
        assert isinstance(crossing.after, AgentState)
        body["agent"] = agent_out(crossing.after)
    return body


def crossing_message(prefix: str, change: Change, crossing: Crossing) -> OutboundMessage:
    return OutboundMessage(monitor_subject(prefix, crossing.monitor.id),
                           f"monitor.{crossing.monitor.id}.{change.transaction.seq}",
                           encode(crossing_body(change, crossing)), _headers(change))
