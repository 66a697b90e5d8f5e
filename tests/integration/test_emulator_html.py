"""Telegram HTML parsing and rendering used by the emulator (pure functions, no server)."""

from __future__ import annotations

import html

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.emulator.html_text import (
    HtmlParseError,
    entities_to_html,
    parse_html,
    strip_text,
    utf16_len,
)
from bot.emulator.media import image_size
from bot.emulator.testing import make_png


def test_entities_use_utf16_offsets() -> None:
    text, entities = parse_html("📈 <b>AAPL</b> &#x1F4C9; <i>é</i>")
    assert text == "📈 AAPL 📉 é"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 4},
        {"type": "italic", "offset": 11, "length": 1},
    ]


def test_nested_pre_code_links_spoilers_and_quotes() -> None:
    source = (
        '<pre><code class="language-python">x = 1</code></pre>'
        '<a href="example.org/a?b=1&amp;c=2">link</a>'
        '<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>'
        "<blockquote expandable>q</blockquote><a href='javascript:alert(1)'>js</a>"
    )
    text, entities = parse_html(source)
    assert text == "x = 1linkstqjs"
    assert entities == [
        {"type": "pre", "offset": 0, "length": 5, "language": "python"},
        {"type": "text_link", "offset": 5, "length": 4, "url": "http://example.org/a?b=1&c=2"},
        {"type": "spoiler", "offset": 9, "length": 1},
        {"type": "spoiler", "offset": 10, "length": 1},
        {"type": "expandable_blockquote", "offset": 11, "length": 1},
    ]  # the javascript: link is dropped, its text kept, as Telegram does


def test_unknown_named_entities_stay_literal_and_case_is_ignored() -> None:
    assert parse_html("AT&T &nbsp; &lt;b&gt; <B>x</B>") == (
        "AT&T &nbsp; <b> x",
        [{"type": "bold", "offset": 16, "length": 1}],
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("<script>x</script>", 'Unsupported start tag "script" at byte offset 0'),
        ("é<u>x", 'Can\'t find end tag corresponding to start tag "u"'),
        ("é <br/>", 'Unsupported start tag "br/" at byte offset 3'),
        ("<a href=x y>z</a>", 'Expected equal sign in declaration of an attribute of the tag "a"'),
        ("<b>x</b  z>", "Unclosed end tag at byte offset 4"),
        ("<i>x</>", None),  # an empty end tag closes the innermost tag
    ],
)
def test_parse_errors(source: str, message: str | None) -> None:
    if message is None:
        assert parse_html(source) == ("x", [{"type": "italic", "offset": 0, "length": 1}])
        return
    with pytest.raises(HtmlParseError) as caught:
        parse_html(source)
    assert message in str(caught.value)


def test_strip_text_clips_entities() -> None:
    text, entities = parse_html("\n <b> hi </b>\n")
    assert strip_text(text, entities) == ("hi", [{"type": "bold", "offset": 0, "length": 2}])


def test_entities_to_html_escapes_and_clips_overlaps() -> None:
    overlapping = [
        {"type": "bold", "offset": 0, "length": 3},
        {"type": "italic", "offset": 1, "length": 4},
        {"type": "mention", "offset": 0, "length": 1},
    ]
    assert entities_to_html("<&>xy", overlapping) == "<b>&lt;<i>&amp;&gt;</i></b>xy"


@given(st.text(max_size=60))
def test_escaped_text_round_trips(text: str) -> None:
    parsed, entities = parse_html(html.escape(text, quote=False))
    assert parsed == text and entities == []


_KINDS = ["bold", "italic", "underline", "strikethrough", "spoiler", "code", "blockquote"]


@st.composite
def formatted_text(draw: st.DrawFn) -> tuple[str, list[dict[str, object]]]:
    text = draw(
        st.text(
            alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
            min_size=1,
            max_size=30,
        )
    )
    total = utf16_len(text)
    entities = []
    cursor = 0
    for kind in draw(st.lists(st.sampled_from(_KINDS), max_size=4)):
        if cursor >= total:
            break
        start = draw(st.integers(cursor, total - 1))
        end = draw(st.integers(start + 1, total))
        if _splits_pair(text, start) or _splits_pair(text, end):
            continue
        entities.append({"type": kind, "offset": start, "length": end - start})
        cursor = end
    return text, entities


def _splits_pair(text: str, unit: int) -> bool:
    seen = 0
    for ch in text:
        if seen == unit:
            return False
        seen += 2 if ord(ch) > 0xFFFF else 1
        if seen > unit:
            return True
    return False


@given(formatted_text())
def test_rendered_html_parses_back(sample: tuple[str, list[dict[str, object]]]) -> None:
    text, entities = sample
    assert parse_html(entities_to_html(text, entities)) == (text, entities)


def test_image_size_reads_png_headers() -> None:
    assert image_size(make_png(13, 7)) == (13, 7)
    assert image_size(b"GIF89a\x05\x00\x03\x00rest") == (5, 3)
    assert image_size(b"plain text") is None
