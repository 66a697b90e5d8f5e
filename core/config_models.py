"""Typed models of the YAML files in `config/` (everything that is not a secret).

Every model forbids unknown keys so that a typo ("max_daly_loss") is an error at start-up,
not a limit that silently never applies. Money is Decimal.
"""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Alpaca's own hosts (the hosts of brokers/alpaca/config.py's endpoints). A live account
# may name only these in base_url / data_url.
ALPACA_LIVE_TRADING_HOSTS = frozenset({"api.alpaca.markets"})
ALPACA_DATA_HOSTS = frozenset({"data.alpaca.markets", "stream.data.alpaca.markets"})
SYMBOL_PATTERN = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_symbol(value: str) -> str:
    symbol = value.strip().upper()
    if not SYMBOL_PATTERN.match(symbol):
        raise ValueError(f"{value!r} is not a US stock symbol (A-Z, digits, '.', '-')")
    return symbol


class WatchlistConfig(StrictModel):
    """config/symbols.yaml"""

    watchlist: list[str] = Field(min_length=1)
    radar_alert_regimes: list[str] = Field(
        default_factory=lambda: ["trend_up", "forming", "range", "trend_down", "event"],
        description="regimes in which the live radar pushes entry signals",
    )

    @field_validator("watchlist")
    @classmethod
    def _symbols(cls, values: list[str]) -> list[str]:
        symbols = [_check_symbol(v) for v in values]
        if len(set(symbols)) != len(symbols):
            raise ValueError("watchlist lists a symbol twice")
        return symbols


class RiskConfig(StrictModel):
    """config/risk.yaml: limits checked before every entry."""

    max_daily_loss_usd: Decimal = Field(gt=0)
    max_daily_loss_r: Decimal = Field(gt=0)
    max_trades_per_day: int = Field(ge=1)
    max_position_usd: Decimal = Field(gt=0)
    max_position_pct: Decimal = Field(gt=0, le=100)
    risk_per_trade_usd: Decimal = Field(gt=0)
    max_risk_per_trade_usd: Decimal = Field(gt=0)
    min_qty: int = Field(default=1, ge=1)
    cooldown_minutes: int = Field(ge=0)
    opening_no_trade_minutes: int = Field(ge=0, le=390)
    entry_cutoff: time
    max_spread_bps: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> RiskConfig:
        if self.risk_per_trade_usd > self.max_risk_per_trade_usd:
            raise ValueError("risk_per_trade_usd is above max_risk_per_trade_usd")
        return self


class TrailBucket(StrictModel):
    name: str
    up_to_range_pct: Decimal | None = Field(
        default=None, description="upper bound of the noise percentile; None = no bound"
    )
    trail_pct: Decimal = Field(gt=0, lt=50)


class ProtectionConfig(StrictModel):
    """config/protection.yaml: the safety belt after every fill."""

    trail_lookback_sessions: int = Field(ge=1, le=60)
    trail_percentile: Decimal = Field(gt=0, le=100)
    trail_bar_minutes: int = Field(ge=1, le=60)
    trail_buckets: list[TrailBucket] = Field(min_length=1)
    default_trail_pct: Decimal = Field(gt=0, lt=50)
    event_day_widen_factor: Decimal = Field(ge=1, le=5)
    trail_overrides: dict[str, Decimal] = Field(default_factory=dict)
    partial_fill_wait_seconds: int = Field(ge=0, le=3600)
    protection_confirm_timeout_seconds: int = Field(ge=1, le=300)
    fallback_to_plain_stop: bool = True
    auto_flatten_when_unprotected: bool = False

    @field_validator("trail_overrides")
    @classmethod
    def _override_symbols(cls, values: dict[str, Decimal]) -> dict[str, Decimal]:
        out = {}
        for symbol, pct in values.items():
            if not (Decimal(0) < pct < Decimal(50)):
                raise ValueError(f"trail override for {symbol} must be in (0, 50) percent")
            out[_check_symbol(symbol)] = pct
        return out

    @field_validator("trail_buckets")
    @classmethod
    def _last_bucket_open(cls, buckets: list[TrailBucket]) -> list[TrailBucket]:
        if buckets[-1].up_to_range_pct is not None:
            raise ValueError("the last trail bucket must have no upper bound")
        return buckets


class NotificationLevel(StrEnum):
    ON = "on"
    SILENT = "silent"
    OFF = "off"


NOTIFICATION_KINDS = (
    "brief",
    "allow_prompt",
    "regime",
    "signal",
    "order",
    "protection",
    "risk",
    "safe_mode",
    "report",
    "system",
)

# Kinds that protect money cannot be switched off, only silenced.
NOTIFICATION_KINDS_ALWAYS_DELIVERED = ("protection", "safe_mode", "risk", "system")


