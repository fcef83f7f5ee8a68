"""The journal as a beancount ledger that ``bean-check`` accepts, written as a stream.

Account names are the ledger's own under the standard roots every tool knows:
``Platform:…`` is exported as ``Assets:Platform:…`` and ``Agent:…`` as
``Liabilities:Agent:…`` (``Income:``, ``Expenses:`` and ``Equity:`` are
standard already), so beancount, fava, hledger and ledger-cli classify every
account with no options or declarations; ``ledger_name`` maps them back.
Fava's ``invert-income-liabilities-equity`` option is set so income and
obligations read as positive numbers there. Each
journal transaction becomes one beancount transaction with a unique link
(``^tx-<id>``) and metadata carrying every field of the hash chain (so an
auditor can re-walk it from the file alone); credit-limit events, which move
no money, become transactions without postings. Every used account gets an
exact (``~ 0``) balance assertion at the cut-off, dated the day after the
last transaction because beancount checks a balance at the start of its day.

Memory stays flat: transactions are streamed from the journal a page at a
time. The exporter writes text; it does not import beancount.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

from ..domain.accounts import exported_name, parse_account
from ..domain.hashing import canonical_time
from ..domain.model import AgentProfile, Transaction
from ..domain.operations import CLIENT_METADATA_KEY
from ..domain.money import CURRENCY, format_micros
from ..ledger import Ledger
from ..storage import journal_store as store

STATE_FILE = "export-state.json"


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    first_seq: int
    last_seq: int
    transactions: int
    accounts: int
    head_hash: str


def _quote(text: str) -> str:
    # A line break would end the string for line-based readers; only free-text memos (not hashed) can hold one.
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


FAVA_OPTIONS = '1970-01-01 custom "fava-option" "invert-income-liabilities-equity" "true"\n\n'


def header(title: str) -> str:
    return f'option "title" {_quote(title)}\noption "operating_currency" "{CURRENCY}"\n\n' + FAVA_OPTIONS


def open_directives(first_used: dict[str, datetime], profiles: Mapping[str, AgentProfile] | None = None) -> str:
    """One ``open`` per account at its first use; an agent's accounts carry its address and profile."""
    lines = []
    for name in sorted(first_used):
        lines.append(f"{first_used[name].date().isoformat()} open {exported_name(name)} {CURRENCY}")
        agent = parse_account(name).agent
        if agent is not None:
            lines.append(f"  agent: {_quote(agent)}")
            profile = (profiles or {}).get(agent)
            if profile is not None:
                if profile.display_name:
                    lines.append(f"  display-name: {_quote(profile.display_name)}")
                lines += [f"  {key}: {_quote(value)}" for key, value in sorted(profile.metadata.items())]
    return "\n".join(lines) + ("\n\n" if lines else "")


def _narration(tx: Transaction, names: Mapping[str, AgentProfile]) -> str:
    amount = f"{format_micros(tx.amount_micros)} {CURRENCY}"
    if tx.kind.value == "set_credit_limit":
        return f"credit limit of {_who(tx.agent, names)} set to {amount}"
    parts = [tx.kind.value.replace("_", " "), amount]
    if tx.agent:
        parts.append(f"agent {_who(tx.agent, names)}")
    if tx.counterparty:
        parts.append(f"counterparty {_who(tx.counterparty, names)}")
    if tx.reference:
        parts.append(f"ref {tx.reference}")
    if tx.memo and tx.agent is None:
        parts.append(f"({tx.memo})")
    return " ".join(parts)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


_CHAIN_META = ("block_number", "block_hash", "destination")


def _chain_meta(meta: Any) -> dict[str, str]:
    """Where an on-chain transfer was mined, as beancount metadata of its own (also inside ``details``)."""
    return {name.replace("_", "-"): str(meta[name]) for name in _CHAIN_META if meta.get(name) is not None}


def _who(agent: str | None, names: Mapping[str, AgentProfile]) -> str:
    profile = names.get(agent or "")
    return f"{profile.display_name} ({agent})" if profile and profile.display_name else (agent or "")


