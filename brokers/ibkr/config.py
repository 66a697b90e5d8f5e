"""Settings of the IBKR adapter (gateway address, client id, timeouts, pacing, supervision)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from brokers.ibkr.guard import (
    LIVE_GRANT,
    IbkrLiveNotEnabled,
    live_blockers,
    paper_on_live_port_allowed,
)
from core.calendar import SessionPhase
from core.config_models import AccountConfig, AccountMode, BrokerKind

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
    # The account's mode (brokers/ibkr/guard.py): live only through `ibkr_config_for`,
    # which holds the grant; the connection refuses `live=True` without it.
    live: bool = False
    # `IBKR_PAPER_ON_LIVE_PORT=1`: a paper login really is served on 4001 / 7496.
    paper_on_live_port: bool = False
    live_grant: object | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pacing_burst < CONNECT_MESSAGES:
            raise ValueError(
                f"pacing_burst must be at least {CONNECT_MESSAGES} (a connection's first burst)"
            )

    @property
    def live_granted(self) -> bool:
        return self.live and self.live_grant is LIVE_GRANT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, prefix: str = "IBKR_") -> IbkrConfig:
        """`IBKR_HOST`, `IBKR_PORT`, `IBKR_CLIENT_ID`, `IBKR_ACCOUNT`,
        `IBKR_PAPER_ON_LIVE_PORT` (all optional). Always a paper configuration: a live one
        comes only from `ibkr_config_for`."""
        source = os.environ if env is None else env
        defaults = cls()
        return cls(
            host=source.get(f"{prefix}HOST", defaults.host),
            port=int(source.get(f"{prefix}PORT", defaults.port)),
            client_id=int(source.get(f"{prefix}CLIENT_ID", defaults.client_id)),
            account=source.get(f"{prefix}ACCOUNT", defaults.account),
            paper_on_live_port=paper_on_live_port_allowed(source),
        )


def ibkr_config_for(
    account: AccountConfig, env: Mapping[str, str], *, chat_confirmed: bool
) -> IbkrConfig:
    """The gateway settings for `account`: paper unless it is a live account and every
    live condition holds; a live account with any condition missing raises
    IbkrLiveNotEnabled (never a silent downgrade to paper)."""
    if account.broker is not BrokerKind.IBKR:
        raise ValueError(f"account '{account.name}' is a {account.broker} account")
    config = IbkrConfig.from_env(env)
    if account.mode is not AccountMode.LIVE:
        return config
    missing = live_blockers(account, env, chat_confirmed=chat_confirmed)
    if missing:
        raise IbkrLiveNotEnabled(account.name, missing)
    return replace(config, live=True, live_grant=LIVE_GRANT)
