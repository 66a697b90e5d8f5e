"""``python -m bot.emulator --port 8081``: run the emulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from bot.emulator.server import DEFAULT_TOKEN, DEFAULT_USER_ID, start_emulator


async def _serve(args: argparse.Namespace) -> None:
    emulator = await start_emulator(
        host=args.host,
        port=args.port,
        token=args.token,
        user_id=args.user_id,
        bot_username=args.bot_username,
    )
    print(f"Chat page:     {emulator.url}", flush=True)
    print(f"PTB base_url:  {emulator.api_base_url}", flush=True)
    print(f"base_file_url: {emulator.file_base_url}", flush=True)
    print(f"Bot token:     {emulator.token}   chat id: {emulator.user_id}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Telegram Bot API emulator + web chat")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--user-id", type=int, default=DEFAULT_USER_ID)
    parser.add_argument("--bot-username", default="centaur_bot")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
