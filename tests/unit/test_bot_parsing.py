"""Strict argument parsing: right answers for right input, one clean UsageError otherwise,
and nothing else ever raised (fuzzed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.parsing import (
    BuyArgs,
    SellArgs,
    UsageError,
    no_args,
    parse_account,
    parse_buy,
    parse_date,
    parse_kind,
    parse_optional_date,
    parse_optional_symbol,
    parse_percent,
    parse_period,
    parse_price,
    parse_price_reply,
    parse_qty,
    parse_risk,
    parse_sell,
    parse_trail,
)

D = Decimal
TODAY = date(2025, 3, 3)


def test_buy() -> None:
    assert parse_buy([]) == BuyArgs()
    assert parse_buy(["aapl"]) == BuyArgs("AAPL")
    assert parse_buy(["AAPL", "191.52"]) == BuyArgs("AAPL", D("191.52"))
    assert parse_buy(["AAPL", "191.52", "40"]) == BuyArgs("AAPL", D("191.52"), qty=D(40))
    assert parse_buy(["AAPL", "$191.5", "$100"]) == BuyArgs("AAPL", D("191.5"), risk_usd=D(100))
    assert parse_buy(["BRK.B", "0.5012"]).trigger == D("0.5012")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["AAPL", "abc"], "is not a price"),
        (["AAPL", "0"], "above zero"),
        (["AAPL", "1e3"], "is not a price"),
        (["AAPL", "NaN"], "is not a price"),
        (["AAPL", "١٢٣"], "is not a price"),
        (["AAPL", "191.52", "4.5"], "whole number"),
        (["AAPL", "191.52", "$0"], "above zero"),
        (["AAPL", "191.52", "40", "x"], "unexpected"),
        (["<b>"], "not a US stock symbol"),
        (["TOOLONGSYMBOL"], "not a US stock symbol"),
    ],
)
def test_buy_refusals_say_why_and_how(args: list[str], reason: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_buy(args)
    assert reason in caught.value.reason
    assert caught.value.usage.startswith("/buy SYM")


def test_sell_trail_period_and_friends() -> None:
    assert parse_sell(["mu", "80.1", "5"]) == SellArgs("MU", D("80.1"), D(5))
    assert parse_trail(["AAPL", "1.2%"]) == ("AAPL", D("1.2"))
    assert parse_trail(["AAPL", "0.8"]) == ("AAPL", D("0.8"))
    for bad in (["AAPL"], ["AAPL", "0%"], ["AAPL", "50%"], ["AAPL", "-1%"], ["1%", "AAPL"]):
        with pytest.raises(UsageError):
            parse_trail(bad)
    assert parse_period([]) == "day" and parse_period(["WEEK"]) == "week"
    with pytest.raises(UsageError):
        parse_period(["year"])
    assert parse_optional_symbol(["qqqm"], "regime") == "QQQM"
    assert parse_account(["Paper"]) == "paper"
    assert parse_kind(["Signal"], "mute") == "signal"
    with pytest.raises(UsageError):
        parse_kind(["trades"], "mute")
    with pytest.raises(UsageError):
        no_args(["x"], "status")


def test_dates() -> None:
    assert parse_date("today", TODAY, "") == TODAY
    assert parse_date("yesterday", TODAY, "") == date(2025, 3, 2)
    assert parse_date("2025-02-28", TODAY, "") == date(2025, 2, 28)
    assert parse_optional_date([], TODAY, "signals") is None
    for bad in ("2025-02-30", "2025-2-3", "03/03/2025", "tomorrow", "２０２５-01-01"):
        with pytest.raises(UsageError):
            parse_date(bad, TODAY, "")


def test_typed_price_replies() -> None:
    assert parse_price_reply("191.52", with_stop=True) == (D("191.52"), None)
    assert parse_price_reply(" 191.52  189.9 ", with_stop=True) == (D("191.52"), D("189.9"))
    with pytest.raises(UsageError):
        parse_price_reply("191.52 192", with_stop=True)  # stop above the trigger
    with pytest.raises(UsageError):
        parse_price_reply("191.52 189.9", with_stop=False)
    with pytest.raises(UsageError):
        parse_price_reply("", with_stop=True)


def test_scalars() -> None:
    assert parse_price("$1234567.1234", "") == D("1234567.1234")
    assert parse_qty("1000000", "") == D(1000000)
    assert parse_risk("$99.50", "") == D("99.5")
    assert parse_percent("49.999%", "") == D("49.999")
    with pytest.raises(UsageError):
        parse_qty("0", "")


ARGS = st.lists(st.text(max_size=30), max_size=5)
PARSERS: Sequence[Callable[[list[str]], Any]] = (
    parse_buy,
    parse_sell,
    parse_trail,
    parse_period,
    parse_account,
    lambda a: parse_optional_symbol(a, "regime"),
    lambda a: parse_optional_date(a, TODAY, "signals"),
    lambda a: parse_kind(a, "mute"),
    lambda a: parse_price_reply(" ".join(a), with_stop=True),
    lambda a: parse_price_reply(" ".join(a), with_stop=False),
)


@settings(max_examples=300)
@given(st.sampled_from(range(len(PARSERS))), ARGS)
def test_nothing_but_usage_errors(which: int, args: list[str]) -> None:
    try:
        PARSERS[which](args)
    except UsageError as exc:
        assert exc.reason and "\n" not in exc.reason and exc.usage
