"""report.md: an Obsidian-friendly note (front matter, tables, embedded charts).

Verdict per regime (a rule of thumb, stated in the note): expectancy > 0 R -> "trade it",
<= 0 -> "skip"; fewer than `MIN_TRADES` trades add "too few trades to trust"; no trades
-> "no trades". Best / worst days rank dates by the sum of their trades' R.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from pathlib import Path

from core.backtest.model import Trade
from core.backtest.run import BacktestResult
from core.backtest.stability import StabilityRow
from core.backtest.summary import ALL, RegimeStats, total
from core.backtest.sweep import SweepAxis, SweepResult, ranked
from core.params import DEFAULT_PARAMS, SignalParams

MIN_TRADES = 10
TOP_SETS = 5


@dataclass
class ReportInputs:
    result: BacktestResult
    data_dir: str
    friction: str
    first: date | None = None
    last: date | None = None
    charts: list[Path] = field(default_factory=list)
    stability: list[StabilityRow] | None = None
    sweep_axes: Sequence[SweepAxis] = ()
    sweep: list[SweepResult] | None = None


def _r(value: Fraction | None, signed: bool = True) -> str:
    if value is None:
        return ""
    return f"{float(value):+.2f}" if signed else f"{float(value):.2f}"


def _pct(value: Fraction | None) -> str:
    return "" if value is None else f"{float(value):.0%}"


def verdict(stats: RegimeStats) -> str:
    if stats.n_trades == 0 or stats.expectancy_r is None:
        return f"{stats.regime}: no trades"
    head = f"{stats.regime}: expectancy {_r(stats.expectancy_r)} R over {stats.n_trades} trades"
    call = "trade it" if stats.expectancy_r > 0 else "skip"
    if stats.n_trades < MIN_TRADES:
        call += " (too few trades to trust)"
    return f"{head} — {call}"


def summary_table(summary: Sequence[RegimeStats]) -> list[str]:
    lines = [
        "| regime | trades | win rate | avg R | median R | max loss R | max drawdown R "
        "| expectancy R | trades/session |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        name = f"**{s.regime}**" if s.regime == ALL else s.regime
        lines.append(
            f"| {name} | {s.n_trades} | {_pct(s.win_rate)} | {_r(s.avg_r)} | {_r(s.median_r)} "
            f"| {_r(s.max_loss_r)} | {_r(s.max_drawdown_r)} | {_r(s.expectancy_r)} "
            f"| {float(s.trades_per_session):.3f} |"
        )
    return lines


def day_lines(trades: Sequence[Trade], count: int = 3) -> list[str]:
    by_day: dict[date, list[Trade]] = defaultdict(list)
    for t in trades:
        by_day[t.day].append(t)
    if not by_day:
        return ["No trades, so no best or worst day."]
    totals = sorted(by_day.items(), key=lambda kv: (total([t.r for t in kv[1]]), kv[0]))
    lines = ["| | date | trades | R | symbols |", "|---|---|---:|---:|---|"]

    def line(tag: str, day: date, ts: list[Trade]) -> str:
        symbols = ", ".join(sorted({t.symbol for t in ts}))
        day_r = _r(Fraction(total([t.r for t in ts])))
        return f"| {tag} | {day} | {len(ts)} | {day_r} | {symbols} |"

    best = list(reversed(totals[-count:]))
    worst = [kv for kv in totals[:count] if kv not in best]
    lines += [line("best", d, ts) for d, ts in best]
    lines += [line("worst", d, ts) for d, ts in worst]
    return lines


def stability_lines(rows: Sequence[StabilityRow]) -> list[str]:
    if not rows:
        return []
    total = rows[0].total
    worst = max(rows, key=lambda r: r.changed)
    parts = ", ".join(
        f"{r.threshold} {r.direction} ({r.value:g}): {_pct(r.changed_share)}" for r in rows
    )
    share = worst.changed_share or Fraction(0)
    judgement = (
        "the labels are robust to the thresholds"
        if share <= Fraction(1, 10)
        else "the labels are sensitive to the thresholds: read per-regime results with care"
    )
    return [
        f"Moving each regime threshold by -/+ one step, one at a time, over {total} "
        f"post-warm-up (date, symbol) labels: {parts}. The largest change is "
        f"{worst.threshold} {worst.direction} with {worst.changed} labels "
        f"({_pct(worst.changed_share)}); {judgement}. See `stability.csv`.",
    ]


def sweep_lines(axes: Sequence[SweepAxis], results: Sequence[SweepResult]) -> list[str]:
    keys = [a.key for a in axes]
    head = "| rank | " + " | ".join(keys) + " | trades | win rate | expectancy R | max DD R |"
    lines = [
        f"{len(results)} parameter sets; the best {min(TOP_SETS, len(results))} by expectancy "
        "(all trades). Every set is in `sweep.csv`, with per-regime columns.",
        "",
        head,
        "|" + "---|" * (len(keys) + 5),
    ]
    for rank, result in enumerate(ranked(results)[:TOP_SETS], start=1):
        s = result.stats(ALL)
        values = " | ".join(result.set.values)
        lines.append(
            f"| {rank} | {values} | {s.n_trades} | {_pct(s.win_rate)} | "
            f"{_r(s.expectancy_r)} | {_r(s.max_drawdown_r)} |"
        )
    return lines


def params_lines(params: SignalParams) -> list[str]:
    lines = ["| parameter | value |", "|---|---|"]
    for name in SignalParams.model_fields:
        value = getattr(params, name)
        changed = value != getattr(DEFAULT_PARAMS, name)
        text = str(value).replace("|", "\\|")
        lines.append(f"| {name} | {'**' + text + '** (changed)' if changed else text} |")
    return lines


def render(inputs: ReportInputs) -> str:
    result = inputs.result
    days = sorted({d.day for d in result.days})
    span = f"{days[0]} .. {days[-1]}" if days else "no sessions"
    if inputs.first is not None or inputs.last is not None:
        span += f" (--from {inputs.first or '-'} --to {inputs.last or '-'})"
    p = result.params
    lines = [
        "---",
        "tags: [centaur, backtest]",
        f"symbols: [{', '.join(result.symbols)}]",
        f"exit_model: {p.exit_model}",
        f"friction: {inputs.friction}",
        "---",
        f"# Backtest {span}",
        "",
        f"Data `{inputs.data_dir}`: {', '.join(result.symbols)}; {result.bars:,} bars, "
        f"{result.sessions} (date, symbol) sessions after warm-up. Exit model "
        f"`{p.exit_model}`"
        + (f" (trail {p.trail_pct}%, policy {p.trail_policy})" if p.exit_model == "trail" else "")
        + f", friction `{inputs.friction}`. Entries are not gated by the regime; trades are "
        "grouped by the label at the signal bar.",
        "",
        "## Summary by regime",
        "",
        *summary_table(result.summary),
        "",
        "## Verdicts",
        "",
        *(f"- {verdict(s)}" for s in result.summary),
        "",
        f"_Rule of thumb: expectancy > 0 R → trade it, otherwise skip; under {MIN_TRADES} "
        "trades the sample is too small to trust._",
        "",
        "## Best and worst days",
        "",
        *day_lines(result.trades),
        "",
    ]
    if inputs.charts:
        lines += ["## Charts", ""]
        lines += [f"![{path.stem}]({path.name})" for path in inputs.charts]
        lines.append("")
    if inputs.stability is not None:
        lines += ["## Stability of the regime labels", "", *stability_lines(inputs.stability), ""]
    if inputs.sweep is not None:
        lines += ["## Sweep", "", *sweep_lines(inputs.sweep_axes, inputs.sweep), ""]
    lines += ["## Parameters", "", *params_lines(p), ""]
    return "\n".join(lines)


def write_report(path: Path, inputs: ReportInputs) -> Path:
    path.write_text(render(inputs), encoding="utf-8")
    return path
