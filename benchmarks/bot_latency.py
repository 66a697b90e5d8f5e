"""Bot latency: /status from update received to reply sent, with 10,000 orders in the ledger.

    uv run python benchmarks/bot_latency.py [N_REQUESTS]

The real python-telegram-bot Application polls the local Bot API emulator (loopback
HTTP), on top of a whole engine (SimBroker, file SQLite ledger, WAL). The ledger holds
10,000 historical orders (5,000 with fills) and today's protected AAPL position. Two
figures per request:
- in the bot: the update entering the Application -> the reply's sendMessage answered
  (access gate, audit row, core's status query, rendering, the HTTP call). Target: p95
  < 150 ms.
- round trip as the user sees it: the emulator receives the text -> the reply is in the
  chat (adds long-poll pickup and the client's own polling).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from loguru import logger  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import TypeHandler  # noqa: E402

from benchmarks.ledger_history import percentile, seed_round_trips  # noqa: E402
from bot.app import build_application, start_bot, stop_bot  # noqa: E402
from bot.context import CentaurContext  # noqa: E402
from bot.emulator import start_emulator  # noqa: E402
from bot.emulator.client import Message  # noqa: E402
from core.services import TradingServices  # noqa: E402
from core.settings import DEFAULT_CONFIG_DIR, load_settings  # noqa: E402
from tests.kit.engine import EngineKit, engine_kit  # noqa: E402

D = Decimal
HISTORY = 10_000


def seed_history(kit: EngineKit, count: int = HISTORY) -> None:
    base = kit.clock.now() - timedelta(days=30)
    seed_round_trips(
        kit.ledger, kit.engine.ctx.account.row_id, count, lambda i: base + timedelta(minutes=i)
    )


def _reply_after(message_id: int) -> Callable[[Message], bool]:
    return lambda m: m["message_id"] > message_id and "Working orders" in (m["text"] or "")


async def main(requests: int) -> None:
    logger.remove()  # the figures, not the logs
    emulator = await start_emulator()
    with tempfile.TemporaryDirectory() as tmp:
        kit = await engine_kit(Path(tmp))
        seed_history(kit)
        await kit.bar("100", "100.5", "99.5", "100.2")
        review = await kit.engine.drafts.create_buy("AAPL", D("100.51"), D("99.49"), qty=D(40))
        await kit.engine.drafts.confirm(review.draft_id)
        await kit.bar("100.3", "101", "100.2", "100.9")  # filled and protected
        services = TradingServices({"paper": kit.engine}, "paper")
        environ = {
            "TELEGRAM_BOT_TOKEN": emulator.token,
            "TELEGRAM_ALLOWED_USERS": str(emulator.user_id),
            "TELEGRAM_API_BASE_URL": emulator.api_base_url,
            "CENTAUR_DATA_DIR": tmp,
        }
        settings = load_settings(DEFAULT_CONFIG_DIR, env_file=None, environ=environ)
        app = build_application(services, settings, clock=kit.clock)
        received: dict[int, float] = {}
        in_bot: list[float] = []

        async def stamp_in(update: Update, _context: CentaurContext) -> None:
            received[update.update_id] = time.perf_counter()

        async def stamp_out(update: Update, _context: CentaurContext) -> None:
            # Groups run in order and the /status handler awaited its sendMessage.
            start = received.pop(update.update_id, None)
            if start is not None:
                in_bot.append(time.perf_counter() - start)

        app.add_handler(TypeHandler(Update, stamp_in), group=-2)
        app.add_handler(TypeHandler(Update, stamp_out), group=99)
        await start_bot(app, poll_timeout=10)
        round_trip: list[float] = []
        try:
            async with emulator.client() as user:
                for i in range(requests + 10):
                    start = time.perf_counter()
                    sent = await user.send("/status")
                    await user.wait_for(_reply_after(int(sent["message_id"])), timeout=10)
                    if i >= 10:  # warm-up excluded
                        round_trip.append(time.perf_counter() - start)
        finally:
            await stop_bot(app)
            await kit.engine.stop()
            await emulator.stop()
    bot = [x * 1000 for x in in_bot[10:]]
    rt = [x * 1000 for x in round_trip]
    print(f"/status with {HISTORY:,} orders in the ledger, {len(bot)} requests")
    print(
        f"  update received -> reply sent: p50 {percentile(bot, 0.5):.1f} ms, "
        f"p95 {percentile(bot, 0.95):.1f} ms, max {max(bot):.1f} ms (target p95 < 150 ms)"
    )
    print(
        f"  user round trip (emulator):    p50 {percentile(rt, 0.5):.1f} ms, "
        f"p95 {percentile(rt, 0.95):.1f} ms, mean {statistics.fmean(rt):.1f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
