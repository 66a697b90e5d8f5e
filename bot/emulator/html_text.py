"""Telegram's HTML parse mode: HTML -> (plain text, entities), and entities -> safe HTML.

The parser follows tdlib's ``parse_html`` closely, so the emulator rejects exactly what
Telegram rejects (an unescaped ``<``, an unknown tag, an unclosed or mismatched tag) with
Telegram's own wording. Entity offsets and lengths are in UTF-16 code units, as in the
Bot API. Only ``&lt; &gt; &amp; &quot;`` and numeric character references are decoded; any
other ``&`` stays literal text, as Telegram does.
"""

from __future__ import annotations

import html
import re
from typing import Any

Entity = dict[str, Any]

_SUPPORTED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_SIMPLE_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]+));")
_SPACE = " \t\r\n\f\v"
_LINK_SCHEMES = ("http://", "https://", "tg://", "ton://", "ftp://")


class HtmlParseError(ValueError):
    """The text is not valid Telegram HTML; ``str(exc)`` is tdlib's message."""


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (the unit of Bot API entity offsets)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _decode_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode a character reference at ``text[pos] == '&'``: (character, end) or None."""
    match = _ENTITY_RE.match(text, pos)
    if match is None:
        return None
    dec, hexa, name = match.groups()
    if name is not None:
        char = _NAMED_ENTITIES.get(name)
        return (char, match.end()) if char is not None else None
    code = int(dec) if dec is not None else int(hexa, 16)
    if code <= 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), match.end()


def _check_link(url: str) -> str | None:
    url = url.strip()
    if not url or any(ch in url for ch in _SPACE):
        return None
    lowered = url.lower()
    if lowered.startswith(_LINK_SCHEMES):
        return url
    if "://" in lowered or lowered.startswith(("javascript:", "data:", "mailto:", "file:")):
        return None
    return "http://" + url


class _Open:
    __slots__ = ("argument", "expandable", "offset", "start", "tag")

    def __init__(self, tag: str, argument: str, offset: int, start: int, expandable: bool):
        self.tag, self.argument, self.offset = tag, argument, offset
        self.start, self.expandable = start, expandable


def parse_html(source: str) -> tuple[str, list[Entity]]:
    """Parse Telegram HTML into plain text and Bot API entities; raise HtmlParseError."""
    out: list[str] = []
    out_len = 0  # len("".join(out)), kept incrementally
    offset = 0  # UTF-16 offset into the result
    stack: list[_Open] = []
    entities: list[Entity] = []
    text = source
    i = 0
    n = len(text)

    def byte_pos(char_index: int) -> int:  # tdlib reports byte offsets
        return len(text[:char_index].encode("utf-8"))

    while i < n:
        ch = text[i]
        if ch == "&":
            decoded = _decode_entity(text, i)
            if decoded is not None:
                out.append(decoded[0])
                out_len += 1
                offset += utf16_len(decoded[0])
                i = decoded[1]
                continue
        if ch != "<":
            out.append(ch)
            out_len += 1
            offset += 2 if ord(ch) > 0xFFFF else 1
            i += 1
            continue
        begin = i
        i += 1
        if i < n and text[i] == "/":
            if not stack:
                raise HtmlParseError(f"Unexpected end tag at byte offset {byte_pos(begin)}")
            j = i + 1
            while j < n and text[j] not in _SPACE and text[j] != ">":
                j += 1
            end_name = text[i + 1 : j].lower()
            while j < n and text[j] in _SPACE:
                j += 1
            if j >= n or text[j] != ">":
                raise HtmlParseError(f"Unclosed end tag at byte offset {byte_pos(begin)}")
            top = stack[-1]
            if end_name and end_name != top.tag:
                raise HtmlParseError(
                    f"Unmatched end tag at byte offset {byte_pos(begin)}, "
                    f'expected "</{top.tag}>", found "</{end_name}>"'
                )
            _close(top, offset, "".join(out) if top.tag == "a" else "", entities)
            stack.pop()
            i = j + 1
            continue
        j = i
        while j < n and text[j] not in _SPACE and text[j] != ">":
            j += 1
        if j >= n:
            raise HtmlParseError(f"Unclosed start tag at byte offset {byte_pos(begin)}")
        tag = text[i:j].lower()
        if tag not in _SUPPORTED_TAGS:
            raise HtmlParseError(f'Unsupported start tag "{tag}" at byte offset {byte_pos(begin)}')
        argument, expandable, i = _parse_attributes(text, j, tag, byte_pos(begin))
        if tag == "span" and argument != "spoiler":
            raise HtmlParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {byte_pos(begin)}'
            )
        stack.append(_Open(tag, argument, offset, out_len, expandable))
    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    return "".join(out), sort_entities(entities)


def _parse_attributes(text: str, i: int, tag: str, begin_byte: int) -> tuple[str, bool, int]:
    """Parse attributes from ``text[i]`` up to ``>``; return (argument, expandable, next)."""
    n = len(text)
    argument = ""
    expandable = False
    unclosed = HtmlParseError(f"Unclosed start tag at byte offset {begin_byte}")
    while True:
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            raise unclosed
        if text[i] == ">":
            return argument, expandable, i + 1
        name_start = i
        while i < n and text[i] not in _SPACE and text[i] not in "=>":
            i += 1
        name = text[name_start:i].lower()
        if not name:
            raise HtmlParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset {begin_byte}'
            )
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            raise unclosed
        if text[i] != "=":
            if tag == "blockquote" and name == "expandable":
                expandable = True
                continue
            raise HtmlParseError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                f"at byte offset {begin_byte}"
            )
        i += 1
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            raise unclosed
        if text[i] in "'\"":
            quote = text[i]
            i += 1
            value_chars: list[str] = []
            while i < n and text[i] != quote:
                if text[i] == "&":
                    decoded = _decode_entity(text, i)
                    if decoded is not None:
                        value_chars.append(decoded[0])
                        i = decoded[1]
                        continue
                value_chars.append(text[i])
                i += 1
            if i < n:
                i += 1
            value = "".join(value_chars)
        else:
            token_start = i
            while i < n and (text[i].isalnum() or text[i] in ".-"):
                i += 1
            value = text[token_start:i].lower()
            if i < n and text[i] not in _SPACE and text[i] != ">":
                raise HtmlParseError(
                    f"Unexpected end of name token at byte offset "
                    f"{len(text[:token_start].encode('utf-8'))}"
                )
        if i >= n:
            raise unclosed
        if tag == "a" and name == "href":
            argument = value
        elif tag == "code" and name == "class" and value.startswith("language-"):
            argument = value[len("language-") :]
        elif tag == "span" and name == "class" and value.startswith("tg-"):
            argument = value[3:]
        elif tag == "tg-emoji" and name == "emoji-id":
            argument = value


def _close(top: _Open, offset: int, result: str, entities: list[Entity]) -> None:
    length = offset - top.offset
    if length <= 0:
        return
    tag = top.tag
    if tag in _SIMPLE_TYPES:
        entities.append({"type": _SIMPLE_TYPES[tag], "offset": top.offset, "length": length})
    elif tag == "blockquote":
        kind = "expandable_blockquote" if top.expandable else "blockquote"
        entities.append({"type": kind, "offset": top.offset, "length": length})
    elif tag == "tg-emoji":
        if top.argument.isdigit():
            entities.append(
                {
                    "type": "custom_emoji",
                    "offset": top.offset,
                    "length": length,
                    "custom_emoji_id": top.argument,
                }
            )
    elif tag == "a":
        url = _check_link(top.argument or result[top.start :])
        if url is not None:
            entities.append(
                {"type": "text_link", "offset": top.offset, "length": length, "url": url}
            )
    elif tag == "pre":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "code"
            and last["offset"] == top.offset
            and last["length"] == length
            and last.get("_language")
        ):
            entities[-1] = {
                "type": "pre",
                "offset": top.offset,
                "length": length,
                "language": last["_language"],
            }
        else:
            entities.append({"type": "pre", "offset": top.offset, "length": length})
    elif tag == "code":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "pre"
            and last["offset"] == top.offset
            and last["length"] == length
            and top.argument
        ):
            last["language"] = top.argument
        else:
            entity: Entity = {"type": "code", "offset": top.offset, "length": length}
            if top.argument:
                entity["_language"] = top.argument
            entities.append(entity)


def sort_entities(entities: list[Entity]) -> list[Entity]:
    """Drop private keys and sort by offset, longer (outer) entities first."""
    cleaned = [{k: v for k, v in e.items() if not k.startswith("_")} for e in entities]
    return sorted(cleaned, key=lambda e: (e["offset"], -e["length"]))


def strip_text(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Trim surrounding whitespace like Telegram does, clipping entities to the new text."""
    stripped = text.strip(_SPACE)
    if stripped == text:
        return text, entities
    lead = len(text) - len(text.lstrip(_SPACE))  # whitespace is BMP: chars == UTF-16 units
    total = utf16_len(stripped)
    result: list[Entity] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, total)
        if end > start:
            result.append({**entity, "offset": start, "length": end - start})
    return stripped, result


