"""The three conditions of live trading, the same for every broker.

Live money needs, at once: `CENTAUR_LIVE=1` in the environment, `mode: live` on the
account in config/accounts.yaml, and the trader's confirmation in the chat. Each broker
adapter asks `live_trading_blockers` before it hands out a live connection and raises
`LiveTradingNotEnabled` naming every condition that is missing (never a silent downgrade
to paper); `/live` uses the same list to explain what is left to do.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.config_models import AccountConfig, AccountMode

LIVE_ENV_VAR = "CENTAUR_LIVE"


class LiveTradingNotEnabled(Exception):
    """A live account was asked for without every live-trading condition met."""

    def __init__(self, account: str, missing: list[str], *, broker: str | None = None) -> None:
        self.account = account
        self.missing = tuple(missing)
        named = f"{broker} account" if broker else "account"
        super().__init__(
            f"live trading is not enabled for {named} '{account}': " + "; ".join(missing)
        )


def live_trading_blockers(
    account: AccountConfig, env: Mapping[str, str], *, chat_confirmed: bool
) -> list[str]:
    """What stands between this account and live trading (empty: live is allowed)."""
    missing: list[str] = []
    flag = env.get(LIVE_ENV_VAR)
    if flag != "1":
        found = "unset" if flag is None else f"set to {flag!r}"
        missing.append(f"the environment does not have {LIVE_ENV_VAR}=1 ({found})")
    if account.mode is not AccountMode.LIVE:
        missing.append(f"the account is configured mode: {account.mode} (needs mode: live)")
    if not chat_confirmed:
        missing.append("live trading was not confirmed in the chat")
    return missing


__all__ = ["LIVE_ENV_VAR", "LiveTradingNotEnabled", "live_trading_blockers"]
