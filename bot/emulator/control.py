"""The control API under ``/api/``: the user's side of the chat, for tests and the web page.

Answers are plain JSON: ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}`` with an
HTTP status (400 bad input, 404 no such chat/message/button).

Browsers: only the emulator's own page may drive the chat. `same_origin_only` (a
middleware over ``/api/`` and the Bot API) refuses, with 403, a request a browser marks as
coming from another site (an ``Origin`` that is not ours, a ``Sec-Fetch-Site`` other than
``same-origin``/``none``) or addressed to a host name that is not ours (DNS rebinding); a
POST to ``/api/`` must be ``application/json`` (415), which a page on another site cannot
send without the browser asking first (CORS preflight, never granted here). Bots and the
test client send neither header and are served as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, web
from yarl import URL

from bot.emulator.content import MAX_TEXT, user_text_entities
from bot.emulator.state import BotAccount, CallbackRecord, EmulatorState, FloodControl
from bot.emulator.views import bot_info, message_dict, transcript, transcript_entry, user_dict

STATE_KEY = web.AppKey("emulator_state", EmulatorState)
DEFAULT_CHAT_KEY = web.AppKey("emulator_default_chat", int)
SOCKETS_KEY = web.AppKey("emulator_sockets", set[web.WebSocketResponse])
ALLOWED_HOSTS_KEY = web.AppKey("emulator_allowed_hosts", frozenset[str])
MAX_LONG_POLL = 60.0
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Sec-Fetch-Site values of the emulator's own page (fetch, WebSocket) and of a typed URL.
OWN_FETCH_SITES = frozenset({"same-origin", "none"})
GUARDED_PREFIXES = ("/api/", "/bot")


def _host_name(host: str | None) -> str | None:
    if not host:
        return None
    try:
        name = URL(f"http://{host}").host
    except ValueError:
        return None
    return None if name is None else name.lower().strip("[]")


def _own_host(request: web.Request) -> bool:
    """The Host header names this emulator: a loopback name, the host it was started on,
    or the address the connection came in on (reached by IP over the network)."""
    name = _host_name(request.host)
    if name is None:
        return False
    if name in LOOPBACK_NAMES or name in request.app.get(ALLOWED_HOSTS_KEY, frozenset()):
        return True
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        return False
    try:
        return ipaddress.ip_address(name) == ipaddress.ip_address(sockname[0])
    except ValueError:
        return False


def cross_site_reason(request: web.Request) -> str | None:
    """Why a browser on another site (or a rebound host name) sent this; None: ours."""
    if not _own_host(request):
        return f"host {request.host!r} is not this emulator"
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return f"origin {origin!r} is not this emulator"
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.lower() not in OWN_FETCH_SITES:
        return f"a {site} request"
    return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def same_origin_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(GUARDED_PREFIXES):
        return await handler(request)
    why = cross_site_reason(request)
    if why is not None:
        return web.json_response({"ok": False, "error": f"Forbidden: {why}"}, status=403)
    json_only = request.path.startswith("/api/") and request.method == "POST"
    if json_only and request.content_type != "application/json":
        error = "control API calls must be application/json"
        return web.json_response({"ok": False, "error": error}, status=415)
    return await handler(request)


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def user_send(state: EmulatorState, bot: BotAccount, user_id: int, text: str) -> dict[str, Any]:
    """The user types ``text``: store the message and queue a ``message`` update."""
    text = text.strip()
    if not text:
        raise ControlError(400, "text is empty")
    if len(text) > MAX_TEXT:
        raise ControlError(400, "text is longer than 4096 characters")
    state.ensure_user(user_id)
    conv = state.conversation(bot, user_id)
    message = state.new_message(conv, from_bot=False, text=text, entities=user_text_entities(text))
    update_id = state.enqueue_update(bot, "message", message_dict(state, bot, message))
    return {"ok": True, "message": transcript_entry(message), "update_id": update_id}


def user_press(
    state: EmulatorState, bot: BotAccount, chat_id: int, message_id: int, data: str
) -> dict[str, Any]:
    """The user taps an inline button: queue a ``callback_query`` update."""
    conv = state.conversations.get((bot.id, chat_id))
    message = conv.visible(message_id) if conv else None
    if message is None or not message.from_bot:
        raise ControlError(404, f"no bot message {message_id} in chat {chat_id}")
    buttons = [b for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row]
    if not any(button.get("callback_data") == data for button in buttons):
        raise ControlError(404, f"message {message_id} has no button with callback_data {data!r}")
    record: CallbackRecord = state.new_callback(bot, message, chat_id, data)
    payload = {
        "id": record.id,
        "from": user_dict(state.ensure_user(chat_id)),
        "message": message_dict(state, bot, message),
        "chat_instance": f"{-(bot.id * 1_000_003 + chat_id)}",
        "data": data,
    }
    update_id = state.enqueue_update(bot, "callback_query", payload)
    return {"ok": True, "callback_query_id": record.id, "update_id": update_id}


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ControlError(400, "body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ControlError(400, "body must be a JSON object")
    return body


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(400, f"{name} must be an integer") from None


def _bot(state: EmulatorState, name: Any) -> BotAccount:
    if name in (None, ""):
        return state.primary_bot
    for bot in state.bots.values():
        if name in (bot.username, str(bot.id)):
            return bot
    raise ControlError(404, f"no bot {name!r}")


def _chat(request: web.Request, source: dict[str, Any]) -> int:
    raw = source.get("chat_id", source.get("user_id"))
    return request.app[DEFAULT_CHAT_KEY] if raw in (None, "") else _int(raw, "chat_id")


def _handler(func: Any) -> Any:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await func(request)  # type: ignore[no-any-return]
        except ControlError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=exc.status)

    return wrapped


@_handler
async def send(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    body = await _body(request)
    bot = _bot(state, body.get("bot"))
    return web.json_response(user_send(state, bot, _chat(request, body), str(body.get("text", ""))))


@_handler
async def press(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    body = await _body(request)
    bot = _bot(state, body.get("bot"))
    data = body.get("callback_data", body.get("data"))
    if not isinstance(data, str):
        raise ControlError(400, "callback_data must be a string")
    result = user_press(
        state, bot, _chat(request, body), _int(body.get("message_id"), "message_id"), data
    )
    return web.json_response(result)


def _delta(request: web.Request, since: int, epoch: int | None) -> dict[str, Any]:
    state = request.app[STATE_KEY]
    bot = _bot(state, request.query.get("bot"))
    chat_id = _chat(request, dict(request.query))
    reset = epoch is not None and epoch != state.epoch
    conv = state.conversations.get((bot.id, chat_id))
    return {"ok": True, "reset": reset, **transcript(state, conv, 0 if reset else since)}


@_handler
async def get_transcript(request: web.Request) -> web.Response:
    since = _int(request.query.get("since", 0), "since")
    return web.json_response(_delta(request, since, None))


@_handler
async def get_updates(request: web.Request) -> web.Response:
    """Long poll for the page: answers once anything changed after ``since`` (or a reset)."""
    state = request.app[STATE_KEY]
    since = _int(request.query.get("since", 0), "since")
    epoch = _int(request.query.get("epoch", state.epoch), "epoch")
    try:
        timeout = min(max(float(request.query.get("timeout", 25)), 0.0), MAX_LONG_POLL)
    except ValueError:
        raise ControlError(400, "timeout must be a number") from None
    await state.wait_changed(since, epoch, timeout)
    return web.json_response(_delta(request, since, epoch))


@_handler
async def info(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    bot = _bot(state, request.query.get("bot"))
    return web.json_response(
        {"ok": True, **bot_info(state, bot, _chat(request, dict(request.query)))}
    )


@_handler
async def reset(request: web.Request) -> web.Response:
    request.app[STATE_KEY].reset()
    return web.json_response({"ok": True})


@_handler
async def flood(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    body = await _body(request)
    limit = body.get("limit")
    if limit is None:
        state.flood = None
    else:
        state.flood = FloodControl(
            limit=max(_int(limit, "limit"), 0),
            per_seconds=float(body.get("per_seconds", 1.0)),
            retry_after=max(_int(body.get("retry_after", 1), "retry_after"), 1),
        )
    return web.json_response({"ok": True})


async def websocket(request: web.Request) -> web.StreamResponse:
    """Pushes ``{"type": "sync", "reset": bool, "messages": [...], ...}`` on every change."""
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    sockets = request.app[SOCKETS_KEY]
    sockets.add(ws)
    pusher = asyncio.create_task(_push(request, ws))
    try:
        async for _message in ws:  # the page only listens; this notices the close
            pass
    finally:
        sockets.discard(ws)
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pusher
    return ws


async def _push(request: web.Request, ws: web.WebSocketResponse) -> None:
    state = request.app[STATE_KEY]
    since, epoch = 0, None
    try:
        while not ws.closed and not state.closed:
            payload = _delta(request, since, epoch)
            if epoch is None:
                payload["reset"] = True
            epoch = state.epoch
            await ws.send_json({"type": "sync", **payload})
            since = payload["rev"]
            await state.wait_changed(since, epoch, 30.0)
    except (ConnectionResetError, ControlError):
        await ws.close()


async def close_sockets(app: web.Application) -> None:
    sockets: set[web.WebSocketResponse] = app[SOCKETS_KEY]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"emulator stopping")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/send", send)
    app.router.add_post("/api/press", press)
    app.router.add_get("/api/transcript", get_transcript)
    app.router.add_get("/api/updates", get_updates)
    app.router.add_get("/api/info", info)
    app.router.add_post("/api/reset", reset)
    app.router.add_post("/api/flood", flood)
    app.router.add_get("/api/ws", websocket)
    app.on_shutdown.append(close_sockets)
