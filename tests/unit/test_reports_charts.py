"""Day charts: valid PNGs of 1200 x 800 px, deterministic, fast, no pyplot."""

from __future__ import annotations

import struct
import sys
import time
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import pytest

from core.marketdata.sessions import SessionBars
from core.marketdata.synthetic import generate_scenario, resample
from core.reports import (
    ExitReason,
    StopPoint,
    StopSource,
    Trade,
    TradeExit,
    chart_png,
    render_symbol_chart,
    session_lines,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def trailing_trade(bars: SessionBars, entry_index: int, qty: int = 40) -> Trade:
    """A long entered at a bar's close and trailed 0.8 % below the high-water mark."""
    rows = bars.bars()
    entry = rows[entry_index]
    price = entry.close
    stop = (price * Decimal("0.992")).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
    path = [StopPoint(entry.end, stop, StopSource.INITIAL)]
    hwm, exit_bar, level = price, rows[-1], stop
    for bar in rows[entry_index + 1 :]:
        level = max(level, (hwm * Decimal("0.992")).quantize(Decimal("0.01")))
        if level != path[-1].level:
            path.append(StopPoint(bar.start, level, StopSource.TRAIL))
        if bar.low <= level:
            exit_bar = bar
            break
        hwm = max(hwm, bar.high)
    exit_price = min(exit_bar.open, level)
    r = price - stop
    pnl = (exit_price - price) * qty
    return Trade(
        symbol=bars.symbol,
        entry_order_id=1,
        entry_time=entry.end,
        entry_price=price,
        qty=Decimal(qty),
        initial_stop=stop,
        risk_per_share=r,
        exits=(
            TradeExit(
                2, exit_bar.start, exit_price, Decimal(qty), ExitReason.TRAILING, pnl, pnl / r / qty
            ),
        ),
        open_qty=Decimal(0),
        pnl=pnl,
        r_multiple=pnl / r / qty,
        commissions=Decimal(0),
        deviation=None,
        stop_path=tuple(path),
    )


@pytest.fixture(scope="module")
def day() -> SessionBars:
    return generate_scenario("trend_up_pullback", symbol="AAPL", start_price=190.0).day


def test_png_header_size_and_determinism(day: SessionBars, tmp_path: Path) -> None:
    trade = trailing_trade(day, 45)
    path = render_symbol_chart(day, [trade], None, None, None, tmp_path / "AAPL.png")
    data = path.read_bytes()
    assert png_size(data) == (1200, 800)
    assert b"matplotlib" not in data  # no Software text chunk
    again = render_symbol_chart(day, [trade], None, None, None, tmp_path / "again.png")
    assert again.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["AAPL.png", "again.png"]  # no temp


def test_fast_enough_for_a_report(day: SessionBars) -> None:
    trade = trailing_trade(day, 45)
    chart_png(day, [trade], None, None, None)  # warm-up: font cache
    best = min(_timed(lambda: chart_png(day, [trade], None, None, None)) for _ in range(3))
    assert best < 0.5


def _timed(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def test_explicit_lines_bar_lists_and_other_sessions(day: SessionBars) -> None:
    lines = session_lines(day)
    assert lines.or15 is not None and len(lines.vwap) == len(day)
    trade = trailing_trade(day, 45)
    stops = [StopPoint(trade.entry_time, Decimal("189.00"), StopSource.STOP)]
    explicit = chart_png(day.bars(), [trade], lines.vwap, lines.or15, stops)
    assert png_size(explicit) == (1200, 800)

    half = generate_scenario("half_day", symbol="QQQM", start_price=200.0).day
    assert png_size(chart_png(half, [], None, None, None)) == (1200, 800)
    five = resample(day, 5)
    assert png_size(chart_png(five, [trailing_trade(five, 9)], None, None, None)) == (1200, 800)
    # A session cut short (before OR15 completes) still renders, without the band.
    short = day.head(10)
    assert session_lines(short).or15 is None
    assert png_size(chart_png(short, [], None, None, None)) == (1200, 800)


def test_vwap_length_must_match(day: SessionBars) -> None:
    with pytest.raises(ValueError, match="VWAP values"):
        chart_png(day, [], [100.0], None, None)


def test_leaves_pyplot_alone(day: SessionBars, tmp_path: Path) -> None:
    """No pyplot import, or, when another test imported it, no figure registered with it."""
    had_pyplot = "matplotlib.pyplot" in sys.modules
    if had_pyplot:
        import matplotlib.pyplot as plt

        figures = plt.get_fignums()
    render_symbol_chart(day, [], None, None, None, tmp_path / "DEMO.png")
    if had_pyplot:
        assert plt.get_fignums() == figures
    else:
        assert "matplotlib.pyplot" not in sys.modules
