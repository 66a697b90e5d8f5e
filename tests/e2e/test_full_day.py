"""A whole replayed session end to end: scheduler, bot (emulator), core and SimBroker on a
SimClock driven step by step, checked through the chat transcript like a person would.

The day (the demo's synthetic trend day): 09:00 brief, 09:45 snapshot and [Allow], the
regime changes, the signal -> [Draft it] -> [Confirm], the fill and its trailing stop,
the 15:55 flatten of the still-open position (a wide trail keeps it open), the 16:10
report with its chart photo, then /report re-sends it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

from app.demo import DemoOptions, open_demo
from app.demo_script import both, button, has
from bot.emulator.client import Message
from core.clock import NEW_YORK
from core.events import AllowPrompt, ProtectionPlaced, ReportReady, SignalRaised
from core.settings import Settings

DAY = date(2024, 3, 14)  # the trend_up_pullback scenario's day


def at(hh: int, mm: int) -> datetime:
    return datetime.combine(DAY, time(hh, mm), tzinfo=NEW_YORK)


def wide_trail(settings: Settings) -> Settings:
    protection = settings.protection.model_copy(update={"trail_overrides": {"DEMO": Decimal(5)}})
    return replace(settings, protection=protection)


def first(messages: list[Message], predicate: Callable[[Message], bool], what: str) -> int:
    for i, m in enumerate(messages):
        if m["from"] == "bot" and not m["deleted"] and predicate(m):
            return i
    raise AssertionError(f"no {what} in the transcript")


async def test_a_replayed_day_pushes_everything_in_order(tmp_path: Path) -> None:
    rig = await open_demo(
        DemoOptions(headless=True, start=time(9, 20), workdir=tmp_path), settings_hook=wide_trail
    )
    driver, log = rig.driver, rig.log
    try:
        async with rig.emulator.client() as user:
            await driver.run_until(lambda: log.seen(AllowPrompt), deadline=at(9, 46))
            prompt = await user.wait_for(has("Allow trading today?"))
            await user.press_button("Allow", message_id=prompt["message_id"])
            await user.wait_for(has("Trading allowed"))

            await driver.run_until(lambda: log.seen(SignalRaised), deadline=at(12, 0))
            alert = await user.wait_for(has("📈 Signal DEMO"))
            await user.press_button("Draft it", message_id=alert["message_id"])
            card = await user.wait_for(has("📝 Draft #1"))
            await user.press_button("Confirm", message_id=card["message_id"])
            await user.wait_for(both("📝 Draft #1", "placed"))

            await driver.run_until(lambda: log.seen(ProtectionPlaced), deadline=at(12, 0))
            await driver.run_until(lambda: log.seen(ReportReady), deadline=at(16, 30))
            await user.wait_for(lambda m: m["photo"] is not None)
            messages = await user.transcript()

            order = [
                first(messages, has("☀️ Brief 2024-03-14"), "brief"),
                first(messages, has("DEMO: forming"), "first regime"),
                first(messages, has("Regime snapshot 09:45"), "allow prompt"),
                first(messages, has("DEMO: trend up (was forming)"), "regime change"),
                first(messages, has("📈 Signal DEMO"), "signal"),
                first(messages, has("📝 Draft #1"), "draft card"),
                first(messages, has("🛡 DEMO"), "protection alert"),
                first(messages, has("flatten_time due at 15:55"), "15:55 DONE"),
                first(messages, has("· flattened"), "flatten fill"),
                first(messages, has("📊 Day report 2024-03-14"), "report"),
                first(messages, lambda m: m["photo"] is not None, "chart photo"),
            ]
            assert order == sorted(order), order
            snapshot = messages[order[2]]["text"]
            assert "✅ DEMO: tradable" in snapshot and "Trading allowed" in snapshot
            card_text = messages[order[5]]["text"]
            lines = ["placed", "accepted at the broker", "filled", "protected: trailing stop"]
            positions = [card_text.index(line) for line in lines]
            assert positions == sorted(positions), card_text
            report = messages[order[9]]["text"]
            assert "P&L" in report and "R ·" in report and "fill vs trigger" in report
            assert "ledger and broker agree" in report and "DEMO: trend up" in report
            photo = messages[order[10]]
            assert photo["caption"].startswith("DEMO 2024-03-14 · 1 trade(s)")

            stored = tmp_path / "reports" / DAY.isoformat()
            names = {p.name for p in stored.iterdir()}
            assert {"brief.json", "brief.md", "report.json", "report.md", "DEMO.png"} <= names
            assert await rig.runtime.active.ctx.broker.positions() == []

            # /report re-sends the same text and chart; an unknown day says so.
            await user.send("/report 2024-03-14")
            again = await user.wait_for(
                lambda m: (
                    m["message_id"] > messages[-1]["message_id"]
                    and "📊 Day report 2024-03-14" in (m["text"] or "")
                )
            )
            assert again["text"] == report
            await user.wait_for(
                lambda m: m["message_id"] > again["message_id"] and m["photo"] is not None
            )
            await user.send("/report 2024-03-13")
            await user.wait_for(has("No day report for 2024-03-13"))
        assert button("Allow")(prompt)
    finally:
        await rig.close()
