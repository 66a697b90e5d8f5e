"""The backtester of SPEC-signals.md: regime, signal and execution backtests.

`run.run_all` (data in memory -> `BacktestResult`), `engine.execute_block` (the fast
per-session execution) and `engine.replay_session` (the literal order of work), the
outputs, summary statistics, stability and sweeps. The command is `app.backtest_cmd`.
"""
