"""Interactive Brokers adapter on ib_async, with broker-side attached protection."""

from brokers.ibkr.adapter import IbkrBroker
from brokers.ibkr.attached import (
    AttachedProtectionRefused,
    AttachedState,
    SupportsAttachedProtection,
)
from brokers.ibkr.config import LIVE_PORT, PAPER_PORT, IbkrConfig, ibkr_config_for
from brokers.ibkr.connection import IbkrConnection, LinkState
from brokers.ibkr.guard import IbkrLiveNotEnabled, IbkrModeMismatch
from brokers.ibkr.marketdata import IbkrBarFeed
from brokers.ibkr.records import IbOrderIds

__all__ = [
    "LIVE_PORT",
    "PAPER_PORT",
    "AttachedProtectionRefused",
    "AttachedState",
    "IbOrderIds",
    "IbkrBarFeed",
    "IbkrBroker",
    "IbkrConfig",
    "IbkrConnection",
    "IbkrLiveNotEnabled",
    "IbkrModeMismatch",
    "LinkState",
    "SupportsAttachedProtection",
    "ibkr_config_for",
]
