"""Gateway connection supervision: connect, notice outages, reconnect, tell the engine.

Outages come in two kinds:
- the socket to the gateway drops (`disconnectedEvent`: the gateway's daily restart, a
  crash, the weekly re-login): reconnect with exponential backoff on the injected clock,
  with the SAME client id (so this client's open orders come back with their orderIds);
- the gateway stays up but loses IB's servers (code 1100) until 1101 (restored, market
  data lost: resubscribe) or 1102 (restored, data kept).

After every reconnect or restoration: the resync hooks run (the adapter re-reads open and
completed orders and executions), market data is resubscribed (socket reconnect, 1101),
then `on_reconnect()` runs (the engine reconciles). While down: `on_alert(text)` once per
outage when it overlaps market hours (`alert_phases`), `on_down_too_long(seconds)` once
when it lasts beyond `down_too_long_after` (the engine enters SAFE_MODE), and
`on_alert` again when it ends after an alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from ib_async import IB
from loguru import logger

from brokers.ibkr.config import CONNECT_MESSAGES, IbkrConfig
from brokers.ibkr.guard import IbkrModeMismatch, check_managed_accounts, check_port
from brokers.ibkr.mapping import IbError, IbErrorClass
from brokers.ibkr.pacing import TokenBucket
from core.broker import BrokerUnavailable
from core.calendar import TradingCalendar
from core.clock import Clock

Hook = Callable[[], Awaitable[None] | None]
AlertHook = Callable[[str], Awaitable[None] | None]
DownHook = Callable[[float], Awaitable[None] | None]


class LinkState(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    IB_LOST = "ib_lost"  # gateway up, IB's servers unreachable (1100)
    CLOSED = "closed"


async def _call(name: str, hook: Callable[..., Awaitable[None] | None] | None, *args: Any) -> None:
    if hook is None:
        return
    try:
        result = hook(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("ibkr: {} hook failed", name)


# 2**30 backoff units is already far beyond reconnect_max_delay; a larger exponent would
# overflow the float after ~1000 failed attempts and kill the reconnect task.
MAX_BACKOFF_EXPONENT = 30


class IbkrConnection:
    def __init__(
        self,
        ib: IB,
        config: IbkrConfig,
        clock: Clock,
        pacer: TokenBucket,
        *,
        calendar: TradingCalendar | None = None,
        on_reconnect: Hook | None = None,
        on_alert: AlertHook | None = None,
        on_down_too_long: DownHook | None = None,
    ) -> None:
        self._ib = ib
        self._config = config
        self._clock = clock
        self._pacer = pacer
        self._calendar = calendar
        self.on_reconnect = on_reconnect
        self.on_alert = on_alert
        self.on_down_too_long = on_down_too_long
        self._state = LinkState.DISCONNECTED
        self._resync_hooks: list[Hook] = []
        self._resubscribers: list[Hook] = []
        # Called around a reconnect's resynchronisation (pause / resume event publishing).
        self.before_resync: Callable[[], None] | None = None
        self.after_resync: Callable[[], None] | None = None
        self._down_since: datetime | None = None
        self._down_reason = ""
        self._alerted = False
        self._outage = 0
        self.reconnects = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._reconnecting: asyncio.Task[None] | None = None
        # Set when a (re)connection reached a gateway of the wrong mode (guard.py): the
        # link stays down and is not retried until the process is restarted.
        self.refused: IbkrModeMismatch | None = None
        ib.disconnectedEvent += self._on_disconnected

    # --- state --------------------------------------------------------------------------

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def closed(self) -> bool:
        return self._state is LinkState.CLOSED

    @property
    def is_up(self) -> bool:
        return self._state is LinkState.CONNECTED

    def down_seconds(self) -> float:
        """How long the current outage has lasted (0 when up)."""
        if self._down_since is None:
            return 0.0
        return max(0.0, (self._clock.now() - self._down_since).total_seconds())

    def down_for(self, seconds: float) -> bool:
        """True if the connection has been down for at least `seconds`."""
        return self._down_since is not None and self.down_seconds() >= seconds

    def add_resync(self, hook: Hook) -> None:
        self._resync_hooks.append(hook)

    def add_resubscriber(self, hook: Hook) -> None:
        self._resubscribers.append(hook)

    def remove_resubscriber(self, hook: Hook) -> None:
        if hook in self._resubscribers:
            self._resubscribers.remove(hook)

    # --- connecting ---------------------------------------------------------------------

    async def connect(self) -> None:
        """First connection. Raises BrokerUnavailable, or IbkrModeMismatch when the port
        or the gateway's accounts contradict the account's mode (guard.py); no retry."""
        if self._state is LinkState.CLOSED:
            raise BrokerUnavailable("IBKR connection is closed")
        config = self._config
        if config.live and not config.live_granted:
            raise IbkrModeMismatch(
                "IBKR: a live configuration must come from ibkr_config_for (the live guard)"
            )
        check_port(live=config.live, port=config.port, paper_on_live_port=config.paper_on_live_port)
        self._state = LinkState.CONNECTING
        try:
            await self._connect_once()
        except (BrokerUnavailable, IbkrModeMismatch):
            self._state = LinkState.DISCONNECTED
            raise
        self._state = LinkState.CONNECTED
        try:
            for hook in self._resync_hooks:
                result = hook()
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:
            self._state = LinkState.CONNECTING  # our own disconnect is not an outage
            self._ib.disconnect()
            self._state = LinkState.DISCONNECTED
            raise BrokerUnavailable(f"IBKR: first synchronisation failed: {exc}") from exc

    async def _connect_once(self) -> None:
        config = self._config
        await self._pacer.acquire(CONNECT_MESSAGES)
        try:
            await self._ib.connectAsync(
                config.host,
                config.port,
                clientId=config.client_id,
                timeout=config.connect_timeout,
                account=config.account,
            )
        except (OSError, TimeoutError, ConnectionError) as exc:
            raise BrokerUnavailable(
                f"IBKR gateway {config.host}:{config.port} (client id {config.client_id}) "
                f"unreachable: {exc!r}"
            ) from exc
        if not self._ib.isConnected():
            raise BrokerUnavailable("IBKR gateway dropped the connection while synchronising")
        try:
            # ib_async has the managed accounts once connectAsync returns (handshake).
            check_managed_accounts(live=config.live, accounts=self._ib.managedAccounts())
        except IbkrModeMismatch as exc:
            self.refused = exc
            self._state = LinkState.CONNECTING  # our own disconnect is not an outage
            self._ib.disconnect()
            logger.error("{}", exc)
            raise

    def _on_disconnected(self) -> None:
        if self._state in (LinkState.CLOSED, LinkState.CONNECTING):
            return
        logger.warning("ibkr: gateway connection lost")
        self._state = LinkState.DISCONNECTED
        self._start_outage("IBKR gateway unreachable (connection lost)")
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = self._spawn(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        config = self._config
        attempt = 0
        while not self.closed:
            delay = min(config.reconnect_initial_delay * 2**attempt, config.reconnect_max_delay)
            await self._clock.sleep(delay)
            if self.closed:
                return
            self._state = LinkState.CONNECTING
            if self.before_resync is not None:
                self.before_resync()
            try:
                await self._connect_once()
            except IbkrModeMismatch as exc:
                # The gateway now serves the other mode (a different login after the
                # daily restart): never trade there. Stay down (orders are refused, the
                # watchdog brings SAFE MODE) and tell the chat at any hour.
                if self.after_resync is not None:
                    self.after_resync()
                if not self.closed:
                    self._state = LinkState.DISCONNECTED
                await _call("on_alert", self.on_alert, f"{exc}; reconnecting stopped")
                return
            except BrokerUnavailable as exc:
                if self.after_resync is not None:
                    self.after_resync()  # nothing may stay held while we are down
                if self.closed:
                    return
                self._state = LinkState.DISCONNECTED
                attempt = min(attempt + 1, MAX_BACKOFF_EXPONENT)
                logger.warning("ibkr: reconnect attempt {} failed: {}", attempt, exc)
                self._maybe_alert()
                continue
            self._state = LinkState.CONNECTED
            if self.after_resync is not None:
                self.after_resync()
            self.reconnects += 1
            logger.info("ibkr: reconnected after {:.0f} s", self.down_seconds())
            await self._restored(data_lost=True)
            return

    # --- IB-side connectivity (codes 1100 / 1101 / 1102) --------------------------------

    def on_ib_error(self, error: IbError) -> None:
        kind = error.kind
        if kind is IbErrorClass.CONNECTIVITY_LOST and self._state is LinkState.CONNECTED:
            self._state = LinkState.IB_LOST
            self._start_outage(f"IBKR gateway lost IB's servers ({error.code}: {error.text})")
        elif kind in (IbErrorClass.RESTORED, IbErrorClass.RESTORED_DATA_LOST) and (
            self._state is LinkState.IB_LOST
            or (self._state is LinkState.CONNECTED and self._down_since is None)
        ):
            self._state = LinkState.CONNECTED
            data_lost = kind is IbErrorClass.RESTORED_DATA_LOST
            self._spawn(self._restored(data_lost=data_lost))

    async def _restored(self, *, data_lost: bool) -> None:
        self._end_outage()
        for hook in self._resync_hooks:
            await _call("resync", hook)
        if data_lost:
            for resubscribe in list(self._resubscribers):
                await _call("resubscribe", resubscribe)
        await _call("on_reconnect", self.on_reconnect)

    # --- outages ------------------------------------------------------------------------

    def _start_outage(self, reason: str) -> None:
        if self._down_since is not None:
            return
        self._outage += 1
        self._down_since = self._clock.now()
        self._down_reason = reason
        self._alerted = False
        self._maybe_alert()
        self._spawn(self._watchdog(self._outage))

    def _end_outage(self) -> None:
        if self._down_since is None:
            return
        seconds = self.down_seconds()
        alerted = self._alerted
        self._down_since = None
        self._outage += 1  # retires the watchdog of the outage that ended
        if alerted:
            self._spawn(
                _call("on_alert", self.on_alert, f"IBKR connection restored after {seconds:.0f} s")
            )

    async def alert(self, text: str) -> None:
        """Pass `text` to `on_alert` (for the adapter's own alarms)."""
        await _call("on_alert", self.on_alert, text)

    def _in_alert_hours(self) -> bool:
        if self._calendar is None:
            from core.calendar import xnys

            self._calendar = xnys()
        return self._calendar.phase(self._clock.now()) in self._config.alert_phases

    def _maybe_alert(self) -> None:
        if self._alerted or self._down_since is None or not self._in_alert_hours():
            return
        self._alerted = True
        text = f"{self._down_reason} during market hours, down {self.down_seconds():.0f} s"
        self._spawn(_call("on_alert", self.on_alert, text))

    async def _watchdog(self, outage: int) -> None:
        await self._clock.sleep(self._config.down_too_long_after)
        if outage == self._outage and self._down_since is not None:
            await _call("on_down_too_long", self.on_down_too_long, self.down_seconds())

    # --- housekeeping -------------------------------------------------------------------

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self, *, wait_seconds: float = 5.0) -> None:
        """Stop reconnecting (the loop sees CLOSED; its clock sleep is cancelled), cancel
        the supervision tasks and disconnect. Waiting for the tasks is bounded (real
        time): a reconnect stuck inside connectAsync must not hold the process's stop."""
        self._state = LinkState.CLOSED
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=wait_seconds)
            if pending:
                logger.warning(
                    "ibkr: {} supervision task(s) did not end within {:.1f} s; left behind",
                    len(pending),
                    wait_seconds,
                )
        for task in tasks:
            if task.done() and not task.cancelled():
                with contextlib.suppress(BaseException):
                    task.exception()  # retrieved: a failed task is not reported twice
        self._ib.disconnectedEvent -= self._on_disconnected
        self._ib.disconnect()
