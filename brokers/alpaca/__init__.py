"""The Alpaca adapter (alpaca-py 0.44): orders, account, trade_updates and market data.

    endpoint = alpaca_endpoint_for(account, os.environ, chat_confirmed=False)  # paper
    broker = AlpacaBroker.for_account(account, os.environ, clock, chat_confirmed=False)
    broker.set_on_reconnect(reconciler.run)   # after EVERY (re)connect of trade_updates
    await broker.start()
    async for event in broker.events(): ...

Modules: adapter (AlpacaBroker), placement (no blind resend), transport (threads, timeouts,
read retries), errors (typed error mapping), mapping (JSON -> domain), order_requests
(domain -> SDK requests), queries (pagination), stream (trade_updates), marketdata (live
feed, history), recorder (CSV), config (endpoints and the live guard).
"""

from brokers.alpaca.adapter import AlpacaBroker
from brokers.alpaca.config import (
    AlpacaConfigError,
    AlpacaEndpoint,
    LiveTradingNotEnabled,
    alpaca_credentials,
    alpaca_endpoint_for,
    live_trading_blockers,
)
from brokers.alpaca.marketdata import AlpacaBarFeed, AlpacaHistoricalBars
from brokers.alpaca.queries import CalendarDay, CloseResult, MarketClock
from brokers.alpaca.recorder import BarRecorder
from brokers.alpaca.transport import RetryPolicy

__all__ = [
    "AlpacaBarFeed",
    "AlpacaBroker",
    "AlpacaConfigError",
    "AlpacaEndpoint",
    "AlpacaHistoricalBars",
    "BarRecorder",
    "CalendarDay",
    "CloseResult",
    "LiveTradingNotEnabled",
    "MarketClock",
    "RetryPolicy",
    "alpaca_credentials",
    "alpaca_endpoint_for",
    "live_trading_blockers",
]
