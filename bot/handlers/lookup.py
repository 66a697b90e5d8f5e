"""Resolve a button's ledger reference to its account: draft and order row ids are unique
across accounts, and a button must keep meaning the same row after /account switches."""

from __future__ import annotations

from core.drafts import DraftError, DraftReview
from core.order_views import OrderView
from core.services import TradingServices


def _accounts(services: TradingServices) -> list[str]:
    names = [a.name for a in services.accounts()]
    active = services.active_account
    return [active, *(n for n in names if n != active)]


async def find_draft(services: TradingServices, draft_id: int) -> DraftReview | None:
    for account in _accounts(services):
        try:
            return await services.review_draft(draft_id, account=account)
        except DraftError:
            continue
    return None


def find_working_order(services: TradingServices, order_id: int) -> tuple[str, OrderView] | None:
    for account in _accounts(services):
        for view in services.orders(account=account):
            if view.id == order_id:
                return account, view
    return None


__all__ = ["find_draft", "find_working_order"]
