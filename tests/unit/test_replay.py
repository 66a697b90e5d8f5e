"""Loading bar files (fast and slow paths, clear errors) and the clock-driven replay feed."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.clock import SimClock
from core.marketdata.errors import DataError
from core.marketdata.feed import BarFeed
from core.marketdata.loader import read_daily, read_intraday
from core.marketdata.replay import ReplayFeed
from core.marketdata.sessions import DailyBars, group_sessions, load_folder

HEADER = "timestamp,open,high,low,close,volume"
GOOD = [
    "2024-03-14T09:30:00-04:00,100.0000,100.5000,99.5000,100.2500,1000",
    "2024-03-14T09:31:00-04:00,100.2500,100.7500,100.1000,100.7000,800",
    "2024-03-14T09:32:00-04:00,100.7000,100.9000,100.6000,100.8000,600",
]


def _write(tmp_path: Path, lines: list[str], name: str = "TEST.csv", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_fast_and_slow_paths_agree(tmp_path: Path) -> None:
    fast = read_intraday(_write(tmp_path, GOOD))
    # A blank line sends the file down the line-by-line path (line numbers must stay true).
    slow = read_intraday(_write(tmp_path, [GOOD[0], "", *GOOD[1:]], "SLOW.csv"))
    for name in ("start_ns", "open", "high", "low", "close", "volume"):
        assert getattr(fast, name).tolist() == getattr(slow, name).tolist()
    assert fast.lines.tolist() == [2, 3, 4]
    assert slow.lines.tolist() == [2, 4, 5]
    assert fast.close.tolist() == [1_002_500, 1_007_000, 1_008_000]
    assert fast.symbol == "TEST"


def test_utc_offsets_other_than_new_york_are_the_same_instant(tmp_path: Path) -> None:
    utc = [GOOD[0].replace("2024-03-14T09:30:00-04:00", "2024-03-14T13:30:00Z")]
    assert (
        read_intraday(_write(tmp_path, utc)).start_ns[0]
        == read_intraday(_write(tmp_path, GOOD[:1], "NY.csv")).start_ns[0]
    )


@pytest.mark.parametrize(
    ("bad", "line", "words"),
    [
        ("2024-03-14T09:31:00-04:00,abc,100.75,100.10,100.70,800", 3, "not a number"),
        ("2024-03-14T09:31:00-04:00,100.25,100.75,100.10,100.70", 3, "expected 6 fields"),
        ("2024-03-14T09:31:00,100.25,100.75,100.10,100.70,800", 3, "no UTC offset"),
        ("2024-03-14T09:31:00-04:00,100.25001,100.75,100.10,100.70,800", 3, "at most 4 decimals"),
        ("2024-03-14T09:31:00-04:00,100.25,100.75,100.10,100.70,8.5", 3, "whole number"),
        ("2024-03-14T09:31:00-04:00,100.25,100.00,100.10,100.70,800", 3, "inconsistent"),
        ("2024-03-14T09:31:00-04:00,100.25,100.75,100.10,100.70,-1", 3, "negative volume"),
        ("2024-03-14T09:30:00-04:00,100.25,100.75,100.10,100.70,800", 3, "duplicate"),
        ("2024-03-14T09:29:00-04:00,100.25,100.75,100.10,100.70,800", 3, "out-of-order"),
        ("not-a-time,100.25,100.75,100.10,100.70,800", 3, "not ISO 8601"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, bad: str, line: int, words: str) -> None:
    path = _write(tmp_path, [GOOD[0], bad, GOOD[2]])
    with pytest.raises(DataError) as caught:
        read_intraday(path)
    assert caught.value.path == path
    assert caught.value.line == line
    assert words in str(caught.value)
    assert f"{path}, line {line}" in str(caught.value)


def test_a_daily_file_given_as_intraday_says_so(tmp_path: Path) -> None:
    path = _write(tmp_path, ["2024-03-14,1,2,1,1,5"], header="date,open,high,low,close,volume")
    with pytest.raises(DataError, match="looks like a daily file"):
        read_intraday(path)


def test_daily_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        ["2024-03-13,1.5,2,1,1.25,5", "2024-03-14,1.25,2.5,1,2,7"],
        header="date,open,high,low,close,volume",
    )
    daily = DailyBars.from_raw(read_daily(path))
    assert daily.day.tolist() == [date(2024, 3, 13).toordinal(), date(2024, 3, 14).toordinal()]
    assert daily.close.tolist() == [12_500, 20_000]
    bad = _write(
        tmp_path,
        ["2024-03-14,1,2,1,1,5", "2024-03-14,1,2,1,1,5"],
        "B.csv",
        "date,open,high,low,close,volume",
    )
    with pytest.raises(DataError, match="duplicate") as caught:
        read_daily(bad)
    assert caught.value.line == 3


def test_bars_outside_the_session_are_skipped_and_counted(tmp_path: Path) -> None:
    lines = [
        "2024-03-14T09:29:00-04:00,100,100,100,100,1",  # pre-market
        *GOOD,
        "2024-03-14T16:00:00-04:00,100,100,100,100,1",  # after the close
        "2024-03-16T10:00:00-04:00,100,100,100,100,1",  # Saturday
        "2024-11-29T12:59:00-05:00,100,100,100,100,1",  # half day: last bar
        "2024-11-29T13:00:00-05:00,100,100,100,100,1",  # after the half-day close
    ]
    series = group_sessions(read_intraday(_write(tmp_path, lines)))
    assert series.bar_ns == 60 * 10**9
    assert [s.day for s in series.sessions] == [date(2024, 3, 14), date(2024, 11, 29)]
    assert [len(s) for s in series.sessions] == [3, 1]
    assert series.skipped_outside == 4
    assert series.skipped_lines == [2, 6, 7, 9]


def test_parquet_with_the_same_columns(tmp_path: Path) -> None:
    csv_raw = read_intraday(_write(tmp_path, GOOD))
    table = pa.table(
        {
            "timestamp": pa.array(csv_raw.start_ns, pa.timestamp("ns", "America/New_York")),
            "open": csv_raw.open / 10_000,
            "high": csv_raw.high / 10_000,
            "low": csv_raw.low / 10_000,
            "close": csv_raw.close / 10_000,
            "volume": csv_raw.volume,
        }
    )
    pq.write_table(table, tmp_path / "PQ.parquet")
    raw = read_intraday(tmp_path / "PQ.parquet")
    assert raw.symbol == "PQ"
    for name in ("start_ns", "open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(raw, name), getattr(csv_raw, name))
    naive = table.set_column(0, "timestamp", pa.array(csv_raw.start_ns, pa.timestamp("ns")))
    pq.write_table(naive, tmp_path / "NAIVE.parquet")
    with pytest.raises(DataError, match="naive"):
        read_intraday(tmp_path / "NAIVE.parquet")


def test_folder_selection_and_errors(tmp_path: Path) -> None:
    _write(tmp_path, GOOD, "AAA.csv")
    _write(tmp_path, GOOD, "BBB.csv")
    (tmp_path / "README.md").write_text("not data")
    assert set(load_folder(tmp_path)) == {"AAA", "BBB"}
    assert set(load_folder(tmp_path, ["bbb"])) == {"BBB"}
    with pytest.raises(DataError, match="no file for symbol"):
        load_folder(tmp_path, ["ZZZ"])
    with pytest.raises(DataError, match="not a folder"):
        load_folder(tmp_path / "README.md")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no bar files"):
        load_folder(empty)


async def test_replay_emits_each_bar_when_the_clock_reaches_its_end(tmp_path: Path) -> None:
    _write(tmp_path, GOOD, "AAA.csv")
    _write(tmp_path, GOOD[1:], "BBB.csv")
    clock = SimClock(_open())
    feed = ReplayFeed.from_folder(tmp_path, clock)
    assert isinstance(feed, BarFeed)
    assert feed.symbols == frozenset({"AAA", "BBB"})
    runner = asyncio.create_task(clock.run(None))
    seen = []
    try:
        async for bar in feed:
            assert clock.now() == bar.end
            seen.append((bar.symbol, bar.start.strftime("%H:%M")))
    finally:
        runner.cancel()
    assert seen == [
        ("AAA", "09:30"),
        ("AAA", "09:31"),
        ("BBB", "09:31"),
        ("AAA", "09:32"),
        ("BBB", "09:32"),
    ]
    assert len(feed) == 5


def _open():  # type: ignore[no-untyped-def]
    from core.calendar import xnys

    return xnys().require_session(date(2024, 3, 14)).open - timedelta(minutes=1)


async def test_replay_at_speed_waits_in_clock_time(tmp_path: Path) -> None:
    _write(tmp_path, GOOD[:2], "AAA.csv")
    clock = SimClock(_open())
    feed = ReplayFeed.from_folder(tmp_path, clock)
    bars = aiter(feed)
    first = asyncio.ensure_future(anext(bars))
    await asyncio.sleep(0)
    assert not first.done()  # 09:29: the 09:30 bar is not closed yet
    clock.advance(timedelta(minutes=1, seconds=59))
    await asyncio.sleep(0)
    assert not first.done()
    clock.advance(timedelta(seconds=1))  # 09:31:00 = the first bar's end
    bar = await first
    assert bar.start.strftime("%H:%M") == "09:30"
