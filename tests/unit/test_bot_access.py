"""Who may use the bot, where alerts go, and how strangers are recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.access import AUDIT_PER_WINDOW, AccessPolicy
from bot.app import file_base_url
from core.settings import Secrets

T0 = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)


def test_only_allowed_users_in_their_own_chat_or_an_allowed_chat() -> None:
    policy = AccessPolicy([11, 22], [-500])
    assert policy.allows(11, 11) and policy.allows(22, -500)
    assert not policy.allows(11, 22)  # someone else's private chat
    assert not policy.allows(11, -600)  # a group that is not allowed
    assert not policy.allows(33, 33) and not policy.allows(33, -500)  # a stranger, anywhere
    assert not policy.allows(None, 11) and not policy.allows(11, None)


def test_nobody_when_nothing_is_configured() -> None:
    policy = AccessPolicy.from_secrets(Secrets.model_validate({}))
    assert not policy.allows(1, 1) and policy.home_chat is None


def test_home_chat_is_the_first_listed() -> None:
    secrets = Secrets.model_validate(
        {"TELEGRAM_ALLOWED_USERS": "7, 3", "TELEGRAM_ALLOWED_CHATS": ""}
    )
    assert AccessPolicy.from_secrets(secrets).home_chat == 7
    both = Secrets.model_validate(
        {"TELEGRAM_ALLOWED_USERS": "7", "TELEGRAM_ALLOWED_CHATS": "-9;-8"}
    )
    assert AccessPolicy.from_secrets(both).home_chat == -9


def test_a_stranger_flood_is_audited_and_logged_sparingly() -> None:
    policy = AccessPolicy([1])
    seen = [policy.note_stranger(99, T0 + timedelta(seconds=i)) for i in range(30)]
    assert sum(1 for audit, _, _ in seen if audit) == AUDIT_PER_WINDOW
    assert sum(1 for _, log, _ in seen if log) == 1
    audit, log, _ = policy.note_stranger(99, T0 + timedelta(minutes=2))
    assert audit and log  # a new window


def test_file_url_follows_the_api_url() -> None:
    assert file_base_url("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert file_base_url("http://127.0.0.1:8081/bot/") == "http://127.0.0.1:8081/file/bot"
