"""The whole engine under interleavings (issue 12): the hypothesis state machine of
tests/model/engine_machine.py, on a bounded budget (about a minute on one core).

Derandomized, so CI explores the same programs every run (a failure reproduces with the
printed `@reproduce_failure` blob). `benchmarks/engine_soak.py --minutes N` runs the
same machine with random seeds for longer.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.model.engine_machine import EngineMachine

EngineMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    print_blob=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

TestEngineModel = EngineMachine.TestCase
