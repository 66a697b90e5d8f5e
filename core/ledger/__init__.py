"""The ledger: SQL single source of truth for intent and history (DESIGN.md section 5).

Typical use::

    engine = create_engine_for(url)          # url from CENTAUR_DB_URL or default_db_url(root)
    upgrade(engine)                          # migrate to head at startup
    ledger = Ledger(engine, clock)
    with ledger.unit_of_work() as uow:
        order = uow.orders.record_intent(request, account_id=acct.id, role=OrderRole.ENTRY)
        uow.notifications.enqueue("order", "AAPL stop-buy placed")
        uow.commit()                         # nothing is kept without an explicit commit
"""

from sqlalchemy.orm.exc import StaleDataError

from core.ledger.engine import create_engine_for, default_db_url, json_dumps
from core.ledger.migrate import (
    MigrationError,
    autogenerate_revision,
    current,
    head,
    is_up_to_date,
    model_differences,
    upgrade,
)
from core.ledger.models import (
    AccountRow,
    AuditRow,
    Base,
    DraftRow,
    FillRow,
    NotificationRow,
    OrderEventRow,
    OrderRow,
    PositionRow,
    ProtectionLinkRow,
    RegimeRow,
    RiskEventRow,
    SessionStateRow,
    SignalRow,
    TradingDayRow,
)
from core.ledger.repositories.base import LedgerLookupError
from core.ledger.types import (
    AccountMode,
    AuditKind,
    BrokerKind,
    DraftStatus,
    EventSource,
    Money,
    NotificationStatus,
    PositionSource,
    ProtectionKind,
    ProtectionStatus,
    SignalStatus,
    UtcDateTime,
)
from core.ledger.uow import Ledger, ReadOnlyError, UnitOfWork

__all__ = [
    "AccountMode",
    "AccountRow",
    "AuditKind",
    "AuditRow",
    "Base",
    "BrokerKind",
    "DraftRow",
    "DraftStatus",
    "EventSource",
    "FillRow",
    "Ledger",
    "LedgerLookupError",
    "MigrationError",
    "Money",
    "NotificationRow",
    "NotificationStatus",
    "OrderEventRow",
    "OrderRow",
    "PositionRow",
    "PositionSource",
    "ProtectionKind",
    "ProtectionLinkRow",
    "ProtectionStatus",
    "ReadOnlyError",
    "RegimeRow",
    "RiskEventRow",
    "SessionStateRow",
    "SignalRow",
    "SignalStatus",
    "StaleDataError",
    "TradingDayRow",
    "UnitOfWork",
    "UtcDateTime",
    "autogenerate_revision",
    "create_engine_for",
    "current",
    "default_db_url",
    "head",
    "is_up_to_date",
    "json_dumps",
    "model_differences",
    "upgrade",
]
