"""Reports <-> JSON, exactly: what `load_report` reads back equals what was written.

Why a small codec of our own rather than `dataclasses.asdict` + `json`: Decimals must be
strings (a float would carry binary noise into money), datetimes ISO 8601 with their New
York offset, and decoding must rebuild the typed dataclasses (Decimal, enums, tuples) from
the field annotations, so the bot can re-send a stored report through the same renderer.
"""

from __future__ import annotations

import dataclasses
import types
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from core.clock import NEW_YORK

T = TypeVar("T")


class ReportFormatError(ValueError):
    """A stored report does not match the report's shape."""


def encode(value: object) -> Any:
    """JSON-ready data: Decimal and times as strings, dataclasses as objects."""
    if isinstance(value, Enum):
        return encode(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__}: {value!r}")


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    found = _HINTS.get(cls)
    if found is None:
        found = _HINTS[cls] = get_type_hints(cls)
    return found


def _expect(raw: object, kind: type[Any] | tuple[type[Any], ...], hint: object) -> None:
    if not isinstance(raw, kind) or (kind is int and isinstance(raw, bool)):
        raise ReportFormatError(f"expected {hint}, got {raw!r}")


def decode(hint: Any, raw: object) -> Any:
    """Rebuild a value of type `hint` from its `encode` form."""
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        args = get_args(hint)
        if raw is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return decode(inner, raw)
    if origin is tuple:
        _expect(raw, list, hint)
        args = get_args(hint)
        assert isinstance(raw, list)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], item) for item in raw)
        if len(args) != len(raw):
            raise ReportFormatError(f"expected {len(args)} items for {hint}, got {raw!r}")
        return tuple(decode(a, item) for a, item in zip(args, raw, strict=True))
    if origin is dict:
        _expect(raw, dict, hint)
        return raw  # free-form JSON (evidence, details): kept as read
    if hint is Any:
        return raw
    if not isinstance(hint, type):
        raise ReportFormatError(f"unsupported field type {hint!r}")
    if issubclass(hint, Enum):
        return hint(raw)
    if hint is datetime:
        _expect(raw, str, hint)
        assert isinstance(raw, str)
        return datetime.fromisoformat(raw).astimezone(NEW_YORK)
    if hint is date or hint is time:
        _expect(raw, str, hint)
        assert isinstance(raw, str)
        return hint.fromisoformat(raw)
    if hint is Decimal:
        _expect(raw, str, hint)
        assert isinstance(raw, str)
        return Decimal(raw)
    if dataclasses.is_dataclass(hint):
        return decode_dataclass(hint, raw)
    if hint is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    _expect(raw, hint, hint)
    return raw


def decode_dataclass(cls: type[T], raw: object) -> T:
    _expect(raw, dict, cls.__name__)
    assert isinstance(raw, dict)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in raw:
            raise ReportFormatError(f"{cls.__name__}: missing {f.name!r}")
        kwargs[f.name] = decode(hints[f.name], raw[f.name])
    return cls(**kwargs)