def slice_utf16(text: str, start: int, end: int) -> str:
    """``text`` sliced by UTF-16 code unit positions."""
    raw = text.encode("utf-16-le")
    return raw[start * 2 : end * 2].decode("utf-16-le", errors="replace")


_OPEN_TAGS = {
    "bold": "<b>",
    "italic": "<i>",
    "underline": "<u>",
    "strikethrough": "<s>",
    "spoiler": "<tg-spoiler>",
    "code": "<code>",
    "blockquote": "<blockquote>",
    "expandable_blockquote": "<blockquote expandable>",
}
_CLOSE_TAGS = {
    "bold": "</b>",
    "italic": "</i>",
    "underline": "</u>",
    "strikethrough": "</s>",
    "spoiler": "</tg-spoiler>",
    "code": "</code>",
    "blockquote": "</blockquote>",
    "expandable_blockquote": "</blockquote>",
}


def _tags(entity: Entity) -> tuple[str, str]:
    kind = entity["type"]
    if kind == "text_link":
        return f'<a href="{html.escape(str(entity.get("url", "")), quote=True)}">', "</a>"
    if kind == "pre":
        language = entity.get("language")
        if language:
            lang = html.escape(str(language), quote=True)
            return f'<pre><code class="language-{lang}">', "</code></pre>"
        return "<pre>", "</pre>"
    return _OPEN_TAGS.get(kind, ""), _CLOSE_TAGS.get(kind, "")