def payee(tx: Transaction, names: Mapping[str, AgentProfile]) -> str:
    """Who the transaction is with: the counterparty paid, else the agent, else the platform itself."""
    party = tx.counterparty or tx.agent
    if party is None:
        return "platform"
    profile = names.get(party)
    return profile.display_name if profile and profile.display_name else party


# Kept as metadata when the chain goes into comments: what a person filters on in fava.
VISIBLE_META = frozenset({"kind", "agent", "counterparty", "reference", "tx-hash", "memo"})
CHAIN_MODES = ("metadata", "comments")


def transaction_text(tx: Transaction, names: Mapping[str, AgentProfile] | None = None, *,
                     chain: str = "metadata") -> str:
    """One journal transaction as a beancount transaction (exactly 6 decimals everywhere).

    ``chain="comments"`` writes the hash-chain fields as ``; key: "value"``
    comment lines inside the transaction instead of metadata: fava and
    beancount ignore them, ``verify-export`` reads them just the same.
    """
    names = names or {}
    meta = {
        "seq": str(tx.seq),
        "id": tx.id,
        "kind": tx.kind.value,
        "at": canonical_time(tx.occurred_at),
        "agent": tx.agent,
        "counterparty": tx.counterparty,
        "amount-micros": str(tx.amount_micros),
        "reference": tx.reference,
        "tx-hash": tx.tx_hash,
        **_chain_meta(tx.metadata),
        "credit-limit-micros": str(tx.credit_limit_micros) if tx.credit_limit_micros is not None else None,
        "reverses-seq": str(tx.reverses_seq) if tx.reverses_seq is not None else None,
        "memo": tx.memo,
        "initiator": _text_or_none(tx.metadata.get("initiator")),  # also inside details (and the hash)
        "request-id": _text_or_none(tx.metadata.get("request_id")),
        "details": json.dumps(dict(tx.metadata), sort_keys=True, separators=(",", ":")) if tx.metadata else None,
        "prev-hash": tx.prev_hash,
        "hash": tx.hash,
    }
    lines = [f"{tx.occurred_at.date().isoformat()} * {_quote(payee(tx, names))} {_quote(_narration(tx, names))} "
             f"^tx-{tx.id}"]
    for key, value in meta.items():
        if value is not None:
            hidden = chain == "comments" and key not in VISIBLE_META
            lines.append(f"  {'; ' if hidden else ''}{key}: {_quote(value)}")
    # The caller's own pairs, each as beancount metadata too (their keys are valid after "client-").
    lines += [f"  client-{key}: {_quote(value)}" for key, value in tx.metadata.get(CLIENT_METADATA_KEY, {}).items()]
    for p in tx.postings:
        lines.append(f"  {exported_name(p.account)}  {format_micros(p.amount_micros)} {p.currency}")
        if p.reference is not None:
            lines.append(f"    reference: {_quote(p.reference)}")
    return "\n".join(lines) + "\n\n"


def balance_assertions(balances: dict[str, int], last_at: datetime | None) -> str:
    if last_at is None:
        return ""
    day = (last_at.astimezone(timezone.utc).date() + timedelta(days=1)).isoformat()
    lines = [f"{day} balance {exported_name(name)} {format_micros(micros)} ~ 0 {CURRENCY}"
             for name, micros in sorted(balances.items())]
    return "; exact balances at the cut-off (checked at the start of the day after the last transaction)\n" + \
        "\n".join(lines) + "\n"


def _check_chain(chain: str) -> None:
    if chain not in CHAIN_MODES:
        raise ValueError(f"chain metadata goes into one of {CHAIN_MODES}, not {chain!r}")


