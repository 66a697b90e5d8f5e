"""The draft use cases' data: the review card, presets, confirm outcomes, and the order a
draft stands for (deterministic client order id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum

from core.domain import (
    ZERO,
    OrderRequest,
    OrderType,
    Side,
    Symbol,
    TickRounding,
    TimeInForce,
    round_to_tick,
)
from core.ids import Purpose, client_order_id, draft_scope
from core.ledger import DraftRow, DraftStatus
from core.order_views import OrderView
from core.risk import RiskReason
from core.session import SessionState


class DraftError(ValueError):
    """A draft cannot be created or edited as asked (the message says why)."""


class ConfirmOutcome(StrEnum):
    PLACED = "placed"  # at the broker, acknowledged
    SENT = "sent"  # at the broker, acknowledgement pending
    QUEUED = "queued"  # accepted, waits for the regular open
    ALREADY_CONFIRMED = "already_confirmed"  # double tap / replayed update: nothing done
    NOT_PENDING = "not_pending"  # canceled or expired earlier
    EXPIRED = "expired"
    NOT_FOUND = "not_found"
    REFUSED_RISK = "refused_risk"
    REFUSED_CAPABILITY = "refused_capability"
    REJECTED = "rejected"  # the broker refused it (draft reopened)
    NEVER_REACHED = "never_reached"  # definitively not placed (draft reopened)
    UNKNOWN = "unknown"  # ambiguous; the reconciler resolves it (no resend)


@dataclass(frozen=True, slots=True)
class SizePreset:
    label: str
    risk_usd: Decimal
    qty: Decimal


@dataclass(frozen=True, slots=True)
class DraftReview:
    """Everything the draft card shows."""

    draft_id: int
    account: str
    status: DraftStatus
    side: Side
    symbol: str
    trigger: Decimal | None
    stop: Decimal | None
    qty: Decimal
    risk_usd: Decimal | None
    r_per_share: Decimal | None
    notional: Decimal | None
    pct_of_equity: Decimal | None
    equity: Decimal | None
    buying_power: Decimal | None
    session_state: SessionState
    allowed: bool
    refusals: tuple[RiskReason, ...]
    warnings: tuple[RiskReason, ...]
    event_warnings: tuple[str, ...]
    capability_note: str
    queued: bool
    expires_at: datetime | None
    size_presets: tuple[SizePreset, ...]
    position_qty: Decimal = ZERO
    note: str | None = None
    # A buy's trail, frozen on the draft: `stop` is the trigger less it (the protection's
    # first level at a fill at the trigger), `structure_stop` the signal's low (info only).
    trail_pct: Decimal | None = None
    structure_stop: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ConfirmResult:
    draft_id: int
    outcome: ConfirmOutcome
    message: str
    order: OrderView | None = None
    reasons: tuple[RiskReason, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome in (ConfirmOutcome.PLACED, ConfirmOutcome.SENT, ConfirmOutcome.QUEUED)


HUNDRED = Decimal(100)
TRAIL_STEP = Decimal("0.01")  # as core.trail rounds a trail
MAX_TRAIL_PCT = Decimal(50)  # as /trail allows


def protective_stop(trigger: Decimal, trail_pct: Decimal) -> Decimal:
    """The one stop of a buy draft: where a trailing stop of `trail_pct` starts when the
    entry fills at `trigger`, rounded down to the tick (R is never understated)."""
    return round_to_tick(trigger * (1 - trail_pct / HUNDRED), TickRounding.DOWN)


def trail_for_stop(trigger: Decimal, stop: Decimal) -> Decimal:
    """The trail whose first level at `trigger` is `stop`, to 0.01 %, rounded up: the
    protection is never tighter than the stop the trader asked for."""
    if not (ZERO < stop < trigger):
        raise DraftError(f"the stop {stop} must be below the trigger {trigger}")
    pct = ((trigger - stop) / trigger * HUNDRED).quantize(TRAIL_STEP, rounding=ROUND_CEILING)
    if pct >= MAX_TRAIL_PCT:
        raise DraftError(f"a stop at {stop} is a trail of {pct}%: at most {MAX_TRAIL_PCT}%")
    return pct


def draft_request(namespace: str, draft: DraftRow, attempt: int) -> OrderRequest:
    """The order a draft stands for: a stop-buy (DAY) or a stop-sell (GTC, protection)."""
    assert draft.trigger_price is not None
    purpose = Purpose.ENTRY if draft.side is Side.BUY else Purpose.USER_STOP
    return OrderRequest(
        client_order_id=client_order_id(namespace, draft_scope(draft.id), purpose, attempt),
        symbol=Symbol(draft.symbol),
        side=draft.side,
        qty=draft.qty,
        order_type=OrderType.STOP,
        time_in_force=TimeInForce.DAY if draft.side is Side.BUY else TimeInForce.GTC,
        stop_price=draft.trigger_price,
    )


__all__ = [
    "ConfirmOutcome",
    "ConfirmResult",
    "DraftError",
    "DraftReview",
    "SizePreset",
    "draft_request",
    "protective_stop",
    "trail_for_stop",
]
