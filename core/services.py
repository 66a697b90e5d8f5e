"""The facade the Telegram bot calls: thin, delegating, one method per user action.

Every method takes an optional `account` (default: the active one, `/account NAME`
switches it) and, for actions, an optional `actor` for the audit trail (who, what,
result). Everything returned is plain data (frozen dataclasses) for `render_*`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TypeVar

from core.drafts import ConfirmResult, DraftReview, SizePreset
from core.engine import TradingEngine
from core.kill import FlattenResult, KillPreview, KillReport
from core.ledger import AccountMode, AuditKind, RegimeRow, SignalRow
from core.marketdata.bar import Bar
from core.order_views import OrderView
from core.protection import ProtectionResult
from core.reconcile import ReconcileReport
from core.status import PnlReport, PositionView, StatusQueries, StatusSnapshot

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int | None = None
    chat_id: int | None = None
    name: str = "user"


@dataclass(frozen=True, slots=True)
class AccountSummary:
    name: str
    mode: AccountMode
    broker: str
    active: bool


class TradingServices:
    def __init__(self, engines: Mapping[str, TradingEngine], default: str) -> None:
        if default not in engines:
            raise KeyError(f"default account {default!r} has no engine")
        self._engines = dict(engines)
        self._active = default

    # --- accounts ------------------------------------------------------------------------

    def accounts(self) -> list[AccountSummary]:
        return [
            AccountSummary(n, e.ctx.account.mode, e.ctx.broker.name, n == self._active)
            for n, e in self._engines.items()
        ]

    @property
    def active_account(self) -> str:
        return self._active

    def use_account(self, name: str) -> str:
        if name not in self._engines:
            raise KeyError(f"no account {name!r} (have: {', '.join(self._engines)})")
        self._active = name
        return name

    def engine(self, account: str | None = None) -> TradingEngine:
        return self._engines[account or self._active]

    def _q(self, account: str | None) -> StatusQueries:
        return StatusQueries(self.engine(account))

    async def _audited(
        self,
        account: str | None,
        actor: Actor | None,
        action: str,
        args: str,
        call: Callable[[], Awaitable[R]],
        summary: Callable[[R], tuple[bool, str]],
    ) -> R:
        engine = self.engine(account)
        try:
            result = await call()
        except Exception as exc:
            self._audit(engine, actor, action, args, False, f"error: {exc}")
            raise
        ok, text = summary(result)
        self._audit(engine, actor, action, args, ok, text)
        return result

    def _audit(
        self,
        engine: TradingEngine,
        actor: Actor | None,
        action: str,
        args: str,
        ok: bool,
        result: str,
    ) -> None:
        actor = actor or Actor()
        with engine.ctx.ledger.unit_of_work() as uow:
            uow.audit.record(
                AuditKind.COMMAND,
                action[:64],
                ok=ok,
                user_id=actor.user_id,
                chat_id=actor.chat_id,
                args=f"{engine.name}: {args}",
                result=result[:2000],
            )
            uow.commit()

    # --- drafts --------------------------------------------------------------------------

    async def create_buy_draft(
        self,
        symbol: str,
        trigger: Decimal,
        stop: Decimal,
        *,
        qty: Decimal | None = None,
        risk_usd: Decimal | None = None,
        signal_id: int | None = None,
        batch_id: str | None = None,
        account: str | None = None,
        actor: Actor | None = None,
    ) -> DraftReview:
        drafts = self.engine(account).drafts
        return await self._audited(
            account,
            actor,
            "buy_draft",
            f"{symbol} {trigger} {stop} qty={qty} risk={risk_usd}",
            lambda: drafts.create_buy(
                symbol,
                trigger,
                stop,
                qty=qty,
                risk_usd=risk_usd,
                signal_id=signal_id,
                batch_id=batch_id,
            ),
            lambda r: (True, f"draft {r.draft_id}"),
        )

    async def create_sell_draft(
        self,
        symbol: str,
        stop: Decimal,
        *,
        qty: Decimal | None = None,
        account: str | None = None,
        actor: Actor | None = None,
    ) -> DraftReview:
        drafts = self.engine(account).drafts
        return await self._audited(
            account,
            actor,
            "sell_draft",
            f"{symbol} {stop} qty={qty}",
            lambda: drafts.create_sell(symbol, stop, qty=qty),
            lambda r: (True, f"draft {r.draft_id}"),
        )

    async def edit_draft(
        self,
        draft_id: int,
        *,
        trigger: Decimal | None = None,
        stop: Decimal | None = None,
        qty: Decimal | None = None,
        risk_usd: Decimal | None = None,
        account: str | None = None,
    ) -> DraftReview:
        return await self.engine(account).drafts.edit(
            draft_id, trigger=trigger, stop=stop, qty=qty, risk_usd=risk_usd
        )

    async def review_draft(self, draft_id: int, *, account: str | None = None) -> DraftReview:
        return await self.engine(account).drafts.review(draft_id)

    async def list_drafts(self, *, account: str | None = None) -> list[DraftReview]:
        return await self.engine(account).drafts.pending()

    async def confirm_draft(
        self, draft_id: int, *, account: str | None = None, actor: Actor | None = None
    ) -> ConfirmResult:
        drafts = self.engine(account).drafts
        return await self._audited(
            account,
            actor,
            "confirm",
            str(draft_id),
            lambda: drafts.confirm(draft_id),
            lambda r: (r.ok, r.message),
        )

    async def confirm_drafts(
        self, draft_ids: list[int], *, account: str | None = None, actor: Actor | None = None
    ) -> list[ConfirmResult]:
        drafts = self.engine(account).drafts
        return await self._audited(
            account,
            actor,
            "confirm_batch",
            ",".join(map(str, draft_ids)),
            lambda: drafts.confirm_batch(draft_ids),
            lambda rs: (all(r.ok for r in rs), "; ".join(f"{r.draft_id}: {r.outcome}" for r in rs)),
        )

    async def cancel_draft(
        self, draft_id: int, *, account: str | None = None, actor: Actor | None = None
    ) -> bool:
        drafts = self.engine(account).drafts
        return await self._audited(
            account,
            actor,
            "cancel_draft",
            str(draft_id),
            lambda: drafts.cancel(draft_id),
            lambda ok: (ok, str(ok)),
        )

    async def size_presets(
        self, symbol: str, trigger: Decimal, *, account: str | None = None
    ) -> tuple[Decimal, tuple[SizePreset, ...]]:
        """The one stop a draft at `trigger` would get (the protection's first level, not
        the signal's low) and the sizes the risk budget allows over that distance."""
        engine = self.engine(account)
        stop = engine.drafts.one_stop(symbol, trigger)
        snapshot = await engine.risk.account()
        equity = snapshot.equity if snapshot else Decimal(0)
        return stop, engine.drafts.presets(trigger, stop, equity)

    def last_bar(self, symbol: str, *, account: str | None = None) -> Bar | None:
        return self.engine(account).market.last_bar(symbol)

    def latest_signal(self, symbol: str, *, account: str | None = None) -> SignalRow | None:
        return self._q(account).latest_signal(symbol)

    # --- orders and protection -----------------------------------------------------------

    async def cancel_order(
        self, client_order_id: str, *, account: str | None = None, actor: Actor | None = None
    ) -> OrderView:
        """Cancel one working order and wait for the broker's confirmation."""
        engine = self.engine(account)
        view = engine.tracker.require(client_order_id)
        timeout = engine.ctx.sessions.cancel_confirm_timeout_seconds
        return await self._audited(
            account,
            actor,
            "cancel",
            client_order_id,
            lambda: engine.placer.cancel_and_confirm(view, timeout),
            lambda v: (v.is_terminal, str(v.status)),
        )

    async def set_trail(
        self, symbol: str, pct: Decimal, *, account: str | None = None, actor: Actor | None = None
    ) -> list[ProtectionResult]:
        engine = self.engine(account)
        who = (actor or Actor()).name
        return await self._audited(
            account,
            actor,
            "trail",
            f"{symbol} {pct}",
            lambda: engine.edits.set_trail(symbol, pct, who),
            lambda rs: (all(r.protected for r in rs), "; ".join(r.message for r in rs)),
        )

    async def protect(
        self, symbol: str, *, account: str | None = None, actor: Actor | None = None
    ) -> list[ProtectionResult]:
        """The [Retry] button under an UNPROTECTED alert."""
        engine = self.engine(account)
        return await self._audited(
            account,
            actor,
            "protect",
            symbol,
            lambda: engine.protection.ensure_symbol(symbol, "retry"),
            lambda rs: (all(r.protected for r in rs), "; ".join(r.message for r in rs)),
        )

    async def flatten(
        self, symbol: str, *, account: str | None = None, actor: Actor | None = None
    ) -> FlattenResult:
        """The [Flatten SYM] button."""
        engine = self.engine(account)
        return await self._audited(
            account,
            actor,
            "flatten",
            symbol,
            lambda: engine.flattener.flatten(symbol, "user"),
            lambda r: (r.flat, r.detail),
        )

    # --- session -------------------------------------------------------------------------

    async def allow_today(self, *, account: str | None = None, actor: Actor | None = None) -> str:
        return await self._answer(True, account, actor)

    async def deny_today(self, *, account: str | None = None, actor: Actor | None = None) -> str:
        return await self._answer(False, account, actor)

    async def _answer(self, allowed: bool, account: str | None, actor: Actor | None) -> str:
        engine = self.engine(account)
        who = (actor or Actor()).name

        async def call() -> str:
            await engine.day.answer(allowed, who)
            return str(engine.day.state)

        return await self._audited(
            account, actor, "allow" if allowed else "deny", "", call, lambda s: (True, s)
        )

    async def resume(
        self, *, account: str | None = None, actor: Actor | None = None
    ) -> tuple[bool, str]:
        engine = self.engine(account)
        who = (actor or Actor()).name
        return await self._audited(
            account, actor, "resume", "", lambda: engine.resume(who), lambda r: r
        )

    async def reconcile(self, *, account: str | None = None) -> ReconcileReport:
        return await self.engine(account).reconciler.run("on request")

    # --- kill ----------------------------------------------------------------------------

    async def kill_preview(self) -> list[KillPreview]:
        """What /kill would do, for every account."""
        return [await e.kill.preview() for e in self._engines.values()]

    async def kill(self, *, actor: Actor | None = None) -> list[KillReport]:
        """Cancel and flatten everything on every account; verified reports."""
        who = (actor or Actor()).name
        reports = []
        for name, engine in self._engines.items():
            kill = engine.kill
            reports.append(
                await self._audited(
                    name,
                    actor,
                    "kill",
                    "",
                    lambda kill=kill: kill.execute(who),  # type: ignore[misc]
                    lambda r: (r.all_flat, "all flat" if r.all_flat else "NOT all flat"),
                )
            )
        return reports

    # --- queries -------------------------------------------------------------------------

    async def status(self, *, account: str | None = None) -> StatusSnapshot:
        return await self._q(account).status()

    async def positions(self, *, account: str | None = None) -> tuple[PositionView, ...]:
        return (await self._q(account).positions())[0]

    def orders(self, *, account: str | None = None) -> tuple[OrderView, ...]:
        return self._q(account).working_orders()

    def pnl(self, period: str = "day", *, account: str | None = None) -> PnlReport:
        return self._q(account).pnl(period)

    def signals(self, day: date | None = None, *, account: str | None = None) -> list[SignalRow]:
        return self._q(account).signals(day)

    def regime(
        self, symbol: str | None = None, *, account: str | None = None
    ) -> dict[str, RegimeRow]:
        rows = self._q(account).regimes()
        return rows if symbol is None else {k: v for k, v in rows.items() if k == symbol.upper()}


__all__ = ["AccountSummary", "Actor", "TradingServices"]
