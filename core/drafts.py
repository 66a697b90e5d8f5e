"""Draft use cases: create, edit, review, confirm (once), cancel, expire.

A stop-buy draft is what the human decides; confirming it is the only way an entry is
placed. Confirm checks the capability matrix and every risk rule first (refusals are
returned with their explanations and the draft stays pending), then moves the draft
PENDING -> CONFIRMED and writes the order intent in ONE unit of work: the conditional
update is the double-tap guard (a second confirm finds the draft confirmed and is a
no-op that says so). Only then is the broker called, once.

A buy draft has ONE stop (docs/one-stop.md): the symbol's trail percent is decided when
the draft is made and frozen on it; the stop is the trigger less that trail (the
protection's first level when the entry fills at the trigger), R is the distance to it,
and the size is the risk budget over R. The protection placed at the fill uses the same
frozen trail. The signal's structural low is kept as information only.

A stop-sell draft (for a held position) replaces the position's protection
(core.protection_edits). A draft whose order was refused or never reached the broker is
reopened (PENDING): confirming it again is a new attempt with a new client order id.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from core.book import ledger_position
from core.capabilities import check
from core.config_models import SYMBOL_PATTERN
from core.confirm import DraftConfirmer
from core.domain import (
    ZERO,
    OrderRequest,
    OrderType,
    Side,
    TickRounding,
    round_to_tick,
)
from core.draft_models import (
    MAX_TRAIL_PCT,
    ConfirmOutcome,
    ConfirmResult,
    DraftError,
    DraftReview,
    SizePreset,
    draft_request,
    protective_stop,
    trail_for_stop,
)
from core.engine_context import EngineContext
from core.ledger import DraftRow, DraftStatus, SignalStatus
from core.order_tracker import OrderTracker
from core.placement import Placer
from core.protection_edits import ProtectionEdits
from core.risk import RiskCode, RiskReason, size_for_risk
from core.risk_gate import RiskGate
from core.trading_day import TradingDay

PRESET_FACTORS = (Decimal("0.5"), Decimal(1), Decimal("1.5"), Decimal(2))
EVENT_CODES = (RiskCode.EVENT_WINDOW, RiskCode.EVENT_TODAY)


def _price(value: Decimal, mode: TickRounding) -> Decimal:
    if value <= 0:
        raise DraftError(f"price {value} must be positive")
    return round_to_tick(value, mode)


class Drafts:
    def __init__(
        self,
        ctx: EngineContext,
        tracker: OrderTracker,
        placer: Placer,
        day: TradingDay,
        risk: RiskGate,
        edits: ProtectionEdits,
    ) -> None:
        self._ctx = ctx
        self._tracker = tracker
        self._placer = placer
        self._day = day
        self._risk = risk
        self._edits = edits
        self._confirmer = DraftConfirmer(ctx, tracker, placer, risk, edits)

    # --- create / edit -------------------------------------------------------------------

    async def create_buy(
        self,
        symbol: str,
        trigger: Decimal,
        stop: Decimal,
        *,
        qty: Decimal | None = None,
        risk_usd: Decimal | None = None,
        signal_id: int | None = None,
        batch_id: str | None = None,
        note: str | None = None,
        trail_pct: Decimal | None = None,
    ) -> DraftReview:
        """`stop` is the structural low (the signal's): shown, never used for sizing.
        The stop that sizes the trade is the trigger less the trail (`trail_pct`, else
        the trail policy's for the symbol now), frozen on the draft."""
        symbol = self._symbol(symbol)
        trigger = _price(trigger, TickRounding.UP)
        structure = _price(stop, TickRounding.DOWN)
        if structure >= trigger:
            raise DraftError(f"the stop {structure} must be below the trigger {trigger}")
        pct = self._trail(symbol) if trail_pct is None else self._checked_trail(trail_pct)
        stop = protective_stop(trigger, pct)
        qty = await self._size(trigger, stop, qty, risk_usd)
        ctx = self._ctx
        with ctx.ledger.unit_of_work() as uow:
            row = uow.add(
                DraftRow(
                    account_id=ctx.account.row_id,
                    symbol=symbol,
                    side=Side.BUY,
                    order_type=OrderType.STOP,
                    trigger_price=trigger,
                    limit_price=None,
                    initial_stop=stop,
                    qty=qty,
                    risk_dollars=qty * (trigger - stop),
                    trail_percent=pct,
                    structure_stop=structure,
                    signal_id=signal_id,
                    status=DraftStatus.PENDING,
                    batch_id=batch_id,
                    expires_at=self._expiry(),
                    note=note,
                )
            )
            if signal_id is not None and (signal := uow.signals.get(signal_id)) is not None:
                uow.signals.set_status(signal, SignalStatus.DRAFTED)
            uow.commit()
            draft_id = row.id
        return await self.review(draft_id)

    async def create_sell(
        self, symbol: str, stop: Decimal, *, qty: Decimal | None = None, note: str | None = None
    ) -> DraftReview:
        symbol = self._symbol(symbol)
        held = self._held(symbol)
        if held <= 0:
            raise DraftError(f"no {symbol} position to sell")
        qty = held if qty is None else qty
        if qty <= 0 or qty > held:
            raise DraftError(f"quantity {qty} must be between 1 and the {held} shares held")
        stop = _price(stop, TickRounding.DOWN)
        ctx = self._ctx
        with ctx.ledger.unit_of_work() as uow:
            row = uow.add(
                DraftRow(
                    account_id=ctx.account.row_id,
                    symbol=symbol,
                    side=Side.SELL,
                    order_type=OrderType.STOP,
                    trigger_price=stop,
                    limit_price=None,
                    initial_stop=None,
                    qty=qty,
                    risk_dollars=None,
                    status=DraftStatus.PENDING,
                    expires_at=self._expiry(),
                    note=note,
                )
            )
            uow.commit()
            draft_id = row.id
        return await self.review(draft_id)

    async def edit(
        self,
        draft_id: int,
        *,
        trigger: Decimal | None = None,
        stop: Decimal | None = None,
        qty: Decimal | None = None,
        risk_usd: Decimal | None = None,
    ) -> DraftReview:
        draft = self._draft(draft_id)
        if draft.status is not DraftStatus.PENDING:
            raise DraftError(f"draft {draft_id} is {draft.status}: only pending drafts can change")
        new_trigger = draft.trigger_price if trigger is None else trigger
        new_stop = draft.initial_stop if stop is None else stop
        new_pct = draft.trail_percent
        if draft.side is Side.BUY:
            assert new_trigger is not None and new_stop is not None
            new_trigger = _price(new_trigger, TickRounding.UP)
            if stop is not None:
                # The trader puts the stop there: the protection's trail becomes the one
                # that starts there, so the stop that sizes is the stop that protects.
                new_pct = trail_for_stop(new_trigger, _price(stop, TickRounding.DOWN))
            elif new_pct is None:  # a draft from before the one stop: decide it now
                new_pct = self._trail(draft.symbol)
            new_stop = protective_stop(new_trigger, new_pct)
            if qty is None and risk_usd is None and (trigger is not None or stop is not None):
                risk_usd = draft.risk_dollars  # keep the $ risk when the levels move
            new_qty = await self._size(
                new_trigger,
                new_stop,
                qty if qty is not None else (None if risk_usd is not None else draft.qty),
                risk_usd,
            )
        else:
            assert new_trigger is not None
            new_trigger = _price(new_trigger, TickRounding.DOWN)
            new_qty = draft.qty if qty is None else qty
            if not (0 < new_qty <= self._held(draft.symbol)):
                raise DraftError(f"quantity {new_qty} is more than the {draft.symbol} held")
        with self._ctx.ledger.unit_of_work() as uow:
            row = uow.drafts.require(draft_id)
            if row.status is not DraftStatus.PENDING:
                raise DraftError(f"draft {draft_id} is {row.status}")
            row.trigger_price, row.initial_stop, row.qty = new_trigger, new_stop, new_qty
            if row.side is Side.BUY:
                row.trail_percent = new_pct
            if row.side is Side.BUY and new_stop is not None and new_trigger is not None:
                row.risk_dollars = new_qty * (new_trigger - new_stop)
            row.expires_at = self._expiry()  # an edit shows the draft is still wanted
            uow.commit()
        return await self.review(draft_id)

    async def cancel(self, draft_id: int) -> bool:
        with self._ctx.ledger.unit_of_work() as uow:
            done = uow.drafts.transition_if(draft_id, DraftStatus.PENDING, DraftStatus.CANCELED)
            uow.commit()
        return done

    def expire_due(self) -> list[int]:
        expired = []
        with self._ctx.ledger.unit_of_work() as uow:
            for draft in uow.drafts.due_to_expire(self._ctx.now()):
                if draft.account_id == self._ctx.account.row_id and uow.drafts.transition_if(
                    draft.id, DraftStatus.PENDING, DraftStatus.EXPIRED
                ):
                    expired.append(draft.id)
            uow.commit()
        return expired

    # --- review --------------------------------------------------------------------------

    async def review(self, draft_id: int) -> DraftReview:
        draft = self._draft(draft_id)
        ctx = self._ctx
        account = await self._risk.account()
        equity = account.equity if account is not None else None
        state = self._day.state
        request = self._request(draft, attempt=1)
        verdict = check(ctx.broker.capabilities, request, ctx.phase())
        base = DraftReview(
            draft_id=draft.id,
            account=ctx.account.name,
            status=draft.status,
            side=draft.side,
            symbol=draft.symbol,
            trigger=draft.trigger_price,
            stop=draft.trigger_price if draft.side is Side.SELL else draft.initial_stop,
            qty=draft.qty,
            risk_usd=None,
            r_per_share=None,
            notional=None,
            pct_of_equity=None,
            equity=equity,
            buying_power=account.buying_power if account is not None else None,
            session_state=state,
            allowed=verdict.allowed,
            refusals=(),
            warnings=(),
            event_warnings=(),
            capability_note=verdict.reason,
            queued=verdict.queued,
            expires_at=draft.expires_at,
            size_presets=(),
            position_qty=self._held(draft.symbol),
            note=draft.note,
            trail_pct=draft.trail_percent if draft.side is Side.BUY else None,
            structure_stop=draft.structure_stop,
        )
        capability_refusal = (
            () if verdict.allowed else (RiskReason(RiskCode.INVALID_ORDER, verdict.reason),)
        )
        if draft.side is Side.SELL:
            return replace(base, refusals=capability_refusal)
        assert draft.trigger_price is not None and draft.initial_stop is not None
        ectx = await self._risk.entry_context(
            draft.symbol, Side.BUY, draft.trigger_price, draft.initial_stop, draft.qty
        )
        decision = self._risk.engine.check_entry(ectx)
        events = tuple(
            r.message for r in (*decision.reasons, *decision.warnings) if r.code in EVENT_CODES
        )
        return replace(
            base,
            risk_usd=decision.figures.risk_usd,
            r_per_share=decision.figures.risk_per_share,
            notional=decision.figures.notional,
            pct_of_equity=decision.figures.pct_of_equity,
            allowed=decision.allowed and verdict.allowed,
            refusals=decision.reasons + capability_refusal,
            warnings=decision.warnings,
            event_warnings=events,
            size_presets=self.presets(draft.trigger_price, draft.initial_stop, equity or ZERO),
        )

    def presets(self, trigger: Decimal, stop: Decimal, equity: Decimal) -> tuple[SizePreset, ...]:
        cfg = self._ctx.risk
        out: list[SizePreset] = []
        for factor in PRESET_FACTORS:
            risk = min(cfg.risk_per_trade_usd * factor, cfg.max_risk_per_trade_usd)
            qty = size_for_risk(risk, trigger, stop, equity, cfg)
            label = f"{factor.normalize():f}x (${risk.normalize():f})"
            if qty > 0 and all(p.qty != qty for p in out):
                out.append(SizePreset(label, risk, qty))
        return tuple(out)

    async def pending(self) -> list[DraftReview]:
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            ids = [d.id for d in uow.drafts.pending(self._ctx.account.row_id)]
        return [await self.review(i) for i in ids]

    # --- confirm (core.confirm) ---------------------------------------------------------

    async def confirm(self, draft_id: int) -> ConfirmResult:
        return await self._confirmer.confirm(draft_id)

    async def confirm_batch(self, draft_ids: list[int]) -> list[ConfirmResult]:
        return await self._confirmer.confirm_batch(draft_ids)

    # --- helpers -------------------------------------------------------------------------

    def _request(self, draft: DraftRow, *, attempt: int) -> OrderRequest:
        return draft_request(self._ctx.account.namespace, draft, attempt)

    def _draft(self, draft_id: int) -> DraftRow:
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            draft = uow.drafts.get(draft_id)
        if draft is None or draft.account_id != self._ctx.account.row_id:
            raise DraftError(f"no draft {draft_id}")
        return draft

    def _held(self, symbol: str) -> Decimal:
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            return ledger_position(uow, self._ctx.account.row_id, symbol)

    def _symbol(self, symbol: str) -> str:
        symbol = symbol.strip().upper()
        if not SYMBOL_PATTERN.match(symbol):
            raise DraftError(f"{symbol!r} is not a US stock symbol")
        return symbol

    def one_stop(self, symbol: str, trigger: Decimal) -> Decimal:
        """The stop a buy draft at `trigger` would get now: the protection's first level
        (what the size picker shows and sizes from, before the draft exists)."""
        return protective_stop(_price(trigger, TickRounding.UP), self._trail(self._symbol(symbol)))

    def _trail(self, symbol: str) -> Decimal:
        """The trail the protection would get now: the trail policy, or today's /trail."""
        return self._edits.manager.trail_pct(symbol)[0]

    @staticmethod
    def _checked_trail(pct: Decimal) -> Decimal:
        if not (ZERO < pct < MAX_TRAIL_PCT):
            raise DraftError(f"trail must be between 0 and {MAX_TRAIL_PCT} percent, got {pct}")
        return pct

    def _expiry(self) -> datetime:
        return self._ctx.now() + timedelta(minutes=self._ctx.sessions.draft_ttl_minutes)

    async def _size(
        self, trigger: Decimal, stop: Decimal, qty: Decimal | None, risk_usd: Decimal | None
    ) -> Decimal:
        if stop >= trigger:
            raise DraftError(f"the stop {stop} must be below the trigger {trigger}")
        if qty is not None:
            if qty <= 0 or qty != qty.to_integral_value():
                raise DraftError(f"quantity {qty} must be a positive whole number")
            return qty
        account = await self._risk.account()
        equity = account.equity if account is not None else ZERO
        risk = risk_usd if risk_usd is not None else self._ctx.risk.risk_per_trade_usd
        sized = size_for_risk(risk, trigger, stop, equity, self._ctx.risk)
        if sized <= 0:
            raise DraftError(f"no size for ${risk} of risk between {trigger} and {stop}")
        return sized


__all__ = [
    "ConfirmOutcome",
    "ConfirmResult",
    "DraftError",
    "DraftReview",
    "Drafts",
    "SizePreset",
]
