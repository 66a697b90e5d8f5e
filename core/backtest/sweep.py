"""Parameter sweeps: the grid of `--sweep key=v1,v2,...` sets, run across the cores.

Each set is the base parameters with one value per swept key (values read like `--set`,
as YAML scalars, and validated before anything runs). Sets run in a process pool (spawn:
no fork of a process that holds the progress bar's thread); every worker receives the
parsed data once (the pool initializer) and keeps the last evaluations (indicators,
labels, candidates) by the parameters they depend on, so sweeping execution parameters
(trail_pct, stop_valid_bars, friction, ...) evaluates the data once per worker.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date

from core.backtest.model import REGIME_ORDER, BacktestError
from core.backtest.run import (
    BacktestResult,
    SymbolData,
    evaluate,
    evaluation_key,
    run_symbol,
)
from core.backtest.summary import ALL, RegimeStats
from core.csv_text import number_text
from core.event_calendar import EventCalendar
from core.params import SignalParams, with_overrides
from core.signals import BlockEvaluation

GROUPS = (ALL, *(r.value for r in REGIME_ORDER))
STATS = ("trades", "win_rate", "expectancy_r", "max_drawdown_r")


@dataclass(frozen=True, slots=True)
class SweepAxis:
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SweepSet:
    index: int
    values: tuple[str, ...]  # one per axis, as written
    params: SignalParams


@dataclass(frozen=True, slots=True)
class SweepResult:
    set: SweepSet
    summary: tuple[RegimeStats, ...]  # event .. range, all

    def stats(self, group: str) -> RegimeStats:
        return next(s for s in self.summary if s.regime == group)


def parse_axes(specs: Sequence[str]) -> list[SweepAxis]:
    axes: list[SweepAxis] = []
    for spec in specs:
        key, sep, raw = spec.partition("=")
        key = key.strip()
        values = tuple(v.strip() for v in raw.split(",") if v.strip())
        if not sep or not key or not values:
            raise BacktestError(f"--sweep {spec!r}: expected key=v1,v2,... (e.g. trail_pct=0.5,1)")
        if any(a.key == key for a in axes):
            raise BacktestError(f"--sweep {key} is given twice")
        axes.append(SweepAxis(key, values))
    return axes


def grid(base: SignalParams, axes: Sequence[SweepAxis]) -> list[SweepSet]:
    """Every combination, validated (a bad key or value raises ParamsError now)."""
    sets = []
    for index, values in enumerate(itertools.product(*(a.values for a in axes))):
        overrides = {a.key: v for a, v in zip(axes, values, strict=True)}
        sets.append(SweepSet(index, tuple(values), with_overrides(base, overrides)))
    return sets


# --- the worker side --------------------------------------------------------------------

_DATA: tuple[SymbolData, ...] = ()
_EVENTS: EventCalendar | None = None
_RANGE: tuple[date | None, date | None] = (None, None)
_CACHE: OrderedDict[tuple[object, ...], list[BlockEvaluation | None]] = OrderedDict()
_CACHE_SIZE = 2


def init_worker(
    datas: Sequence[SymbolData],
    events: EventCalendar | None,
    first: date | None,
    last: date | None,
) -> None:
    global _DATA, _EVENTS, _RANGE
    _DATA, _EVENTS, _RANGE = tuple(datas), events, (first, last)
    _CACHE.clear()


def _evaluations(params: SignalParams) -> list[BlockEvaluation | None]:
    key = evaluation_key(params)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    evs = [evaluate(d, params, _EVENTS) if d.sessions else None for d in _DATA]
    _CACHE[key] = evs
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return evs


def run_set(sweep_set: SweepSet) -> SweepResult:
    params = sweep_set.params
    result = BacktestResult(params, [d.symbol for d in _DATA])
    for data, ev in zip(_DATA, _evaluations(params), strict=True):
        result.add(run_symbol(data, params, _EVENTS, *_RANGE, ev=ev))
    result.finish()
    return SweepResult(sweep_set, tuple(result.summary))


def run_sweep(
    datas: Sequence[SymbolData],
    sets: Sequence[SweepSet],
    events: EventCalendar | None = None,
    first: date | None = None,
    last: date | None = None,
    *,
    workers: int | None = None,
    on_done: Callable[[SweepResult], None] | None = None,
) -> list[SweepResult]:
    """Run every set; results in set order. `workers` defaults to the machine's cores."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(sets)))
    results: list[SweepResult] = []
    if workers == 1:
        init_worker(datas, events, first, last)
        for sweep_set in sets:
            results.append(run_set(sweep_set))
            if on_done is not None:
                on_done(results[-1])
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            workers, context, initializer=init_worker, initargs=(datas, events, first, last)
        ) as pool:
            futures = [pool.submit(run_set, s) for s in sets]
            for future in as_completed(futures):
                results.append(future.result())
                if on_done is not None:
                    on_done(results[-1])
    return sorted(results, key=lambda r: r.set.index)


def ranked(results: Sequence[SweepResult]) -> list[SweepResult]:
    """Best first: expectancy R of all trades, then more trades; sets without trades last."""

    def key(result: SweepResult) -> tuple[int, float, int]:
        stats = result.stats(ALL)
        if stats.expectancy_r is None:
            return (1, 0.0, 0)
        return (0, -float(stats.expectancy_r), -stats.n_trades)

    return sorted(results, key=key)


def sweep_columns(axes: Sequence[SweepAxis]) -> list[str]:
    columns = [a.key for a in axes]
    for group in GROUPS:
        columns += [name if group == ALL else f"{group}_{name}" for name in STATS]
    return columns


def sweep_row(result: SweepResult) -> list[str]:
    row = list(result.set.values)
    for group in GROUPS:
        stats = result.stats(group)
        row += [
            str(stats.n_trades),
            number_text(stats.win_rate),
            number_text(stats.expectancy_r),
            number_text(stats.max_drawdown_r),
        ]
    return row