class NotificationsConfig(StrictModel):
    """config/notifications.yaml: kind -> on / silent / off."""

    kinds: dict[str, NotificationLevel]

    @field_validator("kinds", mode="before")
    @classmethod
    def _yaml_booleans(cls, kinds: object) -> object:
        # YAML 1.1 reads unquoted on/off as booleans; they mean what the user typed.
        if isinstance(kinds, dict):
            return {
                k: ("on" if v is True else "off" if v is False else v) for k, v in kinds.items()
            }
        return kinds

    @field_validator("kinds")
    @classmethod
    def _known(cls, kinds: dict[str, NotificationLevel]) -> dict[str, NotificationLevel]:
        unknown = set(kinds) - set(NOTIFICATION_KINDS)
        if unknown:
            raise ValueError(
                f"unknown notification kind(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(NOTIFICATION_KINDS)}"
            )
        for kind in NOTIFICATION_KINDS_ALWAYS_DELIVERED:
            if kinds.get(kind) is NotificationLevel.OFF:
                raise ValueError(f"'{kind}' alerts protect money: set them on or silent")
        return {kind: kinds.get(kind, NotificationLevel.ON) for kind in NOTIFICATION_KINDS}


class BrokerKind(StrEnum):
    SIM = "sim"
    ALPACA = "alpaca"
    IBKR = "ibkr"


class AccountMode(StrEnum):
    PAPER = "paper"
    LIVE = "live"


ENV_PREFIX_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]*$")


class AccountConfig(StrictModel):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_\-]{0,31}$")]
    broker: BrokerKind
    mode: AccountMode = AccountMode.PAPER
    credentials_env: str | None = Field(
        default=None,
        description="prefix of the environment variables holding this account's keys",
    )
    flatten_time: time = time(15, 55)
    data_feed: str = "iex"
    base_url: str | None = Field(
        default=None,
        description="Alpaca trading API root (REST and the trade_updates stream), e.g. a "
        "local proxy or recorder; unset: Alpaca's own for the account's mode",
    )
    data_url: str | None = Field(
        default=None,
        description="Alpaca market data root (REST bars and the bar stream); unset: Alpaca's",
    )

    @field_validator("credentials_env")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is not None and not ENV_PREFIX_PATTERN.match(value):
            raise ValueError("credentials_env must be an UPPER_CASE environment prefix")
        return value

    @field_validator("base_url", "data_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, _, rest = value.partition("://")
        host = rest.split("/", 1)[0]
        if scheme not in ("http", "https") or not host or "@" in host:
            raise ValueError(f"{value!r} is not an http(s) URL (credentials never go in it)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _credentials_needed(self) -> AccountConfig:
        if self.broker is BrokerKind.ALPACA and self.credentials_env is None:
            raise ValueError(f"alpaca account '{self.name}' needs credentials_env")
        if self.broker is BrokerKind.SIM and self.mode is AccountMode.LIVE:
            raise ValueError("a simulated account cannot be live")
        if self.broker is not BrokerKind.ALPACA and (self.base_url or self.data_url):
            raise ValueError(f"account '{self.name}': base_url / data_url are Alpaca settings")
        if self.mode is AccountMode.LIVE:
            self._live_urls_are_alpacas()
        return self

    def _live_urls_are_alpacas(self) -> None:
        """Real money goes only to Alpaca itself, over TLS: never through a proxy, a
        recorder or a fake, and never to the paper host (that would be a silent paper
        account the user believes is live)."""
        wanted = (
            ("base_url", self.base_url, ALPACA_LIVE_TRADING_HOSTS),
            ("data_url", self.data_url, ALPACA_DATA_HOSTS),
        )
        for key, url, hosts in wanted:
            if url is None:
                continue
            scheme, _, rest = url.partition("://")
            host = rest.split("/", 1)[0].lower()
            if scheme != "https" or host not in hosts:
                raise ValueError(
                    f"live account '{self.name}': {key} {url!r} is not Alpaca's own "
                    f"(https://{' or https://'.join(sorted(hosts))})"
                )


class AccountsConfig(StrictModel):
    """config/accounts.yaml"""

    default: str
    accounts: list[AccountConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _default_exists(self) -> AccountsConfig:
        names = [a.name for a in self.accounts]
        if len(set(names)) != len(names):
            raise ValueError("two accounts share a name")
        if self.default not in names:
            raise ValueError(f"default account '{self.default}' is not in accounts")
        return self

    def get(self, name: str) -> AccountConfig:
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(
            f"no account named '{name}' (have: {', '.join(a.name for a in self.accounts)})"
        )


class SessionsConfig(StrictModel):
    """config/sessions.yaml: the day's schedule (New York time) and the watchdogs."""

    brief_at: time
    allow_prompt_at: time
    flatten_at: time
    report_at: time
    half_day_flatten_before_close_minutes: int = Field(ge=1, le=60)
    reconcile_every_seconds: int = Field(ge=5, le=3600)
    stale_data_seconds: int = Field(ge=30, le=3600)
    unacknowledged_order_seconds: int = Field(ge=1, le=600)
    cancel_confirm_timeout_seconds: int = Field(ge=1, le=300)
    draft_ttl_minutes: int = Field(ge=1, le=390)

    @model_validator(mode="after")
    def _order(self) -> SessionsConfig:
        if not (self.brief_at < self.allow_prompt_at < self.flatten_at < self.report_at):
            raise ValueError("expected brief_at < allow_prompt_at < flatten_at < report_at")
        return self
