"""`centaur demo --headless`: a scripted user plays the demo day through the chat.

The script owns the replay clock (app.clock_driver): it runs simulated time until
something is published ("the signal alert"), holds time while the user reads the chat and
taps, then lets time run again. Every check reads the chat transcript (what a person
would see), never core's state:

1. 09:00 brief; 09:45 regime snapshot with "Allow trading today?" -> [Allow];
2. the signal alert -> [Draft it] -> the draft card -> [Confirm];
3. the fill on the card and the protection alert (trailing stop accepted);
4. /kill -> [Flatten everything] -> [Yes, flatten now] -> "all flat" (verified);
5. the 15:55 flatten (nothing left: the session goes DONE), the 16:10 report and its chart.

`run_script` returns the transcript; a step that does not happen raises `ScriptFailed`
naming the step and what was expected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from app.clock_driver import ClockDriver, DriverTimeout
from app.probes import EventLog
from bot.emulator import EmulatorClient, EmulatorError
from bot.emulator.client import Message
from core.clock import NEW_YORK
from core.events import (
    AllowPrompt,
    BriefReady,
    KillCompleted,
    ProtectionPlaced,
    ReportReady,
    SignalRaised,
)

REPLY_SECONDS = 15.0  # real seconds the bot has to answer a tap while time holds


class ScriptFailed(RuntimeError):
    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"step '{step}' failed: {detail}")
        self.step = step


@dataclass
class ScriptResult:
    transcript: list[Message]
    steps: list[str] = field(default_factory=list)


def has(fragment: str) -> Callable[[Message], bool]:
    return lambda m: fragment in (m["text"] or "") or fragment in (m["caption"] or "")


def both(a: str, b: str) -> Callable[[Message], bool]:
    return lambda m: a in (m["text"] or "") and b in (m["text"] or "")


def button(label: str) -> Callable[[Message], bool]:
    return lambda m: any(label in b["text"] for row in m["keyboard"] for b in row)


class Script:
    def __init__(self, driver: ClockDriver, user: EmulatorClient, log: EventLog, day: date) -> None:
        self.driver, self.user, self.log, self.day = driver, user, log, day
        self.steps: list[str] = []

    def at(self, hh: int, mm: int) -> datetime:
        return datetime.combine(self.day, time(hh, mm), tzinfo=NEW_YORK)

    async def until(self, step: str, kind: type[Any], by: datetime) -> None:
        try:
            await self.driver.run_until(lambda: self.log.seen(kind), deadline=by, what=step)
        except DriverTimeout as exc:
            raise ScriptFailed(step, str(exc)) from None

    async def see(self, step: str, predicate: Callable[[Message], bool], what: str) -> Message:
        try:
            return await self.user.wait_for(predicate, timeout=REPLY_SECONDS)
        except TimeoutError:
            raise ScriptFailed(step, f"the chat never showed {what}") from None

    async def tap(self, step: str, label: str, message_id: int | None = None) -> None:
        try:
            await self.user.press_button(label, message_id=message_id)
        except EmulatorError as exc:
            raise ScriptFailed(step, f"no [{label}] button to tap ({exc})") from None

    def done(self, step: str) -> None:
        self.steps.append(step)

    async def run(self) -> None:
        await self.until("brief", BriefReady, self.at(9, 40))
        await self.see("brief", has("Brief"), "the pre-market brief")
        self.done("brief")

        await self.until("allow prompt", AllowPrompt, self.at(9, 50))
        prompt = await self.see("allow prompt", has("Allow trading today?"), "the prompt")
        await self.tap("allow", "Allow", prompt["message_id"])
        await self.see("allow", has("Trading allowed"), "the answer 'Trading allowed'")
        self.done("allow")

        await self.until("signal", SignalRaised, self.at(12, 0))
        alert = await self.see("signal", has("Signal "), "the signal alert")
        await self.tap("draft", "Draft it", alert["message_id"])
        card = await self.see("draft", has("📝 Draft #"), "the draft card")
        await self.tap("confirm", "Confirm", card["message_id"])
        await self.see("confirm", has("placed"), "the confirmed draft ('placed')")
        self.done("signal -> draft -> confirm")

        await self.until("fill and protection", ProtectionPlaced, self.at(13, 0))
        await self.see("fill", both("📝 Draft #", "filled"), "the fill on the draft card")
        await self.see("protection", has("trailing stop"), "the protection alert")
        self.done("fill and protection")

        await self.user.send("/kill")
        preview = await self.see("kill", button("Flatten everything"), "the /kill preview")
        await self.tap("kill", "Flatten everything", preview["message_id"])
        second = await self.see("kill", button("Yes, flatten now"), "the second confirmation")
        await self.tap("kill", "Yes, flatten now", second["message_id"])
        await self.until("kill", KillCompleted, self.at(15, 0))
        await self.see("kill", has("all flat"), "the verified kill report")
        self.done("kill (two confirmations, all flat)")

        await self.until("report", ReportReady, self.at(17, 0))
        await self.see("flatten", has("flatten_time due"), "the 15:55 flatten (session DONE)")
        await self.see("report", has("Day report"), "the day report")
        await self.see("report", lambda m: m["photo"] is not None, "the report's chart photo")
        self.done("flatten, report and chart")


async def run_script(
    driver: ClockDriver, user: EmulatorClient, log: EventLog, day: date
) -> ScriptResult:
    script = Script(driver, user, log, day)
    try:
        await script.run()
    finally:
        transcript = await user.transcript()
    return ScriptResult(transcript, script.steps)


def format_transcript(messages: list[Message]) -> list[str]:
    """One block per message: time, who, text (or caption), photo and buttons."""
    lines: list[str] = []
    for m in messages:
        if m["deleted"]:
            continue
        stamp = datetime.fromtimestamp(m["date"], NEW_YORK).strftime("%H:%M")
        who = "bot " if m["from"] == "bot" else "you "
        body = m["text"] or m["caption"] or ""
        if m["photo"] is not None:
            body = f"[photo {m['photo']['width']}x{m['photo']['height']}] {body}"
        buttons = [b["text"] for row in m["keyboard"] for b in row]
        first, *rest = (body or "(empty)").splitlines() or [""]
        lines.append(f"{stamp} {who}│ {first}")
        lines += [f"           │ {line}" for line in rest]
        if buttons:
            lines.append(f"           │ [{'] ['.join(buttons)}]")
    return lines


__all__ = ["ScriptFailed", "ScriptResult", "format_transcript", "run_script"]
