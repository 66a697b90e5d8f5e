"""Load-bearing safety checks: every guard on money has a test that fails without it.

A hand-written, named list of mutations of the safety-critical code (confirm, protection,
reconcile, the order tracker, placement, kill, the risk gate, the order model and the
access gate). Each mutation deletes or inverts ONE check: (name, file, the exact original
snippet, its replacement, the tests that should catch it).

The working checkout is never modified (others work in it): the tracked files are copied
once into a temporary directory per job, next to a `shared` symlink to the real
`../shared` (the tests reach it as a sibling of the checkout). For each mutation the
script applies it in the copy, runs the mutation's targeted pytest selection with
`-x -q -p no:cacheprovider` using the checkout's virtualenv with the copy as the working
directory and first on PYTHONPATH, restores the file and records the result:

- killed:   the selection failed with the mutation applied (what we want);
- survived: the selection passed: the guard is held by no test;
- error:    the snippet is stale (not found exactly once), the selection does not pass
            without the mutation (baseline), or pytest could not run it.

Before the list, a sanity mutation that must be killed proves the copy's code is what
the tests import. Exit 1 if any mutation survived or errored.

    uv run python scripts/mutate_safety.py              # the whole list
    uv run python scripts/mutate_safety.py --list       # names, files, selections
    uv run python scripts/mutate_safety.py --only kill.halted_kept --only risk.safe_mode
    uv run python scripts/mutate_safety.py --jobs 2
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 300  # a mutation that hangs the selection counts as killed (it does not pass)


@dataclass(frozen=True, slots=True)
class Mutation:
    name: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]
    why: str


@dataclass(frozen=True, slots=True)
class Result:
    mutation: Mutation
    outcome: str  # killed | survived | error
    seconds: float
    detail: str = ""


# --- test selections -----------------------------------------------------------------------

MS = "tests/integration/test_engine_money_safety.py"
KILL = "tests/integration/test_engine_kill.py"
REC = "tests/integration/test_engine_reconcile.py"
ORD = "tests/integration/test_engine_orders.py"
PROT = "tests/integration/test_engine_protection.py"
ATT = "tests/integration/test_engine_attached.py"
ALP = "tests/integration/test_engine_alpaca_faults.py"
RISK = "tests/unit/test_risk.py"
OSM = "tests/unit/test_order_state_machine.py"
ACCESS = "tests/unit/test_bot_access.py"
E2E_ACCESS = "tests/e2e/test_bot_kill_access.py"
SGI = "tests/integration/test_safety_guards.py"


def node(path: str, test: str) -> str:
    return f"{path}::{test}"


# --- the mutations ---------------------------------------------------------------------------

SANITY = Mutation(
    "sanity.copy_is_imported",
    "core/risk.py",
    '        """Every failing rule as a reason; allowed only when there is none."""\n',
    '        """Every failing rule as a reason; allowed only when there is none."""\n'
    '        raise RuntimeError("mutate_safety sanity mutation")\n',
    (node(RISK, "test_a_clean_entry_passes_with_its_figures"),),
    "proves the tests import the copy's code: must be killed",
)

# Guards deliberately NOT in the list, and why (each was tried as a mutation and survived):
# - reconcile: a PROTECTION intent found never-reached has its link canceled. Only an
#   IBKR attached child is linked before it is acknowledged, and with its link left active
#   the symbol-level pass (held minus live sells) still protects the shares: the guard
#   decides which order covers them, not whether they are covered.
# - reconcile `_shrink_protection` sparing a child whose entry still works, and
#   order_tracker skipping a fill whose execution id the ledger holds: not shown load-
#   bearing yet (the order model's own de-duplication by execution id, mutation
#   orders.fill_dedup, and the adapter re-sizing the child hold what was tried); open.
MUTATIONS: tuple[Mutation, ...] = (
    # --- confirm ---------------------------------------------------------------------------
    Mutation(
        "confirm.halted_check",
        "core/confirm.py",
        "        if ctx.halted:\n            return ConfirmResult(\n"
        '                draft_id, ConfirmOutcome.REFUSED_RISK, "a kill is running',
        "        if False:\n            return ConfirmResult(\n"
        '                draft_id, ConfirmOutcome.REFUSED_RISK, "a kill is running',
        (node(SGI, "test_a_confirm_while_a_kill_left_the_account_halted_places_nothing"),),
        "a confirm while the account is halted (kill running or not flat) places an order",
    ),
    Mutation(
        "confirm.double_tap_transition",
        "core/confirm.py",
        "        intents: AttachedIntents | None = None\n"
        "        with ctx.ledger.unit_of_work() as uow:\n"
        "            if not uow.drafts.transition_if(draft.id, DraftStatus.PENDING, "
        "DraftStatus.CONFIRMED):",
        "        intents: AttachedIntents | None = None\n"
        "        with ctx.ledger.unit_of_work() as uow:\n"
        "            if not (uow.drafts.transition_if(draft.id, DraftStatus.PENDING, "
        "DraftStatus.CONFIRMED) or True):",
        (SGI,),
        "a draft that left PENDING during the confirm's risk check is still sent",
    ),
    Mutation(
        "confirm.entry_lock",
        "core/confirm.py",
        "        async with self._ctx.entry_lock:\n"
        "            return await self._confirm(draft_id)",
        "        return await self._confirm(draft_id)",
        (node(MS, "test_a_confirm_in_flight_when_a_kill_starts_is_canceled_by_the_kill"),),
        "a kill does not wait for a confirm's send in flight: it reports flat, then the "
        "order lands",
    ),
    # --- protection ------------------------------------------------------------------------
    Mutation(
        "ladder.accepted_test",
        "core/protection_ladder.py",
        "        if view.status not in WORKING:\n",
        "        if False:\n",
        (
            node(
                SGI,
                "test_a_protection_the_broker_rejects_after_taking_it_falls_back_to_a_plain_stop",
            ),
        ),
        "a protection the broker never accepted counts as placed: no fallback",
    ),
    Mutation(
        "ladder.submitted_is_not_accepted",
        "core/protection_ladder.py",
        "WORKING = (S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED)",
        "WORKING = (S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED)",
        (node(SGI, "test_a_protection_never_acknowledged_is_not_counted_as_protection"),),
        "a protection only SUBMITTED (never acknowledged) counts as placed",
    ),
    Mutation(
        "protection.staged_halted",
        "core/protection.py",
        "                if self._ctx.halted:\n                    if staged.intent is not None:",
        "                if False:\n                    if staged.intent is not None:",
        (SGI,),
        "a staged trailing stop is sent during a kill",
    ),
    Mutation(
        "protection.protect_entry_halted",
        "core/protection.py",
        "        if self._ctx.halted:\n"
        "            return None\n"
        "        entry = self._fresh(entry_id)",
        "        if False:\n            return None\n        entry = self._fresh(entry_id)",
        (SGI,),
        "the entry protection path places a stop during a kill",
    ),
    Mutation(
        "protection.ensure_symbol_halted",
        "core/protection.py",
        "            if self._ctx.halted or self.entry_task_running(symbol):",
        "            if self.entry_task_running(symbol):",
        (SGI,),
        "the reconcile protection path places a stop during a kill",
    ),
    Mutation(
        "protection.stage_on_fill_halted",
        "core/protection.py",
        "            self._ctx.halted\n            or entry.role is not OrderRole.ENTRY",
        "            False\n            or entry.role is not OrderRole.ENTRY",
        (SGI,),
        "the fill hook writes a protection intent during a kill",
    ),
    Mutation(
        "protection.partial_fill_settle",
        "core/protection.py",
        "        if not entry.is_terminal:\n"
        "            entry = await self._settle_partial(entry)\n",
        "",
        (node(PROT, "test_partial_fill_waits_cancels_the_rest_and_protects_the_total"), SGI),
        "protection is sent while the buy remainder still works (a wash trade)",
    ),
    Mutation(
        "protection.settle_cancels_remainder",
        "core/protection.py",
        "        if view.is_terminal:\n            return view\n        logger.info(",
        "        if True:\n            return view\n        logger.info(",
        (node(PROT, "test_partial_fill_waits_cancels_the_rest_and_protects_the_total"), SGI),
        "the partial-fill wait ends without canceling the remainder",
    ),
    Mutation(
        "protection.resume_partial_entries",
        "core/protection.py",
        "            if self._resume_partial_entries(symbol):\n                return []",
        "            if False:\n                return []",
        (node(MS, "test_a_restart_during_the_partial_fill_wait_resumes_it_and_protects"),),
        "after a restart in the partial-fill wait, protection sells into the working buy",
    ),
    Mutation(
        "protection.clear_blocking_on_fill",
        "core/protection.py",
        "                if staged.waiting_entries:  # known from the fill's own unit of work",
        "                if False:",
        (node(MS, "test_a_fill_is_protected_even_while_another_entry_of_the_symbol_works"),),
        "a fill's protective sell is sent against our own working stop-buy: a wash trade",
    ),
    Mutation(
        "protection.clear_blocking_on_reconcile",
        "core/protection.py",
        "                await self._clear_blocking_entries(symbol, qty)\n",
        "",
        (node(MS, "test_shares_appearing_while_an_entry_works_are_protected"),),
        "held shares stay unprotected while our stop-buy of the symbol works",
    ),
    Mutation(
        "protection_book.waiting_entries_found",
        "core/protection_book.py",
        "            if r.side == Side.BUY\n",
        "            if False\n",
        (node(MS, "test_a_fill_is_protected_even_while_another_entry_of_the_symbol_works"),),
        "the fill path never sees the working stop-buy that blocks its protection",
    ),
    Mutation(
        "confirm.unknown_stop_sell_not_reopened",
        "core/confirm.py",
        "            if result.order is not None and not result.order.is_terminal:",
        "            if False:",
        (node(MS, "test_a_stop_sell_whose_outcome_is_unknown_is_not_reopened"),),
        "a stop-sell whose outcome is unknown is reopened: a second tap sends a second one",
    ),
    # --- reconcile -------------------------------------------------------------------------
    Mutation(
        "reconcile.may_still_land",
        "core/reconcile.py",
        "            if self._tracker.may_still_land(view, horizon):\n                continue",
        "            if False:\n                continue",
        (
            node(MS, "test_a_reconcile_never_judges_an_intent_whose_send_is_in_flight"),
            node(MS, "test_an_intent_is_judged_only_after_its_send_ended_long_enough_ago"),
        ),
        "an intent in flight is judged never-reached: a second order for one draft",
    ),
    Mutation(
        "reconcile.stale_snapshot_version",
        "core/reconcile.py",
        "snapshots.values(), fills, queried_at_version=mark",
        "snapshots.values(), fills, queried_at_version=None",
        (node(MS, "test_a_reconcile_never_applies_a_snapshot_older_than_a_stream_event"),),
        "a snapshot older than a stream event takes the order back",
    ),
    Mutation(
        "reconcile.first_sight_needs_account_learnt",
        "core/reconcile.py",
        "            first_sight = not uow.risk_events.any_of_kind(\n"
        "                ctx.account.row_id, ACCOUNT_LEARNT\n"
        "            ) and not uow.positions.latest(",
        "            first_sight = not uow.positions.latest(",
        (node(MS, "test_a_position_appearing_on_an_always_flat_account_is_a_mismatch"),),
        "a position appearing on an always-flat account is adopted silently",
    ),
    Mutation(
        "reconcile.account_learnt_mark",
        "core/reconcile.py",
        "            if first_sight:\n                uow.risk_events.record(",
        "            if False:\n                uow.risk_events.record(",
        (
            node(MS, "test_a_position_appearing_on_an_always_flat_account_is_a_mismatch"),
            node(MS, "test_a_position_appearing_between_runs_on_a_flat_account_is_a_mismatch"),
        ),
        "the first reconcile is never marked: every later one is a first sight",
    ),
    Mutation(
        "reconcile.mismatch_reported",
        "core/reconcile.py",
        "                if not first_sight:\n                    mismatches.append(line)",
        "                if False:\n                    mismatches.append(line)",
        (node(REC, "test_a_position_changed_outside_centaur_means_safe_mode_and_protection"),),
        "an unexplained position change is adopted without a mismatch",
    ),
    Mutation(
        "reconcile.mismatch_safe_mode",
        "core/reconcile.py",
        "        if mismatches:\n            await self._day.enter_safe_mode(",
        "        if False:\n            await self._day.enter_safe_mode(",
        (node(REC, "test_a_position_changed_outside_centaur_means_safe_mode_and_protection"),),
        "a mismatch does not put the account in SAFE MODE",
    ),
    Mutation(
        "reconcile.shrink_protection",
        "core/reconcile.py",
        "            if total <= held[symbol]:\n                continue",
        "            if True:\n                continue",
        (node(MS, "test_protection_is_resized_when_the_position_shrinks"),),
        "protection larger than the position stays (sells short when it triggers)",
    ),
    Mutation(
        "reconcile.orphans_spare_attached_child",
        "core/reconcile.py",
        "                if parent is not None and not parent.status.is_terminal:\n"
        "                    continue  # an attached child waiting for its entry to fill",
        "                if False:\n"
        "                    continue  # an attached child waiting for its entry to fill",
        (node(ATT, "test_reconcile_keeps_the_child_of_a_working_parent"),),
        "the attached child of a working entry is canceled as an orphan",
    ),
    Mutation(
        "reconcile.orphans_only_without_position",
        "core/reconcile.py",
        "            if view.symbol.upper() in held or view.broker_order_id is None:",
        "            if view.broker_order_id is None:",
        (REC,),
        "the protection of a held position is canceled as an orphan",
    ),
    Mutation(
        "tracker.stale_snapshot",
        "core/order_tracker.py",
        "        return self._changed_at.get(snapshot.client_order_id, 0) > queried_at_version",
        "        return False",
        (node(MS, "test_a_reconcile_never_applies_a_snapshot_older_than_a_stream_event"),),
        "no snapshot is ever stale",
    ),
    Mutation(
        "tracker.may_still_land_in_flight",
        "core/order_tracker.py",
        "        if self.in_flight(cid):\n            return True\n",
        "",
        (node(MS, "test_a_reconcile_never_judges_an_intent_whose_send_is_in_flight"),),
        "an intent whose send is in flight can be judged never-reached",
    ),
    Mutation(
        "tracker.may_still_land_horizon",
        "core/order_tracker.py",
        "        return last > horizon",
        "        return False",
        (node(MS, "test_an_intent_is_judged_only_after_its_send_ended_long_enough_ago"),),
        "an intent whose send just timed out is judged never-reached at once",
    ),
    Mutation(
        "tracker.filled_qty_only_grows",
        "core/order_tracker.py",
        "        if snapshot.filled_qty > row.filled_qty:",
        "        if snapshot.filled_qty != row.filled_qty:",
        (SGI,),
        "a snapshot with fewer filled shares shrinks what the ledger knows was filled",
    ),
    # --- placement -------------------------------------------------------------------------
    Mutation(
        "placement.lookup_before_resolve",
        "core/placement.py",
        "        for delay in self._ctx.options.lookup_delays:",
        "        for delay in ():",
        (node(ORD, "test_ambiguous_submit_resolved_by_lookup_gives_one_order"), SGI),
        "an ambiguous send is never looked up by client order id",
    ),
    Mutation(
        "placement.rate_limited_definitive",
        "core/placement.py",
        "            return await self._resolve(intent, exc, definitive=True)",
        "            return await self._resolve(intent, exc, definitive=False)",
        (node(ORD, "test_rate_limited_submit_never_reached_then_a_new_attempt"),),
        "a 429 is reported as 'the answer was lost' and the draft is stuck",
    ),
    Mutation(
        "placement.only_definitive_is_never_reached",
        "core/placement.py",
        "        if definitive and (looked_up or isinstance(exc, RateLimited)):",
        "        if looked_up or isinstance(exc, RateLimited):",
        (SGI,),
        "a timed-out send not found yet is judged never-reached (it can still land)",
    ),
    # --- kill ------------------------------------------------------------------------------
    Mutation(
        "kill.halts_first",
        "core/kill.py",
        "        ctx.halted = True\n        self._mark(KILL_STARTED",
        "        self._mark(KILL_STARTED",
        (SGI,),
        "confirms and protection keep going while the kill runs",
    ),
    Mutation(
        "kill.halted_kept_when_not_flat",
        "core/kill.py",
        "        ctx.halted = not all_flat",
        "        ctx.halted = False",
        (node(MS, "test_a_kill_while_the_broker_is_down_retries_until_flat"), SGI),
        "a kill that is not flat releases the halt",
    ),
    Mutation(
        "kill.still_working_verified",
        "core/kill.py",
        "                working = await self._still_working(notes)",
        "                working = []",
        (node(SGI, "test_an_order_placed_outside_during_the_kill_means_not_flat"),),
        "the kill says flat while an order works at the broker",
    ),
    Mutation(
        "kill.entry_lock_second_pass",
        "core/kill.py",
        "            async with ctx.entry_lock:\n                if await self._anything_open()",
        "            async with asyncio.Lock():\n                if await self._anything_open()",
        (node(MS, "test_a_confirm_in_flight_when_a_kill_starts_is_canceled_by_the_kill"), SGI),
        "the kill verifies before a confirm in flight has placed its order",
    ),
    Mutation(
        "kill.second_pass",
        "core/kill.py",
        "                if await self._anything_open() or any(",
        "                if False and any(",
        (node(MS, "test_a_confirm_in_flight_when_a_kill_starts_is_canceled_by_the_kill"), SGI),
        "what a confirm in flight placed is never canceled",
    ),
    # --- risk gate -------------------------------------------------------------------------
    Mutation(
        "risk_gate.working_entries_counted",
        "core/risk_gate.py",
        "            working_entries=not_started,",
        "            working_entries=0,",
        (node(MS, "test_working_entries_count_against_trades_per_day"),),
        "trades-per-day ignores confirmed entries still working",
    ),
    Mutation(
        "risk_gate.working_qty_counted",
        "core/risk_gate.py",
        "            working_qty=unfilled,",
        "            working_qty=ZERO,",
        (node(MS, "test_working_entries_count_against_position_size"),),
        "position size ignores the unfilled shares of working entries",
    ),
    Mutation(
        "risk_gate.fresh_account_on_confirm",
        "core/risk_gate.py",
        "await self.entry_context(symbol, side, trigger, stop, qty, fresh=True)",
        "await self.entry_context(symbol, side, trigger, stop, qty, fresh=False)",
        (node(MS, "test_an_entry_whose_risk_cannot_be_checked_is_refused"), SGI),
        "a confirm is checked against a stale account snapshot",
    ),
    Mutation(
        "risk_gate.opposite_side_detected",
        "core/risk_gate.py",
        "        if not self._ctx.broker.capabilities.refuses_opposite_side:\n"
        "            return None",
        "        if True:\n            return None",
        (node(MS, "test_a_stop_buy_is_refused_on_the_card_while_a_protective_sell_works"),),
        "a stop-buy is sent against a working protective sell (a wash trade)",
    ),
    Mutation(
        "risk.account_unknown_refused",
        "core/risk.py",
        "        if ctx.account_unknown is not None:\n            out.append(",
        "        if False:\n            out.append(",
        (node(MS, "test_an_entry_whose_risk_cannot_be_checked_is_refused"), RISK),
        "an entry whose risk cannot be checked goes ahead",
    ),
    Mutation(
        "risk.opposite_side_refused",
        "core/risk.py",
        "        if ctx.opposite_side_open is not None:",
        "        if False:",
        (node(MS, "test_a_stop_buy_is_refused_on_the_card_while_a_protective_sell_works"),),
        "a stop-buy against a working sell is not refused",
    ),
    Mutation(
        "risk.trade_limit",
        "core/risk.py",
        "        if trades_today < limit:\n            return None",
        "        if True:\n            return None",
        (RISK,),
        "the day's trade limit neither refuses nor locks",
    ),
    Mutation(
        "risk.working_entries_limit",
        "core/risk.py",
        "        if ctx.trades_today + ctx.working_entries < limit:",
        "        if ctx.trades_today < limit:",
        (RISK, node(MS, "test_working_entries_count_against_trades_per_day")),
        "working entries do not count against the trade limit",
    ),
    Mutation(
        "risk.position_usd_limit",
        "core/risk.py",
        "        if position > cfg.max_position_usd:",
        "        if False:",
        (RISK,),
        "the $ position limit is never applied",
    ),
    Mutation(
        "risk.position_counts_working_qty",
        "core/risk.py",
        "        position = (ctx.existing_position_qty + ctx.working_qty + ctx.qty) * ctx.trigger",
        "        position = (ctx.existing_position_qty + ctx.qty) * ctx.trigger",
        (RISK, node(MS, "test_working_entries_count_against_position_size")),
        "the position limit ignores the shares of working entries",
    ),
    Mutation(
        "risk.per_trade_risk_limit",
        "core/risk.py",
        "        elif figures.risk_usd > cfg.max_risk_per_trade_usd:",
        "        elif False:",
        (RISK,),
        "the per-trade risk limit is never applied",
    ),
    Mutation(
        "risk.daily_loss_usd",
        "core/risk.py",
        "        if total <= -cfg.max_daily_loss_usd:",
        "        if False:",
        (RISK,),
        "the $ daily loss limit neither refuses nor locks",
    ),
    Mutation(
        "risk.daily_loss_r",
        "core/risk.py",
        "        if realized_r <= -cfg.max_daily_loss_r:",
        "        if False:",
        (RISK,),
        "the R daily loss limit neither refuses nor locks",
    ),
    Mutation(
        "risk_gate.daily_loss_lock",
        "core/risk_gate.py",
        "        if breach is None:\n            return False",
        "        if True:\n            return False",
        (SGI,),
        "the daily loss watch never LOCKS the day",
    ),
    Mutation(
        "risk.safe_mode_refused",
        "core/risk.py",
        "        if ctx.safe_mode or state is SessionState.SAFE_MODE:",
        "        if False:",
        (RISK,),
        "entries go ahead in SAFE MODE",
    ),
    Mutation(
        "risk.locked_refused",
        "core/risk.py",
        "        if ctx.locked or state is SessionState.LOCKED:",
        "        if False:",
        (RISK,),
        "entries go ahead on a LOCKED day",
    ),
    Mutation(
        "risk.no_shorts",
        "core/risk.py",
        "        if ctx.side is not Side.BUY:\n            out.append(",
        "        if False:\n            out.append(",
        (RISK,),
        "a sell entry (a short) is allowed",
    ),
    # --- order model -----------------------------------------------------------------------
    Mutation(
        "orders.fill_dedup",
        "core/orders.py",
        "        if fill is not None and fill.execution_id in self._execution_ids:\n"
        "            return []",
        "        if False:\n            return []",
        (OSM,),
        "the same fill event counts twice",
    ),
    Mutation(
        "orders.no_overfill",
        "core/orders.py",
        "        if self._filled + fill.qty > self.qty:",
        "        if False:",
        (OSM,),
        "fills beyond the order quantity are accepted",
    ),
    Mutation(
        "orders.illegal_transition_raises",
        "core/orders.py",
        "        except KeyError:\n"
        "            raise IllegalTransition(self._label(), self._status, trigger) from None",
        "        except KeyError:\n            return SAME",
        (OSM,),
        "a second, different ending (canceled after filled) is silently ignored",
    ),
    # --- access gate -----------------------------------------------------------------------
    Mutation(
        "access.allowed_users_only",
        "bot/access.py",
        "        if user_id is None or chat_id is None or user_id not in self.users:",
        "        if user_id is None or chat_id is None:",
        (ACCESS,),
        "any Telegram user may drive the bot",
    ),
    Mutation(
        "access.allowed_chats_only",
        "bot/access.py",
        "        return chat_id == user_id or chat_id in self.chats",
        "        return True",
        (ACCESS,),
        "an allowed user can make the bot act in any group",
    ),
    Mutation(
        "access.gate_stops_strangers",
        "bot/access.py",
        "    if deps.access.allows(user_id, chat_id):\n        return",
        "    if True:\n        return",
        (node(E2E_ACCESS, "test_a_stranger_gets_nothing_but_their_own_ids"),),
        "the gate lets a stranger's update through to the handlers",
    ),
)


# --- the copies ------------------------------------------------------------------------------


def tracked_files(repo: Path, rev: str | None) -> list[str]:
    if rev is None:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=repo, check=True, capture_output=True
        ).stdout
    else:
        out = subprocess.run(
            ["git", "ls-tree", "-r", "-z", "--name-only", rev],
            cwd=repo,
            check=True,
            capture_output=True,
        ).stdout
    return [p for p in out.decode().split("\0") if p]


def make_copy(repo: Path, into: Path, files: Sequence[str], rev: str | None) -> Path:
    """`into/main` (the copy) and `into/shared` -> the real ../shared."""
    into.mkdir(parents=True)
    shared = repo.parent / "shared"
    if shared.exists():
        (into / "shared").symlink_to(shared.resolve())
    copy = into / "main"
    if rev is None:
        for rel in files:
            src = repo / rel
            if not src.is_file():
                continue  # deleted in the work tree and not committed yet
            dst = copy / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    else:
        copy.mkdir()
        archive = subprocess.run(
            ["git", "archive", "--format=tar", rev], cwd=repo, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(copy)], input=archive, check=True)
    return copy


def python_for(repo: Path) -> str:
    venv = repo / ".venv" / "bin" / "python"
    if not venv.exists():
        sys.exit(f"no virtualenv at {venv}: run `uv sync` in the checkout first")
    return str(venv)


def env_for(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The copy first: its packages shadow any editable install of the checkout.
    env["PYTHONPATH"] = str(copy) + (os.pathsep + env["PYTHONPATH"] if "PYTHONPATH" in env else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    return env


def check_imports_copy(python: str, copy: Path) -> None:
    probe = "import core, bot; print(core.__file__); print(bot.__file__)"
    out = subprocess.run(
        [python, "-c", probe], cwd=copy, env=env_for(copy), capture_output=True, text=True
    )
    paths = out.stdout.split()
    if out.returncode != 0 or not paths or not all(p.startswith(str(copy)) for p in paths):
        sys.exit(f"the copy's code is not what Python imports: {out.stdout}{out.stderr}")


def run_pytest(python: str, copy: Path, tests: Sequence[str]) -> tuple[int, str, float]:
    basetemp = copy.parent / "pytest-tmp"
    cmd = [
        python,
        "-m",
        "pytest",
        *tests,
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--basetemp={basetemp}",
    ]
    started = time.monotonic()
    try:
        done = subprocess.run(
            cmd,
            cwd=copy,
            env=env_for(copy),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {TIMEOUT_SECONDS} s", time.monotonic() - started
    tail = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode, tail[-1] if tail else "", time.monotonic() - started


# --- running ---------------------------------------------------------------------------------


def apply(copy: Path, mutation: Mutation) -> str | None:
    """Apply in the copy; returns the original text, or None if the snippet is stale."""
    path = copy / mutation.file
    text = path.read_text()
    if text.count(mutation.original) != 1:
        return None
    path.write_text(text.replace(mutation.original, mutation.replacement, 1))
    return text


def run_one(python: str, copy: Path, mutation: Mutation, baseline: dict[str, str]) -> Result:
    started = time.monotonic()
    path = copy / mutation.file
    if not path.is_file():
        return Result(mutation, "error", 0.0, f"{mutation.file} does not exist")
    broken = [t for t in mutation.tests if baseline.get(t, "ok") != "ok"]
    if broken:
        return Result(mutation, "error", 0.0, f"baseline fails: {baseline[broken[0]]}")
    original = apply(copy, mutation)
    if original is None:
        found = path.read_text().count(mutation.original)
        return Result(mutation, "error", 0.0, f"stale: the snippet occurs {found} times")
    try:
        code, tail, _ = run_pytest(python, copy, mutation.tests)
    finally:
        path.write_text(original)
    seconds = time.monotonic() - started
    if code in (1, -1):
        return Result(mutation, "killed", seconds, tail)
    if code == 0:
        return Result(mutation, "survived", seconds, tail)
    return Result(mutation, "error", seconds, f"pytest exit {code}: {tail}")


def run_baseline(python: str, copies: Sequence[Path], selections: Sequence[str]) -> dict[str, str]:
    """Each test selection once without mutations: one that fails here proves nothing."""
    out: dict[str, str] = {}
    work: queue.Queue[str] = queue.Queue()
    for selection in selections:
        work.put(selection)

    def worker(copy: Path) -> None:
        while True:
            try:
                selection = work.get_nowait()
            except queue.Empty:
                return
            code, tail, _ = run_pytest(python, copy, [selection])
            out[selection] = "ok" if code == 0 else f"{selection}: exit {code}: {tail}"

    threads = [threading.Thread(target=worker, args=(c,)) for c in copies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def run_all(
    python: str, copies: Sequence[Path], mutations: Sequence[Mutation], baseline: dict[str, str]
) -> list[Result]:
    work: queue.Queue[tuple[int, Mutation]] = queue.Queue()
    for i, m in enumerate(mutations):
        work.put((i, m))
    results: dict[int, Result] = {}
    lock = threading.Lock()

    def worker(copy: Path) -> None:
        while True:
            try:
                i, mutation = work.get_nowait()
            except queue.Empty:
                return
            result = run_one(python, copy, mutation, baseline)
            with lock:
                results[i] = result
                print(
                    f"  {result.outcome:<8} {result.seconds:6.1f}s  {mutation.name}",
                    flush=True,
                )

    threads = [threading.Thread(target=worker, args=(c,)) for c in copies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [results[i] for i in sorted(results)]


def short(test: str) -> str:
    path, _, name = test.partition("::")
    base = Path(path).stem.removeprefix("test_")
    return f"{base}::{name}" if name else base


def print_table(results: Sequence[Result]) -> None:
    rows = [
        (
            r.mutation.name,
            r.mutation.file,
            ", ".join(short(t) for t in r.mutation.tests),
            r.outcome,
            f"{r.seconds:.1f}",
        )
        for r in results
    ]
    header = ("mutation", "file", "tests run", "result", "seconds")
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(4)]
    widths[2] = min(widths[2], 70)

    def line(cells: Sequence[str]) -> str:
        parts = [cells[i][: widths[i]].ljust(widths[i]) for i in range(4)]
        return " | ".join([*parts, cells[4].rjust(7)])

    print(line(header))
    print("-+-".join("-" * w for w in [*widths, 7]))
    for row in rows:
        print(line(row))
    problems = [r for r in results if r.outcome != "killed"]
    if problems:
        print("\nnot killed:")
        for r in problems:
            print(f"  {r.mutation.name}: {r.outcome}: {r.detail} ({r.mutation.why})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", default=[], help="run this mutation only")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--jobs", type=int, default=1, help="parallel copies (2 cores here)")
    parser.add_argument(
        "--rev",
        default=None,
        help="copy this commit instead of the work tree's tracked files (e.g. HEAD)",
    )
    args = parser.parse_args(argv)

    names = [m.name for m in MUTATIONS]
    if len(set(names)) != len(names):
        sys.exit("duplicate mutation names")
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:<44} {m.file:<26} {', '.join(short(t) for t in m.tests)}")
            print(f"{'':<44} {m.why}")
        print(f"{len(MUTATIONS)} mutations")
        return 0
    unknown = set(args.only) - set(names)
    if unknown:
        sys.exit(f"unknown mutation(s): {', '.join(sorted(unknown))}")
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]

    python = python_for(REPO)
    files = tracked_files(REPO, args.rev)
    jobs = max(1, args.jobs)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutate_safety-") as tmp:
        copies = [make_copy(REPO, Path(tmp) / f"job{j}", files, args.rev) for j in range(jobs)]
        for copy in copies:
            check_imports_copy(python, copy)
        print(f"copies of {len(files)} tracked files in {tmp} ({jobs} job(s))", flush=True)
        sanity = run_one(python, copies[0], SANITY, {})
        if sanity.outcome != "killed":
            print(f"sanity mutation {sanity.outcome}: {sanity.detail}")
            print("the tests do not run the copy's code: nothing below would mean anything")
            return 1
        print(f"sanity mutation killed ({sanity.seconds:.1f}s): the copy is what runs")
        selections = sorted({t for m in chosen for t in m.tests})
        print(f"baseline: {len(selections)} test selections without mutations", flush=True)
        baseline = run_baseline(python, copies, selections)
        for _, verdict in sorted(baseline.items()):
            if verdict != "ok":
                print(f"  BASELINE FAILS {verdict}")
        print(f"mutations: {len(chosen)}", flush=True)
        results = run_all(python, copies, chosen, baseline)
    print()
    print_table(results)
    killed = sum(r.outcome == "killed" for r in results)
    survived = sum(r.outcome == "survived" for r in results)
    errors = sum(r.outcome == "error" for r in results)
    total = time.monotonic() - started
    print(
        f"\n{len(results)} mutations: {killed} killed, {survived} survived, {errors} errors "
        f"in {total:.0f} s"
    )
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