def export_file(ledger: Ledger, path: Path, *, as_of: datetime | int | str | None = None,
                title: str = "agentbooks", on_transaction: Callable[[Transaction], None] | None = None,
                chain: str = "metadata") -> ExportSummary:
    """Write the whole journal up to ``as_of`` into one beancount file."""
    _check_chain(chain)
    upto = ledger.resolve_as_of(as_of)
    names = ledger.agent_profiles()
    first_used = ledger.service.read(lambda c: store.accounts_first_used(c, upto_seq=upto))
    balances = ledger.service.read(lambda c: store.balances_by_prefix(c, "", as_of_seq=upto))
    path.parent.mkdir(parents=True, exist_ok=True)
    count, last = 0, None
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(header(title))
        out.write(open_directives(first_used, names))
        for tx in ledger.transactions(upto_seq=upto):
            out.write(transaction_text(tx, names, chain=chain))
            count, last = count + 1, tx
            if on_transaction:
                on_transaction(tx)
        out.write(balance_assertions({a: balances.get(a, 0) for a in first_used}, last.occurred_at if last else None))
    return ExportSummary(path, 1 if count else 0, last.seq if last else 0, count, len(first_used),
                         last.hash if last else "")


def export_directory(ledger: Ledger, directory: Path, *, since_seq: int | None = None,
                     as_of: datetime | int | str | None = None, title: str = "agentbooks",
                     on_transaction: Callable[[Transaction], None] | None = None,
                     chain: str = "metadata") -> ExportSummary:
    """A main file with monthly include files; appends only what is new since the last export.

    ``since_seq`` defaults to the sequence recorded by the previous export in
    this directory (0 for a new one). Monthly files are appended to; the
    accounts and balances files are rewritten for the new cut-off.
    """
    _check_chain(chain)
    names = ledger.agent_profiles()
    directory.mkdir(parents=True, exist_ok=True)
    state_path = directory / STATE_FILE
    previous = json.loads(state_path.read_text()) if state_path.exists() else {"last_seq": 0, "head_hash": ""}
    start = previous["last_seq"] if since_seq is None else since_seq
    if since_seq is not None and since_seq != previous["last_seq"]:
        raise ValueError(f"{directory} holds the journal up to seq {previous['last_seq']}, not {since_seq}")
    upto = ledger.resolve_as_of(as_of)
    months: set[str] = {p.stem for p in directory.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9].beancount")}
    handles: dict[str, TextIO] = {}
    count, last = 0, None
    try:
        for tx in ledger.transactions(after_seq=start, upto_seq=upto):
            if count == 0 and start and tx.prev_hash != previous["head_hash"]:
                # Another ledger (or a rewritten one): appending would splice two chains together.
                raise ValueError(f"{directory} ends at hash {previous['head_hash'][:16]}…, but transaction "
                                 f"{tx.seq} follows {tx.prev_hash[:16]}…: not the same books")
            month = tx.occurred_at.strftime("%Y-%m")
            if month not in handles:
                path = directory / f"{month}.beancount"
                handles[month] = path.open("a", encoding="utf-8", newline="\n")
                months.add(month)
            handles[month].write(transaction_text(tx, names, chain=chain))
            count, last = count + 1, tx
            if on_transaction:
                on_transaction(tx)
    finally:
        for handle in handles.values():
            handle.close()
    last_seq = last.seq if last else start
    first_used = ledger.service.read(lambda c: store.accounts_first_used(c, upto_seq=last_seq))
    balances = ledger.service.read(lambda c: store.balances_by_prefix(c, "", as_of_seq=last_seq))
    last_at = ledger.service.read(lambda c: _time_of(c, last_seq))
    (directory / "accounts.beancount").write_text(open_directives(first_used, names), encoding="utf-8")
    (directory / "balances.beancount").write_text(
        balance_assertions({a: balances.get(a, 0) for a in first_used}, last_at), encoding="utf-8")
    includes = ["accounts.beancount", *[f"{m}.beancount" for m in sorted(months)], "balances.beancount"]
    (directory / "main.beancount").write_text(
        header(title) + "".join(f'include "{name}"\n' for name in includes), encoding="utf-8")
    head_hash = last.hash if last else previous["head_hash"]
    state_path.write_text(json.dumps({"last_seq": last_seq, "head_hash": head_hash}, indent=2) + "\n")
    return ExportSummary(directory / "main.beancount", start + 1 if count else 0, last_seq, count,
                         len(first_used), head_hash)


def _time_of(conn, seq: int) -> datetime | None:  # type: ignore[no-untyped-def]
    if seq == 0:
        return None
    found = store.transactions_between(conn, seq, seq)
    return found[0].occurred_at if found else None
