"""The simulated broker: Alpaca's rules, driven by bars and an injected clock."""

from brokers.sim.broker import SimBroker
from brokers.sim.config import PartialFills, SimConfig, SimFaults

__all__ = ["PartialFills", "SimBroker", "SimConfig", "SimFaults"]
