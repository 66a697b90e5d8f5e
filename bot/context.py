"""Typed context: what every handler can reach, without string keys.

`BotData` (one per Application) holds the dependencies (`Deps`: core services, settings,
clock, the notification and audit ports, the access policy) and the bot's own runtime
state. `UserData` holds one user's conversation state (a pending typed answer, /drafts
selections). `CentaurContext` exposes both with types (python-telegram-bot's
`ContextTypes` pattern).

Runtime state here is in memory on purpose and persisted nowhere: mute overrides, a
symbol's signals muted for today, pending typed answers, /drafts selections. A restart
forgets them; everything that must survive (drafts, orders, cards, the outbox) is in the
ledger, and buttons point at ledger rows.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ExtBot

from core.audit import AuditLog
from core.clock import Clock
from core.config_models import (
    NOTIFICATION_KINDS,
    NOTIFICATION_KINDS_ALWAYS_DELIVERED,
    NotificationLevel,
    NotificationsConfig,
)
from core.notifications import NotificationService
from core.report_service import ReportService
from core.services import Actor, TradingServices
from core.settings import Settings

if TYPE_CHECKING:
    from bot.access import AccessPolicy
    from bot.handlers.cards import CardDesk


@dataclass(frozen=True, slots=True)
class Deps:
    services: TradingServices
    settings: Settings
    clock: Clock
    notifications: NotificationService
    audit: AuditLog
    access: AccessPolicy
    reports: ReportService | None = None  # stored day reports (/report); None: data_dir's


class Alerts:
    """Notification levels: config/notifications.yaml, overridden at runtime by /mute."""

    def __init__(self, config: NotificationsConfig) -> None:
        self._config = dict(config.kinds)
        self._overrides: dict[str, NotificationLevel] = {}
        self._muted_symbols: dict[str, date] = {}

    def level(self, kind: str) -> NotificationLevel:
        return self._overrides.get(kind, self._config.get(kind, NotificationLevel.ON))

    def levels(self) -> dict[str, NotificationLevel]:
        return {kind: self.level(kind) for kind in NOTIFICATION_KINDS}

    def set(self, kind: str, level: NotificationLevel) -> NotificationLevel:
        """Set `kind`'s level; the kinds that protect money are never switched off
        (silenced at most), as config validation already enforces."""
        if kind in NOTIFICATION_KINDS_ALWAYS_DELIVERED and level is NotificationLevel.OFF:
            level = NotificationLevel.SILENT
        self._overrides[kind] = level
        return level

    def reset(self, kind: str | None = None) -> None:
        if kind is None:
            self._overrides.clear()
        else:
            self._overrides.pop(kind, None)

    def mute_symbol(self, symbol: str, day: date) -> None:
        self._muted_symbols[symbol.upper()] = day

    def symbol_muted(self, symbol: str, day: date) -> bool:
        return self._muted_symbols.get(symbol.upper()) == day

    def muted_symbols(self, day: date) -> list[str]:
        return sorted(s for s, d in self._muted_symbols.items() if d == day)


@dataclass(slots=True)
class PendingInput:
    """The bot asked for a typed price; the next plain text message answers it."""

    kind: str  # buy_trigger | sell_stop | draft_trigger | draft_stop
    chat_id: int
    message_id: int  # the picker or card to edit with the outcome
    expires_at: datetime
    symbol: str | None = None
    draft_id: int | None = None


@dataclass(slots=True)
class UserData:
    pending: PendingInput | None = None
    # /drafts message id -> the draft ids ticked on it
    selections: dict[int, set[int]] = field(default_factory=dict)


class Claims:
    """Keys of actions in flight right now (drafts being confirmed, a symbol being
    flattened...). Updates run concurrently, so a guard is only a guard if it checks and
    takes in one step with no await in between: `claim` is that step.

        if not claims.claim(key):
            ...  # a twin of this action is in flight: turn the tap away
        try: ... finally: claims.release(key)
    """

    def __init__(self) -> None:
        self._held: set[Hashable] = set()

    def __contains__(self, key: object) -> bool:
        return key in self._held

    def claim(self, *keys: Hashable) -> bool:
        """Take every key, or none of them if any is held already."""
        if any(k in self._held for k in keys):
            return False
        self._held.update(keys)
        return True

    def release(self, *keys: Hashable) -> None:
        self._held.difference_update(keys)

    @contextmanager
    def holding(self, keys: Iterable[Hashable]) -> Iterator[None]:
        """Release `keys` (claimed already) however the block ends."""
        held = tuple(keys)
        try:
            yield
        finally:
            self.release(*held)


class BotData:
    def __init__(self) -> None:
        self._deps: Deps | None = None
        self._alerts: Alerts | None = None
        # Double-tap guards: drafts whose confirm is in flight right now (draft ids), and
        # pickers (chat, message) that already became a draft (a second tap must not
        # make two) or are becoming one (`picking`).
        self.confirming = Claims()
        self.drafted_from: dict[tuple[int, int], int] = {}
        self.picking = Claims()
        # (account, symbol) whose flatten or protection retry is in flight.
        self.flattening = Claims()
        self.protecting = Claims()
        self.kill_running = False
        # Second-confirmation tokens already executed (a double tap kills once).
        self.kills_done: set[int] = set()
        # account -> (chat, message, started) of the /kill card in progress: that kill's
        # KillCompleted alert is absorbed by the card, which shows the verified report.
        self.kill_cards: dict[str, tuple[int, int, datetime]] = {}
        # Stranger user id -> last time we logged them (one log line per minute).
        self.strangers_logged: dict[int, datetime] = {}
        self.notifier: Any = None  # bot.notifier.Notifier, set by build_application
        self.owns_notifications = False  # build_application made the service: close it
        self._cards: CardDesk | None = None

    def configure(self, deps: Deps, cards: CardDesk) -> None:
        self._deps = deps
        self._alerts = Alerts(deps.settings.notifications)
        self._cards = cards

    @property
    def deps(self) -> Deps:
        if self._deps is None:
            raise RuntimeError("BotData is not configured: use bot.app.build_application")
        return self._deps

    @property
    def cards(self) -> CardDesk:
        if self._cards is None:
            raise RuntimeError("BotData is not configured: use bot.app.build_application")
        return self._cards

    @property
    def alerts(self) -> Alerts:
        if self._alerts is None:
            raise RuntimeError("BotData is not configured: use bot.app.build_application")
        return self._alerts


class CentaurContext(CallbackContext[ExtBot[Any], UserData, dict[Any, Any], BotData]):
    @property
    def deps(self) -> Deps:
        return self.bot_data.deps

    @property
    def services(self) -> TradingServices:
        return self.bot_data.deps.services

    @property
    def state(self) -> UserData:
        data = self.user_data
        if data is None:  # updates without a user never get past the access gate
            raise RuntimeError("no user data for this update")
        return data

    def now(self) -> datetime:
        return self.bot_data.deps.clock.now()

    def actor(self, user_id: int | None, chat_id: int | None, name: str) -> Actor:
        return Actor(user_id=user_id, chat_id=chat_id, name=name)


CentaurApp = Application[ExtBot[Any], CentaurContext, UserData, dict[Any, Any], BotData, Any]

__all__ = [
    "Alerts",
    "BotData",
    "CentaurApp",
    "CentaurContext",
    "Claims",
    "Deps",
    "PendingInput",
    "UserData",
]
