"""BarRecorder: every closed live bar, written in the `../shared/data` intraday format.

`<root>/<New York date>/<SYMBOL>.csv`, columns `timestamp,open,high,low,close,volume`,
the timestamp being the bar START with the New York offset, prices on the 4-decimal grid:
exactly what `core.marketdata` replays, so a live day can be replayed as it was seen.

Only regular-session bars are written (the format's rule: `09:30 <= start` and
`start + size <= close`). A restart mid-day appends to the day's file after the last bar
already in it; a bar at or before that one is skipped, because the loader refuses a file
whose timestamps do not strictly increase.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from loguru import logger

from core.calendar import TradingCalendar
from core.clock import NEW_YORK
from core.marketdata.bar import Bar

HEADER = "timestamp,open,high,low,close,volume\n"
_GRID = "{:.4f}"


def csv_line(bar: Bar) -> str:
    stamp = bar.start.astimezone(NEW_YORK).isoformat()
    prices = (_GRID.format(p) for p in (bar.open, bar.high, bar.low, bar.close))
    return f"{stamp},{','.join(prices)},{bar.volume}\n"


class BarRecorder:
    def __init__(self, root: Path, calendar: TradingCalendar) -> None:
        self.root = Path(root)
        self._calendar = calendar
        self._last: dict[Path, datetime | None] = {}
        self.written = 0

    def path_for(self, bar: Bar) -> Path:
        day = bar.start.astimezone(NEW_YORK).date()
        return self.root / day.isoformat() / f"{bar.symbol}.csv"

    def in_session(self, bar: Bar) -> bool:
        local = bar.start.astimezone(NEW_YORK)
        session = self._calendar.session(local.date())
        return session is not None and session.open <= bar.start and bar.end <= session.close

    def record(self, bar: Bar) -> bool:
        """Append `bar`; False when it is outside the session or not after the last one."""
        if not self.in_session(bar):
            return False
        path = self.path_for(bar)
        if path not in self._last:
            self._last[path] = self._last_start(path)
        last = self._last[path]
        if last is not None and bar.start <= last:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        new_file = not path.exists() or path.stat().st_size == 0
        with path.open("a", encoding="utf-8", newline="") as out:
            if new_file:
                out.write(HEADER)
            out.write(csv_line(bar))
        self._last[path] = bar.start
        self.written += 1
        return True

    @staticmethod
    def _last_start(path: Path) -> datetime | None:
        if not path.exists():
            return None
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(lines) < 2:
            return None
        try:
            return datetime.fromisoformat(lines[-1].split(",", 1)[0])
        except ValueError:
            logger.error("bar recorder: unreadable last line in {}; not appending", path)
            return datetime.max.replace(tzinfo=NEW_YORK)


__all__ = ["HEADER", "BarRecorder", "csv_line"]
