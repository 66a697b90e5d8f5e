"""The one place where order facts reach the ledger.

Broker stream events, query snapshots (reconcile) and our own steps (submit sent,
refused, cancel requested) all go through `OrderTracker`, which
- drives the order's `OrderModel` (the transition table in core.orders decides),
- writes every transition to `order_events` and every new fill to `fills` (de-duplicated
  by execution id) in the same unit of work as the order row,
- stages the matching domain events in the notifications outbox in that same unit of
  work, then publishes them on the bus after the commit,
- wakes whoever waits for an order to reach a status (`wait_for`).

The broker wins: when a query snapshot disagrees with what the table allows (we missed
events), the ledger is moved to the broker's status with an `override` event, never the
other way round. Unknown broker orders are adopted (role EXTERNAL, or the role of the
order they replace).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta

from loguru import logger

from core.broker import BrokerEvent, BrokerEventKind, BrokerInconsistency
from core.crashpoints import AFTER_FILL_RECEIVED
from core.domain import (
    Fill,
    OrderRequest,
    OrderRole,
    OrderSnapshot,
    OrderStatus,
)
from core.engine_context import EngineContext
from core.events import DomainEvent
from core.ledger import EventSource, OrderRow, UnitOfWork
from core.order_rows import (
    NEVER_REACHED,
    STATUS_KIND,
    OrderModels,
    adopt_row,
    find_row,
    override_transition,
)
from core.order_views import OrderView, TrackOutcome, order_events_for
from core.order_writes import insert_intent, record_event, write_transitions
from core.orders import IllegalTransition, LocalAction, OrderModel, Transition

K = BrokerEventKind
S = OrderStatus


class _HookFailed(Exception):
    """The fill hook raised; its unit of work is discarded (see `_run_fill_hook`)."""

    def __init__(self, order: str) -> None:
        super().__init__(order)
        self.order = order


class OrderTracker:
    def __init__(self, ctx: EngineContext) -> None:
        self._ctx = ctx
        self._models = OrderModels()
        self._views: dict[str, OrderView] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self.needs_reconcile = False  # set on a broker inconsistency
        # Intents this process wrote: only their requests can still be in flight.
        self.written_here: set[str] = set()
        # A counter of applied changes, and the value at each order's last change: a
        # reconcile notes it before querying the broker and skips the snapshots of orders
        # that changed after that (their snapshot is older than what we know).
        self.version = 0
        self._changed_at: dict[str, int] = {}
        # Sends in progress (client id -> calls awaiting the broker) and when the last
        # send of an id ended: a request can still land for a while after its call ended
        # (a timeout on our side is not a cancel on the broker's).
        self._sending: dict[str, int] = {}
        self._send_ended: dict[str, datetime] = {}
        self.fill_hook: Callable[[UnitOfWork, OrderView], object | None] | None = None

    # --- reads ---------------------------------------------------------------------------

    def view(self, client_order_id: str) -> OrderView | None:
        cached = self._views.get(client_order_id)
        if cached is not None:
            return cached
        with self._ctx.ledger.unit_of_work(read_only=True) as uow:
            row = find_row(uow, client_order_id)
            if row is None:
                return None
            view = self._views[client_order_id] = OrderView.of(row)
            return view

    def require(self, client_order_id: str) -> OrderView:
        view = self.view(client_order_id)
        if view is None:
            raise LookupError(f"order {client_order_id} is not in the ledger")
        return view

    async def wait_for(
        self, client_order_id: str, done: Callable[[OrderView], bool], seconds: float
    ) -> OrderView:
        """Wait (on the engine clock) until `done(view)` or `seconds` pass; returns the view."""
        deadline = self._ctx.now() + timedelta(seconds=seconds)
        while True:
            view = self.require(client_order_id)
            remaining = (deadline - self._ctx.now()).total_seconds()
            if done(view) or remaining <= 0:
                return view
            changed = self._changed.setdefault(client_order_id, asyncio.Event())
            waiter = asyncio.ensure_future(changed.wait())
            sleeper = asyncio.ensure_future(self._ctx.clock.sleep(remaining))
            try:
                await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                sleeper.cancel()

    # --- sends in flight -----------------------------------------------------------------

    @contextmanager
    def sending(self, *client_order_ids: str) -> Iterator[None]:
        """Mark these intents' requests as in flight for the duration of the broker call."""
        for cid in client_order_ids:
            self._sending[cid] = self._sending.get(cid, 0) + 1
        try:
            yield
        finally:
            ended = self._ctx.now()
            for cid in client_order_ids:
                left = self._sending.get(cid, 1) - 1
                if left > 0:
                    self._sending[cid] = left
                else:
                    self._sending.pop(cid, None)
                self._send_ended[cid] = ended

    def in_flight(self, client_order_id: str) -> bool:
        """A broker call carrying this intent has not returned yet."""
        return client_order_id in self._sending

    def may_still_land(self, view: OrderView, horizon: datetime) -> bool:
        """Whether an unacknowledged intent could still reach the broker: its send is in
        flight, or it was written (or last sent) by this process after `horizon`. An intent
        written by a previous process has no request in flight any more."""
        cid = view.client_order_id
        if self.in_flight(cid):
            return True
        if cid not in self.written_here:
            return False
        last = max(view.created_at, self._send_ended.get(cid, view.created_at))
        return last > horizon

    # --- our own steps -------------------------------------------------------------------

    def record_intent_in(
        self,
        uow: UnitOfWork,
        request: OrderRequest,
        role: OrderRole,
        *,
        draft_id: int | None = None,
        parent_order_id: int | None = None,
        replaces_order_id: int | None = None,
    ) -> OrderView:
        """Write the intent (PENDING_SUBMIT) in the caller's unit of work (it commits)."""
        view = insert_intent(
            uow,
            request,
            account_id=self._ctx.account.row_id,
            role=role,
            draft_id=draft_id,
            parent_order_id=parent_order_id,
            replaces_order_id=replaces_order_id,
            order_ref=request.client_order_id,
        )
        self._models.put(view.client_order_id, OrderModel.from_request(request))
        self.written_here.add(view.client_order_id)
        self._views[view.client_order_id] = view
        return view

    def record_intent(
        self, request: OrderRequest, role: OrderRole, **links: int | None
    ) -> OrderView:
        with self.unit() as uow:
            view = self.record_intent_in(uow, request, role, **links)
            uow.commit()
        return view

    async def submitted(self, client_order_id: str, snapshot: OrderSnapshot) -> TrackOutcome:
        """The submit call returned: record the broker id, then what the snapshot says."""

        def step(uow: UnitOfWork, row: OrderRow, model: OrderModel) -> list[Transition]:
            out = model.local(
                LocalAction.SUBMIT_SENT, self._ctx.now(), broker_order_id=snapshot.broker_order_id
            )
            if row.submitted_at is None:
                row.submitted_at = self._ctx.now()
            return out

        outcome = await self._local(client_order_id, step, EventSource.ENGINE)
        applied = await self.apply_snapshots([snapshot], source=EventSource.BROKER)
        return applied[0] if applied else outcome

    async def submit_refused(self, client_order_id: str, reason: str) -> TrackOutcome:
        def step(uow: UnitOfWork, row: OrderRow, model: OrderModel) -> list[Transition]:
            out = model.local(LocalAction.SUBMIT_REJECTED, self._ctx.now(), reason=reason)
            row.reject_reason = reason
            return out

        return await self._local(client_order_id, step, EventSource.ENGINE)

    async def cancel_requested(self, client_order_id: str) -> TrackOutcome:
        def step(uow: UnitOfWork, row: OrderRow, model: OrderModel) -> list[Transition]:
            try:
                return model.local(LocalAction.CANCEL_REQUESTED, self._ctx.now())
            except IllegalTransition:
                return []  # not sent yet or already ended: nothing to record

        return await self._local(client_order_id, step, EventSource.USER)

    # --- broker facts --------------------------------------------------------------------

    async def on_event(self, event: BrokerEvent) -> TrackOutcome | None:
        """Apply one stream event (duplicates and stale ones change nothing)."""
        try:
            return await self._on_event(event, with_hook=True)
        except _HookFailed as failed:
            logger.opt(exception=failed.__cause__).error(
                "fill hook failed for {}; the event is applied without it", failed.order
            )
            return await self._on_event(event, with_hook=False)

    async def _on_event(self, event: BrokerEvent, *, with_hook: bool) -> TrackOutcome | None:
        with self.unit() as uow:
            row, adopted = self._row_for(uow, event.order, EventSource.BROKER)
            if row is None:
                return None
            uow.orders.note_stop_level(row, event.order, source=EventSource.BROKER)
            outcome = self._apply_in(uow, row, event, EventSource.BROKER, adopted)
            if with_hook and outcome.new_fills and self.fill_hook is not None:
                outcome = replace(outcome, staged=self._run_fill_hook(uow, outcome))
            staged = self._stage(uow, outcome)
            uow.commit()
        self._after_commit(outcome)
        if outcome.new_fills:
            self._ctx.checkpoints.reached(AFTER_FILL_RECEIVED)
        await self._ctx.publish(staged)
        return outcome

    def _run_fill_hook(self, uow: UnitOfWork, outcome: TrackOutcome) -> object | None:
        """Let the protection write its intent in the fill's own transaction (one commit
        on the fill -> stop path; fill and intent become durable together).

        No savepoint around it (SAVEPOINT and RELEASE cost a quarter of the hot path's
        millisecond budget): if the hook raises, the whole unit of work is discarded
        (`unit()` also drops the caches) and `on_event` applies the event again without
        the hook, which is what a hook that declines leads to (the entry's protection
        task then writes the intent in its own unit of work)."""
        assert self.fill_hook is not None
        try:
            return self.fill_hook(uow, outcome.order)
        except Exception as exc:
            raise _HookFailed(outcome.order.client_order_id) from exc

    async def apply_snapshots(
        self,
        snapshots: Iterable[OrderSnapshot],
        fills: Sequence[Fill] = (),
        *,
        source: EventSource = EventSource.RECONCILE,
        queried_at_version: int | None = None,
    ) -> list[TrackOutcome]:
        """Bring the ledger to these broker snapshots (one unit of work for all).

        `queried_at_version`: the tracker's `version` when the snapshots were queried; an
        order changed since (a stream event, our own step) keeps what it has: the
        snapshot predates it, and the next reconcile queries it again."""
        by_order: dict[str, list[Fill]] = {}
        for fill in fills:
            by_order.setdefault(fill.broker_order_id, []).append(fill)
        outcomes: list[TrackOutcome] = []
        staged: list[DomainEvent] = []
        with self.unit() as uow:
            for snapshot in snapshots:
                if queried_at_version is not None and self._stale(snapshot, queried_at_version):
                    logger.info(
                        "{}: changed since the reconcile's query; its snapshot is not applied",
                        snapshot.client_order_id,
                    )
                    continue
                row, adopted = self._row_for(uow, snapshot, source)
                if row is None:
                    continue
                outcome = self._snapshot_in(
                    uow, row, snapshot, by_order.get(snapshot.broker_order_id, []), source, adopted
                )
                if outcome.changed:
                    outcomes.append(outcome)
                    staged += self._stage(uow, outcome)
            uow.commit()
        for outcome in outcomes:
            self._after_commit(outcome)
        await self._ctx.publish(staged)
        return outcomes

    async def refresh(self, client_order_id: str) -> OrderView:
        """Ask the broker for the order's status now and apply it."""
        view = self.require(client_order_id)
        broker = self._ctx.broker
        if view.broker_order_id is not None:
            snapshot: OrderSnapshot | None = await broker.get_order(view.broker_order_id)
        else:
            snapshot = await broker.get_order_by_client_id(view.client_order_id)
        if snapshot is not None:
            await self.apply_snapshots([snapshot], source=EventSource.RECONCILE)
        return self.require(client_order_id)

    # --- internals -----------------------------------------------------------------------

    async def _local(
        self,
        client_order_id: str,
        step: Callable[[UnitOfWork, OrderRow, OrderModel], list[Transition]],
        source: EventSource,
    ) -> TrackOutcome:
        with self.unit() as uow:
            row = find_row(uow, client_order_id)
            if row is None:
                raise LookupError(f"order {client_order_id} is not in the ledger")
            model = self._models.of(uow, row)
            previous = model.status
            transitions = step(uow, row, model)
            write_transitions(uow, row, model, transitions, source)
            outcome = TrackOutcome(OrderView.of(row), previous, tuple(transitions), ())
            staged = self._stage(uow, outcome)
            uow.commit()
        self._after_commit(outcome)
        await self._ctx.publish(staged)
        return outcome

    def _row_for(
        self, uow: UnitOfWork, snapshot: OrderSnapshot, source: EventSource
    ) -> tuple[OrderRow | None, bool]:
        row = find_row(uow, snapshot.client_order_id, snapshot.broker_order_id)
        if row is not None:
            return row, False
        row = adopt_row(uow, self._ctx.account.row_id, snapshot, source, self._ctx.now())
        if row is not None:
            self._models.drop(row.client_order_id)
        return row, True

    def _apply_in(
        self,
        uow: UnitOfWork,
        row: OrderRow,
        event: BrokerEvent,
        source: EventSource,
        adopted: bool = False,
    ) -> TrackOutcome:
        model = self._models.of(uow, row)
        previous = row.status
        try:
            transitions = model.apply(event)
        except IllegalTransition:
            transitions = override_transition(
                row, event.order.status, f"override:{event.kind}", event.timestamp
            )
            if transitions:  # broker wins; see the module docstring
                model = self._models.forced(uow, row, transitions[-1].to_status)
            else:
                model = self._models.of(uow, row)
        except BrokerInconsistency as exc:
            self.needs_reconcile = True
            logger.error("broker inconsistency on {}: {}", row.client_order_id, exc)
            record_event(
                uow, row.id, kind="inconsistency", source=source, detail={"error": str(exc)}
            )
            return TrackOutcome(OrderView.of(row), previous, (), (), adopted)
        new_fills = write_transitions(uow, row, model, transitions, source)
        return TrackOutcome(OrderView.of(row), previous, tuple(transitions), new_fills, adopted)

    def _snapshot_in(
        self,
        uow: UnitOfWork,
        row: OrderRow,
        snapshot: OrderSnapshot,
        fills: list[Fill],
        source: EventSource,
        adopted: bool,
    ) -> TrackOutcome:
        previous = row.status
        uow.orders.note_stop_level(row, snapshot, source=source)  # a trail's broker level
        if snapshot.qty != row.qty and row.filled_qty == 0:
            row.qty = snapshot.qty  # a replacement sized by the broker: it knows
            self._models.drop(row.client_order_id)
        transitions: list[Transition] = []
        new_fills: list[Fill] = []
        filled = self._models.of(uow, row).filled_qty
        for fill in sorted(fills, key=lambda f: (f.timestamp, f.execution_id)):
            if uow.fills.by_execution_id(fill.execution_id) is not None:
                continue
            filled += fill.qty
            kind = K.FILL if filled >= snapshot.qty else K.PARTIAL_FILL
            event = BrokerEvent(kind, snapshot, fill.timestamp, fill)
            step = self._apply_in(uow, row, event, source)
            transitions += step.transitions
            new_fills += step.new_fills
        if snapshot.status is not row.status and snapshot.status in STATUS_KIND:
            at = snapshot.updated_at or self._ctx.now()
            event = BrokerEvent(STATUS_KIND[snapshot.status], snapshot, at)
            step = self._apply_in(uow, row, event, source)
            transitions += step.transitions
            if row.status is not snapshot.status:
                forced = override_transition(row, snapshot.status, "override:snapshot", at)
                if forced:
                    model = self._models.forced(uow, row, forced[-1].to_status)
                    write_transitions(uow, row, model, forced, source)
                    transitions += forced
        if snapshot.filled_qty > row.filled_qty:
            # Fills from before our window: the broker's cumulative figures win.
            row.filled_qty = snapshot.filled_qty
            row.avg_fill_price = snapshot.avg_fill_price
            self._models.drop(row.client_order_id)
        view = OrderView.of(row)
        return TrackOutcome(view, previous, tuple(transitions), tuple(new_fills), adopted)

    def _stage(self, uow: UnitOfWork, outcome: TrackOutcome) -> list[DomainEvent]:
        events = order_events_for(self._ctx.account.name, outcome)
        for event in events:
            self._ctx.outbox.stage(uow, event)
        return events

    def mark_query(self) -> int:
        """The version to pass as `queried_at_version` for snapshots queried from now.
        Changes recorded before it can never be newer than those snapshots, so they are
        forgotten here (the reconciler, the only caller, holds one mark at a time)."""
        self._changed_at.clear()
        return self.version

    def _stale(self, snapshot: OrderSnapshot, queried_at_version: int) -> bool:
        return self._changed_at.get(snapshot.client_order_id, 0) > queried_at_version

    def _after_commit(self, outcome: TrackOutcome) -> None:
        cid = outcome.order.client_order_id
        if outcome.transitions or outcome.new_fills or outcome.adopted:
            self.version += 1
            self._changed_at[cid] = self.version
        if outcome.order.status is not OrderStatus.PENDING_SUBMIT:
            self._send_ended.pop(cid, None)  # acknowledged or ended: nothing left in flight
        self._views[cid] = outcome.order
        self._models.settle(outcome.order)
        changed = self._changed.pop(cid, None)
        if changed is not None:
            changed.set()

    @contextmanager
    def unit(self) -> Iterator[UnitOfWork]:
        """A write unit of work; if it fails, the in-memory caches are dropped with it."""
        try:
            with self._ctx.ledger.unit_of_work() as uow:
                yield uow
        except BaseException:
            self.forget()
            raise

    def forget(self) -> None:
        """Drop caches (after a failed write the ledger is the truth again)."""
        self._models.clear()
        self._views.clear()


__all__ = ["NEVER_REACHED", "STATUS_KIND", "OrderTracker"]
