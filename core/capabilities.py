"""What each broker accepts, as data: broker x order type x time in force x venue.

Transcribed from the capability table in BROKERS.md (US equities). Callers run `check`
before every order so that nothing is sent that the broker will refuse. Cells that
BROKERS.md marks "(unverified)", or does not mention at all, are NOT allowed, with that
reason: an order we cannot vouch for must not be the one protecting a position.

Which cell applies to a request placed at a given session phase:
- `extended_hours=False`: the order is for the regular session (Alpaca and IBKR both
  validate it against RTH rules). Placed outside RTH it is accepted and waits until the
  next regular open (`queued=True`): "market closed: no error, orders wait as accepted".
- `extended_hours=True` (Alpaca `extended_hours`, IBKR `outsideRth`): it must be eligible
  for the extended venue whatever the phase (Alpaca validates the flag, not the clock).
  In the overnight phase Alpaca's overnight venue applies; IBKR has no overnight column,
  so an outsideRth order placed overnight waits for the next pre-market.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from core.calendar import SessionPhase
from core.domain import OrderRequest, OrderType, TimeInForce, is_on_tick


class Venue(StrEnum):
    REGULAR = "regular"  # RTH, 09:30-16:00 (13:00 on half days)
    EXTENDED = "extended"  # pre-market and after-hours
    OVERNIGHT = "overnight"  # Alpaca's 20:00-04:00 venue


@dataclass(frozen=True, slots=True)
class Capability:
    allowed: bool
    reason: str
    # Accepted, but inactive until the next session the order is valid for (status
    # `accepted`, no fills, no trailing) -- worth telling the user.
    queued: bool = False


Cell = tuple[OrderType, TimeInForce, Venue]
BOTH_TIF = (TimeInForce.DAY, TimeInForce.GTC)


def _cells(
    order_type: OrderType,
    venue: Venue,
    allowed: bool,
    reason: str,
    tifs: Iterable[TimeInForce] = BOTH_TIF,
) -> dict[Cell, Capability]:
    return {(order_type, tif, venue): Capability(allowed, reason) for tif in tifs}


@dataclass(frozen=True, slots=True)
class CapabilityMatrix:
    broker: str
    cells: Mapping[Cell, Capability]
    fractional_time_in_force: frozenset[TimeInForce]
    fractional_reason: str
    has_overnight_venue: bool
    notes: tuple[str, ...] = field(default=())
    # The broker refuses an order against an open order of the other side in the same
    # symbol (Alpaca: "potential wash trade detected"): a stop-buy while the position's
    # protective sell works is refused, so it is refused on the draft card instead.
    refuses_opposite_side: bool = False

    def cell(self, order_type: OrderType, tif: TimeInForce, venue: Venue) -> Capability:
        found = self.cells.get((order_type, tif, venue))
        if found is None:
            return Capability(
                False,
                f"{self.broker}: {order_type} {tif} in the {venue} venue is not in the "
                "capability matrix (unverified)",
            )
        return found

    def check(self, request: OrderRequest, phase: SessionPhase) -> Capability:
        return check(self, request, phase)


_ALPACA_ROWS: dict[Cell, Capability] = {
    **_cells(OrderType.MARKET, Venue.REGULAR, True, "market order in regular hours"),
    **_cells(
        OrderType.MARKET, Venue.EXTENDED, False, "market orders are not eligible for extended hours"
    ),
    **_cells(OrderType.MARKET, Venue.OVERNIGHT, False, "market orders are not taken overnight"),
    **_cells(OrderType.LIMIT, Venue.REGULAR, True, "limit order in regular hours"),
    # The table says "yes, only day/gtc": every TimeInForce we model is one of those two,
    # but the cells stay per TIF so a new TIF (ioc, opg, ...) starts out refused.
    **_cells(OrderType.LIMIT, Venue.EXTENDED, True, "extended-hours limit order (day/gtc)"),
    **_cells(OrderType.LIMIT, Venue.OVERNIGHT, True, "overnight limit order (day/gtc)"),
    **_cells(OrderType.STOP, Venue.REGULAR, True, "stop order in regular hours"),
    **_cells(
        OrderType.STOP,
        Venue.EXTENDED,
        False,
        "stop orders are not eligible for extended hours: no broker-side stop outside RTH",
    ),
    **_cells(OrderType.STOP, Venue.OVERNIGHT, False, "stop orders are not taken overnight"),
    **_cells(OrderType.STOP_LIMIT, Venue.REGULAR, True, "stop-limit order in regular hours"),
    **_cells(
        OrderType.STOP_LIMIT,
        Venue.EXTENDED,
        False,
        "stop-limit orders are not eligible for extended hours",
    ),
    **_cells(
        OrderType.STOP_LIMIT, Venue.OVERNIGHT, False, "stop-limit orders are not taken overnight"
    ),
    **_cells(
        OrderType.TRAILING_STOP,
        Venue.REGULAR,
        True,
        "trailing stop; trails and triggers only in regular hours",
    ),
    **_cells(
        OrderType.TRAILING_STOP,
        Venue.EXTENDED,
        False,
        "trailing stops are not eligible for extended hours",
    ),
    **_cells(
        OrderType.TRAILING_STOP,
        Venue.OVERNIGHT,
        False,
        "trailing stops are not taken overnight",
    ),
}

_IBKR_ROWS: dict[Cell, Capability] = {
    **_cells(OrderType.MARKET, Venue.REGULAR, True, "market order in regular hours"),
    **_cells(
        OrderType.MARKET,
        Venue.EXTENDED,
        False,
        "market orders do not run outside RTH (warning 2109: outsideRth ignored)",
    ),
    **_cells(OrderType.LIMIT, Venue.REGULAR, True, "limit order in regular hours"),
    **_cells(OrderType.LIMIT, Venue.EXTENDED, True, "limit order with outsideRth"),
    **_cells(OrderType.STOP, Venue.REGULAR, True, "stop order in regular hours"),
    **_cells(OrderType.STOP, Venue.EXTENDED, True, "stop order with outsideRth"),
    **_cells(OrderType.STOP_LIMIT, Venue.REGULAR, True, "stop-limit order in regular hours"),
    **_cells(OrderType.STOP_LIMIT, Venue.EXTENDED, True, "stop-limit order with outsideRth"),
    **_cells(OrderType.TRAILING_STOP, Venue.REGULAR, True, "TRAIL order in regular hours"),
    **_cells(
        OrderType.TRAILING_STOP,
        Venue.EXTENDED,
        False,
        "TRAIL with outsideRth is unverified: not relied on (unverified)",
    ),
}

ALPACA = CapabilityMatrix(
    broker="alpaca",
    cells=MappingProxyType(_ALPACA_ROWS),
    fractional_time_in_force=frozenset({TimeInForce.DAY}),
    fractional_reason="fractional quantities are only accepted with time in force day",
    has_overnight_venue=True,
    notes=("orders placed while the market is closed wait as `accepted`",),
    refuses_opposite_side=True,
)

IBKR = CapabilityMatrix(
    broker="ibkr",
    cells=MappingProxyType(_IBKR_ROWS),
    # BROKERS.md says nothing about fractional shares through the IB API: not relied on.
    fractional_time_in_force=frozenset(),
    fractional_reason="fractional quantities through the IBKR API are unverified",
    has_overnight_venue=False,
)

# SimBroker plays Alpaca's rules, so tests catch what Alpaca would refuse.
SIM = CapabilityMatrix(
    broker="sim",
    cells=ALPACA.cells,
    fractional_time_in_force=ALPACA.fractional_time_in_force,
    fractional_reason=ALPACA.fractional_reason,
    has_overnight_venue=True,
    notes=ALPACA.notes,
    refuses_opposite_side=ALPACA.refuses_opposite_side,
)

MATRICES: Mapping[str, CapabilityMatrix] = MappingProxyType(
    {m.broker: m for m in (ALPACA, IBKR, SIM)}
)


def matrix_for(broker: str) -> CapabilityMatrix:
    try:
        return MATRICES[broker]
    except KeyError:
        raise KeyError(f"no capability matrix for broker {broker!r}") from None


def check_price(price: Decimal, label: str = "price") -> Capability:
    """Positive and on the tick: 2 decimals at or above $1, 4 below (sub-penny rejected)."""
    if price <= 0:
        return Capability(False, f"{label} {price} must be positive")
    if not is_on_tick(price):
        return Capability(
            False,
            f"{label} {price} is off the tick (sub-penny): at most 2 decimals at or above "
            "$1, 4 below",
        )
    return Capability(True, f"{label} {price} is on the tick")


def check(broker: str | CapabilityMatrix, request: OrderRequest, phase: SessionPhase) -> Capability:
    """Would `broker` take `request` if it were sent during `phase`?"""
    matrix = matrix_for(broker) if isinstance(broker, str) else broker
    for label, price in (("limit price", request.limit_price), ("stop price", request.stop_price)):
        if price is not None:
            verdict = check_price(price, label)
            if not verdict.allowed:
                return verdict
    if request.qty != request.qty.to_integral_value() and (
        request.time_in_force not in matrix.fractional_time_in_force
    ):
        return Capability(False, f"{matrix.broker}: {matrix.fractional_reason} (qty {request.qty})")

    if not request.extended_hours:
        cell = matrix.cell(request.order_type, request.time_in_force, Venue.REGULAR)
        if not cell.allowed or phase is SessionPhase.REGULAR:
            return cell
        return Capability(
            True,
            f"{cell.reason}; placed during {phase}, it waits as accepted until the next "
            "regular session opens",
            queued=True,
        )

    venue = (
        Venue.OVERNIGHT
        if phase is SessionPhase.OVERNIGHT and matrix.has_overnight_venue
        else Venue.EXTENDED
    )
    cell = matrix.cell(request.order_type, request.time_in_force, venue)
    if not cell.allowed:
        return Capability(False, f"{matrix.broker}: {cell.reason}")
    if phase in (SessionPhase.PRE_MARKET, SessionPhase.AFTER_HOURS, SessionPhase.REGULAR) or (
        venue is Venue.OVERNIGHT
    ):
        return cell
    return Capability(
        True,
        f"{cell.reason}; placed during {phase}, it waits until the next extended session",
        queued=True,
    )


__all__ = [
    "ALPACA",
    "IBKR",
    "MATRICES",
    "SIM",
    "Capability",
    "CapabilityMatrix",
    "Venue",
    "check",
    "check_price",
    "matrix_for",
]
