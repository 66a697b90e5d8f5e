"""Which Alpaca endpoint an account talks to, and the guard in front of live trading.

Paper is the default. The live endpoint is used only when all three agree:
1. the process was started with `CENTAUR_LIVE=1` (an operator decision, per deployment),
2. the account is configured `mode: live` (a per-account decision, in config),
3. the chat confirmed it (`chat_confirmed=True`, a per-session human decision).
Any one missing for a live account raises `LiveTradingNotEnabled` naming what is missing:
a live account is never silently downgraded to paper (the user would think they trade for
real) nor a paper account upgraded to live.

`url_override` points every endpoint at one host (the local fake in tests); it changes
WHERE requests go, never whether the live guard applies. Without it, the account's own
`base_url` (trading REST + trade_updates) and `data_url` (bars REST + bar stream) from
config/accounts.yaml are used; a live account may name only Alpaca's own hosts there
(refused at config validation, and checked again here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from core.config_models import (
    ALPACA_DATA_HOSTS,
    ALPACA_LIVE_TRADING_HOSTS,
    AccountConfig,
    AccountMode,
    BrokerKind,
)
from core.live_guard import LIVE_ENV_VAR, LiveTradingNotEnabled, live_trading_blockers
from core.settings import BrokerCredentials, credentials_for

FEEDS = ("iex", "sip")

PAPER_STREAM_URL = "wss://paper-api.alpaca.markets/stream"
LIVE_STREAM_URL = "wss://api.alpaca.markets/stream"
DATA_STREAM_BASE = "wss://stream.data.alpaca.markets"

# Only `alpaca_endpoint_for` holds this; `AlpacaBroker` refuses a live endpoint without it,
# so constructing `AlpacaEndpoint(paper=False)` by hand does not bypass the guard.
_LIVE_GRANT = object()


class AlpacaConfigError(Exception):
    """The account cannot be used with Alpaca as configured (wrong broker, no keys)."""


@dataclass(frozen=True, slots=True)
class AlpacaEndpoint:
    """Where one account's requests go. `None` URLs mean the SDK's own defaults."""

    paper: bool
    trading_url: str | None = None
    trading_stream_url: str = PAPER_STREAM_URL
    data_url: str | None = None
    data_stream_url: str = f"{DATA_STREAM_BASE}/v2/iex"
    feed: str = "iex"
    _grant: object | None = field(default=None, repr=False, compare=False)

    @property
    def live_granted(self) -> bool:
        return not self.paper and self._grant is _LIVE_GRANT


def _ws_base(url: str) -> str:
    base = url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://")
    if base.startswith("http://"):
        return "ws://" + base.removeprefix("http://")
    return base


def alpaca_endpoint_for(
    account: AccountConfig,
    env: Mapping[str, str],
    *,
    chat_confirmed: bool,
    url_override: str | None = None,
) -> AlpacaEndpoint:
    """The endpoint for `account`: paper unless it is a live account and every live
    condition holds; a live account with any condition missing raises."""
    if account.broker is not BrokerKind.ALPACA:
        raise AlpacaConfigError(f"account '{account.name}' is a {account.broker} account")
    feed = account.data_feed.lower()
    if feed not in FEEDS:
        raise AlpacaConfigError(
            f"account '{account.name}': data_feed {account.data_feed!r} is not one of {FEEDS}"
        )
    paper = True
    grant: object | None = None
    if account.mode is AccountMode.LIVE:
        missing = live_trading_blockers(account, env, chat_confirmed=chat_confirmed)
        missing += _foreign_live_urls(account)
        if missing:
            raise LiveTradingNotEnabled(account.name, missing)
        paper, grant = False, _LIVE_GRANT
    if url_override is not None:
        ws = _ws_base(url_override)
        return AlpacaEndpoint(
            paper=paper,
            trading_url=url_override.rstrip("/"),
            trading_stream_url=f"{ws}/stream",
            data_url=url_override.rstrip("/"),
            data_stream_url=f"{ws}/v2/{feed}",
            feed=feed,
            _grant=grant,
        )
    trading_url, trading_stream = None, PAPER_STREAM_URL if paper else LIVE_STREAM_URL
    if account.base_url is not None:
        trading_url = account.base_url.rstrip("/")
        trading_stream = f"{_ws_base(trading_url)}/stream"
    data_url, data_stream = None, f"{DATA_STREAM_BASE}/v2/{feed}"
    # Alpaca's own data hosts are its defaults (REST and stream live on different hosts
    # there, so one URL cannot name both): only another host moves the data endpoints.
    if account.data_url is not None and _host(account.data_url) not in ALPACA_DATA_HOSTS:
        data_url = account.data_url.rstrip("/")
        data_stream = f"{_ws_base(data_url)}/v2/{feed}"
    return AlpacaEndpoint(
        paper=paper,
        trading_url=trading_url,
        trading_stream_url=trading_stream,
        data_url=data_url,
        data_stream_url=data_stream,
        feed=feed,
        _grant=grant,
    )


def _host(url: str) -> str:
    return url.partition("://")[2].split("/", 1)[0].lower()


def _foreign_live_urls(account: AccountConfig) -> list[str]:
    """Config validation refuses these already; an AccountConfig built without validation
    must not reach a live endpoint through a proxy either."""
    wrong = []
    for key, url, hosts in (
        ("base_url", account.base_url, ALPACA_LIVE_TRADING_HOSTS),
        ("data_url", account.data_url, ALPACA_DATA_HOSTS),
    ):
        if url is not None and (not url.startswith("https://") or _host(url) not in hosts):
            wrong.append(f"{key} {url!r} is not Alpaca's own host")
    return wrong


def alpaca_credentials(account: AccountConfig, env: Mapping[str, str]) -> BrokerCredentials:
    """The account's own keys (`<credentials_env>_KEY_ID` / `_SECRET_KEY`)."""
    creds = credentials_for(account, dict(env))
    if creds is None:
        prefix = account.credentials_env or "<credentials_env>"
        raise AlpacaConfigError(
            f"account '{account.name}' has no Alpaca keys: set {prefix}_KEY_ID and "
            f"{prefix}_SECRET_KEY"
        )
    return creds


__all__ = [
    "LIVE_ENV_VAR",
    "AlpacaConfigError",
    "AlpacaEndpoint",
    "LiveTradingNotEnabled",
    "alpaca_credentials",
    "alpaca_endpoint_for",
    "live_trading_blockers",
]
