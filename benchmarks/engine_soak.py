"""Soak the whole engine: the model-based test of tests/model/engine_machine.py with
random seeds, for as long as asked.

    uv run python benchmarks/engine_soak.py --minutes 10
    uv run python benchmarks/engine_soak.py --seed 1234567   # replay one failing batch

Each batch is one hypothesis run of `--examples` programs of up to `--steps` steps with a
fresh random seed (printed before it runs). A broken invariant stops the soak: hypothesis
shrinks it and prints the shortest program it found with a `@reproduce_failure` blob, the
script prints the failing seed (replay it with `--seed`) and exits 1. Otherwise it prints
the figures (steps run, invariant checks, steps per second, examples run) and exits 0.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, seed, settings  # noqa: E402
from hypothesis.stateful import get_state_machine_test  # noqa: E402
from loguru import logger  # noqa: E402

from tests.model.engine_machine import STATS, EngineMachine  # noqa: E402


def run_batch(batch_seed: int, examples: int, steps: int) -> None:
    """One hypothesis run of the engine machine; raises on a broken invariant."""
    test = get_state_machine_test(
        EngineMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            derandomize=False,
            print_blob=True,
            suppress_health_check=list(HealthCheck),
        ),
    )
    seed(batch_seed)(test)()


def figures(elapsed: float, batches: int) -> str:
    rate = STATS.steps / elapsed if elapsed > 0 else 0.0
    outcomes = ", ".join(f"{k} {v}" for k, v in STATS.outcomes.most_common())
    return "\n".join(
        [
            f"  wall time          {elapsed:.1f} s ({batches} batches)",
            f"  examples run       {STATS.examples}",
            f"  steps run          {STATS.steps}",
            f"  steps per second   {rate:.1f}",
            f"  invariant checks   {STATS.checks} "
            f"({STATS.quiet_checks} quiet reconciles, {STATS.kills_checked} kill reports)",
            f"  confirms tapped    {STATS.confirms} ({STATS.placed} placed)",
            f"  entries filled     {STATS.entries_filled}",
            f"  crash restarts     {STATS.restarts}",
            f"  confirm outcomes   {outcomes or '-'}",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="how long to soak")
    parser.add_argument("--seed", type=int, default=None, help="replay one batch's seed")
    parser.add_argument("--examples", type=int, default=20, help="programs per batch")
    parser.add_argument("--steps", type=int, default=60, help="steps per program at most")
    args = parser.parse_args()
    logger.remove()  # the engine logs every injected fault; the figures are the output
    seeds = random.SystemRandom()
    started = time.monotonic()
    deadline = started + args.minutes * 60
    batches = 0
    while True:
        batch_seed = args.seed if args.seed is not None else seeds.randrange(2**32)
        print(f"batch {batches + 1}: seed {batch_seed}", flush=True)
        try:
            run_batch(batch_seed, args.examples, args.steps)
        except Exception:
            traceback.print_exc()
            print(f"\nINVARIANT BROKEN with seed {batch_seed}", flush=True)
            print(
                f"replay: uv run python benchmarks/engine_soak.py --seed {batch_seed} "
                f"--examples {args.examples} --steps {args.steps}"
            )
            print(figures(time.monotonic() - started, batches + 1))
            return 1
        batches += 1
        if args.seed is not None or time.monotonic() >= deadline:
            break
    print(f"engine soak: no invariant broken in {args.minutes:g} min")
    print(figures(time.monotonic() - started, batches))
    return 0


if __name__ == "__main__":
    sys.exit(main())
