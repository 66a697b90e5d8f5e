"""`centaur demo`: the README's main command."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel

PLANNED = """\
The demo will start, on this machine and with no accounts or network:
  - a local Telegram Bot API emulator with a web chat page (URL printed here),
  - the real Centaur bot talking to it,
  - a simulated broker and a fast replay of a bundled synthetic trend day with a clean
    VWAP pullback, starting shortly before the first entry window,
so you can allow the day, draft and confirm the signal, watch the fill and its trailing
stop protection, and /kill, all from the browser.

It is not assembled yet: the parts land issue by issue (see README, "Status").
Today you can already run:
  uv run centaur signals --data <folder of bars> --out out/
  uv run centaur events
  uv run centaur doctor"""


def run_demo(console: Console) -> int:
    console.print(Panel(PLANNED, title="centaur demo", border_style="cyan"))
    return 0
