"""Cash, positions and executions of the fake account, kept consistent with every fill."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .fills import reference_price
from .models import ZERO, Execution, FakeOrder, PositionState
from .wire import dec, position_json, ts


@dataclass
class AccountConfig:
    account_id: str = "5f6e2f6a-9c0c-4c7c-9d0e-2f7c3b1d9a11"
    account_number: str = "PA3FAKE0001"
    cash: Decimal = Decimal(100_000)
    multiplier: Decimal = Decimal(1)
    """1 is a cash account (buying power = cash); 2 or 4 is a margin account."""
    shorting_enabled: bool = False
    default_exchange: str = "NASDAQ"


class Book:
    """The account's money and holdings. Prices come from `last_price(symbol)`."""

    def __init__(
        self,
        config: AccountConfig,
        last_price: Callable[[str], Decimal | None],
        prev_close: Callable[[str], Decimal | None],
    ) -> None:
        self.config = config
        self.cash = config.cash
        self.last_equity = config.cash
        self.positions: dict[str, PositionState] = {}
        self.executions: list[Execution] = []
        self.exchanges: dict[str, str] = {}
        self._last_price = last_price
        self._prev_close = prev_close

    def exchange(self, symbol: str) -> str:
        return self.exchanges.get(symbol, self.config.default_exchange)

    def position_qty(self, symbol: str) -> Decimal:
        pos = self.positions.get(symbol)
        return pos.qty if pos else ZERO

    def apply(self, order: FakeOrder, execution: Execution) -> Decimal:
        """Book one execution; returns the position quantity after it."""
        signed = execution.qty if order.side == "buy" else -execution.qty
        pos = self.positions.setdefault(order.symbol, PositionState(order.symbol))
        new_qty = pos.qty + signed
        if pos.qty == 0 or (pos.qty > 0) == (signed > 0):
            pos.cost_basis += signed * execution.price
        elif new_qty == 0 or (new_qty > 0) == (pos.qty > 0):
            pos.cost_basis = pos.avg_entry_price * new_qty
        else:  # flipped through zero
            pos.cost_basis = new_qty * execution.price
        pos.qty = new_qty
        self.cash -= signed * execution.price
        self.executions.append(execution)
        if pos.qty == 0:
            del self.positions[order.symbol]
        return new_qty

    def mark(self, symbol: str, pos: PositionState) -> Decimal:
        price = self._last_price(symbol)
        return price if price is not None else pos.avg_entry_price

    def market_values(self) -> tuple[Decimal, Decimal]:
        long_mv = short_mv = ZERO
        for symbol, pos in self.positions.items():
            value = pos.qty * self.mark(symbol, pos)
            if value >= 0:
                long_mv += value
            else:
                short_mv += value
        return long_mv, short_mv

    def reserved(self, open_orders: Iterable[FakeOrder]) -> Decimal:
        """Buying power held by open buy orders (remaining qty at their reference price)."""
        total = ZERO
        for order in open_orders:
            if order.side == "buy":
                price = reference_price(order, self._last_price(order.symbol))
                total += order.remaining * (price or ZERO)
        return total

    def buying_power(self, open_orders: Iterable[FakeOrder]) -> Decimal:
        long_mv, short_mv = self.market_values()
        equity = self.cash + long_mv + short_mv
        raw = equity * self.config.multiplier - (long_mv - short_mv)
        if self.config.multiplier == 1:
            raw = self.cash
        return max(ZERO, raw - self.reserved(open_orders))

    def held_for_sells(self, symbol: str, open_orders: Iterable[FakeOrder]) -> Decimal:
        return sum(
            (o.remaining for o in open_orders if o.symbol == symbol and o.side == "sell"),
            ZERO,
        )

    def account_json(self, open_orders: list[FakeOrder], now: datetime) -> dict[str, Any]:
        long_mv, short_mv = self.market_values()
        equity = self.cash + long_mv + short_mv
        buying_power = self.buying_power(open_orders)
        initial_margin = (long_mv - short_mv) / self.config.multiplier
        return {
            "id": self.config.account_id,
            "account_number": self.config.account_number,
            "status": "ACTIVE",
            "crypto_status": "INACTIVE",
            "options_approved_level": 0,
            "options_trading_level": 0,
            "currency": "USD",
            "buying_power": dec(buying_power),
            "regt_buying_power": dec(buying_power),
            "non_marginable_buying_power": dec(max(ZERO, min(self.cash, buying_power))),
            "options_buying_power": dec(max(ZERO, self.cash)),
            "effective_buying_power": dec(buying_power),
            "accrued_fees": "0",
            "pending_transfer_in": "0",
            "pending_transfer_out": "0",
            "cash": dec(self.cash),
            "portfolio_value": dec(equity),
            "equity": dec(equity),
            "last_equity": dec(self.last_equity),
            "long_market_value": dec(long_mv),
            "short_market_value": dec(short_mv),
            "position_market_value": dec(long_mv - short_mv),
            "initial_margin": dec(initial_margin),
            "maintenance_margin": dec(initial_margin * Decimal("0.3")),
            "last_maintenance_margin": "0",
            "sma": dec(equity),
            "multiplier": dec(self.config.multiplier),
            "shorting_enabled": self.config.shorting_enabled,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "trade_suspended_by_user": False,
            "created_at": ts(datetime(2024, 1, 2, 14, 0, tzinfo=UTC)),
            "balance_asof": now.date().isoformat(),
            "crypto_tier": 0,
            "intraday_adjustments": "0",
            "pending_reg_taf_fees": "0",
        }

    def positions_json(self, open_orders: list[FakeOrder]) -> list[dict[str, Any]]:
        return [self.position_json(symbol, open_orders) for symbol in sorted(self.positions)]

    def position_json(self, symbol: str, open_orders: list[FakeOrder]) -> dict[str, Any]:
        pos = self.positions[symbol]
        available = pos.qty - self.held_for_sells(symbol, open_orders) if pos.qty > 0 else pos.qty
        return position_json(
            pos,
            self._last_price(symbol),
            self._prev_close(symbol),
            self.exchange(symbol),
            available,
        )
