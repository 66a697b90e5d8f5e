"""A stop-sell draft whose send has an unknown outcome says so (issue 12 item 13).

`user_stop` cancels the protection, then sends the trader's stop-sell. When that send's
outcome is unknown (the broker's answer was lost and the lookup found nothing yet), the
stop-sell may be live at the broker or not: the card must not claim "protected again",
it says the outcome is unknown and that the broker is being asked.
"""

from __future__ import annotations

from pathlib import Path

from core.broker import BrokerError
from core.domain import OrderRequest, OrderSnapshot, OrderType
from tests.e2e.test_bot_harness import BotRig, bot_rig, has_text


def lose_the_next_stop_sell(rig: BotRig) -> list[OrderRequest]:
    """The next plain stop sent errors out ambiguously, nothing placed (a 502)."""
    broker = rig.kit.broker
    original = broker.submit
    lost: list[OrderRequest] = []

    async def flaky(request: OrderRequest) -> OrderSnapshot:
        if request.order_type is OrderType.STOP and not lost:
            lost.append(request)
            raise BrokerError("502 bad gateway")
        return await original(request)

    broker.submit = flaky  # type: ignore[method-assign]
    return lost


async def test_an_unknown_stop_sell_outcome_is_not_called_protected(tmp_path: Path) -> None:
    rig = await bot_rig(tmp_path)
    try:
        await rig.kit.bar("100", "100.5", "99.5", "100.2")
        await rig.command("/buy AAPL 100.51 40", has_text("Draft #1"))
        await rig.user.press_button("Confirm")
        await rig.user.wait_for(has_text("placed"))
        await rig.kit.bar("100.3", "101", "100.2", "100.9")
        await rig.user.wait_for(has_text("filled; trailing stop"))
        card = await rig.command("/sell AAPL 99.80", has_text("stop-sell AAPL"))
        lost = lose_the_next_stop_sell(rig)
        await rig.user.press_button("Confirm", message_id=card["message_id"])
        answer = await rig.user.wait_for(
            lambda m: (
                m["message_id"] == card["message_id"]
                and "stop-sell" in (m["text"] or "")
                and m["edit_count"] >= 1
            ),
            timeout=10,
        )
        text = str(answer["text"])
        assert lost, "the stop-sell was sent"
        assert "protected again" not in text
        assert "outcome unknown" in text and "checking with the broker" in text
    finally:
        await rig.close()
