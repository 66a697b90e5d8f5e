"""Crash matrix: SIGKILL the engine at every labelled point, restart on the same files.

Each case runs `crash_runner.py run` in a subprocess with CENTAUR_CRASH_AT set, expects
it to die by SIGKILL at that point, then runs `crash_runner.py recover` on the same
ledger and SimBroker files. After one recovery (start == reconcile, then the rest of the
script and one more reconcile cycle) every case must show:
- exactly one broker order per intent (none for an intent that never reached it),
- the ledger equal to the broker: every order's status and filled quantity, positions,
- every long position protected by exactly its quantity of working sells, or flat.
The cases run two at a time (the machine has two cores).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from core.crashpoints import (
    AFTER_FILL_RECEIVED,
    AFTER_INTENT_WRITTEN,
    AFTER_PROTECTION_SENT,
    AFTER_SUBMIT_SENT,
    ENV_VAR,
    MID_KILL,
)

RUNNER = Path(__file__).with_name("crash_runner.py")
ROOT = RUNNER.parents[2]
CASES = {
    "entry intent written": f"{AFTER_INTENT_WRITTEN}:1",
    "entry sent, answer lost": f"{AFTER_SUBMIT_SENT}:1",
    "fill received": f"{AFTER_FILL_RECEIVED}:1",
    "protection intent written": f"{AFTER_INTENT_WRITTEN}:2",
    "protection sent, answer lost": f"{AFTER_PROTECTION_SENT}:1",
    "mid kill": f"{MID_KILL}:1",
    "kill's flatten sent, answer lost": f"{AFTER_SUBMIT_SENT}:2",
}


async def _run(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(RUNNER),
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")[-4000:]


async def _case(folder: Path, crash_at: str, gate: asyncio.Semaphore) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    async with gate:
        code, output = await _run("run", str(folder), env={**env, ENV_VAR: crash_at})
        crashed = code == -signal.SIGKILL
        code2, output2 = await _run("recover", str(folder), env=env)
    result_file = folder / "result.json"
    result: dict[str, Any] = json.loads(result_file.read_text()) if result_file.exists() else {}
    result.update(crashed=crashed, run_output=output, recover_code=code2, recover_output=output2)
    return result


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    base = tmp_path_factory.mktemp("crash")

    async def all_cases() -> dict[str, dict[str, Any]]:
        gate = asyncio.Semaphore(2)
        names = list(CASES)
        results = await asyncio.gather(
            *(_case(base / f"case{i}", CASES[n], gate) for i, n in enumerate(names))
        )
        return dict(zip(names, results, strict=True))

    for i in range(len(CASES)):
        (base / f"case{i}").mkdir()
    return asyncio.run(all_cases())


@pytest.mark.parametrize("case", list(CASES))
def test_recovers_to_a_true_and_protected_ledger(
    matrix: dict[str, dict[str, Any]], case: str
) -> None:
    result = matrix[case]
    assert result["crashed"], f"no SIGKILL at {CASES[case]}:\n{result['run_output']}"
    assert result["recover_code"] == 0, result["recover_output"]

    broker = {o["client_order_id"]: o for o in result["broker_orders"]}
    ledger = {o["client_order_id"]: o for o in result["ledger_orders"]}
    # Exactly one broker order per intent (client ids are unique at the broker), and an
    # intent without one is one that never reached it.
    for cid, row in ledger.items():
        if cid in broker:
            assert row["broker_order_id"] == broker[cid]["broker_order_id"], cid
        else:
            assert row["status"] == "rejected", row
            assert "never reached the broker" in (row["reject_reason"] or ""), row
    # The ledger knows every broker order, with the broker's status and filled quantity.
    for cid, order in broker.items():
        assert cid in ledger, f"broker order {cid} is missing from the ledger"
        assert ledger[cid]["status"] == order["status"], (cid, ledger[cid], order)
        assert ledger[cid]["filled_qty"] == order["filled_qty"], (cid, ledger[cid], order)
    # One draft, one entry that reached the broker.
    entries = Counter(
        o["draft_id"]
        for o in ledger.values()
        if o["role"] == "entry" and o["client_order_id"] in broker
    )
    assert all(count == 1 for count in entries.values()), entries
    # Positions agree, and every long share is covered by a working sell (or it is flat).
    assert result["ledger_positions"] == result["broker_positions"]
    for symbol, qty in result["broker_positions"].items():
        if Decimal(qty) > 0:
            assert Decimal(result["open_sells"].get(symbol, "0")) == Decimal(qty), result
    if result["kill_started"]:
        assert result["broker_positions"] == {}, "a kill was under way: the restart finishes it"
    assert result["final_reconcile_in_sync"]
