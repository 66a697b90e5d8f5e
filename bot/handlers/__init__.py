"""One module per feature; `register_all` wires them in the order that matters:
the access gate first (group -1, in bot.app), then every feature, then the fallbacks
(an unknown command, a stray button) and the typed-answer handler, which must only see
what no command took."""

from __future__ import annotations

from bot.context import CentaurApp
from bot.handlers import (
    day,
    drafts_card,
    drafts_input,
    drafts_list,
    drafts_new,
    errors,
    info,
    kill,
    orders,
    report,
    signals,
    start_help,
    status,
)


def register_all(app: CentaurApp) -> None:
    for feature in (
        start_help,
        status,
        drafts_new,
        drafts_card,
        drafts_list,
        signals,
        orders,
        day,
        kill,
        info,
        report,
    ):
        feature.register(app)
    drafts_input.register(app)
    start_help.register_fallbacks(app)
    errors.register(app)


__all__ = ["register_all"]
