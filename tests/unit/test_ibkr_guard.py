"""The IBKR live guard (brokers/ibkr/guard.py): a live account needs every live condition,
a paper account refuses the conventional live ports unless declared, and the gateway's
managed accounts (paper ids start with DU) must match the account's mode, on the first
connection and on every reconnect. All offline, on the FakeGateway."""

from __future__ import annotations

from dataclasses import replace
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from app.adapters import StartupError, connect_broker
from app.run_cmd import RunOptions, run
from brokers.ibkr import (
    IbkrBroker,
    IbkrConfig,
    IbkrLiveNotEnabled,
    IbkrModeMismatch,
    LinkState,
    ibkr_config_for,
)
from brokers.ibkr.testing import FakeGateway
from core.broker import BrokerUnavailable
from core.calendar import xnys
from core.clock import SimClock
from core.config_models import AccountConfig, AccountMode, AccountsConfig, BrokerKind
from core.domain import OrderType
from core.settings import DEFAULT_CONFIG_DIR, Settings, load_settings
from tests.kit.brokers import make_request, ny

PAPER = AccountConfig(name="ib-paper", broker=BrokerKind.IBKR, mode=AccountMode.PAPER)
LIVE = AccountConfig(name="ib-live", broker=BrokerKind.IBKR, mode=AccountMode.LIVE)
LIVE_ENV = {"CENTAUR_LIVE": "1"}
FAST: dict[str, Any] = {"pacing_rate": 1000.0, "pacing_burst": 64}


def live_config(**changes: Any) -> IbkrConfig:
    granted = ibkr_config_for(LIVE, LIVE_ENV, chat_confirmed=True)
    return replace(granted, **FAST, **changes)


async def connect(config: IbkrConfig, account: str) -> tuple[IbkrBroker, FakeGateway, SimClock]:
    clock = SimClock(ny(10))
    gateway = FakeGateway(clock=clock, account=account)
    broker = IbkrBroker(config, clock, ib=gateway.ib, calendar=xnys())
    await broker.connect()
    return broker, gateway, clock


def settings_with(tmp_path: Path, account: AccountConfig, **env: str) -> Settings:
    environ = {
        "TELEGRAM_BOT_TOKEN": "1:x",
        "TELEGRAM_ALLOWED_USERS": "7",
        "CENTAUR_DATA_DIR": str(tmp_path / "data"),
        **env,
    }
    settings = load_settings(DEFAULT_CONFIG_DIR, env_file=None, environ=environ)
    accounts = AccountsConfig(default=account.name, accounts=[account])
    return replace(settings, accounts=accounts)


# --- (a) a live account needs every live condition ------------------------------------


@pytest.mark.parametrize(
    ("env", "confirmed", "missing"),
    [
        ({}, True, "CENTAUR_LIVE=1 (unset)"),
        ({"CENTAUR_LIVE": "true"}, True, "CENTAUR_LIVE=1 (set to 'true')"),
        (LIVE_ENV, False, "not confirmed in the chat"),
    ],
)
def test_a_live_account_needs_every_live_condition(
    env: dict[str, str], confirmed: bool, missing: str
) -> None:
    with pytest.raises(IbkrLiveNotEnabled, match="ib-live") as caught:
        ibkr_config_for(LIVE, env, chat_confirmed=confirmed)
    assert any(missing in m for m in caught.value.missing)
    granted = ibkr_config_for(LIVE, LIVE_ENV, chat_confirmed=True)
    assert granted.live and granted.live_granted
    paper = ibkr_config_for(PAPER, LIVE_ENV, chat_confirmed=True)
    assert not paper.live  # a paper account is never upgraded to live


async def test_a_hand_built_live_config_is_refused_before_connecting() -> None:
    clock = SimClock(ny(10))
    gateway = FakeGateway(clock=clock, account="U7654321")
    broker = IbkrBroker(IbkrConfig(live=True, port=4001, **FAST), clock, ib=gateway.ib)
    with pytest.raises(IbkrModeMismatch, match="ibkr_config_for"):
        await broker.connect()
    assert "connect" not in gateway.requests
    await broker.close()


async def test_centaur_run_refuses_a_live_ibkr_account_without_centaur_live(
    tmp_path: Path,
) -> None:
    # Port 9: nothing listens. Before the guard the refusal was "cannot reach IB Gateway"
    # (it tried to connect); now it is the live guard's, before any socket.
    settings = settings_with(tmp_path, LIVE, IBKR_HOST="127.0.0.1", IBKR_PORT="9")
    out = StringIO()
    code = await run(settings, RunOptions(account="ib-live"), Console(file=out, width=400))
    text = out.getvalue()
    assert code == 2, text
    assert "live trading is not enabled for IBKR account 'ib-live'" in text
    assert "CENTAUR_LIVE=1" in text and "cannot reach" not in text


# --- (b) the gateway's managed accounts match the mode --------------------------------


