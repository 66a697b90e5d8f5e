"""A local Telegram Bot API emulator with a web chat, for the demo and end-to-end tests.

The real python-telegram-bot client runs against it unmodified::

    emulator = await start_emulator()
    app = (
        Application.builder()
        .token(emulator.token)
        .base_url(emulator.api_base_url)
        .base_file_url(emulator.file_base_url)
        .build()
    )

and a person (``emulator.url``) or a test (``emulator.client()``) plays the user.
"""

from bot.emulator.client import EmulatorClient, EmulatorError
from bot.emulator.server import (
    DEFAULT_TOKEN,
    DEFAULT_USER_ID,
    RunningEmulator,
    create_app,
    start_emulator,
)
from bot.emulator.state import EmulatorState, FloodControl

__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_USER_ID",
    "EmulatorClient",
    "EmulatorError",
    "EmulatorState",
    "FloodControl",
    "RunningEmulator",
    "create_app",
    "start_emulator",
]
