"""Protection latency and restart time of the trading engine (SimBroker in process).

    uv run python benchmarks/protect_latency.py [N_FILLS]

1. Fill -> protection submitted: N entries are confirmed and filled one after the other;
   for each, the time from the fill event entering the engine to the trailing stop's
   `submit` call at the broker (ledger writes included: file SQLite, WAL, synchronous=FULL).
   Target: p99 < 5 ms.
2. Restart -> reconciled: a ledger holding 10,000 historical orders (5,000 with fills) and
   200 open orders working at the broker; a new engine's `start()` (restore the day,
   reconcile everything, protect) is timed. Target: < 3 s.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.ledger_history import percentile, seed_round_trips  # noqa: E402
from brokers.sim import SimBroker  # noqa: E402
from core.broker import BrokerEvent  # noqa: E402
from core.clock import SimClock  # noqa: E402
from core.domain import (  # noqa: E402
    ClientOrderId,
    OrderRequest,
    OrderRole,
    OrderType,
    Side,
    Symbol,
)
from core.engine import TradingEngine  # noqa: E402
from tests.kit.brokers import make_bar, ny, sim_config  # noqa: E402
from tests.kit.engine import (  # noqa: E402
    file_ledger,
    protection_config,
    risk_config,
    sessions_config,
)

D = Decimal
SECOND = timedelta(seconds=1)
RISK = risk_config(
    max_trades_per_day=100_000,
    max_position_usd=D(10**9),
    max_position_pct=D(100),
    max_daily_loss_usd=D(10**9),
    max_daily_loss_r=D(10**6),
)


def build(folder: Path, clock: SimClock, broker: SimBroker | None = None) -> TradingEngine:
    broker = broker or SimBroker(clock, config=sim_config(initial_cash=D(10**9)))
    return TradingEngine(
        account="bench",
        broker=broker,
        ledger=file_ledger(folder / "ledger.db", clock),
        clock=clock,
        risk=RISK,
        protection=protection_config(),
        sessions=sessions_config(stale_data_seconds=3600),
    )


async def fill_to_protection(n: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        clock = SimClock(ny(9, 50))
        engine = build(Path(tmp), clock)
        broker = engine.ctx.broker
        assert isinstance(broker, SimBroker)
        await engine.start(background=False)
        await engine.day.answer(True, "bench")
        fill_seen: dict[str, float] = {}
        latencies: list[float] = []
        handle = engine.handle_event
        submit = broker.submit

        async def timed_handle(event: BrokerEvent) -> None:
            if event.fill is not None:
                fill_seen[event.order.symbol] = time.perf_counter()
            await handle(event)

        async def timed_submit(request: OrderRequest) -> Any:
            if request.order_type is OrderType.TRAILING_STOP and request.symbol in fill_seen:
                latencies.append(time.perf_counter() - fill_seen.pop(request.symbol))
            return await submit(request)

        engine.handle_event = timed_handle  # type: ignore[method-assign]
        broker.submit = timed_submit  # type: ignore[method-assign]
        for i in range(n):
            symbol = Symbol(f"S{i}")
            # One-second bars, so that a long run stays inside the trading window.
            warm = make_bar(
                clock.now() - SECOND, "100", "100", "100", "100", symbol=symbol, size=SECOND
            )
            await broker.on_bar(warm)
            review = await engine.drafts.create_buy(symbol, D("101"), D("99"), qty=D(10))
            result = await engine.drafts.confirm(review.draft_id)
            assert result.ok, result
            bar = make_bar(
                clock.now(), "100.5", "101.5", "100.4", "101.2", symbol=symbol, size=SECOND
            )
            clock.set(bar.end)
            await broker.on_bar(bar)
            engine.note_bar(bar)
            await engine.idle()
        await engine.stop()
        assert len(latencies) == n, f"{len(latencies)} protections for {n} fills"
        return latencies


async def restart_time(history: int = 10_000, open_orders: int = 200) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        clock = SimClock(ny(9, 50))
        engine = build(Path(tmp), clock)
        broker = engine.ctx.broker
        assert isinstance(broker, SimBroker)
        account_id = engine.ctx.account.row_id
        yesterday = ny(10, day=(2025, 2, 28))
        seed_round_trips(engine.ctx.ledger, account_id, history, lambda _i: yesterday)
        await engine.start(background=False)
        for i in range(open_orders):
            symbol = Symbol(f"O{i % 20}")
            request = OrderRequest(
                ClientOrderId(f"open-{i}"),
                symbol,
                Side.BUY,
                D(1),
                OrderType.STOP,
                stop_price=D("150"),
            )
            intent = engine.tracker.record_intent(request, OrderRole.ENTRY)
            await engine.placer.send(intent, request)
        await engine.stop()
        restarted = build(Path(tmp), clock, broker)
        began = time.perf_counter()
        report = await restarted.start(background=False)
        elapsed = time.perf_counter() - began
        await restarted.stop()
        assert report.in_sync, report
        assert len(restarted.book.live_orders()) == open_orders
        return elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    latencies = [x * 1000 for x in asyncio.run(fill_to_protection(n))]
    print(f"fill -> protection submitted ({n} fills, file SQLite ledger):")
    print(
        f"  p50 {statistics.median(latencies):.2f} ms   p99 {percentile(latencies, 0.99):.2f} ms   "
        f"max {max(latencies):.2f} ms   (target p99 < 5 ms)"
    )
    seconds = asyncio.run(restart_time())
    print("restart -> reconciled (10,000 historical orders, 200 open):")
    print(f"  {seconds:.2f} s   (target < 3 s)")


if __name__ == "__main__":
    main()
