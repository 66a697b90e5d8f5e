"""summary_by_regime by hand, the outputs' columns / order / formatting, friction exactly."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from app.backtest_cmd import resolve_params
from core.backtest.engine import Entry, make_rows
from core.backtest.model import ExitReason, Trade, TradeRow, group_trades, sort_rows
from core.backtest.outputs import (
    SUMMARY_COLUMNS,
    TRADE_COLUMNS,
    decimal_text,
    number_text,
    price_text,
    write_summary,
    write_trades,
)
from core.backtest.summary import max_drawdown, summarize
from core.clock import NEW_YORK
from core.domain import Regime
from core.entry import friction_profile, size_entry
from core.params import SignalParams

D, F = Decimal, Fraction
T0 = datetime(2024, 3, 14, 10, 0, tzinfo=NEW_YORK)


def trade(minute: int, r: str, regime: Regime, symbol: str = "A") -> Trade:
    when = T0 + timedelta(minutes=minute)
    return Trade(when.date(), symbol, regime, when, D(0), D(r))


def test_hand_computed_statistics() -> None:
    up = Regime.TREND_UP
    trades = [
        trade(0, "2", up),
        trade(1, "-0.5", Regime.RANGE),
        trade(2, "-1", up),
        trade(3, "-1", up),
        trade(4, "0.5", up),
    ]
    event, forming, trend_up, trend_down, rng, all_ = summarize(trades, sessions=10)
    assert [s.regime for s in (event, forming, trend_up, trend_down, rng, all_)] == [
        "event",
        "forming",
        "trend_up",
        "trend_down",
        "range",
        "all",
    ]
    assert event.n_trades == 0 and event.avg_r is None and event.trades_per_session == 0
    assert trend_up.n_trades == 4
    assert trend_up.win_rate == F(1, 2)
    assert trend_up.avg_r == F(1, 8)  # (2 - 1 - 1 + 0.5) / 4
    assert trend_up.expectancy_r == F(1, 2) * F(5, 4) + F(1, 2) * -1 == trend_up.avg_r
    assert trend_up.median_r == F(-1, 4)  # (-1 + 0.5) / 2
    assert trend_up.max_loss_r == -1
    assert trend_up.max_drawdown_r == -2  # 2, 1, 0: two below the peak
    assert trend_up.trades_per_session == F(4, 10)
    assert rng.max_drawdown_r == F(-1, 2) and rng.median_r == F(-1, 2)
    # all, in time order: 2, 1.5, 0.5, -0.5, 0 -> peak 2, trough -0.5
    assert all_.max_drawdown_r == F(-5, 2) and all_.n_trades == 5
    assert all_.win_rate == F(2, 5) and all_.avg_r == F(0)


def test_drawdown_starts_at_zero_and_a_loss_includes_zero() -> None:
    assert max_drawdown([D(-1), D(3), D(-2)]) == -2
    assert max_drawdown([D(1), D(2)]) == 0
    [*_, all_] = summarize([trade(0, "0", Regime.RANGE), trade(1, "1", Regime.RANGE)], 2)
    assert all_.win_rate == F(1, 2) and all_.max_loss_r == 0 and all_.expectancy_r == F(1, 2)


def _entry(qty: int = 62, price: str = "100.46") -> Entry:
    sizing = size_entry(D(price), D("99.99"), SignalParams())
    assert sizing is not None
    return Entry(
        date(2024, 3, 14),
        "A",
        Regime.TREND_UP,
        T0,
        T0 + timedelta(minutes=1),
        sizing.entry_price,
        D("99.99"),
        sizing.risk_per_share,
        qty,
    )


def test_friction_is_exact_on_every_fill() -> None:
    p = SignalParams()
    sizing = size_entry(D("100.46"), D("99.99"), p)
    assert sizing is not None and sizing.entry_price == D("100.490138")  # x 1.0003
    e = _entry()
    [row] = make_rows(e, [(T0, D("101"), 62, ExitReason.FLATTEN)], friction_profile(p))
    assert row.exit_price == D("100.9697")  # 101 x 0.9997
    assert row.pnl == (D("100.9697") - D("100.490138")) * 62 == D("29.732844")
    assert row.fees == 0
    exact = F(row.pnl) / (F(e.risk) * 62)  # the R multiple: a 34-digit decimal quotient
    assert abs(F(row.r_multiple) - exact) < F(1, 10**33)


def test_ibkr_commission_per_share_with_a_minimum_per_order() -> None:
    p = resolve_params(None, "ibkr", None, ())
    assert (p.commission_per_share, p.commission_min_per_order) == (D("0.005"), D("1.00"))
    f = friction_profile(p)
    e = _entry(62)
    [whole] = make_rows(e, [(T0, D("101"), 62, ExitReason.TRAIL)], f)
    assert whole.fees == D("2.00")  # 62 x 0.005 = 0.31 -> 1.00 on each side
    assert whole.pnl == (whole.exit_price - e.entry_price) * 62 - D("2.00")
    target, rest = make_rows(
        e, [(T0, D("101"), 31, ExitReason.TARGET), (T0, D("100"), 31, ExitReason.FLATTEN)], f
    )
    assert (target.fees, rest.fees) == (D("1.50"), D("1.50"))  # entry 1.00 split, exits 1.00
    big = _entry(400)
    a, b = make_rows(
        big, [(T0, D("101"), 200, ExitReason.TARGET), (T0, D("100"), 200, ExitReason.FLATTEN)], f
    )
    assert a.fees + b.fees == D("2.00") + D("1.00") + D("1.00")
    assert a.fees == D("2.00")  # 200 x 0.005 entry share + 1.00 exit order


def test_number_formats() -> None:
    assert price_text(D("100.490138")) == "100.4901"
    assert price_text(D("2.00005")) == "2.0001"  # halves up
    assert price_text(1.23455) == "1.2346"  # a float from its shortest decimal form
    assert price_text(None) == "" and price_text(float("nan")) == ""
    assert decimal_text(D("29.7328440000")) == "29.732844"
    assert decimal_text(D("0E-8")) == "0" and decimal_text(D("1E+2")) == "100"
    assert number_text(F(1, 3)) == repr(1 / 3) and number_text(D("0.1")) == "0.1"


def _csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_trades_csv_columns_order_and_formatting(tmp_path: Path) -> None:
    f = friction_profile(SignalParams())
    e1 = _entry()
    e2 = Entry(e1.day, "B", Regime.RANGE, T0, e1.entry_time, e1.entry_price, e1.stop, e1.risk, 10)
    close = T0 + timedelta(hours=5, minutes=54)
    rows: list[TradeRow] = []
    rows += make_rows(e2, [(close, D("101"), 10, ExitReason.FLATTEN)], f)
    rows += make_rows(
        e1,
        [(close, D("101"), 31, ExitReason.TARGET), (close, D("100.5"), 31, ExitReason.FLATTEN)],
        f,
    )
    path = write_trades(tmp_path / "trades.csv", sort_rows(reversed(rows)))
    header, *body = _csv(path)
    assert tuple(header) == TRADE_COLUMNS
    assert [(r[1], r[10]) for r in body] == [("A", "target"), ("A", "flatten"), ("B", "flatten")]
    first = body[0]
    assert first[3] == "2024-03-14T10:00:00-04:00" and first[4] == "2024-03-14T10:01:00-04:00"
    assert first[8] == "2024-03-14T15:54:00-04:00"
    assert (first[5], first[6], first[7], first[9]) == ("100.4901", "99.9900", "31", "100.9697")
    assert D(first[11]) == rows[1].pnl and first[13] == "0"
    assert float(first[12]) == float(rows[1].r_multiple)
    [t1, t2] = group_trades(rows)
    assert (t1.symbol, t2.symbol) == ("A", "B")
    exact = F(rows[1].pnl + rows[2].pnl) / (F(e1.risk) * 62)
    assert abs(F(t1.r) - exact) < F(1, 10**33)


def test_summary_csv_has_every_regime_row_and_empty_stats(tmp_path: Path) -> None:
    path = write_summary(tmp_path / "s.csv", summarize([trade(0, "1.5", Regime.RANGE)], 4))
    header, *body = _csv(path)
    assert tuple(header) == SUMMARY_COLUMNS
    assert [r[0] for r in body] == ["event", "forming", "trend_up", "trend_down", "range", "all"]
    assert body[0] == ["event", "0", "", "", "", "", "", "", "0"]
    assert body[4] == ["range", "1", "1.0", "1.5", "1.5", "0.0", "0.0", "1.5", "0.25"]
