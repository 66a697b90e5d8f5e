"""SimBroker settings (immutable) and the injected faults (a mutable test handle)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from enum import Enum
from typing import Any

from brokers.sim.state import decode_dataclass, encode
from core.broker import AmbiguousOutcome, BrokerUnavailable, RateLimited
from core.domain import ZERO, ClientOrderId
from core.fills import ALPACA_FRICTION, FrictionProfile

ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class PartialFills:
    """How a triggered order is split into executions, one per bar.

    `chunks`: sizes of the first executions (then the rest at once), e.g. (30,) fills 30
    on the trigger bar and the remainder on the next bar. `ratio`: each execution takes
    this share of what remains, in whole shares (at least 1). Neither: all at once.
    A remainder keeps working: a triggered stop fills it at the next bar's open.
    """

    chunks: tuple[Decimal, ...] = ()
    ratio: Decimal | None = None

    def __post_init__(self) -> None:
        if any(c <= 0 for c in self.chunks):
            raise ValueError(f"partial fill chunks must be positive: {self.chunks}")
        if self.ratio is not None and not (ZERO < self.ratio <= ONE):
            raise ValueError(f"partial fill ratio must be in (0, 1]: {self.ratio}")

    def next_qty(self, remaining: Decimal, executions_so_far: int) -> Decimal:
        if executions_so_far < len(self.chunks):
            return min(self.chunks[executions_so_far], remaining)
        if self.ratio is not None:
            share = (remaining * self.ratio).to_integral_value(rounding=ROUND_FLOOR)
            return min(max(share, ONE), remaining)
        return remaining


@dataclass(frozen=True, slots=True)
class SimConfig:
    account_id: str = "sim-account"
    initial_cash: Decimal = Decimal(25000)
    # The backtest's default costs, so that a live run on SimBroker books what the
    # backtest books. Use core.fills.NO_FRICTION for round numbers in tests.
    friction: FrictionProfile = ALPACA_FRICTION
    # Alpaca paper accounts are margin accounts; 1 = a cash account (the conservative view).
    margin_multiplier: Decimal = ONE
    ack_latency: float = 0.0  # seconds from submit to `new`/`accepted`
    cancel_latency: float = 0.0  # seconds from the cancel request to `canceled`
    replace_latency: float = 0.0  # seconds from the replace request to `replaced`
    partial_fills: PartialFills = field(default_factory=PartialFills)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = encode(self)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SimConfig:
        return decode_dataclass(cls, data)


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    code: str | None
    asynchronous: bool


class WireFault(Enum):
    """What the wire does to one stream event (the broker's book changes regardless)."""

    DELIVER = "deliver"
    DUPLICATE = "duplicate"  # delivered twice in a row
    DELAY = "delay"  # delivered `event_delay` seconds later on the clock
    REORDER = "reorder"  # delivered right after the next event published


class SimFaults:
    """Failures to inject into the next calls. Not persisted: a restart clears them."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._timeout_next_submit = 0
        self._rejections: list[Rejection] = []
        self._drop_events = 0
        self._rate_limited_calls = 0
        self._retry_after: float | None = None
        self._unavailable = False
        self._submit_delays: list[float] = []
        self._server_errors = 0
        self._wire: list[WireFault] = []
        self.event_delay = 0.0

    def timeout_after_accept_next_submit(self, times: int = 1) -> None:
        """The next submit(s) place the order, then raise AmbiguousOutcome."""
        self._timeout_next_submit += times

    def reject_next(
        self, reason: str, code: str | None = None, *, asynchronous: bool = False
    ) -> None:
        """The next submit is refused: synchronously (OrderRejected, nothing placed), or
        asynchronously (the order is taken, then a `rejected` event after the ack latency)."""
        self._rejections.append(Rejection(reason, code, asynchronous))

    def drop_next_events(self, count: int) -> None:
        """The next `count` stream events are lost for every subscriber (state changes)."""
        self._drop_events += count

    def rate_limit_next(self, count: int, retry_after: float | None = 1.0) -> None:
        """The next `count` API calls (any method) raise RateLimited and do nothing."""
        self._rate_limited_calls += count
        self._retry_after = retry_after

    def unavailable(self, on: bool = True) -> None:
        """While on, every API call raises BrokerUnavailable and the stream delivers
        nothing; the market (bars, fills, cancels in flight) goes on."""
        self._unavailable = on

    def slow_next_submit(self, seconds: float, times: int = 1) -> None:
        """The next submit(s) travel `seconds` on the clock before reaching the broker: the
        order is placed (and the call returns) only when that time has passed."""
        self._submit_delays += [max(0.0, seconds)] * times

    def server_error_next_submit(self, times: int = 1) -> None:
        """The next submit(s) fail with a 5xx (AmbiguousOutcome) and place nothing."""
        self._server_errors += times

    def duplicate_next_events(self, count: int) -> None:
        """Each of the next `count` stream events is delivered twice."""
        self._wire += [WireFault.DUPLICATE] * count

    def delay_next_events(self, count: int, seconds: float) -> None:
        """The next `count` stream events are held and delivered `seconds` later on the
        clock, after whatever was published meanwhile."""
        self.event_delay = max(0.0, seconds)
        self._wire += [WireFault.DELAY] * count

    def reorder_next_events(self, count: int) -> None:
        """Each of the next `count` stream events is delivered after the event published
        next (or when held events are flushed, if none follows)."""
        self._wire += [WireFault.REORDER] * count

    def clear(self) -> None:
        """Forget every injected fault not yet consumed (held events stay held: the
        broker's `flush_events` delivers them)."""
        self._reset()

    @property
    def pending(self) -> bool:
        """Some injected fault has not been consumed yet."""
        return bool(
            self._timeout_next_submit
            or self._rejections
            or self._drop_events
            or self._rate_limited_calls
            or self._unavailable
            or self._submit_delays
            or self._server_errors
            or self._wire
        )

    @property
    def is_unavailable(self) -> bool:
        return self._unavailable

    # --- consumed by SimBroker ----------------------------------------------------------

    def gate(self, call: str) -> None:
        if self._unavailable:
            raise BrokerUnavailable(f"sim broker unavailable ({call})")
        if self._rate_limited_calls > 0:
            self._rate_limited_calls -= 1
            raise RateLimited(f"429 too many requests ({call})", self._retry_after)

    def take_rejection(self) -> Rejection | None:
        return self._rejections.pop(0) if self._rejections else None

    def take_submit_timeout(self, client_order_id: ClientOrderId) -> AmbiguousOutcome | None:
        if self._timeout_next_submit <= 0:
            return None
        self._timeout_next_submit -= 1
        return AmbiguousOutcome(
            "submit timed out after the broker took the order", client_order_id=client_order_id
        )

    def take_submit_delay(self) -> float:
        return self._submit_delays.pop(0) if self._submit_delays else 0.0

    def take_server_error(self, client_order_id: ClientOrderId) -> AmbiguousOutcome | None:
        if self._server_errors <= 0:
            return None
        self._server_errors -= 1
        return AmbiguousOutcome("502 bad gateway", client_order_id=client_order_id)

    def take_wire_fault(self) -> WireFault:
        return self._wire.pop(0) if self._wire else WireFault.DELIVER

    def drops_event(self) -> bool:
        if self._unavailable:
            return True
        if self._drop_events > 0:
            self._drop_events -= 1
            return True
        return False
