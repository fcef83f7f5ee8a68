"""Balance monitors (``/v1/admin/monitors``): define, list and delete them; see their webhook calls.

A monitor watches an agent's balance (available, pending, escrowed, credit_used,
credit_use_percent) or an account's balance; when a committed transaction makes its condition true,
the publisher (``agentbooks publish`` or ``serve --nats``) publishes an event and, with a webhook
URL, calls it with a signed body.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import Field, StrictStr

from ..domain.money import format_micros
from ..domain.monitors import BalanceMonitor
from ..events import monitors as service_monitors
from ..ledger import Ledger
from ..storage.events_store import Delivery
from ..storage.journal_store import from_us
from .deps import get_ledger, require_admin
from .schemas import ErrorOut, Wire, time_text

router = APIRouter(prefix="/v1/admin/monitors", tags=["monitors"], dependencies=[Depends(require_admin)])
ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 403, 404, 422)}


class MonitorBody(Wire):
    target_kind: StrictStr = Field(description="agent or account")
    target: StrictStr = Field(description="the agent's address or the account's name")
    metric: StrictStr = Field(description="agent: available, pending, escrowed, credit_used, credit_use_percent; "
                                          "account: balance (beancount-signed)")
    comparison: StrictStr = Field(description="below or above")
    threshold: StrictStr = Field(description="USDC (6 places; an account's may be negative) or, for "
                                             "credit_use_percent, a percentage", examples=["5.00", "80"])
    webhook_url: StrictStr | None = None
    webhook_secret: StrictStr | None = Field(None, description="HMAC-SHA256 key, 16-128 characters; "
                                                               "generated when omitted and shown once")


class MonitorOut(Wire):
    id: str
    target_kind: str
    target: str
    metric: str
    comparison: str
    threshold: str
    webhook_url: str | None
    webhook_secret: str | None = Field(None, description="only in the response that created the monitor")
    after_seq: int = Field(description="the monitor watches transactions after this journal sequence")
    created_at: str


class MonitorList(Wire):
    monitors: list[MonitorOut]


class DeliveryOut(Wire):
    seq: int
    state: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None


class DeliveryList(Wire):
    deliveries: list[DeliveryOut]


def monitor_out(m: BalanceMonitor, *, with_secret: bool = False) -> MonitorOut:
    c = m.condition
    return MonitorOut(id=m.id, target_kind=c.target_kind.value, target=c.target, metric=c.metric.value,
                      comparison=c.comparison.value, threshold=format_micros(c.threshold_micros),
                      webhook_url=m.webhook_url, webhook_secret=m.webhook_secret if with_secret else None,
                      after_seq=m.after_seq, created_at=time_text(from_us(m.created_at_us)) or "")


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(seq=d.seq, state=d.state, attempts=d.attempts,
                       next_attempt_at=time_text(from_us(d.next_attempt_at_us)) if d.state == "pending" else None,
                       last_error=d.last_error)


@router.post("", status_code=201, response_model=MonitorOut, responses=ERRORS)
def create_monitor(body: MonitorBody, ledger: Ledger = Depends(get_ledger)) -> MonitorOut:
    """Define a monitor; it watches transactions committed from now on. The webhook secret is shown only here."""
    monitor = service_monitors.create_monitor(
        ledger.service, target_kind=body.target_kind, target=body.target, metric=body.metric,
        comparison=body.comparison, threshold=body.threshold, webhook_url=body.webhook_url,
        webhook_secret=body.webhook_secret)
    return monitor_out(monitor, with_secret=True)


@router.get("", response_model=MonitorList, responses=ERRORS)
def list_monitors(ledger: Ledger = Depends(get_ledger)) -> MonitorList:
    return MonitorList(monitors=[monitor_out(m) for m in service_monitors.list_monitors(ledger.service)])


@router.delete("/{monitor_id}", status_code=204, responses=ERRORS)
def delete_monitor(monitor_id: str, ledger: Ledger = Depends(get_ledger)) -> Response:
    """Delete a monitor and its undelivered webhook calls."""
    service_monitors.delete_monitor(ledger.service, monitor_id)
    return Response(status_code=204)


@router.get("/{monitor_id}/deliveries", response_model=DeliveryList, responses=ERRORS)
def monitor_deliveries(monitor_id: str, ledger: Ledger = Depends(get_ledger)) -> DeliveryList:
    """The monitor's webhook calls, oldest first: pending (with the next attempt), delivered or failed."""
    return DeliveryList(deliveries=[delivery_out(d) for d in service_monitors.monitor_deliveries(ledger.service,
                                                                                                   monitor_id)])
