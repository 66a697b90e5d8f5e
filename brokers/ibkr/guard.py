"""The guard in front of live trading on IBKR (docs/ibkr.md, "Paper or live").

IB picks paper or live by which gateway (or TWS) the socket reaches, not by anything we
send, so three checks stand before any order can be placed:

1. Configuration (`ibkr_config_for`, before connecting): a `mode: live` account needs
   every live condition the Alpaca guard needs (`CENTAUR_LIVE=1`, `mode: live`, the chat's
   confirmation); any one missing raises `IbkrLiveNotEnabled`, naming what is missing. A
   live account is never silently run as paper, nor a paper account as live.
2. The port (`check_port`, before connecting): a paper account pointed at a conventional
   live port (4001 IB Gateway, 7496 TWS) is refused unless the operator declared the
   unusual setup with `IBKR_PAPER_ON_LIVE_PORT=1`; even then check 3 must prove paper.
3. The gateway's managed accounts (`check_managed_accounts`, after every connect and
   reconnect, before the connection counts as up): IB paper account ids start with `DU`.
   A paper account refuses a gateway that manages any non-`DU` account (or none at all:
   nothing proves paper); a live account refuses one that manages any `DU` account.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from core.broker import BrokerError
from core.config_models import AccountConfig
from core.live_guard import LIVE_ENV_VAR, LiveTradingNotEnabled, live_trading_blockers

PAPER_ON_LIVE_PORT_ENV_VAR = "IBKR_PAPER_ON_LIVE_PORT"
PAPER_ACCOUNT_PREFIX = "DU"
# The conventional live ports: IB Gateway 4001, TWS 7496 (paper: 4002 and 7497).
CONVENTIONAL_LIVE_PORTS = frozenset({4001, 7496})

# Only `ibkr_config_for` hands this out; the connection refuses a live configuration
# without it, so `IbkrConfig(live=True)` built by hand does not bypass check 1.
LIVE_GRANT = object()


class IbkrLiveNotEnabled(LiveTradingNotEnabled):
    """A live IBKR account was asked for without every live-trading condition met."""

    def __init__(self, account: str, missing: list[str]) -> None:
        super().__init__(account, missing, broker="IBKR")


class IbkrModeMismatch(BrokerError):
    """The gateway (its port or its managed accounts) contradicts the account's mode."""


def live_blockers(
    account: AccountConfig, env: Mapping[str, str], *, chat_confirmed: bool
) -> list[str]:
    """What stands between this account and live trading (empty: live is allowed): the
    same three conditions as every broker (core.live_guard)."""
    return live_trading_blockers(account, env, chat_confirmed=chat_confirmed)


def paper_on_live_port_allowed(env: Mapping[str, str]) -> bool:
    return env.get(PAPER_ON_LIVE_PORT_ENV_VAR) == "1"


def check_port(*, live: bool, port: int, paper_on_live_port: bool) -> None:
    """Check 2 (before connecting). Raises IbkrModeMismatch."""
    if live or port not in CONVENTIONAL_LIVE_PORTS or paper_on_live_port:
        return
    raise IbkrModeMismatch(
        f"IBKR: a paper account is configured with port {port}, a live-trading port "
        f"(IB Gateway 4001 / TWS 7496); use the paper port (4002 / 7497), or set "
        f"{PAPER_ON_LIVE_PORT_ENV_VAR}=1 if this port really serves a paper login "
        "(the gateway's accounts must then all be paper, DU...)"
    )


def _masked(account: str) -> str:
    """Enough of an account id to tell paper from live and one account from another,
    without writing the whole number into logs and chat alerts."""
    if len(account) <= 5:
        return account[:2] + "…"
    return f"{account[:2]}…{account[-3:]}"


def check_managed_accounts(*, live: bool, accounts: Iterable[str]) -> None:
    """Check 3 (after connecting, before anything is placed). Raises IbkrModeMismatch."""
    found = [a.strip() for a in accounts if a.strip()]
    paper = [a for a in found if a.upper().startswith(PAPER_ACCOUNT_PREFIX)]
    shown = ", ".join(_masked(a) for a in found)
    if not found:
        raise IbkrModeMismatch(
            "IBKR: the gateway reported no managed accounts, so paper or live cannot be "
            "verified; refusing to trade"
        )
    if live and paper:
        raise IbkrModeMismatch(
            f"IBKR: the account is configured mode: live but the gateway manages paper "
            f"account(s) ({shown}); refusing to trade"
        )
    if not live and len(paper) != len(found):
        raise IbkrModeMismatch(
            f"IBKR: the account is configured mode: paper but the gateway manages live "
            f"account(s) ({shown}: paper ids start with {PAPER_ACCOUNT_PREFIX}); refusing "
            "to trade"
        )


__all__ = [
    "CONVENTIONAL_LIVE_PORTS",
    "LIVE_ENV_VAR",
    "LIVE_GRANT",
    "PAPER_ACCOUNT_PREFIX",
    "PAPER_ON_LIVE_PORT_ENV_VAR",
    "IbkrLiveNotEnabled",
    "IbkrModeMismatch",
    "check_managed_accounts",
    "check_port",
    "live_blockers",
    "paper_on_live_port_allowed",
]
