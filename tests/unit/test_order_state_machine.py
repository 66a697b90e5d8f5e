"""The order lifecycle table and OrderModel, example-based and stateful (hypothesis)."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from core.broker import BrokerEvent, BrokerEventKind, BrokerInconsistency
from core.domain import BrokerOrderId, OrderSnapshot, OrderStatus
from core.orders import TRANSITIONS, IllegalTransition, LocalAction, OrderModel
from tests.kit.brokers import make_event, make_fill, make_request, make_snapshot, ny

K = BrokerEventKind
S = OrderStatus
D = Decimal


def fresh(qty: int = 10) -> tuple[OrderModel, OrderSnapshot]:
    request = make_request(qty=qty, client_order_id="c-1")
    return OrderModel.from_request(request), make_snapshot(request, broker_order_id="b-1")


def at(snapshot: OrderSnapshot, status: S, filled: int = 0) -> OrderSnapshot:
    return replace(snapshot, status=status, filled_qty=D(filled), raw_status=status.value)


# --- the table -------------------------------------------------------------------------


def test_happy_path() -> None:
    model, snap = fresh()
    assert model.status is S.PENDING_SUBMIT
    [t] = model.local(LocalAction.SUBMIT_SENT, ny(10), broker_order_id=BrokerOrderId("b-1"))
    assert (t.from_status, t.to_status) == (S.PENDING_SUBMIT, S.SUBMITTED)
    model.apply(make_event(K.NEW, at(snap, S.ACCEPTED)))
    assert model.status is S.ACCEPTED
    fill = make_fill(snap, 4, "100.00")
    [t] = model.apply(make_event(K.PARTIAL_FILL, at(snap, S.PARTIALLY_FILLED, 4), fill=fill))
    assert t.to_status is S.PARTIALLY_FILLED and t.fill == fill
    model.apply(make_event(K.FILL, at(snap, S.FILLED, 10), fill=make_fill(snap, 6, "100.10")))
    assert model.status is S.FILLED
    assert model.filled_qty == 10
    assert model.avg_fill_price == D("100.06")


def test_stale_new_after_partial_fill_is_ignored() -> None:
    model, snap = fresh()
    model.apply(
        make_event(K.PARTIAL_FILL, at(snap, S.PARTIALLY_FILLED, 3), fill=make_fill(snap, 3))
    )
    assert model.apply(make_event(K.NEW, at(snap, S.ACCEPTED))) == []
    assert model.status is S.PARTIALLY_FILLED


def test_duplicate_fill_is_dropped() -> None:
    model, snap = fresh()
    event = make_event(K.PARTIAL_FILL, at(snap, S.PARTIALLY_FILLED, 3), fill=make_fill(snap, 3))
    assert model.apply(event)
    assert model.apply(event) == []
    assert model.filled_qty == 3 and len(model.fills) == 1


def test_fill_after_cancel_request_and_after_canceled() -> None:
    model, snap = fresh()
    model.apply(make_event(K.NEW, at(snap, S.ACCEPTED)))
    model.local(LocalAction.CANCEL_REQUESTED, ny(10))
    assert model.status is S.PENDING_CANCEL
    # a partial fill while the cancel is pending: recorded, still pending cancel
    model.apply(make_event(K.PARTIAL_FILL, at(snap, S.PENDING_CANCEL, 2), fill=make_fill(snap, 2)))
    assert (model.status, model.filled_qty) == (S.PENDING_CANCEL, 2)
    model.apply(make_event(K.CANCELED, at(snap, S.CANCELED, 2)))
    assert model.status is S.CANCELED
    # a late partial execution of the same order: recorded, still canceled
    [t] = model.apply(make_event(K.PARTIAL_FILL, at(snap, S.CANCELED, 5), fill=make_fill(snap, 3)))
    assert t.fill is not None and not t.changes_status
    assert (model.status, model.filled_qty) == (S.CANCELED, 5)


def test_fill_completing_a_canceled_order_means_the_fill_won() -> None:
    model, snap = fresh()
    model.apply(make_event(K.CANCELED, at(snap, S.CANCELED)))
    model.apply(make_event(K.FILL, at(snap, S.FILLED, 10), fill=make_fill(snap, 10)))
    assert model.status is S.FILLED


def test_partial_fills_completing_the_quantity_fill_the_order() -> None:
    # e.g. the `fill` event was lost and reconcile replays the executions as partials
    model, snap = fresh(qty=5)
    model.apply(
        make_event(K.PARTIAL_FILL, at(snap, S.PARTIALLY_FILLED, 2), fill=make_fill(snap, 2))
    )
    model.apply(
        make_event(K.PARTIAL_FILL, at(snap, S.PARTIALLY_FILLED, 5), fill=make_fill(snap, 3))
    )
    assert model.status is S.FILLED


def test_cancel_rejected_returns_to_the_brokers_status() -> None:
    model, snap = fresh()
    model.apply(
        make_event(K.PARTIAL_FILL, at(snap, S.PARTIALLY_FILLED, 3), fill=make_fill(snap, 3))
    )
    model.apply(make_event(K.PENDING_CANCEL, at(snap, S.PENDING_CANCEL, 3)))
    model.apply(make_event(K.ORDER_CANCEL_REJECTED, at(snap, S.PARTIALLY_FILLED, 3)))
    assert model.status is S.PARTIALLY_FILLED
    # a stale `order_cancel_rejected` after the order moved on changes nothing
    assert model.apply(make_event(K.ORDER_CANCEL_REJECTED, at(snap, S.ACCEPTED))) == []


@pytest.mark.parametrize(
    ("first", "second"),
    [(K.CANCELED, K.EXPIRED), (K.REJECTED, K.CANCELED), (K.REPLACED, K.CANCELED)],
)
def test_a_second_different_ending_is_illegal(first: K, second: K) -> None:
    model, snap = fresh()
    model.apply(make_event(first, snap))
    before = model.status
    with pytest.raises(IllegalTransition):
        model.apply(make_event(second, snap))
    assert model.status is before


def test_canceled_after_filled_is_illegal() -> None:
    model, snap = fresh()
    model.apply(make_event(K.FILL, at(snap, S.FILLED, 10), fill=make_fill(snap, 10)))
    with pytest.raises(IllegalTransition):
        model.apply(make_event(K.CANCELED, snap))
    assert model.status is S.FILLED


def test_overfill_is_refused_loudly_and_changes_nothing() -> None:
    model, snap = fresh(qty=5)
    model.apply(
        make_event(K.PARTIAL_FILL, at(snap, S.PARTIALLY_FILLED, 3), fill=make_fill(snap, 3))
    )
    with pytest.raises(BrokerInconsistency):
        model.apply(make_event(K.FILL, at(snap, S.FILLED, 6), fill=make_fill(snap, 3)))
    assert (model.status, model.filled_qty, len(model.fills)) == (S.PARTIALLY_FILLED, 3, 1)


def test_trade_bust_is_an_inconsistency() -> None:
    model, snap = fresh()
    with pytest.raises(BrokerInconsistency):
        model.apply(make_event(K.TRADE_BUST, snap))


def test_local_actions() -> None:
    model, snap = fresh()
    with pytest.raises(IllegalTransition):
        model.local(LocalAction.CANCEL_REQUESTED, ny(10))  # nothing at the broker yet
    model.local(LocalAction.SUBMIT_REJECTED, ny(10), reason="insufficient buying power")
    assert model.status is S.REJECTED and model.reject_reason == "insufficient buying power"
    other, _ = fresh()
    other.apply(make_event(K.NEW, at(snap, S.ACCEPTED)))
    assert other.local(LocalAction.SUBMIT_SENT, ny(10)) == []  # the stream was faster
    with pytest.raises(IllegalTransition):
        other.local(LocalAction.SUBMIT_REJECTED, ny(10))


def test_replace_records_the_successor() -> None:
    model, snap = fresh()
    model.apply(make_event(K.NEW, at(snap, S.ACCEPTED)))
    model.apply(make_event(K.PENDING_REPLACE, at(snap, S.ACCEPTED)))
    assert model.status is S.ACCEPTED
    model.apply(
        make_event(K.REPLACED, replace(at(snap, S.REPLACED), replaced_by=BrokerOrderId("b-2")))
    )
    assert model.status is S.REPLACED and model.replaced_by == "b-2"


def test_events_for_another_order_are_refused() -> None:
    model, _ = fresh()
    other = make_snapshot(make_request(client_order_id="c-other"))
    with pytest.raises(ValueError):
        model.apply(make_event(K.NEW, other))


def test_every_status_has_a_row_for_every_non_bust_kind() -> None:
    for status in S:
        for kind in K:
            if kind in (K.TRADE_BUST, K.TRADE_CORRECT):
                assert (status, kind) not in TRANSITIONS
            elif status.is_terminal and kind in (K.CANCELED, K.EXPIRED, K.REJECTED, K.REPLACED):
                # only the same ending again is allowed
                assert ((status, kind) in TRANSITIONS) == (status.value == kind.value)
            else:
                assert (status, kind) in TRANSITIONS, (status, kind)


def test_terminal_rows_never_leave_the_terminal_set() -> None:
    for (status, _trigger), outcome in TRANSITIONS.items():
        if status.is_terminal and isinstance(outcome, S):
            assert outcome.is_terminal


# --- stateful: a consistent broker, a faulty wire ------------------------------------------

ENDINGS = {
    K.CANCELED: S.CANCELED,
    K.EXPIRED: S.EXPIRED,
    K.REJECTED: S.REJECTED,
    K.REPLACED: S.REPLACED,
}


class OrderLifecycle(RuleBasedStateMachine):
    """The broker side ("truth") follows a consistent lifecycle; its events reach the
    model late, twice and out of order. The model must never break its invariants, and
    once everything is delivered it must agree with a truth that has ended."""

    def __init__(self) -> None:
        super().__init__()
        self.wire: list[BrokerEvent] = []
        self.delivered: list[bool] = []
        self.exec_seq = 0
        self.prev_filled = D(0)
        self.was_terminal = False
        self.replace_pending = False
        self.cancel_sent = False

    @initialize(qty=st.integers(min_value=1, max_value=12))
    def start(self, qty: int) -> None:
        self.model, self.snap = fresh(qty)
        self.qty = D(qty)
        self.truth = S.SUBMITTED
        self.truth_filled = D(0)

    # -- truth -------------------------------------------------------------------------

    def emit(self, kind: K, fill_qty: Decimal | None = None) -> None:
        snapshot = at(self.snap, self.truth, int(self.truth_filled))
        fill = None
        if fill_qty is not None:
            self.exec_seq += 1
            fill = make_fill(snapshot, fill_qty, "100.00", execution_id=f"e{self.exec_seq}")
        self.wire.append(make_event(kind, snapshot, fill=fill))
        self.delivered.append(False)

    def working(self) -> bool:
        return self.truth in (S.ACCEPTED, S.PARTIALLY_FILLED, S.PENDING_CANCEL)

    @precondition(lambda self: self.truth is S.SUBMITTED)
    @rule(kind=st.sampled_from([K.NEW, K.ACCEPTED, K.PENDING_NEW]))
    def ack(self, kind: K) -> None:
        if kind is not K.PENDING_NEW:
            self.truth = S.ACCEPTED
        self.emit(kind)

    @precondition(lambda self: self.working() and self.qty - self.truth_filled > 1)
    @rule(data=st.data())
    def partial_fill(self, data: st.DataObject) -> None:
        remaining = int(self.qty - self.truth_filled)
        chunk = D(data.draw(st.integers(min_value=1, max_value=remaining - 1)))
        self.truth_filled += chunk
        if self.truth is not S.PENDING_CANCEL:
            self.truth = S.PARTIALLY_FILLED
        self.emit(K.PARTIAL_FILL, chunk)

    @precondition(lambda self: self.working())
    @rule()
    def fill_rest(self) -> None:
        chunk = self.qty - self.truth_filled
        self.truth_filled = self.qty
        self.truth = S.FILLED
        self.emit(K.FILL, chunk)
        if self.replace_pending:  # the fill beat the replace
            self.replace_pending = False
            self.emit(K.ORDER_REPLACE_REJECTED)

    @precondition(lambda self: self.truth in (S.ACCEPTED, S.PARTIALLY_FILLED))
    @rule()
    def cancel_request(self) -> None:
        self.truth = S.PENDING_CANCEL
        self.cancel_sent = True
        self.emit(K.PENDING_CANCEL)

    @precondition(lambda self: self.truth is S.PENDING_CANCEL)
    @rule(done=st.booleans())
    def cancel_answer(self, done: bool) -> None:
        if done:
            self.truth = S.CANCELED
            self.emit(K.CANCELED)
        else:
            self.truth = S.PARTIALLY_FILLED if self.truth_filled else S.ACCEPTED
            self.emit(K.ORDER_CANCEL_REJECTED)

    @precondition(
        lambda self: self.truth in (S.ACCEPTED, S.PARTIALLY_FILLED) and not self.replace_pending
    )
    @rule()
    def replace_request(self) -> None:
        self.replace_pending = True
        self.emit(K.PENDING_REPLACE)

    @precondition(
        lambda self: self.replace_pending and self.truth in (S.ACCEPTED, S.PARTIALLY_FILLED)
    )
    @rule()
    def replace_done(self) -> None:
        self.replace_pending = False
        self.truth = S.REPLACED
        self.emit(K.REPLACED)

    @precondition(lambda self: self.working() or self.truth is S.SUBMITTED)
    @rule(kind=st.sampled_from([K.EXPIRED, K.REJECTED]))
    def end(self, kind: K) -> None:
        if kind is K.REJECTED and self.truth_filled:
            return  # brokers reject before executing, not after
        self.truth = ENDINGS[kind]
        self.emit(kind)

    # -- the wire and our side ---------------------------------------------------------

    def deliver(self, index: int) -> None:
        self.delivered[index] = True
        self.model.apply(self.wire[index])

    @precondition(lambda self: not all(self.delivered))
    @rule()
    def deliver_next(self) -> None:
        self.deliver(self.delivered.index(False))

    @precondition(lambda self: not all(self.delivered))
    @rule(data=st.data())
    def deliver_out_of_order(self, data: st.DataObject) -> None:
        waiting = [i for i, done in enumerate(self.delivered) if not done]
        self.deliver(data.draw(st.sampled_from(waiting)))

    @precondition(lambda self: any(self.delivered))
    @rule(data=st.data())
    def deliver_duplicate(self, data: st.DataObject) -> None:
        done = [i for i, sent in enumerate(self.delivered) if sent]
        index = data.draw(st.sampled_from(done))
        assert self.model.apply(self.wire[index]) == [] or self.wire[index].fill is None

    @rule()
    def submit_returned(self) -> None:
        self.model.local(LocalAction.SUBMIT_SENT, ny(10))

    @precondition(lambda self: self.cancel_sent)
    @rule()
    def cancel_call_returned(self) -> None:
        if self.model.status is not S.PENDING_SUBMIT:
            self.model.local(LocalAction.CANCEL_REQUESTED, ny(10))

    @precondition(lambda self: self.model.status.is_terminal)
    @rule(kind=st.sampled_from(list(ENDINGS)))
    def conflicting_ending(self, kind: K) -> None:
        if ENDINGS[kind] is self.model.status:
            return
        before = (self.model.status, self.model.filled_qty)
        with pytest.raises(IllegalTransition):
            self.model.apply(make_event(kind, self.snap))
        assert (self.model.status, self.model.filled_qty) == before

    @rule()
    def overfill(self) -> None:
        too_much = self.model.remaining_qty + 1
        event = make_event(
            K.FILL, self.snap, fill=make_fill(self.snap, too_much, execution_id="bad")
        )
        before = (self.model.status, self.model.filled_qty)
        with pytest.raises(BrokerInconsistency):
            self.model.apply(event)
        assert (self.model.status, self.model.filled_qty) == before

    @rule(seed=st.integers(min_value=0, max_value=2**16))
    def flush_shuffled(self, seed: int) -> None:
        waiting = [i for i, done in enumerate(self.delivered) if not done]
        random.Random(seed).shuffle(waiting)
        for index in waiting:
            self.deliver(index)
        assert self.model.filled_qty == self.truth_filled
        if self.truth.is_terminal:
            assert self.model.status is self.truth

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def quantities(self) -> None:
        if not hasattr(self, "model"):
            return
        model = self.model
        assert 0 <= model.filled_qty <= model.qty
        assert model.filled_qty >= self.prev_filled
        self.prev_filled = model.filled_qty
        ids = [fill.execution_id for fill in model.fills]
        assert len(ids) == len(set(ids))
        assert model.filled_qty == sum((fill.qty for fill in model.fills), D(0))
        assert model.filled_qty <= self.truth_filled

    @invariant()
    def terminal_stays_terminal(self) -> None:
        if not hasattr(self, "model"):
            return
        if self.was_terminal:
            assert self.model.status.is_terminal
        self.was_terminal = self.model.status.is_terminal


OrderLifecycle.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOrderLifecycle = OrderLifecycle.TestCase
