"""Stock contracts resolved once per symbol (contract details: conId, minimum tick)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from ib_async import Contract, ContractDetails, Stock

from brokers.ibkr.mapping import dec
from core.broker import UnsupportedOrder
from core.domain import TickRounding, round_to_tick, tick_size


class ContractBook:
    """`resolve(symbol)` -> the qualified US stock contract routed through `exchange`."""

    def __init__(
        self,
        fetch: Callable[[Contract], Awaitable[list[ContractDetails]]],
        *,
        exchange: str = "SMART",
        currency: str = "USD",
    ) -> None:
        self._fetch = fetch
        self._exchange = exchange
        self._currency = currency
        self._contracts: dict[str, Contract] = {}
        self._min_ticks: dict[str, Decimal] = {}

    def known(self, symbol: str) -> Contract | None:
        return self._contracts.get(symbol)

    async def resolve(self, symbol: str) -> Contract:
        found = self._contracts.get(symbol)
        if found is not None:
            return found
        wanted = Stock(symbol, self._exchange, self._currency)
        details = [
            d
            for d in await self._fetch(wanted)
            if d.contract is not None
            and d.contract.secType == "STK"
            and d.contract.currency == self._currency
        ]
        if not details:
            raise UnsupportedOrder(f"IBKR knows no {self._currency} stock {symbol!r}", "200")
        chosen = details[0]
        assert chosen.contract is not None
        contract = Stock(
            symbol,
            self._exchange,
            self._currency,
            conId=chosen.contract.conId,
            primaryExchange=chosen.contract.primaryExchange,
        )
        self._contracts[symbol] = contract
        tick = dec(chosen.minTick)
        if tick is not None and tick > 0:
            self._min_ticks[symbol] = tick
        return contract

    def tick_for(self, symbol: str, price: Decimal) -> Decimal:
        """The price increment that applies: 0.01 at or above $1, 0.0001 below, or the
        contract's own minimum tick when that is coarser (at or above $1)."""
        tick = tick_size(price)
        contract_tick = self._min_ticks.get(symbol)
        if contract_tick is not None and price >= 1 and contract_tick > tick:
            return contract_tick
        return tick

    def on_tick(self, symbol: str, price: Decimal) -> bool:
        return price % self.tick_for(symbol, price) == 0

    def round_price(
        self, symbol: str, price: Decimal, mode: TickRounding = TickRounding.NEAREST
    ) -> Decimal:
        """Round to the tick (sell stops DOWN, buy stops UP: never tighter than asked)."""
        rounded = round_to_tick(price, mode)
        tick = self.tick_for(symbol, rounded)
        if rounded % tick == 0:
            return rounded
        steps = rounded / tick
        rounding = {
            TickRounding.NEAREST: ROUND_HALF_UP,
            TickRounding.DOWN: ROUND_FLOOR,
            TickRounding.UP: ROUND_CEILING,
        }[mode]
        whole = steps.quantize(Decimal(1), rounding=rounding)
        return (whole * tick).quantize(tick)

    def check_prices(self, symbol: str, *prices: Decimal | None) -> None:
        for value in prices:
            if value is not None and not self.on_tick(symbol, value):
                raise UnsupportedOrder(
                    f"price {value} is off the tick {self.tick_for(symbol, value)} for {symbol} "
                    "(IB error 110)",
                    "110",
                )
