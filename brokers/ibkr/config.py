"""Settings of the IBKR adapter (gateway address, client id, timeouts, pacing, supervision)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.calendar import SessionPhase

PAPER_PORT = 4002  # IB Gateway, paper account
LIVE_PORT = 4001  # IB Gateway, live account
# ib.connectAsync sends this many messages at once (API start, positions, open and
# completed orders, account updates, executions): the bucket must hold them.
CONNECT_MESSAGES = 7


@dataclass(frozen=True, slots=True)
class IbkrConfig:
    """One gateway connection. Every duration is in seconds of the injected clock."""

    host: str = "127.0.0.1"
    port: int = PAPER_PORT
    # Fixed, so that open orders come back to us after a reconnect and orderIds stay ours.
    client_id: int = 17
    account: str = ""  # empty: the gateway's only managed account
    currency: str = "USD"
    exchange: str = "SMART"
    connect_timeout: float = 10.0
    request_timeout: float = 15.0
    # How long submit / replace / cancel wait for the gateway's answer before the outcome
    # is ambiguous (AmbiguousOutcome: look the order up by client_order_id).
    ack_timeout: float = 5.0
    reconnect_initial_delay: float = 1.0
    reconnect_max_delay: float = 60.0
    # Down (socket lost or IB code 1100) for longer than this: `on_down_too_long` fires
    # once per outage, so the engine can enter SAFE_MODE.
    down_too_long_after: float = 120.0
    # Token bucket around every outgoing request: at most rate + burst messages in any
    # second, under IB's ~50 messages/s limit (ib_async throttles at 45/s as well).
    pacing_rate: float = 40.0
    pacing_burst: int = 8
    # An outage that overlaps one of these phases is alerted (`on_alert`).
    alert_phases: frozenset[SessionPhase] = field(
        default_factory=lambda: frozenset({SessionPhase.REGULAR})
    )

    def __post_init__(self) -> None:
        if self.pacing_burst < CONNECT_MESSAGES:
            raise ValueError(
                f"pacing_burst must be at least {CONNECT_MESSAGES} (a connection's first burst)"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, prefix: str = "IBKR_") -> IbkrConfig:
        """`IBKR_HOST`, `IBKR_PORT`, `IBKR_CLIENT_ID`, `IBKR_ACCOUNT` (all optional)."""
        source = os.environ if env is None else env
        defaults = cls()
        return cls(
            host=source.get(f"{prefix}HOST", defaults.host),
            port=int(source.get(f"{prefix}PORT", defaults.port)),
            client_id=int(source.get(f"{prefix}CLIENT_ID", defaults.client_id)),
            account=source.get(f"{prefix}ACCOUNT", defaults.account),
        )
