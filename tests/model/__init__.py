"""Model-based tests of the whole engine (issue 12): a hypothesis state machine driving
TradingEngine + SimBroker + a file ledger through faults, restarts, kills and races."""
