"""The risk engine fed with the real context: broker equity and buying power, the day's
P&L, R, trades and last stop-out from the ledger, the session state; and the daily loss
watch that LOCKS the day when the limit is reached (realized + open)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

from loguru import logger

from core.book import BookSummary, open_pnl
from core.book_cache import shared_book
from core.broker import BrokerError
from core.clock import NEW_YORK
from core.domain import ZERO, AccountSnapshot, OrderRole, Side
from core.engine_context import EngineContext
from core.order_views import OrderView
from core.protection_book import ProtectionBook
from core.risk import EntryContext, RiskDecision, RiskEngine
from core.session import SessionState, SessionTrigger
from core.trading_day import TradingDay


class RiskGate:
    def __init__(self, ctx: EngineContext, day: TradingDay, book: ProtectionBook) -> None:
        self._ctx = ctx
        self._day = day
        self._book = book
        self.engine = RiskEngine(ctx.risk, ctx.events, ctx.calendar)
        # The account's book, kept up to date from the ledger (core.book_cache).
        self.books = shared_book(ctx.ledger, ctx.account.row_id)
        self.last_account: AccountSnapshot | None = None

    async def account(self) -> AccountSnapshot | None:
        """The broker's account now; the last known one if the broker does not answer
        (good enough to show; an entry is checked with `fresh_account` only)."""
        try:
            self.last_account = await self._ctx.broker.account()
        except BrokerError as exc:
            logger.warning("account query failed: {}", exc)
        return self.last_account

    async def fresh_account(self) -> tuple[AccountSnapshot | None, str | None]:
        """The broker's account now, or why it is unknown (never a stale snapshot: an
        entry whose risk cannot be checked is refused)."""
        try:
            self.last_account = await self._ctx.broker.account()
        except BrokerError as exc:
            logger.warning("account query failed: {}", exc)
            return None, str(exc) or type(exc).__name__
        return self.last_account, None

    def day_window(self) -> tuple[datetime, datetime]:
        day = self._day.day
        start = datetime.combine(day, time(0), tzinfo=NEW_YORK)
        return start, start + timedelta(days=1)

    def day_book(self) -> BookSummary:
        """`read_book` for today's window, from the incremental cache."""
        start, end = self.day_window()
        return self.books.book(start, end)

    def prices(self, symbols: list[str]) -> dict[str, Decimal]:
        out = {}
        for symbol in symbols:
            bar = self._ctx.market.last_bar(symbol)
            if bar is not None:
                out[symbol] = bar.close
        return out

    def open_pnl(self, book: BookSummary) -> Decimal:
        return open_pnl(book.holdings, self.prices(list(book.holdings)))

    async def entry_context(
        self,
        symbol: str,
        side: Side,
        trigger: Decimal,
        stop: Decimal,
        qty: Decimal,
        *,
        fresh: bool = False,
    ) -> EntryContext:
        """`fresh`: the account must be read now (a confirm), not the last snapshot."""
        unknown: str | None = None
        if fresh:
            account, unknown = await self.fresh_account()
        else:
            account = await self.account()
            if account is None:
                unknown = "no account snapshot yet"
        book = self.day_book()
        # One read of the live orders: our entries that may still fill (PENDING_SUBMIT
        # included: its request may be at the broker), and what blocks this symbol.
        live = self._book.live_orders()
        working = [v for v in live if v.side is Side.BUY and v.role is OrderRole.ENTRY]
        opposite = self._opposite_side_open(symbol, side, live)
        # Partly filled entries are counted by the book already (their first fill).
        not_started = sum(1 for v in working if v.filled_qty == 0)
        unfilled = sum(
            (v.remaining_qty for v in working if v.symbol.upper() == symbol.upper()), ZERO
        )
        machine = self._day.m
        info = machine.info
        return EntryContext(
            symbol=symbol.upper(),
            side=side,
            trigger=trigger,
            stop=stop,
            qty=qty,
            now=self._ctx.now(),
            equity=account.equity if account is not None else ZERO,
            buying_power=account.buying_power if account is not None else ZERO,
            session_state=machine.state,
            opening_window_end=info.schedule.trading_from,
            entry_cutoff=info.schedule.entry_cutoff,
            realized_pnl=book.realized,
            open_pnl=self.open_pnl(book),
            realized_r=book.realized_r,
            trades_today=book.entries,
            last_stop_out_at=book.last_stop_out_at,
            day_allowed=info.allowed,
            locked=bool(info.locked_reason) or machine.state is SessionState.LOCKED,
            safe_mode=machine.state is SessionState.SAFE_MODE,
            existing_position_qty=book.qty(symbol),
            working_entries=not_started,
            working_qty=unfilled,
            account_unknown=unknown,
            opposite_side_open=opposite,
        )

    def _opposite_side_open(
        self, symbol: str, side: Side, live_orders: list[OrderView]
    ) -> str | None:
        if not self._ctx.broker.capabilities.refuses_opposite_side:
            return None
        other = Side.SELL if side is Side.BUY else Side.BUY
        live = [v for v in live_orders if v.symbol.upper() == symbol.upper() and v.side is other]
        if not live:
            return None
        qty = sum((v.remaining_qty for v in live), ZERO)
        if all(v.role is OrderRole.PROTECTION for v in live):
            return f"the protection of {qty.normalize():f} shares"
        return f"{len(live)} {other} order(s) for {qty.normalize():f} shares"

    async def check_entry(
        self, symbol: str, side: Side, trigger: Decimal, stop: Decimal, qty: Decimal
    ) -> RiskDecision:
        decision = self.engine.check_entry(
            await self.entry_context(symbol, side, trigger, stop, qty, fresh=True)
        )
        if decision.must_lock and decision.lock_trigger is not None and decision.lock_reason:
            await self._day.lock(decision.lock_trigger, decision.lock_reason)
        return decision

    async def watch_loss(self) -> bool:
        """LOCK the day if the daily loss limit is reached; True if it is (now or before)."""
        if self._day.m.info.locked_reason:
            return True
        book = self.day_book()
        breach = self.engine.daily_loss_breached(
            book.realized, self.open_pnl(book), book.realized_r
        )
        if breach is None:
            return False
        await self._day.lock(SessionTrigger.LOSS_LIMIT_HIT, breach)
        return True


__all__ = ["RiskGate"]
