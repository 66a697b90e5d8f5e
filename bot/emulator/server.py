"""The aiohttp application: Bot API routes, file downloads, the control API and the page.

Routes:
  ``/bot{token}/{method}``           Bot API (GET/POST; query, JSON, form or multipart)
  ``/file/bot{token}/{file_path}``   file downloads (the path comes from getFile)
  ``/api/...``                       control API (see ``control.py``)

The Bot API and the control API refuse browsers on other sites (``control.same_origin_only``):
the default token is public, so a foreign page could otherwise call either.
  ``/media/{file_id}``               files for the web page (no token)
  ``/``, ``/static/...``             the web chat

Errors are Telegram's: an unknown token answers 401 "Unauthorized" and an unknown method
404 "Not Found" (python-telegram-bot raises ``InvalidToken`` for both, as with Telegram).
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.emulator import api_messages, api_other, control
from bot.emulator.client import EmulatorClient
from bot.emulator.params import METHODS, ApiError, Params, Upload, bad_request
from bot.emulator.state import EmulatorState, FloodControl

__all__ = ["api_messages", "api_other"]  # imported for their method registrations

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "123456789:EMULATOR-token-for-local-tests-only"
DEFAULT_USER_ID = 100_001
STATIC_DIR = Path(__file__).parent / "static"
MAX_REQUEST_BYTES = 60 * 1024 * 1024
CALL_LOG_KEY = web.AppKey("emulator_calls", deque[dict[str, Any]])


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.json_response(payload, status=status)


async def _read_params(request: web.Request) -> Params:
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.method == "POST" and request.body_exists:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad_request("can't parse JSON request body") from None
            if not isinstance(body, dict):
                raise bad_request("request body must be a JSON object")
            values.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    uploads[key] = Upload(value.filename, value.content_type, data)
                else:
                    values[key] = value if isinstance(value, str) else bytes(value).decode()
    return Params(values, uploads)


async def bot_api(request: web.Request) -> web.Response:
    state = request.app[control.STATE_KEY]
    method = request.match_info["method"]
    bot = state.bots.get(request.match_info["token"])
    calls = request.app[CALL_LOG_KEY]
    if bot is None:
        return _json({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
    handler = METHODS.get(method.lower())
    if handler is None:
        calls.append({"method": method, "ok": False, "error_code": 404})
        return _json({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
    try:
        params = await _read_params(request)
        result = await handler(state, bot, params)
    except ApiError as exc:
        calls.append(
            {"method": method, "ok": False, "error_code": exc.code, "error": exc.description}
        )
        return _json(exc.payload(), exc.code)
    calls.append({"method": method, "ok": True})
    return _json({"ok": True, "result": result})


async def download(request: web.Request) -> web.Response:
    state = request.app[control.STATE_KEY]
    if request.match_info["token"] not in state.bots:
        return _json({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
    stored = state.files_by_path.get(request.match_info["file_path"])
    if stored is None:
        return _json({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
    return web.Response(body=stored.data, content_type=stored.mime_type)


async def media(request: web.Request) -> web.Response:
    stored = request.app[control.STATE_KEY].files.get(request.match_info["file_id"])
    if stored is None:
        raise web.HTTPNotFound()
    headers = {
        "Cache-Control": "max-age=3600",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",  # files never run scripts
    }
    if not stored.mime_type.startswith("image/"):
        name = "".join(
            c
            for c in stored.file_name or "file"
            if c.isascii() and c.isprintable() and c not in '"\\'
        )
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return web.Response(body=stored.data, content_type=stored.mime_type, headers=headers)


async def page(request: web.Request) -> web.FileResponse:
    policy = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' ws://{request.host}; base-uri 'none'; frame-ancestors 'none'"
    )
    headers = {"Cache-Control": "no-store", "Content-Security-Policy": policy}
    return web.FileResponse(STATIC_DIR / "chat.html", headers=headers)


async def calls_log(request: web.Request) -> web.Response:
    calls: deque[dict[str, Any]] = request.app[CALL_LOG_KEY]
    return _json({"ok": True, "calls": list(calls)})


def create_app(
    state: EmulatorState, default_chat_id: int, host: str = "127.0.0.1"
) -> web.Application:
    """`host`: the name the emulator was started on; requests addressed to another host
    name are refused (besides loopback names and the address they arrive on)."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[control.same_origin_only])
    app[control.STATE_KEY] = state
    app[control.ALLOWED_HOSTS_KEY] = frozenset({host.lower().strip("[]")})
    app[control.DEFAULT_CHAT_KEY] = default_chat_id
    app[control.SOCKETS_KEY] = set()
    app[CALL_LOG_KEY] = deque(maxlen=2000)
    app.router.add_route("*", "/bot{token}/{method}", bot_api)
    app.router.add_get("/file/bot{token}/{file_path:.+}", download)
    app.router.add_get("/media/{file_id}", media)
    app.router.add_get("/api/calls", calls_log)
    control.add_routes(app)
    app.router.add_get("/", page)
    app.router.add_static("/static/", STATIC_DIR)
    return app


@dataclass
class RunningEmulator:
    """A started emulator. ``url`` is the chat page; pass ``api_base_url`` and
    ``file_base_url`` to python-telegram-bot as ``base_url`` / ``base_file_url``."""

    state: EmulatorState
    runner: web.AppRunner
    host: str
    port: int
    token: str
    user_id: int

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/"

    @property
    def api_base_url(self) -> str:
        return f"{self.base}/bot"

    @property
    def file_base_url(self) -> str:
        return f"{self.base}/file/bot"

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Bot API calls received so far: ``{"method", "ok", "error_code"?, "error"?}``."""
        calls: deque[dict[str, Any]] = self.runner.app[CALL_LOG_KEY]
        return list(calls)

    def client(self, chat_id: int | None = None) -> EmulatorClient:
        """An HTTP client for the control API (use it as ``async with``)."""
        return EmulatorClient(self.base, chat_id=chat_id or self.user_id)

    def set_flood(self, limit: int | None, per_seconds: float = 1.0, retry_after: int = 1) -> None:
        self.state.flood = None if limit is None else FloodControl(limit, per_seconds, retry_after)

    async def stop(self) -> None:
        self.state.close()
        await self.runner.cleanup()

    async def __aenter__(self) -> RunningEmulator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    token: str = DEFAULT_TOKEN,
    user_id: int = DEFAULT_USER_ID,
    *,
    bot_username: str = "centaur_bot",
    bot_name: str = "Centaur",
    user_first_name: str = "Trader",
    user_username: str | None = "trader",
    now: Callable[[], float] = time.time,
    flood: FloodControl | None = None,
) -> RunningEmulator:
    """Start the emulator on ``host:port`` (0 = a free port) with one bot and one user."""
    state = EmulatorState(now=now)
    state.add_bot(token, bot_username, bot_name)
    state.add_user(user_id, user_first_name, user_username)
    state.flood = flood
    app = create_app(state, user_id, host)
    runner = web.AppRunner(app, shutdown_timeout=2.0, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    site = web.SockSite(runner, sock)
    await site.start()
    bound_port = sock.getsockname()[1]
    log.info("Telegram Bot API emulator on http://%s:%s/", host, bound_port)
    return RunningEmulator(state, runner, host, bound_port, token, user_id)
