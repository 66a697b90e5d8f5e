"""Every parameter of SPEC-signals.md, with its default, in one validated model.

`config/params.yaml` holds the same defaults, commented. Price-level arithmetic parameters
(tick, stop offset, friction, money, trail) are `Decimal` because they take part in exact
price comparisons; thresholds used against float indicators are `float`.

Clock times are New York wall-clock times written "HH:MM" (quote them in YAML: an unquoted
09:45 is read by YAML 1.1 as the sexagesimal integer 585, which is accepted too).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TimeWindow = tuple[time, time]


class ParamsError(ValueError):
    """A parameters file or override that cannot be used; names the file and the key."""

    def __init__(self, message: str, path: Path | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        super().__init__(message)


def _to_time(raw: object) -> object:
    if isinstance(raw, int) and not isinstance(raw, bool):
        hours, minutes = divmod(raw, 60)  # YAML 1.1 sexagesimal: 09:45 -> 585
        return time(hours, minutes) if 0 <= hours < 24 else raw
    if isinstance(raw, str):
        try:
            return time.fromisoformat(raw.strip())
        except ValueError:
            return raw
    return raw


def _to_window(raw: object) -> object:
    if isinstance(raw, str) and "-" in raw:
        start, _, end = raw.partition("-")
        return (_to_time(start), _to_time(end))
    if isinstance(raw, list | tuple) and len(raw) == 2:
        return (_to_time(raw[0]), _to_time(raw[1]))
    return raw


class SignalParams(BaseModel):
    """The signal, regime and simulated-execution parameters (SPEC-signals.md defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Regime (SPEC "Regime")
    trend_pct: float = Field(0.75, gt=0, le=1)
    trend_max_crosses: float = Field(4, ge=0)  # float: the stability run compares 3.6 / 4.4
    trend_min_range_atr: float = Field(0.5, ge=0)
    forming_minutes: int = Field(30, ge=0, le=390)
    early_volume_window: TimeWindow = (time(9, 30), time(10, 30))
    daily_lookback: int = Field(20, ge=1)  # ATR20 / MA20 and the warm-up, in sessions
    or_minutes: tuple[int, ...] = (5, 15)
    or_width_minutes: int = Field(15, ge=1)
    stability_step_pct: float = Field(10, gt=0, lt=100)

    # Entry signal (SPEC "Entry signal")
    band_bps: float = Field(10, ge=0)
    entry_windows: tuple[TimeWindow, ...] = (
        (time(9, 45), time(11, 0)),
        (time(13, 30), time(15, 30)),
    )
    max_entries_per_session: int = Field(1, ge=1)
    tick: Decimal = Field(Decimal("0.01"), gt=0)
    stop_offset_bps: Decimal = Field(Decimal(5), ge=0, lt=10_000)

    # Simulated execution (SPEC "Simulated execution")
    stop_valid_bars: int = Field(3, ge=1)
    spread_bps: Decimal = Field(Decimal(2), ge=0)
    slippage_bps: Decimal = Field(Decimal(2), ge=0)
    commission_per_share: Decimal = Field(Decimal(0), ge=0)
    commission_min_per_order: Decimal = Field(Decimal(0), ge=0)
    flatten_minutes_before_close: int = Field(5, ge=0)
    risk_per_trade: Decimal = Field(Decimal(100), gt=0)
    min_qty: int = Field(2, ge=1)
    max_position_pct: Decimal = Field(Decimal(25), gt=0, le=100)
    equity: Decimal = Field(Decimal(25000), gt=0)
    exit_model: Literal["trail", "half_1r"] = "trail"
    trail_pct: Decimal = Field(Decimal("0.8"), gt=0, lt=100)
    trail_policy: str = Field("fixed", min_length=1)

    @field_validator("early_volume_window", mode="before")
    @classmethod
    def _parse_window(cls, raw: object) -> object:
        return _to_window(raw)

    @field_validator("entry_windows", mode="before")
    @classmethod
    def _parse_windows(cls, raw: object) -> object:
        if isinstance(raw, list | tuple):
            return tuple(_to_window(item) for item in raw)
        return raw

    @model_validator(mode="after")
    def _check(self) -> SignalParams:
        for start, end in (*self.entry_windows, self.early_volume_window):
            if not start < end:
                raise ValueError(f"window {start:%H:%M}-{end:%H:%M} must start before it ends")
        if self.or_width_minutes not in self.or_minutes:
            raise ValueError(
                f"or_width_minutes {self.or_width_minutes} must be one of or_minutes "
                f"{list(self.or_minutes)}"
            )
        if any(n <= 0 for n in self.or_minutes):
            raise ValueError("or_minutes must be positive")
        return self

    @property
    def band_factor(self) -> float:
        """`1 + band_bps / 10000`, computed once so every form uses the same float."""
        return 1 + self.band_bps / 10000

    @property
    def friction_bps(self) -> Decimal:
        return self.spread_bps / 2 + self.slippage_bps


DEFAULT_PARAMS = SignalParams()


def _raise_from(exc: ValidationError, path: Path | None, what: str) -> ParamsError:
    problems = []
    first_key: str | None = None
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "(model)"
        first_key = first_key or key
        shown = error.get("input")
        got = "" if isinstance(shown, dict) else f" (got {shown!r})"
        problems.append(f"{key}: {error['msg']}{got}")
    return ParamsError(f"{what}: " + "; ".join(problems), path, first_key)


def params_from_mapping(values: Mapping[str, Any], source: str = "params") -> SignalParams:
    try:
        return SignalParams.model_validate(dict(values))
    except ValidationError as exc:
        raise _raise_from(exc, None, source) from None


def load_params(path: Path | None) -> SignalParams:
    """Read a params YAML file (a flat mapping); None means the defaults."""
    if path is None:
        return DEFAULT_PARAMS
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read params file ({exc.strerror})", path) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})", path) from None
    if document is None:
        return DEFAULT_PARAMS
    if not isinstance(document, dict):
        raise ParamsError(f"{path}: expected a mapping of parameter: value", path)
    try:
        return SignalParams.model_validate(document)
    except ValidationError as exc:
        raise _raise_from(exc, path, str(path)) from None


def with_overrides(params: SignalParams, overrides: Mapping[str, object]) -> SignalParams:
    """A copy with `--set key=value` overrides; string values are read as YAML scalars."""
    values: dict[str, Any] = dict(params)
    for key, raw in overrides.items():
        if key not in SignalParams.model_fields:
            known = ", ".join(sorted(SignalParams.model_fields))
            raise ParamsError(f"unknown parameter {key!r} (known: {known})", key=key)
        if isinstance(raw, str):
            try:
                raw = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise ParamsError(f"--set {key}: not a value ({exc})", key=key) from None
        values[key] = raw
    try:
        return SignalParams.model_validate(values)
    except ValidationError as exc:
        raise _raise_from(exc, None, "--set") from None
