"""Session state machine: every legal transition, illegal ones, SAFE MODE, LOCKED, restore."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from core.calendar import TradingSession, xnys
from core.clock import NEW_YORK
from core.session import (
    TRANSITIONS,
    DayPhase,
    IllegalSessionTransition,
    SafeModeReason,
    SessionMachine,
    SessionSchedule,
    SessionState,
    SessionTrigger,
    TransitionRefused,
)

S, T = SessionState, SessionTrigger
DAY = date(2024, 3, 12)
NEXT_DAY = date(2024, 3, 13)


def ny(hh: int, mm: int, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=NEW_YORK)


def schedule_for(day: date) -> SessionSchedule:
    session = TradingSession(day=day, open=ny(9, 30, day), close=ny(16, 0, day))
    return SessionSchedule.build(
        session,
        opening_no_trade_minutes=15,
        entry_cutoff=time(15, 30),
        flatten_at=time(15, 55),
        half_day_flatten_before_close_minutes=5,
    )


def machine_in(state: SessionState, *, position: bool = False) -> SessionMachine:
    """A machine driven into `state` by real triggers (optionally holding AAPL)."""
    if position and state in (S.PREMARKET, S.OPENING_NO_TRADE):  # carried over from yesterday
        return SessionMachine.restore(
            "paper", schedule_for(DAY), state=state, at=ny(9, 31), open_symbols={"AAPL"}
        )
    m = SessionMachine("paper", schedule_for(DAY))
    if state is S.PREMARKET:
        return m
    m.fire(T.MARKET_OPEN, at=ny(9, 30), cause="open")
    if state is S.OPENING_NO_TRADE:
        return m
    if state is not S.TRADING_DENIED:
        m.fire(T.ALLOW, at=ny(9, 40), cause="/allow")
    m.fire(T.OPENING_WINDOW_OVER, at=ny(9, 45), cause="09:45")
    if state in (S.TRADING_ALLOWED, S.TRADING_DENIED):
        return m
    if position or state in (S.IN_POSITION, S.COOLDOWN):
        m.fire(T.ENTRY_FILLED, at=ny(10, 0), cause="fill", symbol="AAPL")
    if state is S.COOLDOWN:
        m.fire(
            T.POSITION_CLOSED,
            at=ny(10, 30),
            cause="stopped out",
            symbol="AAPL",
            stopped_out=True,
            cooldown_until=ny(10, 45),
        )
    elif state is S.LOCKED:
        m.fire(T.LOSS_LIMIT_HIT, at=ny(10, 30), cause="day loss -$300.00")
    elif state is S.DONE:
        m.fire(T.FLATTEN_TIME, at=ny(15, 55), cause="15:55")
    elif state is S.SAFE_MODE:
        m.fire(T.SAFE_MODE, at=ny(10, 30), cause="no bars", reason=SafeModeReason.STALE_DATA)
    assert m.state is state
    return m


def data_for(trigger: SessionTrigger) -> dict[str, Any]:
    data: dict[SessionTrigger, dict[str, Any]] = {
        T.ENTRY_FILLED: {"symbol": "MSFT"},
        T.POSITION_CLOSED: {"symbol": "AAPL"},
        T.SAFE_MODE: {"reason": SafeModeReason.POSITION_MISMATCH},
        T.RESUME: {"causes_cleared": True},
        T.NEW_DAY: {"schedule": schedule_for(NEXT_DAY)},
    }
    return data.get(trigger, {})


@pytest.mark.parametrize(("state", "trigger"), sorted(TRANSITIONS), ids=str)
def test_every_legal_transition(state: SessionState, trigger: SessionTrigger) -> None:
    m = machine_in(state, position=trigger is T.POSITION_CLOSED)
    at = ny(11, 0) if trigger is not T.NEW_DAY else ny(8, 0, NEXT_DAY)
    record = m.fire(trigger, at=at, cause="test", **data_for(trigger))
    targets = {rule.target for rule in TRANSITIONS[(state, trigger)]}
    assert record.current in targets or (None in targets and record.current is not S.SAFE_MODE)
    assert (record.previous, record.current, record.trigger) == (state, m.state, trigger)
    assert record.cause == "test" and record.at == at and record.account == "paper"


ILLEGAL = sorted((s, t) for s in S for t in T if (s, t) not in TRANSITIONS)


@pytest.mark.parametrize(("state", "trigger"), ILLEGAL, ids=str)
def test_illegal_transitions_raise_and_change_nothing(
    state: SessionState, trigger: SessionTrigger
) -> None:
    m = machine_in(state)
    info = m.info
    with pytest.raises(IllegalSessionTransition) as raised:
        m.fire(trigger, at=ny(11, 0), cause="test", **data_for(trigger))
    assert (raised.value.state, raised.value.trigger) == (state, trigger)
    assert str(state) in str(raised.value) and str(trigger) in str(raised.value)
    assert m.state is state and m.info == info


def test_illegal_examples_are_really_refused() -> None:
    assert (S.PREMARKET, T.ENTRY_FILLED) in ILLEGAL
    assert (S.TRADING_ALLOWED, T.RESUME) in ILLEGAL
    assert (S.OPENING_NO_TRADE, T.LOSS_LIMIT_HIT) in ILLEGAL
    assert (S.TRADING_ALLOWED, T.MARKET_OPEN) in ILLEGAL


def test_a_full_day() -> None:
    m = SessionMachine("paper", schedule_for(DAY))
    steps: list[tuple[SessionTrigger, datetime, dict[str, Any], SessionState]] = [
        (T.MARKET_OPEN, ny(9, 30), {}, S.OPENING_NO_TRADE),
        (T.ALLOW, ny(9, 40), {}, S.OPENING_NO_TRADE),  # recorded, applied at 09:45
        (T.OPENING_WINDOW_OVER, ny(9, 45), {}, S.TRADING_ALLOWED),
        (T.ENTRY_FILLED, ny(10, 0), {"symbol": "aapl"}, S.IN_POSITION),
        (
            T.POSITION_CLOSED,
            ny(10, 27),
            {"symbol": "AAPL", "stopped_out": True, "cooldown_until": ny(10, 42)},
            S.COOLDOWN,
        ),
        (T.COOLDOWN_OVER, ny(10, 42), {}, S.TRADING_ALLOWED),
        (T.DENY, ny(11, 0), {}, S.TRADING_DENIED),
        (T.ALLOW, ny(11, 5), {}, S.TRADING_ALLOWED),
        (T.FLATTEN_TIME, ny(15, 55), {}, S.DONE),
    ]
    for trigger, at, data, expected in steps:
        record = m.fire(trigger, at=at, cause=str(trigger), **data)
        assert record.current is expected, trigger
    assert m.info.phase is DayPhase.FLATTENED
    record = m.fire(
        T.NEW_DAY, at=ny(4, 0, NEXT_DAY), cause="new day", schedule=schedule_for(NEXT_DAY)
    )
    assert record.current is S.PREMARKET and m.info.allowed is None
    assert record.session_date == NEXT_DAY


@pytest.mark.parametrize("answer", [None, False, True])
def test_opening_window_applies_the_answer(answer: bool | None) -> None:
    m = machine_in(S.OPENING_NO_TRADE)
    if answer is not None:
        m.fire(T.ALLOW if answer else T.DENY, at=ny(9, 35), cause="button")
    record = m.fire(T.OPENING_WINDOW_OVER, at=ny(9, 45), cause="09:45")
    assert record.current is (S.TRADING_ALLOWED if answer else S.TRADING_DENIED)


def test_cooldown_over_early_is_refused_with_the_time() -> None:
    m = machine_in(S.COOLDOWN)
    with pytest.raises(TransitionRefused, match="until 10:45"):
        m.fire(T.COOLDOWN_OVER, at=ny(10, 44), cause="timer")
    assert m.state is S.COOLDOWN
    assert m.fire(T.COOLDOWN_OVER, at=ny(10, 45), cause="timer").current is S.TRADING_ALLOWED


def test_stop_out_with_another_position_open() -> None:
    m = machine_in(S.IN_POSITION)
    m.fire(T.ENTRY_FILLED, at=ny(10, 5), cause="fill", symbol="MU")
    record = m.fire(
        T.POSITION_CLOSED,
        at=ny(10, 30),
        cause="stop",
        symbol="AAPL",
        stopped_out=True,
        cooldown_until=ny(10, 45),
    )
    assert record.current is S.IN_POSITION
    assert m.can_enter(ny(10, 31)) == (False, "cooldown after a stop-out until 10:45")
    with pytest.raises(TransitionRefused, match="no open position in TSLA"):
        m.fire(T.POSITION_CLOSED, at=ny(10, 35), cause="unknown", symbol="TSLA")
    assert m.state is S.IN_POSITION and m.info.open_symbols == {"MU"}
    record = m.fire(T.POSITION_CLOSED, at=ny(10, 40), cause="exit", symbol="MU")
    assert record.current is S.COOLDOWN


def test_closing_after_the_cooldown_returns_to_the_answer() -> None:
    m = machine_in(S.IN_POSITION)
    m.fire(T.ENTRY_FILLED, at=ny(10, 5), cause="fill", symbol="MU")
    m.fire(
        T.POSITION_CLOSED,
        at=ny(10, 30),
        cause="stop",
        symbol="AAPL",
        stopped_out=True,
        cooldown_until=ny(10, 45),
    )
    m.fire(T.DENY, at=ny(10, 50), cause="/deny")
    assert m.fire(T.POSITION_CLOSED, at=ny(11, 0), cause="exit", symbol="MU").current is (
        S.TRADING_DENIED
    )
    # the late cooldown timer is harmless
    assert m.fire(T.COOLDOWN_OVER, at=ny(11, 1), cause="timer").current is S.TRADING_DENIED


@pytest.mark.parametrize("state", list(S), ids=str)
def test_safe_mode_from_every_state(state: SessionState) -> None:
    m = machine_in(state)
    record = m.fire(T.SAFE_MODE, at=ny(11, 0), cause="mismatch", reason="position_mismatch")
    assert record.current is S.SAFE_MODE
    assert SafeModeReason.POSITION_MISMATCH in m.info.safe_mode_reasons
    allowed, reason = m.can_enter(ny(11, 1))
    assert not allowed and "SAFE MODE" in reason and "position_mismatch" in reason
    if state is not S.SAFE_MODE:
        assert m.info.resume_to is state
        back = m.fire(T.RESUME, at=ny(11, 5), cause="/resume", causes_cleared=True)
        # The cooldown (until 10:45) ran out during SAFE MODE: back to trading, not COOLDOWN.
        assert back.current is (S.TRADING_ALLOWED if state is S.COOLDOWN else state)
        assert m.info.safe_mode_reasons == frozenset()


def test_resume_refused_while_the_cause_persists() -> None:
    m = machine_in(S.SAFE_MODE)
    with pytest.raises(TransitionRefused, match="stale_data") as raised:
        m.fire(T.RESUME, at=ny(10, 35), cause="/resume", causes_cleared=False)
    assert raised.value.reason.startswith("SAFE MODE stays on")
    assert m.state is S.SAFE_MODE


def test_resume_goes_to_the_state_for_the_time_of_day() -> None:
    m = machine_in(S.OPENING_NO_TRADE)
    m.fire(T.SAFE_MODE, at=ny(9, 35), cause="no bars", reason=SafeModeReason.STALE_DATA)
    m.fire(T.ALLOW, at=ny(9, 40), cause="/allow")
    m.fire(T.OPENING_WINDOW_OVER, at=ny(9, 45), cause="09:45")
    assert m.state is S.SAFE_MODE
    assert m.fire(T.RESUME, at=ny(10, 0), cause="ok", causes_cleared=True).current is (
        S.TRADING_ALLOWED
    )
    m.fire(T.SAFE_MODE, at=ny(15, 50), cause="slow", reason=SafeModeReason.UNACKNOWLEDGED_ORDER)
    m.fire(T.FLATTEN_TIME, at=ny(15, 55), cause="15:55")  # flatten still happens
    assert m.state is S.SAFE_MODE
    assert m.fire(T.RESUME, at=ny(16, 0), cause="ok", causes_cleared=True).current is S.DONE


def test_safe_mode_survives_new_day_and_lock_does_not() -> None:
    m = machine_in(S.LOCKED)
    m.fire(T.SAFE_MODE, at=ny(11, 0), cause="mismatch", reason=SafeModeReason.POSITION_MISMATCH)
    m.fire(T.NEW_DAY, at=ny(4, 0, NEXT_DAY), cause="day", schedule=schedule_for(NEXT_DAY))
    assert m.state is S.SAFE_MODE and m.info.locked_reason is None
    assert m.fire(T.RESUME, at=ny(8, 0, NEXT_DAY), cause="ok", causes_cleared=True).current is (
        S.PREMARKET
    )


def test_new_day_must_move_forward() -> None:
    m = machine_in(S.DONE)
    with pytest.raises(TransitionRefused, match="must come after"):
        m.fire(T.NEW_DAY, at=ny(16, 0), cause="oops", schedule=schedule_for(DAY))


def test_locked_is_sticky() -> None:
    m = machine_in(S.LOCKED, position=True)
    assert m.info.locked_reason == "day loss -$300.00"
    steps: list[tuple[SessionTrigger, dict[str, Any]]] = [
        (T.ALLOW, {}),
        (T.TRADE_LIMIT_HIT, {}),
        (T.POSITION_CLOSED, {"symbol": "AAPL"}),
        (T.ENTRY_FILLED, {"symbol": "MU"}),
    ]
    for trigger, data in steps:
        assert m.fire(trigger, at=ny(11, 0), cause="x", **data).current is S.LOCKED
    assert m.info.locked_reason == "day loss -$300.00"  # the first reason stays
    assert m.can_enter(ny(11, 0)) == (False, "the day is locked (day loss -$300.00)")
    m.fire(T.SAFE_MODE, at=ny(11, 1), cause="x", reason=SafeModeReason.LOSS_LIMIT)
    assert m.fire(T.RESUME, at=ny(11, 2), cause="ok", causes_cleared=True).current is S.LOCKED
    assert m.fire(T.FLATTEN_TIME, at=ny(15, 55), cause="15:55").current is S.DONE


def test_loss_limit_in_safe_mode_locks_on_resume() -> None:
    m = machine_in(S.SAFE_MODE)
    m.fire(T.LOSS_LIMIT_HIT, at=ny(11, 0), cause="day loss")
    assert m.fire(T.RESUME, at=ny(11, 5), cause="ok", causes_cleared=True).current is S.LOCKED


def test_restore_keeps_locked_over_a_stale_state() -> None:
    m = SessionMachine.restore(
        "paper",
        schedule_for(DAY),
        state=S.TRADING_ALLOWED,
        at=ny(11, 0),
        allowed=True,
        locked_reason="day loss -$312.00",
    )
    assert m.state is S.LOCKED
    restored = SessionMachine.restore("paper", schedule_for(DAY), state="locked", at=ny(11, 0))
    assert restored.state is S.LOCKED and not restored.can_enter(ny(11, 0)).allowed
    assert restored.fire(T.ALLOW, at=ny(11, 1), cause="/allow").current is S.LOCKED
    with pytest.raises(IllegalSessionTransition):
        restored.fire(T.RESUME, at=ny(11, 1), cause="/resume", causes_cleared=True)
    assert restored.state is S.LOCKED


def test_restore_rederives_trading_states_and_keeps_safe_mode() -> None:
    at = ny(10, 40)
    m = SessionMachine.restore(
        "paper",
        schedule_for(DAY),
        state=S.IN_POSITION,  # the ledger lagged: the position is gone, a cooldown runs
        at=at,
        allowed=True,
        cooldown_until=ny(10, 45),
    )
    assert m.state is S.COOLDOWN
    m = SessionMachine.restore(
        "paper",
        schedule_for(DAY),
        state=S.SAFE_MODE,
        at=at,
        resume_to=S.TRADING_ALLOWED,
        allowed=True,
        open_symbols={"aapl"},
    )
    assert m.state is S.SAFE_MODE and m.info.safe_mode_reasons == {SafeModeReason.INTERNAL_ERROR}
    assert m.info.resume_to is S.IN_POSITION and m.info.open_symbols == {"AAPL"}
    m = SessionMachine.restore(
        "paper",
        schedule_for(DAY),
        state=S.TRADING_DENIED,
        at=at,
        safe_mode_reasons={SafeModeReason.STALE_DATA},
    )
    assert m.state is S.SAFE_MODE and m.info.resume_to is S.TRADING_DENIED


def test_due_triggers_replay_a_missed_morning() -> None:
    m = SessionMachine.restore("paper", schedule_for(DAY), state=S.PREMARKET, at=ny(10, 30))
    assert m.due_triggers(ny(9, 0)) == ()
    due = m.due_triggers(ny(10, 30))
    assert due == (T.MARKET_OPEN, T.OPENING_WINDOW_OVER)
    for trigger in due:
        m.fire(trigger, at=ny(10, 30), cause="catch-up")
    assert m.state is S.TRADING_DENIED and m.due_triggers(ny(10, 30)) == ()
    cooling = machine_in(S.COOLDOWN)
    assert cooling.due_triggers(ny(16, 0)) == (T.COOLDOWN_OVER, T.FLATTEN_TIME)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (S.PREMARKET, (False, "the market is not open yet")),
        (S.OPENING_NO_TRADE, (False, "no entries in the opening window (until 09:45)")),
        (S.TRADING_ALLOWED, (True, "trading allowed")),
        (S.TRADING_DENIED, (False, "trading was not allowed today (no answer)")),
        (S.IN_POSITION, (True, "another position is open; risk limits apply")),
        (S.COOLDOWN, (False, "cooldown after a stop-out until 10:45")),
        (S.LOCKED, (False, "the day is locked (day loss -$300.00)")),
        (S.DONE, (False, "the trading day is over")),
    ],
    ids=str,
)
def test_can_enter(state: SessionState, expected: tuple[bool, str]) -> None:
    assert machine_in(state).can_enter(ny(10, 35)) == expected


def test_can_enter_after_deny() -> None:
    m = machine_in(S.TRADING_ALLOWED)
    m.fire(T.DENY, at=ny(10, 0), cause="/deny")
    assert m.can_enter(ny(10, 1)) == (False, "trading is denied today (/allow to change)")


def test_data_is_checked() -> None:
    m = machine_in(S.TRADING_ALLOWED)
    with pytest.raises(TypeError, match="needs symbol"):
        m.fire(T.ENTRY_FILLED, at=ny(10, 0), cause="fill")
    with pytest.raises(TypeError, match="qty"):
        m.fire(T.ENTRY_FILLED, at=ny(10, 0), cause="fill", symbol="AAPL", qty=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="needs reason"):
        m.fire(T.SAFE_MODE, at=ny(10, 0), cause="x")
    with pytest.raises(ValueError):
        m.fire(T.SAFE_MODE, at=ny(10, 0), cause="x", reason="bogus")
    with pytest.raises(ValueError):
        m.fire("nonsense", at=ny(10, 0), cause="x")
    with pytest.raises(ValueError):
        m.fire(T.ALLOW, at=datetime(2024, 3, 12, 10, 0), cause="naive")
    assert m.state is S.TRADING_ALLOWED


def test_a_carried_position_can_close_before_the_window_ends() -> None:
    m = machine_in(S.IN_POSITION)
    m.fire(T.NEW_DAY, at=ny(4, 0, NEXT_DAY), cause="day", schedule=schedule_for(NEXT_DAY))
    assert m.state is S.PREMARKET and m.info.open_symbols == {"AAPL"}
    m.fire(T.MARKET_OPEN, at=ny(9, 30, NEXT_DAY), cause="open")
    closed = m.fire(T.POSITION_CLOSED, at=ny(9, 31, NEXT_DAY), cause="flatten", symbol="AAPL")
    assert closed.current is S.OPENING_NO_TRADE and m.info.open_symbols == frozenset()


def test_transition_record() -> None:
    m = machine_in(S.TRADING_ALLOWED)
    record = m.fire(T.ALLOW, at=ny(10, 0), cause="/allow again")
    assert not record.changed and record.previous is record.current is S.TRADING_ALLOWED
    assert m.fire(T.DENY, at=ny(10, 1), cause="/deny").changed


def test_schedule_on_a_half_day() -> None:
    session = xnys().require_session(date(2024, 11, 29))  # day after Thanksgiving, 13:00
    schedule = SessionSchedule.build(
        session,
        opening_no_trade_minutes=15,
        entry_cutoff=time(15, 30),
        flatten_at=time(15, 55),
        half_day_flatten_before_close_minutes=5,
    )
    local = [
        t.astimezone(NEW_YORK).time()
        for t in (schedule.trading_from, schedule.entry_cutoff, schedule.flatten_at)
    ]
    assert local == [time(9, 45), time(12, 30), time(12, 55)]
    normal = schedule_for(DAY)
    assert normal.entry_cutoff == ny(15, 30) and normal.flatten_at == ny(15, 55)
    assert normal.trading_from - normal.open == timedelta(minutes=15)


def test_resume_inside_the_cooldown_returns_to_cooldown() -> None:
    m = machine_in(S.COOLDOWN)
    m.fire(T.SAFE_MODE, at=ny(10, 35), cause="slow", reason=SafeModeReason.ABNORMAL_EXECUTION)
    assert m.fire(T.RESUME, at=ny(10, 40), cause="ok", causes_cleared=True).current is S.COOLDOWN
