"""Crash-matrix subprocess: run a scripted session, get SIGKILLed at a labelled point,
then recover on the same files and report what the ledger and the broker say.

    python crash_runner.py run DIR          # CENTAUR_CRASH_AT=label[:n] selects the crash
    python crash_runner.py recover DIR      # restart on DIR, finish, write DIR/result.json

State lives only in files, as in production: DIR/ledger.db (SQLite ledger), DIR/sim.json
(SimBroker's book, persisted on every change), DIR/progress.json (how far the SCRIPT got:
which bars were delivered to the broker, whether the kill step was reached, the simulated
time). The engine itself keeps nothing else across the restart.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from brokers.sim import SimBroker  # noqa: E402
from core.book import read_book  # noqa: E402
from core.calendar import TradingCalendar, TradingSession  # noqa: E402
from core.clock import NEW_YORK, SimClock  # noqa: E402
from core.crashpoints import from_env  # noqa: E402
from core.engine import TradingEngine  # noqa: E402
from core.engine_context import EngineOptions  # noqa: E402
from core.ledger import Ledger, OrderRow  # noqa: E402
from core.marketdata.bar import Bar  # noqa: E402
from tests.kit.brokers import make_bar, sim_config  # noqa: E402
from tests.kit.engine import (  # noqa: E402
    file_ledger,
    protection_config,
    risk_config,
    sessions_config,
)

D = Decimal
DAY = date(2025, 3, 3)
START = datetime.combine(DAY, time(9, 50), tzinfo=NEW_YORK)
# (open, high, low, close) from 09:50; the second bar triggers the 101 stop-buy.
BARS = [
    ("100.00", "100.10", "99.90", "100.00"),
    ("100.50", "101.50", "100.40", "101.20"),
    ("101.20", "101.80", "101.10", "101.60"),
    ("101.60", "102.20", "101.50", "102.00"),
    ("102.00", "102.30", "101.80", "102.10"),
]


def calendar() -> TradingCalendar:
    """The week of the scripted day, by hand: the harness must not pay for importing
    exchange_calendars twice per case (the engine only needs these sessions)."""
    sessions = {}
    for offset in range(0, 12):
        day = DAY + timedelta(days=offset)
        if day.weekday() < 5:
            sessions[day] = TradingSession(
                day,
                datetime.combine(day, time(9, 30), tzinfo=NEW_YORK),
                datetime.combine(day, time(16, 0), tzinfo=NEW_YORK),
            )
    return TradingCalendar(sessions)


def bar(index: int) -> Bar:
    o, h, lo, c = BARS[index]
    return make_bar(START + timedelta(minutes=index), o, h, lo, c)


class Harness:
    def __init__(self, folder: Path, clock_at: datetime) -> None:
        self.folder = folder
        self.clock = SimClock(clock_at)
        self.cal = calendar()
        self.broker = SimBroker.open(
            folder / "sim.json", self.clock, config=sim_config(), calendar=self.cal
        )
        self.ledger: Ledger = file_ledger(folder / "ledger.db", self.clock)
        self.engine = TradingEngine(
            account="paper",
            broker=self.broker,
            ledger=self.ledger,
            clock=self.clock,
            risk=risk_config(),
            protection=protection_config(),
            sessions=sessions_config(stale_data_seconds=3600),
            calendar=self.cal,
            checkpoints=from_env(),
            options=EngineOptions(tick_seconds=1.0),
        )
        self.progress = self._read_progress()

    def _read_progress(self) -> dict[str, Any]:
        path = self.folder / "progress.json"
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        return {"bars_fed": 0, "kill_started": False}

    def save(self, **changes: Any) -> None:
        self.progress.update(changes, now=self.clock.now().isoformat())
        (self.folder / "progress.json").write_text(json.dumps(self.progress))

    async def feed(self, index: int) -> None:
        the_bar = bar(index)
        if self.clock.now() < the_bar.end:
            self.clock.set(the_bar.end)
        await self.broker.on_bar(the_bar)
        self.save(bars_fed=index + 1)  # the broker has it: never deliver it twice
        self.engine.note_bar(the_bar)
        await self.engine.idle()

    async def feed_rest(self) -> None:
        for index in range(self.progress["bars_fed"], len(BARS)):
            await self.feed(index)
            await self.engine.tick()


async def run(folder: Path) -> None:
    h = Harness(folder, START)
    h.save()
    await h.engine.start(background=False)
    await h.engine.day.answer(True, "crash harness")
    await h.feed(0)
    review = await h.engine.drafts.create_buy("AAPL", D("101"), D("99"), qty=D(50))
    await h.engine.drafts.confirm(review.draft_id)
    await h.engine.idle()
    await h.feed_rest()
    h.save(kill_started=True)
    await h.engine.kill.execute("crash harness")
    await h.engine.idle()
    await h.engine.stop()
    await h.broker.close()


async def recover(folder: Path) -> dict[str, Any]:
    progress = json.loads((folder / "progress.json").read_text())
    saved = json.loads((folder / "sim.json").read_text())["saved_at"]
    resume_at = max(datetime.fromisoformat(progress["now"]), datetime.fromisoformat(saved))
    h = Harness(folder, resume_at + timedelta(seconds=1))
    report = await h.engine.start(background=False)
    await h.engine.idle()
    # A human would confirm a draft that came back (its order never reached the broker).
    with h.ledger.unit_of_work(read_only=True) as uow:
        reopened = [d.id for d in uow.drafts.pending(h.engine.ctx.account.row_id)]
    for draft_id in reopened:
        await h.engine.drafts.confirm(draft_id)
        await h.engine.idle()
    await h.feed_rest()
    await h.engine.idle()
    cycle = await h.engine.reconciler.run("one more cycle")
    await h.engine.idle()
    result = await snapshot(h)
    result["start_report"] = {"in_sync": report.in_sync, "resolved": list(report.intents_resolved)}
    result["final_reconcile_in_sync"] = cycle.in_sync
    result["reopened_drafts"] = reopened
    result["kill_started"] = progress["kill_started"]
    await h.engine.stop()
    await h.broker.close()
    return result


async def snapshot(h: Harness) -> dict[str, Any]:
    broker_orders = await h.broker.list_orders(open_only=False, limit=10_000)
    positions = {p.symbol: str(p.qty) for p in await h.broker.positions()}
    open_sells: dict[str, Decimal] = {}
    for order in broker_orders:
        if order.side.value == "sell" and not order.status.is_terminal:
            open_sells[order.symbol] = open_sells.get(order.symbol, D(0)) + order.remaining_qty
    with h.ledger.unit_of_work(read_only=True) as uow:
        ledger_orders = [
            {
                "client_order_id": r.client_order_id,
                "broker_order_id": r.broker_order_id,
                "status": r.status.value,
                "filled_qty": str(r.filled_qty),
                "role": r.role.value,
                "draft_id": r.draft_id,
                "reject_reason": r.reject_reason,
            }
            for r in uow.session.scalars(select(OrderRow).order_by(OrderRow.id))
        ]
        holdings = read_book(uow, h.engine.ctx.account.row_id).holdings
    return {
        "broker_orders": [
            {
                "client_order_id": o.client_order_id,
                "broker_order_id": o.broker_order_id,
                "status": o.status.value,
                "filled_qty": str(o.filled_qty),
                "side": o.side.value,
                "qty": str(o.qty),
            }
            for o in broker_orders
        ],
        "ledger_orders": ledger_orders,
        "broker_positions": positions,
        "ledger_positions": {s: str(x.qty) for s, x in holdings.items()},
        "open_sells": {s: str(q) for s, q in open_sells.items()},
        "session_state": h.engine.day.state.value,
    }


def main(argv: list[str]) -> int:
    phase, folder = argv[1], Path(argv[2])
    if phase == "run":
        asyncio.run(run(folder))
        (folder / "completed").write_text("no crash point was reached")
        return 0
    if phase == "recover":
        result = asyncio.run(recover(folder))
        (folder / "result.json").write_text(json.dumps(result, indent=1))
        return 0
    print(f"usage: {argv[0]} run|recover DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
