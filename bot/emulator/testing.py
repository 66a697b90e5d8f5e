"""Helpers for tests and demos that drive the emulator: images without an imaging library."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

Pixel = tuple[int, int, int]


def make_png(
    width: int = 2,
    height: int = 2,
    pixel: Callable[[int, int], Pixel] | None = None,
) -> bytes:
    """A valid RGB PNG; ``pixel(x, y)`` gives each colour (default: a blue gradient)."""

    def default(x: int, y: int) -> Pixel:
        return (40 + 120 * x // max(width, 1), 110 + 100 * y // max(height, 1), 220)

    paint = pixel or default
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            rows.extend(bytes(paint(x, y)))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def chart_png(width: int = 480, height: int = 270) -> bytes:
    """A small, recognisable price-chart-like picture (for the demo and browser tests)."""
    import math

    def price(x: int) -> float:
        return height * (0.55 - 0.25 * x / width + 0.08 * math.sin(x / 23.0))

    def pixel(x: int, y: int) -> Pixel:
        line = price(x)
        vwap = height * (0.5 - 0.15 * x / width)
        if abs(y - line) < 2.2:
            return (34, 139, 230)
        if abs(y - vwap) < 1.2 and (x // 6) % 2 == 0:
            return (245, 159, 0)
        if y > line:
            shade = int(235 - 25 * (y - line) / height)
            return (shade, min(shade + 8, 255), 255)
        if x % 60 == 0 or y % 45 == 0:
            return (232, 236, 241)
        return (255, 255, 255)

    return make_png(width, height, pixel)
