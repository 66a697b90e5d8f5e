"""Per-account Alpaca endpoints (config/accounts.yaml `base_url` / `data_url`): they reach
the SDK's `url_override`, `centaur doctor` shows them, and a live account may name only
Alpaca's own hosts (refused at config validation, and again when the endpoint is built)."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from rich.console import Console

from app.doctor import run_doctor
from brokers.alpaca import AlpacaBroker, LiveTradingNotEnabled, alpaca_endpoint_for
from core.clock import SimClock
from core.config_models import AccountConfig, AccountMode, BrokerKind
from core.settings import DEFAULT_CONFIG_DIR
from tests.fakes.alpaca import DEFAULT_NOW

LIVE_ENV = {"CENTAUR_LIVE": "1"}


def alpaca(mode: AccountMode = AccountMode.PAPER, **urls: str) -> AccountConfig:
    return AccountConfig(
        name="acct", broker=BrokerKind.ALPACA, mode=mode, credentials_env="ALPACA_X", **urls
    )


def test_account_urls_reach_every_endpoint_of_a_paper_account() -> None:
    account = alpaca(base_url="http://127.0.0.1:8123/", data_url="http://127.0.0.1:8124")
    endpoint = alpaca_endpoint_for(account, {}, chat_confirmed=False)
    assert endpoint.paper
    assert endpoint.trading_url == "http://127.0.0.1:8123"
    assert endpoint.trading_stream_url == "ws://127.0.0.1:8123/stream"
    assert endpoint.data_url == "http://127.0.0.1:8124"
    assert endpoint.data_stream_url == "ws://127.0.0.1:8124/v2/iex"
    broker = AlpacaBroker.for_account(
        account,
        {"ALPACA_X_KEY_ID": "k", "ALPACA_X_SECRET_KEY": "s"},
        SimClock(DEFAULT_NOW),
        chat_confirmed=False,
    )
    assert broker._client._base_url == "http://127.0.0.1:8123"  # the SDK's url_override


def test_unset_urls_keep_alpacas_defaults() -> None:
    endpoint = alpaca_endpoint_for(alpaca(), {}, chat_confirmed=False)
    assert (endpoint.trading_url, endpoint.data_url) == (None, None)
    assert endpoint.trading_stream_url == "wss://paper-api.alpaca.markets/stream"


@pytest.mark.parametrize(
    "urls",
    [
        {"base_url": "http://127.0.0.1:8123"},
        {"base_url": "https://proxy.example.invalid"},
        {"base_url": "https://paper-api.alpaca.markets"},  # a live account on paper
        {"base_url": "http://api.alpaca.markets"},  # no TLS
        {"data_url": "http://127.0.0.1:8124"},
    ],
)
def test_a_live_account_may_not_point_anywhere_but_alpaca(urls: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="is not Alpaca's own"):
        alpaca(AccountMode.LIVE, **urls)


def test_a_live_account_on_alpacas_own_hosts_is_valid() -> None:
    account = alpaca(
        AccountMode.LIVE,
        base_url="https://api.alpaca.markets",
        data_url="https://data.alpaca.markets",
    )
    endpoint = alpaca_endpoint_for(account, LIVE_ENV, chat_confirmed=True)
    assert not endpoint.paper and endpoint.live_granted
    assert endpoint.trading_stream_url == "wss://api.alpaca.markets/stream"
    assert endpoint.data_url is None  # Alpaca's own data host: the SDK's defaults


def test_an_unvalidated_live_account_is_refused_when_the_endpoint_is_built() -> None:
    sneaky = alpaca(AccountMode.LIVE).model_copy(update={"base_url": "http://127.0.0.1:1"})
    with pytest.raises(LiveTradingNotEnabled, match="not Alpaca's own host"):
        alpaca_endpoint_for(sneaky, LIVE_ENV, chat_confirmed=True)


def test_urls_are_alpaca_settings_and_must_be_plain_http() -> None:
    with pytest.raises(ValidationError, match="are Alpaca settings"):
        AccountConfig(name="ib", broker=BrokerKind.IBKR, base_url="http://127.0.0.1:1")
    with pytest.raises(ValidationError, match="not an http"):
        alpaca(base_url="ftp://127.0.0.1:1")
    with pytest.raises(ValidationError, match="not an http"):
        alpaca(base_url="http://user:pw@127.0.0.1:1")


def test_doctor_shows_where_orders_and_data_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    accounts = yaml.safe_load((config / "accounts.yaml").read_text())
    for account in accounts["accounts"]:
        if account["name"] == "alpaca-paper":
            account["base_url"] = "http://127.0.0.1:8123"
    (config / "accounts.yaml").write_text(yaml.safe_dump(accounts))
    monkeypatch.setenv("CENTAUR_DATA_DIR", str(tmp_path / "data"))
    out = StringIO()
    run_doctor(Console(file=out, width=400), config)
    (line,) = [t for t in out.getvalue().splitlines() if "account alpaca-paper" in t]
    assert "trading http://127.0.0.1:8123" in line and "data Alpaca" in line