async def test_a_paper_account_refuses_a_gateway_with_a_live_account() -> None:
    clock = SimClock(ny(10))
    gateway = FakeGateway(clock=clock, account="U7654321")
    broker = IbkrBroker(IbkrConfig(**FAST), clock, ib=gateway.ib)
    with pytest.raises(IbkrModeMismatch, match=r"mode: paper .* live account"):
        await broker.connect()
    assert "connect" in gateway.requests and not gateway.connected  # disconnected again
    assert broker.connection.state is LinkState.DISCONNECTED
    with pytest.raises(BrokerUnavailable):
        await broker.submit(make_request(OrderType.STOP, client_order_id="c-1"))
    assert "placeOrder" not in gateway.requests
    await broker.close()


async def test_a_live_account_refuses_a_paper_gateway() -> None:
    clock = SimClock(ny(10))
    gateway = FakeGateway(clock=clock, account="DU1234567")
    broker = IbkrBroker(live_config(), clock, ib=gateway.ib)
    with pytest.raises(IbkrModeMismatch, match=r"mode: live .* paper account"):
        await broker.connect()
    assert not gateway.connected
    await broker.close()


async def test_matching_modes_connect() -> None:
    paper, _, _ = await connect(IbkrConfig(**FAST), "DU1234567")
    live, _, _ = await connect(live_config(), "U7654321")
    assert paper.connection.is_up and live.connection.is_up
    await paper.close()
    await live.close()


async def test_a_gateway_without_managed_accounts_proves_nothing() -> None:
    clock = SimClock(ny(10))
    gateway = FakeGateway(clock=clock, account="")
    broker = IbkrBroker(IbkrConfig(**FAST), clock, ib=gateway.ib)
    with pytest.raises(IbkrModeMismatch, match="no managed accounts"):
        await broker.connect()
    await broker.close()


async def test_a_reconnect_to_a_gateway_of_the_other_mode_stays_down_and_alerts() -> None:
    alerts: list[str] = []
    clock = SimClock(ny(10))
    gateway = FakeGateway(clock=clock, account="DU1234567")
    config = IbkrConfig(**FAST, reconnect_initial_delay=1.0)
    broker = IbkrBroker(config, clock, ib=gateway.ib, calendar=xnys(), on_alert=alerts.append)
    await broker.connect()
    gateway.account = "U7654321"  # the daily restart came back with a live login
    gateway.drop()
    for _ in range(5):
        await gateway.settle()
        clock.advance(2)
        await gateway.settle(40)
    assert gateway.requests.count("connect") == 2  # one refused reconnect, no retry
    assert broker.connection.state is LinkState.DISCONNECTED and not gateway.connected
    assert isinstance(broker.connection.refused, IbkrModeMismatch)
    assert any("live account" in a and "reconnecting stopped" in a for a in alerts)
    with pytest.raises(BrokerUnavailable):
        await broker.submit(make_request(OrderType.STOP, client_order_id="c-1"))
    assert "placeOrder" not in gateway.requests
    await broker.close()


async def test_centaur_run_refuses_a_gateway_of_the_other_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = FakeGateway(account="U7654321")
    monkeypatch.setattr("brokers.ibkr.base.IB", lambda: gateway.ib)
    settings = settings_with(tmp_path, PAPER)
    out = StringIO()
    code = await run(settings, RunOptions(account="ib-paper"), Console(file=out, width=400))
    text = out.getvalue()
    assert code == 2, text
    assert "mode: paper but the gateway manages live account(s) (U7…321" in text
    assert "U7654321" not in text  # the account number is masked
    assert not gateway.connected


# --- (c) a paper account on a conventional live port ----------------------------------


@pytest.mark.parametrize("port", [4001, 7496])
async def test_a_paper_account_on_a_live_port_is_refused_before_connecting(port: int) -> None:
    clock = SimClock(ny(10))
    gateway = FakeGateway(clock=clock, account="DU1234567")
    broker = IbkrBroker(IbkrConfig(port=port, **FAST), clock, ib=gateway.ib)
    with pytest.raises(IbkrModeMismatch, match=f"port {port}.*IBKR_PAPER_ON_LIVE_PORT=1"):
        await broker.connect()
    assert "connect" not in gateway.requests
    await broker.close()


async def test_a_declared_paper_login_on_a_live_port_must_still_prove_paper() -> None:
    config = IbkrConfig.from_env({"IBKR_PORT": "4001", "IBKR_PAPER_ON_LIVE_PORT": "1"})
    config = replace(config, **FAST)
    paper, _, _ = await connect(config, "DU1234567")
    assert paper.connection.is_up
    await paper.close()
    clock = SimClock(ny(10))
    gateway = FakeGateway(clock=clock, account="U7654321")
    broker = IbkrBroker(config, clock, ib=gateway.ib)
    with pytest.raises(IbkrModeMismatch, match="live account"):
        await broker.connect()
    await broker.close()


async def test_connect_broker_turns_a_refusal_into_one_line(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, PAPER, IBKR_PORT="4001")
    with pytest.raises(StartupError, match="port 4001, a live-trading port"):
        await connect_broker(PAPER, settings, SimClock(ny(10)), xnys(), sim_state=None)
