"""One PNG per traded symbol: candles, session VWAP, OR15 band, entries, exits, stops.

Made for a phone: 1200 x 800 px, large fonts, few colours with distinct shapes (entries
are up-triangles, exits down-triangles, the stop a dashed black step line), candles
grouped into at most ~100 so each one is visible (1-minute bars become 5-minute candles
on a full day; VWAP is still the one of the real bars).

Why `Figure` + `FigureCanvasAgg` and no `pyplot`: pyplot keeps global figures and a
global backend; the scheduler renders reports inside the bot's process, possibly from a
worker thread, so every figure here is a local object and nothing global is touched
(every style is passed to the artists, never through rcParams). Output is deterministic:
fixed sizes and fonts (DejaVu Sans ships with matplotlib) and no Software/date metadata,
so the same day renders to the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from core.calendar import TradingCalendar
from core.marketdata.bar import Bar
from core.marketdata.loader import PRICE_SCALE
from core.marketdata.sessions import NS_PER_MIN, SessionBars, to_ns
from core.params import DEFAULT_PARAMS, SignalParams
from core.reports.files import atomic_write
from core.reports.lines import as_session_bars, session_lines
from core.reports.model import StopPoint, Trade

WIDTH_PX, HEIGHT_PX, DPI = 1200, 800, 100
MAX_CANDLES = 100
_BUCKETS = (1, 2, 5, 10, 15, 30, 60)
UP, DOWN = "#26a269", "#e01b24"
VWAP_COLOR, OR_COLOR, STOP_COLOR = "#f5a623", "#3584e4", "#000000"
ENTRY_COLOR, EXIT_COLOR = "#1c71d8", "#9141ac"
TITLE_PT, LABEL_PT, TICK_PT, NOTE_PT = 22, 17, 15, 14


def _minutes(moment: datetime, open_: datetime) -> float:
    return (moment - open_) / timedelta(minutes=1)


def _bucketed(bars: SessionBars) -> tuple[int, list[tuple[float, float, float, float, float]]]:
    """(bucket minutes, [(x_start, open, high, low, close)]) with at most MAX_CANDLES."""
    bar_min = max(1, bars.bar_ns // NS_PER_MIN)
    length = (bars.session.close - bars.session.open) / timedelta(minutes=1)
    bucket = next((b for b in _BUCKETS if b >= bar_min and length / b <= MAX_CANDLES), _BUCKETS[-1])
    slot = (bars.start_ns - to_ns(bars.session.open)) // (bucket * NS_PER_MIN)
    out = []
    for value in np.unique(slot):
        idx = np.flatnonzero(slot == value)
        out.append(
            (
                float(value * bucket),
                float(bars.open[idx[0]]) / PRICE_SCALE,
                float(bars.high[idx].max()) / PRICE_SCALE,
                float(bars.low[idx].min()) / PRICE_SCALE,
                float(bars.close[idx[-1]]) / PRICE_SCALE,
            )
        )
    return bucket, out


def _draw_candles(ax: Axes, bars: SessionBars) -> None:
    bucket, rows = _bucketed(bars)
    data = np.asarray(rows)
    x = data[:, 0] + bucket / 2
    o, h, lo, c = data[:, 1], data[:, 2], data[:, 3], data[:, 4]
    colors = [UP if close >= open_ else DOWN for open_, close in zip(o, c, strict=True)]
    ax.vlines(x, lo, h, colors=colors, linewidth=1.4, zorder=2)
    span = float(h.max() - lo.min()) or 1.0
    body = np.maximum(np.abs(c - o), span * 0.002)  # a doji stays visible
    ax.bar(x, body, bottom=np.minimum(o, c), width=bucket * 0.72, color=colors, zorder=3)


def _stop_segments(
    trades: Sequence[Trade], stops: Sequence[StopPoint] | None, end: datetime
) -> list[tuple[list[StopPoint], datetime]]:
    if stops is not None:
        last_exit = max((t.exit_time for t in trades if t.exit_time), default=end)
        return [(list(stops), last_exit)] if stops else []
    return [(list(t.stop_path), t.exit_time or end) for t in trades if t.stop_path]


def _anchor(x: float, length: float) -> tuple[str, float]:
    """Text alignment that keeps a label inside the axes near either edge."""
    if x > length * 0.8:
        return "right", 8.0
    if x < length * 0.12:
        return "left", -8.0
    return "center", 0.0


def _draw_stops(
    ax: Axes, segments: list[tuple[list[StopPoint], datetime]], open_: datetime, length: float
) -> None:
    for points, until in segments:
        xs = [_minutes(p.at, open_) for p in points] + [_minutes(until, open_)]
        ys = [float(p.level) for p in points] + [float(points[-1].level)]
        ax.step(xs, ys, where="post", color=STOP_COLOR, linewidth=2.2, linestyle="--", zorder=4)
        # Labelled where the last level starts, under the line: the exit marker sits at
        # the end of the path and would otherwise cover the text.
        ha = "right" if xs[-2] > length * 0.8 else "left"
        ax.annotate(
            f"stop {points[-1].level:.2f}",
            (xs[-2], ys[-1]),
            xytext=(-4 if ha == "right" else 4, -6),
            textcoords="offset points",
            ha=ha,
            va="top",
            fontsize=NOTE_PT,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            zorder=7,
        )


def _mark(
    ax: Axes, at: tuple[float, float], up: bool, color: str, text: str, length: float
) -> None:
    """A fill: a triangle on the price and a boxed label (entries below, exits above)."""
    x, y = at
    ax.scatter(
        [x],
        [y],
        marker="^" if up else "v",
        s=260,
        color=color,
        edgecolors="white",
        linewidths=1.5,
        zorder=6,
    )
    ha, dx = _anchor(x, length)
    box = {"boxstyle": "round,pad=0.25", "fc": "white", "ec": "#888888", "alpha": 0.9}
    ax.annotate(
        text,
        (x, y),
        xytext=(dx, -34 if up else 22),
        textcoords="offset points",
        ha=ha,
        fontsize=NOTE_PT,
        color=color,
        bbox=box,
        zorder=8,
    )


def _draw_trades(ax: Axes, trades: Sequence[Trade], open_: datetime, length: float) -> None:
    for trade in trades:
        entry = (_minutes(trade.entry_time, open_), float(trade.entry_price))
        label = f"BUY {trade.qty:f} @ {trade.entry_price:.2f}"
        _mark(ax, entry, True, ENTRY_COLOR, label, length)
        for leg in trade.exits:
            point = (_minutes(leg.at, open_), float(leg.price))
            label = f"SELL {leg.qty:f} @ {leg.price:.2f} ({leg.reason.value})"
            _mark(ax, point, False, EXIT_COLOR, label, length)


def _time_axis(ax: Axes, open_: datetime, close: datetime) -> None:
    length = _minutes(close, open_)
    step = 30 if length <= 420 else 60
    first = (30 - open_.minute % 30) % 30  # first tick on a half hour
    ticks = [0.0, *np.arange(first if first else step, length + 0.1, step).tolist()]
    ax.set_xticks(sorted(set(ticks)))
    ax.set_xticklabels([f"{open_ + timedelta(minutes=t):%H:%M}" for t in sorted(set(ticks))])
    ax.set_xlim(-2, length + 2)


def _title(symbol: str, day: str, trades: Sequence[Trade]) -> str:
    realised = [t for t in trades if t.exits]
    if not realised:
        return f"{symbol}  {day}"
    pnl = sum((t.pnl for t in realised), Decimal(0))
    text = f"{symbol}  {day}   P&L {'+' if pnl >= 0 else '-'}${abs(pnl):,.2f}"
    rs = [t.r_multiple for t in realised if t.r_multiple is not None]
    if len(rs) == len(realised):
        text += f"  ({sum(rs, Decimal(0)):+.2f}R)"
    return text


def render_symbol_chart(
    bars: SessionBars | Sequence[Bar],
    trades: Sequence[Trade],
    vwap: Sequence[float] | None,
    or15: tuple[Decimal, Decimal] | None,
    stops: Sequence[StopPoint] | None,
    path: Path,
    *,
    params: SignalParams = DEFAULT_PARAMS,
    calendar: TradingCalendar | None = None,
) -> Path:
    """Write the symbol's day chart as PNG at `path` (atomically) and return `path`.

    `vwap=None` computes VWAP and, when `or15` is also None, OR15 from the bars with
    `core.indicators`. `stops=None` draws each trade's own stop path up to its exit.
    """
    png = chart_png(bars, trades, vwap, or15, stops, params=params, calendar=calendar)
    return atomic_write(path, png)


def chart_png(
    bars: SessionBars | Sequence[Bar],
    trades: Sequence[Trade],
    vwap: Sequence[float] | None,
    or15: tuple[Decimal, Decimal] | None,
    stops: Sequence[StopPoint] | None,
    *,
    params: SignalParams = DEFAULT_PARAMS,
    calendar: TradingCalendar | None = None,
) -> bytes:
    """The chart's PNG bytes (1200 x 800 px); see `render_symbol_chart`."""
    session_bars = as_session_bars(bars, calendar)
    session = session_bars.session
    if vwap is None:
        lines = session_lines(session_bars, params)
        vwap = lines.vwap
        or15 = or15 if or15 is not None else lines.or15
    if len(vwap) != len(session_bars):
        raise ValueError(f"{len(vwap)} VWAP values for {len(session_bars)} bars")

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
    canvas = FigureCanvasAgg(figure)
    ax = figure.add_axes((0.04, 0.09, 0.855, 0.765))
    open_ = session.open
    _draw_candles(ax, session_bars)
    # VWAP_i is known at the close of bar i: plot it at the bar's end.
    ends = (session_bars.start_ns - to_ns(open_) + session_bars.bar_ns) / NS_PER_MIN
    ax.plot(ends, vwap, color=VWAP_COLOR, linewidth=2.8, zorder=5)
    if or15 is not None:
        low, high = float(or15[0]), float(or15[1])
        ax.axhspan(low, high, color=OR_COLOR, alpha=0.10, zorder=1)
        for level in (low, high):
            ax.axhline(level, color=OR_COLOR, linewidth=1.2, linestyle=":", zorder=1)
    length = _minutes(session.close, open_)
    _draw_stops(ax, _stop_segments(trades, stops, session.close), open_, length)
    _draw_trades(ax, trades, open_, length)

    _time_axis(ax, open_, session.close)
    ax.yaxis.tick_right()
    ax.yaxis.set_label_position("right")
    ax.tick_params(labelsize=TICK_PT, length=5)
    ax.set_ylabel("price ($)", fontsize=LABEL_PT)
    ax.set_xlabel("New York time", fontsize=LABEL_PT)
    ax.grid(True, color="#dddddd", linewidth=0.8, zorder=0)
    ax.set_axisbelow(True)
    ax.margins(y=0.08)
    for side in ("top", "left"):
        ax.spines[side].set_visible(False)
    figure.text(
        0.02,
        0.955,
        _title(session_bars.symbol, str(session.day), trades),
        fontsize=TITLE_PT,
        fontweight="bold",
        va="center",
    )
    handles = [
        Patch(color=UP, label="candles"),
        Line2D([], [], color=VWAP_COLOR, linewidth=2.8, label="VWAP"),
        Patch(color=OR_COLOR, alpha=0.25, label="OR15"),
        Line2D([], [], color=STOP_COLOR, linewidth=2.2, linestyle="--", label="stop"),
        Line2D([], [], color=ENTRY_COLOR, marker="^", linestyle="", markersize=13, label="entry"),
        Line2D([], [], color=EXIT_COLOR, marker="v", linestyle="", markersize=13, label="exit"),
    ]
    # One row under the title, outside the axes: it never hides a price.
    figure.legend(
        handles=handles,
        loc="center",
        bbox_to_anchor=(0.5, 0.895),
        fontsize=NOTE_PT,
        ncols=len(handles),
        frameon=False,
    )

    buffer = io.BytesIO()
    canvas.print_png(buffer, metadata={"Software": None})  # type: ignore[no-untyped-call]
    return buffer.getvalue()
