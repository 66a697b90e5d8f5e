"""The regime rules by hand: crosses, pct above, forming boundary, event, thresholds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain import Regime
from core.marketdata.block import SessionBlock
from core.params import SignalParams
from core.regime import classify, label_codes, regime_of
from core.signals import evaluate_block
from tests.kit.market import WARM_UP, labelled_levels, make_session

P = SignalParams()


def _pinned(closes: list[str]):  # type: ignore[no-untyped-def]
    """VWAP pinned at 100: a heavy flat first bar, then zero-volume bars."""
    rows = [("100", "100", "100", "100", 1_000_000)]
    rows += [(c, c, c, c, 0) for c in closes]
    session = make_session(rows)  # type: ignore[arg-type]
    return evaluate_block(SessionBlock.from_sessions([session]), [labelled_levels()], [False], P)


def test_crosses_need_two_nonzero_signs_that_differ() -> None:
    ev = _pinned(["100.5", "100", "99.5", "100.5", "99.5"])
    # signs: 0, +, 0, -, +, -  -> only (-,+) and (+,-) count
    assert ev.regime.cross_count[0].tolist() == [0, 0, 0, 0, 1, 2]
    assert ev.regime.pct_above[0].tolist() == [0, 1 / 2, 1 / 3, 1 / 4, 2 / 5, 2 / 6]


def test_forming_until_the_bar_ending_at_open_plus_30() -> None:
    rows = [("100", "101", "99", "100.5", 100)] * 35
    ev = evaluate_block(
        SessionBlock.from_sessions([make_session(rows)]), [labelled_levels()], [False], P
    )
    assert ev.reading(0, 28).label is Regime.FORMING  # 09:58 bar ends 09:59
    assert ev.reading(0, 29).label is not Regime.FORMING  # 09:59 bar ends 10:00
    five = evaluate_block(
        SessionBlock.from_sessions([make_session(rows[:10], minutes=5)]),
        [labelled_levels()],
        [False],
        P,
    )
    assert five.reading(0, 4).label is Regime.FORMING  # 09:50
    assert five.reading(0, 5).label is not Regime.FORMING  # 09:55 bar ends 10:00


def test_event_beats_forming_and_warm_up_has_no_label() -> None:
    rows = [("100", "101", "99", "100.5", 100)] * 3
    block = SessionBlock.from_sessions([make_session(rows)] * 2)
    ev = evaluate_block(block, [labelled_levels(), WARM_UP], [True, True], P)
    assert ev.reading(0, 0).label is Regime.EVENT
    assert ev.reading(1, 2).label is None
    assert ev.reading(1, 2).evidence.range_atr is None
    assert ev.reading(1, 2).evidence.cross_count == 0


def test_thresholds_are_inclusive() -> None:
    assert classify(False, False, 0.75, 4, 0.5, P) is Regime.TREND_UP
    assert classify(False, False, 0.25, 4, 0.5, P) is Regime.TREND_DOWN
    assert classify(False, False, 0.7499, 4, 0.5, P) is Regime.RANGE
    assert classify(False, False, 0.8, 5, 0.5, P) is Regime.RANGE
    assert classify(False, False, 0.8, 4, 0.4999, P) is Regime.RANGE
    assert classify(False, False, 0.8, 4, float("nan"), P) is Regime.RANGE
    assert classify(False, True, 1.0, 0, 9.0, P) is Regime.FORMING
    crosses_36 = P.model_copy(update={"trend_max_crosses": 3.6})
    assert classify(False, False, 0.8, 4, 0.6, crosses_36) is Regime.RANGE


@settings(max_examples=200, deadline=None)
@given(
    st.booleans(),
    st.booleans(),
    st.floats(0, 1),
    st.integers(0, 9),
    st.one_of(st.floats(0, 3), st.just(float("nan")), st.just(float("inf"))),
    st.sampled_from([0.675, 0.75, 0.825]),
)
def test_vectorized_rules_equal_scalar_rules(
    event: bool, forming: bool, pct: float, crosses: int, range_atr: float, trend_pct: float
) -> None:
    params = P.model_copy(update={"trend_pct": trend_pct})
    code = label_codes(
        np.array([event]),
        np.array([forming]),
        np.array([pct]),
        np.array([crosses]),
        np.array([range_atr]),
        params,
    )
    assert regime_of(int(code[0])) is classify(event, forming, pct, crosses, range_atr, params)
