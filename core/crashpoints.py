"""Labelled crash points: where the crash-matrix harness may kill the engine.

The engine calls `checkpoints.reached(LABEL)` at the points where a crash is most
dangerous (an intent written but not sent, an order sent but not recorded, ...).
Production passes `NO_CHECKPOINTS` (does nothing). The crash harness passes a
`KillAt`, which SIGKILLs the process the n-th time the chosen label is reached: no
`finally`, no flush, exactly like a power cut or an OOM kill.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from typing import Final, Protocol, runtime_checkable

AFTER_INTENT_WRITTEN: Final = "after_intent_written"
AFTER_SUBMIT_SENT: Final = "after_submit_sent"
AFTER_FILL_RECEIVED: Final = "after_fill_received"
AFTER_PROTECTION_SENT: Final = "after_protection_sent"
MID_KILL: Final = "mid_kill"
LABELS: Final = (
    AFTER_INTENT_WRITTEN,
    AFTER_SUBMIT_SENT,
    AFTER_FILL_RECEIVED,
    AFTER_PROTECTION_SENT,
    MID_KILL,
)
ENV_VAR: Final = "CENTAUR_CRASH_AT"  # "label" or "label:n" (the n-th time, from 1)


@runtime_checkable
class Checkpoints(Protocol):
    def reached(self, label: str) -> None: ...


class NoCheckpoints:
    """Production: crash points are plain markers."""

    def reached(self, label: str) -> None:
        return None


NO_CHECKPOINTS: Final = NoCheckpoints()


class KillAt:
    """SIGKILL this process the `nth` time `label` is reached."""

    def __init__(self, label: str, nth: int = 1) -> None:
        if label not in LABELS:
            raise ValueError(f"unknown crash point {label!r} (known: {', '.join(LABELS)})")
        self.label = label
        self.nth = nth
        self.seen = 0

    def reached(self, label: str) -> None:
        if label != self.label:
            return
        self.seen += 1
        if self.seen >= self.nth:
            os.kill(os.getpid(), signal.SIGKILL)


class Recorder:
    """Tests: remember which points were reached, in order."""

    def __init__(self) -> None:
        self.labels: list[str] = []

    def reached(self, label: str) -> None:
        self.labels.append(label)


def from_env(environ: Mapping[str, str] | None = None) -> Checkpoints:
    """`KillAt` when CENTAUR_CRASH_AT is set, else the no-op."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if not value:
        return NO_CHECKPOINTS
    label, _, nth = value.partition(":")
    return KillAt(label, int(nth) if nth else 1)


__all__ = [
    "AFTER_FILL_RECEIVED",
    "AFTER_INTENT_WRITTEN",
    "AFTER_PROTECTION_SENT",
    "AFTER_SUBMIT_SENT",
    "ENV_VAR",
    "LABELS",
    "MID_KILL",
    "NO_CHECKPOINTS",
    "Checkpoints",
    "KillAt",
    "NoCheckpoints",
    "Recorder",
    "from_env",
]
