"""Positions and account values from ib_async objects."""

from __future__ import annotations

from collections.abc import Iterable

from ib_async import IB, AccountValue
from ib_async import Position as IbPosition

from brokers.ibkr.config import IbkrConfig
from brokers.ibkr.mapping import account_from_summary, dec, price, qty
from core.domain import AccountSnapshot, Position, Symbol


def positions_from_ib(ib: IB, found: Iterable[IbPosition], account: str = "") -> list[Position]:
    """US stock positions (non-zero), with the portfolio's market price when known."""
    marks = {
        item.contract.conId: price(item.marketPrice)
        for item in ib.portfolio(account)
        if item.contract.secType == "STK"
    }
    latest: dict[int, IbPosition] = {}
    for position in found:
        if account and position.account != account:
            continue
        if position.contract.secType != "STK":
            continue
        latest[position.contract.conId] = position
    result = []
    for con_id, position in latest.items():
        shares = qty(position.position)
        if shares == 0:
            continue
        result.append(
            Position(
                symbol=Symbol(position.contract.symbol),
                qty=shares,
                avg_entry_price=dec(position.avgCost) or qty(0),
                market_price=marks.get(con_id),
            )
        )
    return sorted(result, key=lambda p: p.symbol)


def account_of(ib: IB, config: IbkrConfig) -> str:
    """The account to read: the configured one, or the login's only managed account."""
    if config.account:
        return config.account
    managed = ib.wrapper.accounts
    if len(managed) > 1:
        raise ValueError(f"the IBKR login manages {managed}: set IbkrConfig.account")
    return managed[0] if managed else ""


def account_from_values(
    values: Iterable[AccountValue], ib: IB, config: IbkrConfig
) -> AccountSnapshot:
    return account_from_summary(values, account_of(ib, config), config.currency)
