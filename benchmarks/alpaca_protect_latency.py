"""Fill -> protection latency through the real alpaca-py SDK, against the local fake Alpaca.

    uv run python benchmarks/alpaca_protect_latency.py [N_FILLS]

A TradingEngine (file SQLite ledger) runs on AlpacaBroker, whose REST calls go through
alpaca-py to the fake Alpaca on 127.0.0.1 and whose trade_updates arrive over the fake's
websocket. For each of N entries (one symbol each, so fills never interact) the stop-buy
is triggered by a price tick at the fake, and the time is taken AT THE FAKE:
- fill emitted -> protection order created (the fake took the POST: `pending_new`);
- fill emitted -> protection acknowledged (`new`): the number the target is about,
  p99 < 100 ms on loopback;
- fill emitted -> the engine verified it (ProtectionPlaced published; informational).
Also counted at the fake: the HTTP requests it received between the fill and the moment
everything settled after the protection was verified (requests per protected fill).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Hashable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from loguru import logger  # noqa: E402

from brokers.alpaca import AlpacaBroker  # noqa: E402
from core.calendar import xnys  # noqa: E402
from core.clock import SimClock  # noqa: E402
from core.engine import TradingEngine  # noqa: E402
from core.engine_context import EngineOptions  # noqa: E402
from core.events import EventBus, ProtectionPlaced  # noqa: E402
from tests.fakes.alpaca import (  # noqa: E402
    AccountConfig,
    TradeEventRecord,
    start_fake_alpaca,
)
from tests.integration.broker_harness import count_requests, quiesce  # noqa: E402
from tests.integration.test_alpaca_adapter_support import ACCOUNT, FAST, env_for  # noqa: E402
from tests.kit.engine import (  # noqa: E402
    file_ledger,
    protection_config,
    risk_config,
    sessions_config,
)

D = Decimal
T0 = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)  # Monday 10:00 New York
WARMUP = 5
RISK = risk_config(
    max_trades_per_day=100_000,
    max_position_usd=D(10**9),
    max_position_pct=D(100),
    max_daily_loss_usd=D(10**9),
    max_daily_loss_r=D(10**6),
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Stamps:
    """perf_counter at the fake's emission of each trade event we care about."""

    def __init__(self) -> None:
        self.fill: dict[str, float] = {}  # symbol -> entry filled
        self.created: dict[str, float] = {}  # symbol -> protection pending_new
        self.acked: dict[str, float] = {}  # symbol -> protection new
        self.placed: dict[str, float] = {}  # symbol -> ProtectionPlaced published

    def on_trade_event(self, record: TradeEventRecord) -> None:
        order = record.order
        symbol, side = str(order["symbol"]), order["side"]
        now = time.perf_counter()
        if record.event == "fill" and side == "buy":
            self.fill[symbol] = now
        elif record.event == "pending_new" and side == "sell":
            self.created.setdefault(symbol, now)
        elif record.event == "new" and side == "sell":
            self.acked.setdefault(symbol, now)


async def run(n: int) -> tuple[Stamps, list[int], list[str]]:
    fake = await start_fake_alpaca(now=T0, rate_limit=None, account=AccountConfig(cash=D(10**9)))
    count_requests(fake)
    stamps = Stamps()
    fake.engine.listeners.append(stamps.on_trade_event)
    clock = SimClock(T0)
    broker = AlpacaBroker.for_account(
        ACCOUNT,
        env_for(fake),
        clock,
        chat_confirmed=False,
        url_override=fake.base_url,
        calendar=xnys(),
        policy=FAST,
    )
    await broker.start(wait=5.0)
    requests: list[int] = []
    symbols: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        bus = EventBus()
        placed: dict[str, asyncio.Event] = {}

        def on_placed(event: ProtectionPlaced) -> None:
            stamps.placed.setdefault(event.symbol, time.perf_counter())
            placed.setdefault(event.symbol, asyncio.Event()).set()

        bus.subscribe(on_placed, ProtectionPlaced)
        engine = TradingEngine(
            account="bench",
            broker=broker,
            ledger=file_ledger(Path(tmp) / "ledger.db", clock),
            clock=clock,
            risk=RISK,
            protection=protection_config(),
            sessions=sessions_config(stale_data_seconds=3600),
            bus=bus,
            options=EngineOptions(tick_seconds=1.0),
        )
        await engine.start(background=False)
        await engine.day.answer(True, "bench")

        def hits() -> Hashable:
            return len(fake.faults._hits)

        for i in range(n + WARMUP):
            symbol = f"S{i:04d}"
            fake.market.set_price(symbol, "100")
            review = await engine.drafts.create_buy(symbol, D("101"), D("99"), qty=D(10))
            result = await engine.drafts.confirm(review.draft_id)
            assert result.ok, result
            await quiesce(hits, step=0.002, calm=3)  # the entry is acked, nothing in flight
            before = len(fake.faults._hits)
            fake.market.set_price(symbol, "101.20")  # the stop triggers: filled, emitted
            await asyncio.wait_for(placed.setdefault(symbol, asyncio.Event()).wait(), 5)
            await quiesce(hits, step=0.002, calm=3)
            if i >= WARMUP:
                requests.append(len(fake.faults._hits) - before)
                symbols.append(symbol)
        await engine.stop()
    await broker.close()
    await fake.stop()
    return stamps, requests, symbols


def report(label: str, values: list[float], target: str = "") -> None:
    print(
        f"  {label}: p50 {statistics.median(values):.2f} ms   p99 {pct(values, 99):.2f} ms   "
        f"max {max(values):.2f} ms{target}"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    stamps, requests, symbols = asyncio.run(run(n))

    def ms(end: dict[str, float]) -> list[float]:
        return [(end[s] - stamps.fill[s]) * 1000 for s in symbols]

    print(f"fill -> protection over alpaca-py and the fake Alpaca on loopback ({n} fills):")
    report("fill -> protection created (POST taken)", ms(stamps.created))
    report(
        "fill -> protection accepted (`new`)",
        ms(stamps.acked),
        "   (target p99 < 100 ms)",
    )
    report("fill -> protection verified by the engine", ms(stamps.placed))
    per_fill = statistics.mean(requests)
    print(
        f"  HTTP requests per protected fill (at the fake): mean {per_fill:.2f}, "
        f"min {min(requests)}, max {max(requests)}"
    )


if __name__ == "__main__":
    main()
