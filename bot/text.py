"""Telegram HTML: escaping, and splitting long messages without breaking the markup.

Telegram (and the emulator) reject a message whose text, after the HTML is parsed, is
over 4096 characters (a caption: 1024), and reject HTML with an unescaped `<` or an
unclosed tag. Everything we show goes through `esc()`; everything we send goes through
`split_html()`, which cuts at line boundaries when it can, never inside a tag or an
entity, and closes the tags still open at a cut and reopens them in the next part.
Lengths are counted in UTF-16 code units (what Telegram counts), which is never less
than Python's code-point count.
"""

from __future__ import annotations

import html
import re

MAX_TEXT = 4096
MAX_CAPTION = 1024

_TOKEN = re.compile(r"<[^<>]*>|&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{1,8});|[\s\S]")
_TAG = re.compile(r"<\s*(/?)\s*([a-zA-Z][a-zA-Z0-9-]*)")


def esc(value: object) -> str:
    """Text -> Telegram-safe HTML (only `<`, `>`, `&` need escaping outside attributes)."""
    return html.escape(str(value), quote=False)


def _width(token: str) -> int:
    if token.startswith("<") and len(token) > 1:
        return 0
    if token.startswith("&") and len(token) > 1:
        return 1
    return len(token.encode("utf-16-le")) // 2


def visible_length(text: str) -> int:
    """How long Telegram considers `text` once the HTML is parsed (UTF-16 units)."""
    return sum(_width(t) for t in _TOKEN.findall(text))


def _hard_split(line: str, limit: int) -> list[str]:
    """A line longer than `limit`: cut between tokens (never inside a tag or entity)."""
    parts: list[str] = []
    current: list[str] = []
    width = 0
    for token in _TOKEN.findall(line):
        w = _width(token)
        if width + w > limit and current:
            parts.append("".join(current))
            current, width = [], 0
        current.append(token)
        width += w
    if current:
        parts.append("".join(current))
    return parts


def _pack(text: str, limit: int) -> list[str]:
    """Whole lines per part while they fit; over-long lines are cut."""
    parts: list[str] = []
    current: list[str] = []
    width = 0
    for line in text.split("\n"):
        w = visible_length(line)
        if w > limit:
            if current:
                parts.append("\n".join(current))
                current, width = [], 0
            parts.extend(_hard_split(line, limit))
            continue
        needed = w + (1 if current else 0)
        if current and width + needed > limit:
            parts.append("\n".join(current))
            current, width = [line], w
        else:
            current.append(line)
            width += needed
    if current:
        parts.append("\n".join(current))
    return parts


def _balance(parts: list[str]) -> list[str]:
    """Close the tags open at the end of each part and reopen them in the next one."""
    out: list[str] = []
    stack: list[tuple[str, str]] = []  # (name, opening tag as written)
    for part in parts:
        prefix = "".join(tag for _, tag in stack)
        for token in _TOKEN.findall(part):
            match = _TAG.match(token) if token.startswith("<") else None
            if match is None:
                continue
            closing, name = match.group(1) == "/", match.group(2).lower()
            if not closing:
                stack.append((name, token))
            else:
                for i in range(len(stack) - 1, -1, -1):
                    if stack[i][0] == name:
                        del stack[i]
                        break
        suffix = "".join(f"</{name}>" for name, _ in reversed(stack))
        out.append(prefix + part + suffix)
    return out


def _blank(part: str) -> bool:
    return not "".join(
        t for t in _TOKEN.findall(part) if not t.startswith("<") or len(t) == 1
    ).strip()


def split_html(text: str, limit: int = MAX_TEXT) -> list[str]:
    """`text` as one or more messages of at most `limit` visible characters each.

    Parts that would be empty (Telegram refuses an empty message) are dropped; an empty
    input gives an empty list.
    """
    if limit < 16:
        raise ValueError("limit too small to split sensibly")
    if visible_length(text) <= limit:
        return [] if _blank(text) else [text]
    return [p for p in _balance(_pack(text, limit)) if not _blank(p)]


def split_caption(text: str) -> tuple[str, list[str]]:
    """A photo's caption (<= 1024) and the rest as follow-up messages."""
    if visible_length(text) <= MAX_CAPTION:
        return text, []
    first, *rest = split_html(text, MAX_CAPTION)
    remainder = "\n".join(rest)
    return first, split_html(remainder) if remainder else []


__all__ = ["MAX_CAPTION", "MAX_TEXT", "esc", "split_caption", "split_html", "visible_length"]
