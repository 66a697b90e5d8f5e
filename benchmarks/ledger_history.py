"""Shared by the benchmarks: a ledger with a long history, and percentiles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from core.domain import OrderRole, OrderStatus, OrderType, Side, TimeInForce
from core.ledger import FillRow, Ledger, OrderRow

D = Decimal


def seed_round_trips(
    ledger: Ledger, account_id: int, count: int, at: Callable[[int], datetime]
) -> None:
    """`count` closed external HIST orders, half of them filled, in buy/sell round trips
    that net to zero (a long history that holds no position)."""
    with ledger.unit_of_work() as uow:
        for i in range(count):
            side = Side.BUY if i % 2 == 0 else Side.SELL
            filled = i % 4 < 2
            moment = at(i)
            row = OrderRow(
                account_id=account_id,
                client_order_id=f"hist-{i}",
                broker_order_id=f"old-{i}",
                symbol="HIST",
                side=side,
                order_type=OrderType.MARKET,
                time_in_force=TimeInForce.DAY,
                qty=D(10),
                role=OrderRole.EXTERNAL,
                status=OrderStatus.FILLED if filled else OrderStatus.CANCELED,
                filled_qty=D(10) if filled else D(0),
                avg_fill_price=D(100) if filled else None,
                created_at=moment,
                updated_at=moment,
                closed_at=moment,
            )
            uow.session.add(row)
            if filled:
                uow.session.flush()
                uow.session.add(
                    FillRow(
                        order_id=row.id,
                        execution_id=f"hist-x-{i}",
                        symbol="HIST",
                        side=side,
                        qty=D(10),
                        price=D(100),
                        commission=D(0),
                        at=moment,
                    )
                )
        uow.commit()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; `fraction` in [0, 1]."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
