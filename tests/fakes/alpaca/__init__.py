"""A local fake Alpaca (Trading API v2 + market data v2) for the unmodified alpaca-py SDK.

    fake = await start_fake_alpaca()            # 127.0.0.1, free port, 2025-06-02 10:00 ET
    client = TradingClient("test-key", "test-secret", url_override=fake.base_url)
    fake.market.set_price("AAPL", 100)           # or push_bar(...), set_time(...)
    fake.faults.throttle_next("POST /v2/orders")  # 429 with X-RateLimit-* headers
    await fake.stop()

Modules: server (app, routes wiring, control routes, `start_fake_alpaca`), routes_trading /
routes_data (REST), engine (order lifecycle), rules / checks (validation, rejections),
fills (trigger and fill prices), book (cash, positions), market (time and prices),
sessions (XNYS calendar), streams (websockets), faults (fault injection), wire (JSON
shapes), sdk_helpers (SDK clients and stream recorders for tests).
"""

from .bars import BarRecord
from .book import AccountConfig
from .engine import EngineConfig, OrderEngine
from .faults import Faults
from .fills import Tick
from .market import FakeMarket
from .models import AlpacaAPIError, Execution, FakeOrder, TradeEventRecord
from .server import DEFAULT_NOW, RunningFakeAlpaca, start_fake_alpaca
from .sessions import SessionCalendar

__all__ = [
    "DEFAULT_NOW",
    "AccountConfig",
    "AlpacaAPIError",
    "BarRecord",
    "EngineConfig",
    "Execution",
    "FakeMarket",
    "FakeOrder",
    "Faults",
    "OrderEngine",
    "RunningFakeAlpaca",
    "SessionCalendar",
    "Tick",
    "TradeEventRecord",
    "start_fake_alpaca",
]