def entities_to_html(text: str, entities: list[Entity]) -> str:
    """Render text + entities as Telegram HTML; all text is escaped, so the output is safe.

    Entities that overlap without nesting are clipped to their parent, so the output is
    always well-formed. Entity types without a formatting tag (mentions, URLs) are plain.
    """
    total = utf16_len(text)
    events: list[tuple[int, int, int, str]] = []  # (position, order, tie, tag)
    stack_ends: list[int] = []
    for index, entity in enumerate(sort_entities(entities)):
        start = max(0, int(entity["offset"]))
        end = min(total, start + int(entity["length"]))
        while stack_ends and stack_ends[-1] <= start:
            stack_ends.pop()
        if stack_ends:
            end = min(end, stack_ends[-1])
        if end <= start:
            continue
        open_tag, close_tag = _tags(entity)
        if not open_tag:
            continue
        stack_ends.append(end)
        events.append((start, 1, index, open_tag))
        events.append((end, 0, -index, close_tag))
    events.sort()
    parts: list[str] = []
    cursor = 0
    for position, _order, _tie, tag in events:
        parts.append(html.escape(slice_utf16(text, cursor, position), quote=False))
        parts.append(tag)
        cursor = position
    parts.append(html.escape(slice_utf16(text, cursor, total), quote=False))
    return "".join(parts)
