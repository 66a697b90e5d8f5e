"""The notifier against a scripted Bot: order, once, retries, levels, parts, restarts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.access import AccessPolicy
from bot.context import BotData, Deps
from bot.emulator.testing import make_png
from bot.handlers.cards import CardDesk
from bot.notifier import Notifier
from core.audit import AuditLog
from core.clock import SimClock
from core.config_models import NotificationLevel
from core.events import SessionStateChanged
from core.ledger import Ledger, NotificationRow, NotificationStatus
from core.notifications import NotificationService
from core.session import SessionState, SessionTrigger
from core.settings import DEFAULT_CONFIG_DIR, load_settings
from tests.kit.engine import file_ledger

CHAT = 100001
T0 = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)


@dataclass
class Sent:
    chat_id: int
    text: str
    silent: bool
    keyboard: Any


@dataclass
class FakeBot:
    sent: list[Sent] = field(default_factory=list)
    failures: list[BaseException | None] = field(default_factory=list)  # per send, in order
    next_id: int = 1

    def _maybe_fail(self) -> None:
        if self.failures:
            error = self.failures.pop(0)
            if error is not None:
                raise error

    async def send_message(self, chat_id: int, text: str, **kw: Any) -> Any:
        self._maybe_fail()
        if kw.get("parse_mode") == "HTML" and "<broken" in text:
            raise BadRequest("Can't parse entities: unsupported start tag")
        self.sent.append(
            Sent(chat_id, text, bool(kw.get("disable_notification")), kw.get("reply_markup"))
        )
        self.next_id += 1
        return type("M", (), {"message_id": self.next_id})()

    async def edit_message_text(self, text: str, **kw: Any) -> Any:
        return True

    async def send_photo(self, chat_id: int, photo: Any, **kw: Any) -> Any:
        self._maybe_fail()
        assert photo.read(8) == b"\x89PNG\r\n\x1a\n"
        caption = kw.get("caption") or ""
        self.sent.append(Sent(chat_id, f"[photo] {caption}", False, kw.get("reply_markup")))
        self.next_id += 1
        return type("M", (), {"message_id": self.next_id})()


@dataclass
class Rig:
    clock: SimClock
    ledger: Ledger
    service: NotificationService
    bot: FakeBot
    data: BotData
    notifier: Notifier

    def statuses(self) -> list[NotificationStatus]:
        with self.ledger.unit_of_work(read_only=True) as uow:
            rows = uow.session.query(NotificationRow).order_by(NotificationRow.id).all()
            return [r.status for r in rows]

    def restart(self) -> Rig:
        service = NotificationService(self.ledger, self.clock)
        return make(self.clock, self.ledger, service, FakeBot())


def make(clock: SimClock, ledger: Ledger, service: NotificationService, bot: FakeBot) -> Rig:
    settings = load_settings(
        DEFAULT_CONFIG_DIR, env_file=None, environ={"TELEGRAM_BOT_TOKEN": "1:x"}
    )
    deps = Deps(cast(Any, None), settings, clock, service, AuditLog(ledger), AccessPolicy([CHAT]))
    data = BotData()
    data.configure(deps, CardDesk(cast(Any, bot), service))
    return Rig(clock, ledger, service, bot, data, Notifier(cast(Any, bot), deps, data))


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    clock = SimClock(T0)
    ledger = file_ledger(tmp_path / "ledger.db", clock)
    return make(clock, ledger, NotificationService(ledger, clock), FakeBot())


async def test_in_order_and_only_once(rig: Rig) -> None:
    for i in range(5):
        rig.service.enqueue_text("system", f"alert {i}")
    assert await rig.notifier.drain() == 5
    assert await rig.notifier.drain() == 0
    assert [s.text for s in rig.bot.sent] == [f"alert {i}" for i in range(5)]
    assert rig.statuses() == [NotificationStatus.SENT] * 5


@pytest.mark.filterwarnings("ignore:.*retry_after.*")
async def test_flood_control_holds_the_queue_in_order(rig: Rig) -> None:
    for i in range(3):
        rig.service.enqueue_text("system", f"alert {i}")
    rig.bot.failures = [None, RetryAfter(30)]
    await rig.notifier.drain()
    assert [s.text for s in rig.bot.sent] == ["alert 0"]
    assert rig.service.next_due() == []  # alert 1 is held, alert 2 waits behind it
    assert rig.service.next_retry_at() == T0 + timedelta(seconds=30)
    rig.clock.advance(31)
    await rig.notifier.drain()
    assert [s.text for s in rig.bot.sent] == ["alert 0", "alert 1", "alert 2"]


async def test_network_errors_back_off_and_survive_a_restart(rig: Rig) -> None:
    rig.service.enqueue_text("system", "important")
    rig.bot.failures = [TimedOut(), NetworkError("reset")]
    await rig.notifier.drain()
    first = rig.service.next_retry_at()
    assert first == T0 + timedelta(seconds=1)
    rig.clock.advance(2)
    await rig.notifier.drain()
    assert rig.service.next_retry_at() == rig.clock.now() + timedelta(seconds=2)  # doubled
    again = rig.restart()  # the process died: the row is still pending
    again.clock.advance(3)
    await again.notifier.drain()
    assert [s.text for s in again.bot.sent] == ["important"]
    assert again.statuses() == [NotificationStatus.SENT]


async def test_a_long_alert_is_split_and_parts_are_not_resent(rig: Rig) -> None:
    text = "\n".join(f"line {i:03d} {'z' * 70}" for i in range(100))
    rig.service.enqueue_text("report", text)
    rig.bot.failures = [None, NetworkError("gone")]  # part 1 goes, part 2 fails
    await rig.notifier.drain()
    rig.clock.advance(5)
    await rig.notifier.drain()
    texts = [s.text for s in rig.bot.sent]
    assert len(texts) == 2 and "\n".join(texts) == text


async def test_html_telegram_refuses_falls_back_to_plain_then_gives_up(rig: Rig) -> None:
    rig.service.enqueue_text("report", "<broken> tag", html=True)
    rig.service.enqueue_text("system", "next one")
    await rig.notifier.drain()
    assert [s.text for s in rig.bot.sent] == ["&lt;broken&gt; tag", "next one"]
    rig.service.enqueue_text("report", "<broken> again", html=True)
    rig.bot.failures = [None, BadRequest("still refused")]
    rig.service.enqueue_text("system", "after")
    await rig.notifier.drain()
    assert rig.statuses()[-2:] == [NotificationStatus.FAILED, NotificationStatus.SENT]


async def test_levels_off_silent_and_routine(rig: Rig) -> None:
    alerts = rig.data.alerts
    assert alerts.set("protection", NotificationLevel.OFF) is NotificationLevel.SILENT
    alerts.set("brief", NotificationLevel.OFF)
    rig.service.enqueue_text("brief", "muted brief")
    rig.service.enqueue_text("regime", "regime is silent by default")
    routine = SessionStateChanged(
        at=T0,
        account="paper",
        session_date=date(2025, 3, 3),
        previous=SessionState.OPENING_NO_TRADE,
        current=SessionState.TRADING_DENIED,
        trigger=SessionTrigger.OPENING_WINDOW_OVER,
        cause="no answer",
    )
    with rig.ledger.unit_of_work() as uow:
        uow.notifications.enqueue("system", "routine", payload=dict(routine.to_payload()))
        uow.commit()
    await rig.notifier.drain()
    assert [(s.text, s.silent) for s in rig.bot.sent] == [("regime is silent by default", True)]
    assert rig.statuses() == [
        NotificationStatus.SILENCED,
        NotificationStatus.SENT,
        NotificationStatus.SILENCED,
    ]


async def test_the_allow_prompt_carries_its_buttons(rig: Rig) -> None:
    rig.service.enqueue_text("allow_prompt", "Allow trading today?")
    await rig.notifier.drain()
    (sent,) = rig.bot.sent
    labels = [b.text for row in sent.keyboard.inline_keyboard for b in row]
    assert labels == ["✅ Allow", "🚫 Not today"]


async def test_the_loop_wakes_on_enqueue_without_the_clock_moving(rig: Rig) -> None:
    rig.notifier.start()
    try:
        await asyncio.sleep(0.01)
        rig.service.enqueue_text("system", "now")
        for _ in range(100):
            if rig.bot.sent:
                break
            await asyncio.sleep(0.01)
        assert [s.text for s in rig.bot.sent] == ["now"]
    finally:
        await rig.notifier.stop()


async def test_a_chart_with_a_long_caption_sends_the_rest_after_it(
    rig: Rig, tmp_path: Path
) -> None:
    chart = tmp_path / "AAPL.png"
    chart.write_bytes(make_png(4, 4))
    text = "\n".join(f"trade {i:02d}: AAPL +$12.00 (+0.12R) {'w' * 30}" for i in range(40))
    rig.service.enqueue_text("report", text, photo_path=str(chart))
    await rig.notifier.drain()
    first, *rest = [s.text for s in rig.bot.sent]
    assert first.startswith("[photo] trade 00") and len(first) <= len("[photo] ") + 1024
    assert rest and "\n".join([first.removeprefix("[photo] "), *rest]) == text


async def test_a_rendering_bug_sends_the_plain_text_and_the_queue_moves_on(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_event: object) -> str:
        raise RuntimeError("bug")

    monkeypatch.setattr("bot.notifier.render_event", broken)
    event = SessionStateChanged(
        at=T0,
        account="paper",
        session_date=date(2025, 3, 3),
        previous=SessionState.IN_POSITION,
        current=SessionState.COOLDOWN,
        trigger=SessionTrigger.POSITION_CLOSED,
        cause="stopped out <AAPL>",
    )
    with rig.ledger.unit_of_work() as uow:
        uow.notifications.enqueue("system", "cooldown <AAPL>", payload=dict(event.to_payload()))
        uow.commit()
    rig.service.enqueue_text("system", "after")
    await rig.notifier.drain()
    assert [s.text for s in rig.bot.sent] == ["cooldown &lt;AAPL&gt;", "after"]
