"""Choosing and connecting the adapters for an account: broker and live bar feed.

Every failure a user can cause (no keys, a live account without its three conditions, an
unreachable IB Gateway) becomes a `StartupError` with one readable line; the command
prints it and exits, never with a traceback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from brokers.sim import SimBroker, SimConfig
from core.broker import Broker, BrokerError
from core.calendar import TradingCalendar
from core.clock import Clock
from core.config_models import AccountConfig, BrokerKind
from core.entry import friction_profile
from core.marketdata.feed import BarFeed
from core.settings import Settings

if TYPE_CHECKING:  # the SDKs load only when an account needs them (the demo never does)
    from brokers.alpaca import AlpacaHistoricalBars, BarRecorder

Reconcile = Callable[[], Awaitable[object]]


class StartupError(Exception):
    """Centaur cannot start as configured; the message says why, in one line."""


class ReconnectHook:
    """The broker's supervision hooks, bound to the engine and the chat once they exist:
    reconnected -> reconcile; an outage in market hours -> a chat alert; down too long ->
    SAFE MODE."""

    def __init__(self) -> None:
        self.reconcile: Reconcile | None = None
        self.alert: Callable[[str], object] | None = None
        self.down_too_long: Callable[[float], Awaitable[None]] | None = None

    async def __call__(self) -> None:
        if self.reconcile is not None:
            await self.reconcile()

    def on_alert(self, text: str) -> None:
        if self.alert is not None:
            self.alert(text)

    async def on_down_too_long(self, seconds: float) -> None:
        if self.down_too_long is not None:
            await self.down_too_long(seconds)


@dataclass
class Connected:
    account: AccountConfig
    broker: Broker
    on_reconnect: ReconnectHook = field(default_factory=ReconnectHook)


def sim_config(settings: Settings) -> SimConfig:
    """The simulated account: the parameters' equity and friction (as the backtest)."""
    params = settings.params
    return SimConfig(initial_cash=Decimal(str(params.equity)), friction=friction_profile(params))


async def connect_broker(
    account: AccountConfig,
    settings: Settings,
    clock: Clock,
    calendar: TradingCalendar,
    *,
    sim_state: Path | None,
) -> Connected:
    """The account's broker, connected. Raises StartupError with the reason."""
    if account.broker is BrokerKind.SIM:
        simulated = sim_config(settings)
        if sim_state is None:
            broker: Broker = SimBroker(clock, config=simulated, calendar=calendar)
        else:
            sim_state.parent.mkdir(parents=True, exist_ok=True)
            broker = SimBroker.open(sim_state, clock, config=simulated, calendar=calendar)
        return Connected(account, broker)
    hook = ReconnectHook()
    if account.broker is BrokerKind.ALPACA:
        from brokers.alpaca import AlpacaBroker, AlpacaConfigError, LiveTradingNotEnabled

        try:
            alpaca = AlpacaBroker.for_account(
                account,
                settings.environ,
                clock,
                chat_confirmed=False,
                calendar=calendar,
                on_reconnect=hook,
            )
        except (AlpacaConfigError, LiveTradingNotEnabled) as exc:
            raise StartupError(str(exc)) from None
        try:
            await alpaca.start(wait=20.0)
        except (TimeoutError, BrokerError, OSError) as exc:
            await alpaca.close()
            raise StartupError(
                f"account '{account.name}': Alpaca's order stream did not answer "
                f"({type(exc).__name__}: {exc}); check the keys and the network"
            ) from None
        return Connected(account, alpaca, hook)
    from brokers.ibkr import IbkrBroker, IbkrLiveNotEnabled, IbkrModeMismatch, ibkr_config_for

    try:
        # `centaur run` takes no chat confirmation yet: a live account refuses to start.
        config = ibkr_config_for(account, settings.environ, chat_confirmed=False)
    except IbkrLiveNotEnabled as exc:
        raise StartupError(str(exc)) from None
    ibkr = IbkrBroker(
        config,
        clock,
        calendar=calendar,
        on_reconnect=hook,
        on_alert=hook.on_alert,
        on_down_too_long=hook.on_down_too_long,
    )
    try:
        await ibkr.connect()
    except IbkrModeMismatch as exc:
        await ibkr.close()
        raise StartupError(f"account '{account.name}': {exc} (docs/ibkr.md)") from None
    except (BrokerError, OSError, TimeoutError) as exc:
        await ibkr.close()
        raise StartupError(
            f"account '{account.name}': cannot reach IB Gateway at {config.host}:{config.port} "
            f"({exc}); is the gateway running with the API enabled? (docs/ibkr.md)"
        ) from None
    return Connected(account, ibkr, hook)


def _alpaca_data_account(accounts: Sequence[AccountConfig], settings: Settings) -> AccountConfig:
    """An Alpaca account whose keys can read market data (any configured one)."""
    for account in accounts:
        if account.broker is BrokerKind.ALPACA and settings.credentials(account.name):
            return account
    for account in settings.accounts.accounts:
        if account.broker is BrokerKind.ALPACA and settings.credentials(account.name):
            return account
    raise StartupError(
        "live bars need a data source: configure an Alpaca account with keys (its market "
        "data is used), run an IBKR account, or replay recorded bars with --replay"
    )


def live_feed(
    connected: Sequence[Connected],
    symbols: Sequence[str],
    settings: Settings,
    clock: Clock,
    calendar: TradingCalendar,
    data_dir: Path,
) -> tuple[BarFeed, BarRecorder | None]:
    """The live 1-minute feed and, when the feed does not record itself, a recorder for
    the pump (every closed live bar is kept under data/bars/ for replays)."""
    from brokers.alpaca import (
        AlpacaBarFeed,
        AlpacaConfigError,
        BarRecorder,
        LiveTradingNotEnabled,
        alpaca_credentials,
        alpaca_endpoint_for,
    )
    from brokers.ibkr import IbkrBroker

    recorder = BarRecorder(data_dir / "bars", calendar)
    for c in connected:
        if isinstance(c.broker, IbkrBroker):
            return c.broker.bar_feed(symbols), recorder
    account = _alpaca_data_account([c.account for c in connected], settings)
    try:
        endpoint = alpaca_endpoint_for(account, settings.environ, chat_confirmed=False)
        creds = alpaca_credentials(account, settings.environ)
    except (AlpacaConfigError, LiveTradingNotEnabled) as exc:
        raise StartupError(str(exc)) from None
    feed = AlpacaBarFeed(symbols, creds, endpoint, clock, recorder=recorder, calendar=calendar)
    return feed, None


def alpaca_history(
    connected: Sequence[Connected], settings: Settings, clock: Clock
) -> AlpacaHistoricalBars | None:
    """Historical bars for the warm-up, when an Alpaca account with keys exists."""
    from brokers.alpaca import (
        AlpacaConfigError,
        AlpacaHistoricalBars,
        LiveTradingNotEnabled,
        alpaca_credentials,
        alpaca_endpoint_for,
    )

    try:
        account = _alpaca_data_account([c.account for c in connected], settings)
        endpoint = alpaca_endpoint_for(account, settings.environ, chat_confirmed=False)
        creds = alpaca_credentials(account, settings.environ)
    except (StartupError, AlpacaConfigError, LiveTradingNotEnabled):
        return None
    return AlpacaHistoricalBars(creds, endpoint, clock)


__all__ = [
    "Connected",
    "ReconnectHook",
    "StartupError",
    "alpaca_history",
    "connect_broker",
    "live_feed",
    "sim_config",
]
