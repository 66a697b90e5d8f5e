"""HTML escaping and splitting: every part parses as Telegram HTML, fits, loses nothing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.emulator.html_text import parse_html
from bot.text import MAX_CAPTION, esc, split_caption, split_html, visible_length


def plain(html: str) -> str:
    text, _ = parse_html(html)
    return text


def test_esc_makes_any_text_safe() -> None:
    hostile = "<b>AAPL</b> & <script>alert(1)</script> &amp; 1 < 2 > 0"
    assert plain(esc(hostile)) == hostile


def test_short_text_is_one_part_and_empty_is_none() -> None:
    assert split_html("<b>hi</b>") == ["<b>hi</b>"]
    assert split_html("") == [] and split_html("  \n ") == []


def test_split_cuts_at_line_boundaries() -> None:
    lines = [f"line {i:04d} {'x' * 50}" for i in range(200)]
    parts = split_html("\n".join(lines))
    assert len(parts) == 3
    assert all(visible_length(p) <= 4096 for p in parts)
    assert "\n".join(parts).splitlines() == lines  # whole lines, in order


def test_tags_open_at_a_cut_are_closed_and_reopened() -> None:
    body = "\n".join(f"row {i} &amp; more" for i in range(400))
    parts = split_html(f"<b>{body}</b>", limit=1000)
    assert len(parts) > 1
    for part in parts:
        assert part.startswith("<b>") and part.endswith("</b>")
        parse_html(part)  # valid Telegram HTML
    assert "\n".join(plain(p) for p in parts) == plain(f"<b>{body}</b>")


def test_a_line_longer_than_the_limit_is_cut_between_entities() -> None:
    line = "&amp;" * 3000 + "<i>" + "é" * 2000 + "</i>"
    parts = split_html(line)
    assert all(visible_length(p) <= 4096 for p in parts)
    assert "".join(plain(p) for p in parts) == plain(line)


def test_utf16_length_is_what_counts() -> None:
    emoji = "🛡" * 3000  # 2 UTF-16 units each
    parts = split_html(emoji)
    assert len(parts) == 2
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in parts)


def test_caption_and_the_rest() -> None:
    caption, rest = split_caption("short")
    assert caption == "short" and rest == []
    text = "\n".join(f"line {i} {'y' * 60}" for i in range(100))
    caption, rest = split_caption(text)
    assert visible_length(caption) <= MAX_CAPTION and rest
    assert "\n".join([caption, *rest]).splitlines() == text.splitlines()


TAGS = st.sampled_from(["b", "i", "u", "s", "code"])


@st.composite
def html_documents(draw: st.DrawFn) -> str:
    pieces = []
    for _ in range(draw(st.integers(0, 40))):
        text = esc(draw(st.text(min_size=0, max_size=300)))
        if draw(st.booleans()):
            tag = draw(TAGS)
            text = f"<{tag}>{text}</{tag}>"
        pieces.append(text)
        if draw(st.booleans()):
            pieces.append("\n")
    return "".join(pieces)


@settings(max_examples=150, deadline=None)
@given(html_documents(), st.integers(min_value=64, max_value=4096))
def test_split_is_valid_bounded_and_lossless(document: str, limit: int) -> None:
    parts = split_html(document, limit)
    for part in parts:
        assert visible_length(part) <= limit
        parse_html(part)  # never "can't parse entities"
    original = plain(document) if document.strip() else ""
    joined = "".join(plain(p) for p in parts)
    # Cuts happen at newlines or between characters; whitespace at a cut may be trimmed.
    assert "".join(joined.split()) == "".join(original.split())
