"""The IBKR flow against a real IB Gateway paper account (opt-in: set IBKR_HOST).

    IBKR_HOST=127.0.0.1 IBKR_PORT=4002 uv run pytest -m paper tests/integration/test_ibkr_paper.py

Places only orders that cannot execute (buy stops far above the market, 1 share) and
cancels them. Uses client id IBKR_TEST_CLIENT_ID (default 917) so that it never takes the
engine's client id. Refuses the live port 4001. See docs/ibkr.md for the gateway setup.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from brokers.ibkr import LIVE_PORT, IbkrBroker, IbkrConfig, SupportsAttachedProtection
from core.broker import DuplicateClientOrderId
from core.clock import LiveClock
from core.domain import (
    ClientOrderId,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Symbol,
    TickRounding,
)

pytestmark = [
    pytest.mark.paper,
    pytest.mark.skipif(not os.environ.get("IBKR_HOST"), reason="IBKR_HOST is not set"),
]
SYMBOL = os.environ.get("IBKR_TEST_SYMBOL", "SPY")
S = OrderStatus


def ref(label: str) -> ClientOrderId:
    return ClientOrderId(f"paper-{label}-{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def broker() -> AsyncIterator[IbkrBroker]:
    config = IbkrConfig.from_env()
    if config.port == LIVE_PORT:
        pytest.skip("refusing to run against the live port 4001")
    config = IbkrConfig(
        host=config.host,
        port=config.port,
        account=config.account,
        client_id=int(os.environ.get("IBKR_TEST_CLIENT_ID", "917")),
    )
    ibkr = IbkrBroker(config, LiveClock())
    await ibkr.connect()
    try:
        yield ibkr
    finally:
        await ibkr.close()


async def far_stop(broker: IbkrBroker) -> Decimal:
    feed = broker.bar_feed([SYMBOL], include_warmup=True)
    await feed.start()
    history = feed.history(SYMBOL)
    await feed.close()
    assert history, f"no bars for {SYMBOL}: market data permissions?"
    last = history[-1].close
    assert isinstance(last, Decimal)
    return await broker.round_price(SYMBOL, last * Decimal("1.5"), TickRounding.UP)


async def until(broker: IbkrBroker, broker_order_id: str, status: OrderStatus) -> None:
    for _ in range(40):
        if (await broker.get_order(broker_order_id)).status is status:  # type: ignore[arg-type]
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"order {broker_order_id} never reached {status}")


async def test_account_positions_and_order_lifecycle(broker: IbkrBroker) -> None:
    account = await broker.account()
    assert account.equity > 0 and account.currency == "USD"
    await broker.positions()
    stop = await far_stop(broker)
    client_id = ref("stop")
    request = OrderRequest(
        client_id, Symbol(SYMBOL), Side.BUY, Decimal(1), OrderType.STOP, stop_price=stop
    )
    snap = await broker.submit(request)
    assert snap.status is S.ACCEPTED and snap.broker_order_id.isdigit()
    found = await broker.get_order_by_client_id(client_id)
    assert found is not None and found.broker_order_id == snap.broker_order_id
    with pytest.raises(DuplicateClientOrderId):
        await broker.submit(request)
    moved = await broker.replace(snap.broker_order_id, stop_price=stop + Decimal("0.01"))
    assert moved.broker_order_id == snap.broker_order_id
    await broker.cancel(snap.broker_order_id)
    await until(broker, snap.broker_order_id, S.CANCELED)


async def test_entry_with_attached_trailing_stop(broker: IbkrBroker) -> None:
    assert isinstance(broker, SupportsAttachedProtection)
    stop = await far_stop(broker)
    entry = OrderRequest(
        ref("entry"), Symbol(SYMBOL), Side.BUY, Decimal(1), OrderType.STOP, stop_price=stop
    )
    parent, child = await broker.submit_with_protection(entry, Decimal("5"), ref("trail"))
    assert (parent.status, child.status) == (S.ACCEPTED, S.ACCEPTED)
    assert (child.order_type, child.qty, child.trail_percent) == (
        OrderType.TRAILING_STOP,
        1,
        Decimal("5"),
    )
    ids = broker.order_ids(child.client_order_id)
    assert ids is not None and ids.parent_perm_id in (0, int(parent.broker_order_id))
    await broker.cancel(parent.broker_order_id)
    await until(broker, parent.broker_order_id, S.CANCELED)
    await until(broker, child.broker_order_id, S.CANCELED)  # IB takes the child along
