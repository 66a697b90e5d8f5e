"""The US equity session calendar the fake trades on (XNYS via exchange_calendars).

Phases of a session day, in New York time: `pre` 04:00 to the open, `rth` from the open
(09:30) to the close (16:00, 13:00 on half days), `post` from the close to 20:00 (17:00 on
half days), `closed` otherwise (nights, weekends, holidays).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
PRE_OPEN = time(4, 0)
POST_CLOSE = time(20, 0)

Phase = Literal["pre", "rth", "post", "closed"]


@functools.cache
def _xnys() -> Any:
    import exchange_calendars

    with warnings.catch_warnings():  # exchange_calendars vs pandas 3.1 deprecations
        warnings.simplefilter("ignore")
        return exchange_calendars.get_calendar("XNYS")


@dataclass(frozen=True)
class Session:
    day: date
    open: datetime  # aware UTC
    close: datetime  # aware UTC

    @property
    def pre_open(self) -> datetime:
        return datetime.combine(self.day, PRE_OPEN, NEW_YORK).astimezone(UTC)

    @property
    def post_close(self) -> datetime:
        regular = datetime.combine(self.day, POST_CLOSE, NEW_YORK).astimezone(UTC)
        return min(regular, self.close + timedelta(hours=4))

    def phase(self, moment: datetime) -> Phase:
        if self.open <= moment < self.close:
            return "rth"
        if self.pre_open <= moment < self.open:
            return "pre"
        if self.close <= moment < self.post_close:
            return "post"
        return "closed"


class SessionCalendar:
    """Sessions, phases and next open/close for an instant."""

    def session(self, day: date) -> Session | None:
        import pandas as pd

        cal = _xnys()
        label = pd.Timestamp(day)
        if not cal.is_session(label):
            return None
        open_, close = cal.session_open_close(label)
        return Session(day, open_.to_pydatetime(), close.to_pydatetime())

    def sessions(self, start: date, end: date) -> list[Session]:
        import pandas as pd

        cal = _xnys()
        first = max(pd.Timestamp(start), cal.first_session)
        last = min(pd.Timestamp(end), cal.last_session)
        if first > last:
            return []
        out: list[Session] = []
        for label in cal.sessions_in_range(first, last):
            open_, close = cal.session_open_close(label)
            out.append(Session(label.date(), open_.to_pydatetime(), close.to_pydatetime()))
        return out

    def session_at(self, moment: datetime) -> Session | None:
        """The session whose New York calendar day contains `moment`, if a trading day."""
        return self.session(moment.astimezone(NEW_YORK).date())

    def phase(self, moment: datetime) -> Phase:
        session = self.session_at(moment)
        return session.phase(moment) if session else "closed"

    def is_open(self, moment: datetime) -> bool:
        return self.phase(moment) == "rth"

    def next_session(self, moment: datetime, *, include_current: bool = True) -> Session:
        """The session whose close is still ahead of `moment` (with include_current), or
        the first session whose open is after `moment`."""
        day = moment.astimezone(NEW_YORK).date()
        for session in self.sessions(day, day + timedelta(days=15)):
            if include_current and session.close > moment:
                return session
            if session.open > moment:
                return session
        raise ValueError(f"no session after {moment.isoformat()}")

    def next_open(self, moment: datetime) -> datetime:
        return self.next_session(moment, include_current=False).open

    def next_close(self, moment: datetime) -> datetime:
        return self.next_session(moment, include_current=True).close

    def boundaries(self, start: datetime, end: datetime) -> list[tuple[datetime, str, Session]]:
        """Pre-market opens, opens, closes and extended closes in (start, end], in order."""
        first = start.astimezone(NEW_YORK).date() - timedelta(days=1)
        last = end.astimezone(NEW_YORK).date()
        marks: list[tuple[datetime, str, Session]] = []
        for session in self.sessions(first, last):
            for moment, kind in (
                (session.pre_open, "pre_open"),
                (session.open, "open"),
                (session.close, "close"),
                (session.post_close, "post_close"),
            ):
                if start < moment <= end:
                    marks.append((moment, kind, session))
        marks.sort(key=lambda mark: mark[0])
        return marks
