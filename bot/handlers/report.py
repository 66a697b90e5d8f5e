"""/report [date]: re-send a stored day report, its text and one chart photo per traded
symbol, exactly as the 16:10 push showed it (same renderer)."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ParseMode

from bot.context import CentaurApp, CentaurContext
from bot.handlers.common import Outcome, Result, Screen, command, command_handler, reply
from bot.parsing import parse_optional_date
from bot.render.day import chart_caption, render_no_report, render_report
from core.clock import NEW_YORK
from core.report_service import ReportService


def _service(context: CentaurContext) -> ReportService:
    return context.deps.reports or ReportService(context.deps.settings.data_dir)


@command("report")
async def report(update: Update, context: CentaurContext) -> Outcome:
    today = context.now().astimezone(NEW_YORK).date()
    day = parse_optional_date(context.args or [], today, "report")
    service = _service(context)
    stored = service.load(day) if day is not None else service.latest()
    if stored is None:
        known = [d.isoformat() for d in service.days()[:5]]
        text = render_no_report(day.isoformat() if day else None, known)
        await reply(update, context, Screen(text))
        return Result(False, "no report")
    await reply(update, context, Screen(render_report(stored.report, stored.charts)))
    chat = update.effective_chat
    assert chat is not None
    for chart in stored.charts:
        with chart.open("rb") as handle:
            await context.bot.send_photo(
                chat.id,
                handle,
                caption=chart_caption(stored.report, chart),
                parse_mode=ParseMode.HTML,
            )
    return f"sent {stored.report.day.isoformat()} with {len(stored.charts)} chart(s)"


def register(app: CentaurApp) -> None:
    app.add_handler(command_handler("report", report))


__all__ = ["register", "report"]
