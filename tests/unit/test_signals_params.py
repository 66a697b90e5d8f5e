"""SignalParams: config/params.yaml holds exactly the defaults; errors name file and key."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from pathlib import Path

import pytest

from core.params import DEFAULT_PARAMS, ParamsError, SignalParams, load_params, with_overrides

CONFIG = Path(__file__).resolve().parents[2] / "config" / "params.yaml"


def test_config_file_holds_every_default() -> None:
    assert load_params(CONFIG) == DEFAULT_PARAMS
    text = CONFIG.read_text()
    for key in SignalParams.model_fields:
        assert f"\n{key}:" in text, key


def test_spec_defaults() -> None:
    p = DEFAULT_PARAMS
    assert (p.trend_pct, p.trend_max_crosses, p.trend_min_range_atr) == (0.75, 4, 0.5)
    assert (p.forming_minutes, p.band_bps, p.max_entries_per_session) == (30, 10, 1)
    assert (p.tick, p.stop_offset_bps, p.stop_valid_bars) == (Decimal("0.01"), 5, 3)
    assert (p.spread_bps, p.slippage_bps, p.commission_per_share) == (2, 2, 0)
    assert (p.risk_per_trade, p.min_qty, p.max_position_pct, p.equity) == (100, 2, 25, 25000)
    assert (p.exit_model, p.trail_pct, p.trail_policy) == ("trail", Decimal("0.8"), "fixed")
    assert p.entry_windows == ((time(9, 45), time(11, 0)), (time(13, 30), time(15, 30)))
    assert p.band_factor == 1 + 10 / 10000


def test_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("trend_pct: 1.5\n")
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert caught.value.key == "trend_pct" and caught.value.path == path
    assert str(caught.value).startswith(f"{path}: trend_pct")
    path.write_text("band_bbps: 3\n")
    with pytest.raises(ParamsError, match="band_bbps"):
        load_params(path)
    path.write_text("entry_windows: ['11:00-09:45']\n")
    with pytest.raises(ParamsError, match="must start before"):
        load_params(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(ParamsError, match="mapping"):
        load_params(path)
    with pytest.raises(ParamsError, match="cannot read"):
        load_params(tmp_path / "missing.yaml")


def test_overrides_and_unquoted_yaml_times(tmp_path: Path) -> None:
    p = with_overrides(DEFAULT_PARAMS, {"trend_max_crosses": "3.6", "exit_model": "half_1r"})
    assert p.trend_max_crosses == 3.6 and p.exit_model == "half_1r"
    assert with_overrides(p, {"trail_pct": "1.2"}).trail_pct == Decimal("1.2")
    with pytest.raises(ParamsError, match="unknown parameter") as caught:
        with_overrides(p, {"nope": "1"})
    assert caught.value.key == "nope"
    with pytest.raises(ParamsError, match="exit_model"):
        with_overrides(p, {"exit_model": "moon"})
    path = tmp_path / "p.yaml"
    path.write_text("entry_windows: [[09:50, 10:30]]\n")  # YAML 1.1 reads 09:50 as 590
    assert load_params(path).entry_windows == ((time(9, 50), time(10, 30)),)
