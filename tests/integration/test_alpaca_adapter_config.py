"""Endpoint selection and the live guard: paper by default; live only with CENTAUR_LIVE=1,
`mode: live` and a chat confirmation, each refusal naming what is missing."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from brokers.alpaca import (
    AlpacaBroker,
    AlpacaConfigError,
    AlpacaEndpoint,
    LiveTradingNotEnabled,
    alpaca_credentials,
    alpaca_endpoint_for,
    live_trading_blockers,
)
from core.clock import SimClock
from core.config_models import AccountConfig, AccountMode, BrokerKind
from core.settings import BrokerCredentials
from tests.fakes.alpaca import DEFAULT_NOW

PAPER = AccountConfig(name="main", broker=BrokerKind.ALPACA, credentials_env="ALPACA_MAIN")
LIVE = AccountConfig(
    name="real", broker=BrokerKind.ALPACA, mode=AccountMode.LIVE, credentials_env="ALPACA_REAL"
)
LIVE_ENV = {"CENTAUR_LIVE": "1"}
KEYS = BrokerCredentials(SecretStr("PKTESTKEY000000000000"), SecretStr("s" * 40))


def test_paper_is_the_default_whatever_the_environment_and_the_chat_say() -> None:
    for env, confirmed in (({}, False), (LIVE_ENV, True)):
        endpoint = alpaca_endpoint_for(PAPER, env, chat_confirmed=confirmed)
        assert endpoint.paper and not endpoint.live_granted
        assert endpoint.trading_stream_url == "wss://paper-api.alpaca.markets/stream"
        assert endpoint.trading_url is None  # the SDK's paper URL
        assert endpoint.data_stream_url == "wss://stream.data.alpaca.markets/v2/iex"


@pytest.mark.parametrize(
    ("env", "confirmed", "missing"),
    [
        ({}, True, ["CENTAUR_LIVE=1"]),
        ({"CENTAUR_LIVE": "true"}, True, ["CENTAUR_LIVE=1 (set to 'true')"]),
        (LIVE_ENV, False, ["not confirmed in the chat"]),
        ({}, False, ["CENTAUR_LIVE=1", "not confirmed in the chat"]),
    ],
)
def test_a_live_account_missing_a_condition_is_refused_by_name(
    env: dict[str, str], confirmed: bool, missing: list[str]
) -> None:
    with pytest.raises(LiveTradingNotEnabled) as info:
        alpaca_endpoint_for(LIVE, env, chat_confirmed=confirmed)
    assert info.value.account == "real" and len(info.value.missing) == len(missing)
    for expected, got in zip(missing, info.value.missing, strict=True):
        assert expected in got
    assert "real" in str(info.value)


def test_live_with_all_three_and_what_blocks_a_paper_account() -> None:
    endpoint = alpaca_endpoint_for(LIVE, LIVE_ENV, chat_confirmed=True)
    assert not endpoint.paper and endpoint.live_granted
    assert endpoint.trading_stream_url == "wss://api.alpaca.markets/stream"
    blockers = live_trading_blockers(PAPER, LIVE_ENV, chat_confirmed=True)
    assert blockers == ["the account is configured mode: paper (needs mode: live)"]
    assert live_trading_blockers(LIVE, LIVE_ENV, chat_confirmed=True) == []


def test_url_override_moves_every_endpoint_but_keeps_the_guard() -> None:
    endpoint = alpaca_endpoint_for(
        PAPER, {}, chat_confirmed=False, url_override="http://127.0.0.1:8123/"
    )
    assert endpoint.trading_url == endpoint.data_url == "http://127.0.0.1:8123"
    assert endpoint.trading_stream_url == "ws://127.0.0.1:8123/stream"
    assert endpoint.data_stream_url == "ws://127.0.0.1:8123/v2/iex"
    with pytest.raises(LiveTradingNotEnabled):
        alpaca_endpoint_for(LIVE, {}, chat_confirmed=True, url_override="http://127.0.0.1:1")


def test_sip_feed_by_config_and_bad_accounts() -> None:
    sip = AccountConfig(
        name="sip", broker=BrokerKind.ALPACA, credentials_env="ALPACA_SIP", data_feed="sip"
    )
    assert alpaca_endpoint_for(sip, {}, chat_confirmed=False).data_stream_url.endswith("/v2/sip")
    odd = AccountConfig(
        name="odd", broker=BrokerKind.ALPACA, credentials_env="ALPACA_ODD", data_feed="otc"
    )
    with pytest.raises(AlpacaConfigError, match="data_feed"):
        alpaca_endpoint_for(odd, {}, chat_confirmed=False)
    sim = AccountConfig(name="sim", broker=BrokerKind.SIM)
    with pytest.raises(AlpacaConfigError, match="sim"):
        alpaca_endpoint_for(sim, {}, chat_confirmed=False)


def test_each_account_uses_its_own_keys() -> None:
    env = {
        "ALPACA_MAIN_KEY_ID": "PKMAIN",
        "ALPACA_MAIN_SECRET_KEY": "main-secret",
        "ALPACA_REAL_KEY_ID": "AKREAL",
        "ALPACA_REAL_SECRET_KEY": "real-secret",
    }
    assert alpaca_credentials(PAPER, env).key_id.get_secret_value() == "PKMAIN"
    assert alpaca_credentials(LIVE, env).secret_key.get_secret_value() == "real-secret"
    assert "main-secret" not in repr(alpaca_credentials(PAPER, env))
    with pytest.raises(AlpacaConfigError, match="ALPACA_MAIN_KEY_ID"):
        alpaca_credentials(PAPER, {})


def test_the_adapter_refuses_a_hand_made_live_endpoint() -> None:
    clock = SimClock(DEFAULT_NOW)
    with pytest.raises(LiveTradingNotEnabled, match="alpaca_endpoint_for"):
        AlpacaBroker(AlpacaEndpoint(paper=False), KEYS, clock, account_name="real")
    env = {**LIVE_ENV, "ALPACA_REAL_KEY_ID": "AKX", "ALPACA_REAL_SECRET_KEY": "y"}
    with pytest.raises(LiveTradingNotEnabled):
        AlpacaBroker.for_account(LIVE, env, clock, chat_confirmed=False)
    live = AlpacaBroker.for_account(LIVE, env, clock, chat_confirmed=True)  # no network yet
    assert not live.paper and live.account_name == "real"
    assert "AKX" not in repr(live) and "AKX" not in repr(live.stream)
    live._client._session.close()
