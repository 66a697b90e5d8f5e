"""Reading bar files (the `../shared/data` format) into exact numpy arrays.

Intraday: `timestamp,open,high,low,close,volume` (CSV or Parquet with the same columns),
one file per symbol, the file name (without extension) is the symbol.
Daily: `date,open,high,low,close,volume`.

Prices are kept EXACT as int64 ten-thousandths (the files carry 4 decimals); a price with
more decimals is refused rather than silently rounded. Timestamps become int64 UTC epoch
nanoseconds. Floats appear only later, inside the indicators.

Parsing has a fast path (pyarrow's CSV reader, decimal128 columns, vectorized strptime) and
a slow, line-by-line path. Any file the fast path does not accept cleanly is re-read by the
slow path, which either accepts it (an unusual but valid spelling such as a `Z` offset) or
raises a `DataError` naming the exact line. So clean files are fast and bad files get a
precise message; both paths produce identical arrays.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from numpy.typing import NDArray

from core.marketdata.errors import DataError

PRICE_SCALE = 10_000  # prices are int64 ten-thousandths of a dollar
INTRADAY_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
DAILY_COLUMNS = ("date", "open", "high", "low", "close", "volume")
BAR_FILE_SUFFIXES = (".csv", ".parquet", ".pq")
_PRICE_TYPE = pa.decimal128(18, 4)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)

I64 = NDArray[np.int64]


@dataclass(frozen=True, slots=True, eq=False)
class RawBars:
    """One intraday file, parsed and validated (rows in file order, strictly increasing)."""

    path: Path
    symbol: str
    start_ns: I64  # bar start, UTC epoch nanoseconds
    open: I64  # ten-thousandths
    high: I64
    low: I64
    close: I64
    volume: I64
    lines: I64  # the 1-based source line (CSV) or row (Parquet) of every bar

    def __len__(self) -> int:
        return len(self.start_ns)


@dataclass(frozen=True, slots=True, eq=False)
class RawDaily:
    """One daily file: `day` holds days since 1970-01-01 (int64), prices ten-thousandths."""

    path: Path
    symbol: str
    day: I64
    open: I64
    high: I64
    low: I64
    close: I64
    volume: I64
    lines: I64

    def __len__(self) -> int:
        return len(self.day)

    def dates(self) -> list[date]:
        return [date.fromordinal(_EPOCH_DAY.toordinal() + int(d)) for d in self.day]


def symbol_of(path: Path) -> str:
    """The symbol a bar file holds: its name without the extension (`AAPL.csv` -> AAPL)."""
    return path.stem


def discover(folder: Path) -> dict[str, Path]:
    """Symbol -> file for every bar file in a folder (other files are ignored)."""
    if not folder.is_dir():
        raise DataError(folder, None, "not a folder of bar files")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in BAR_FILE_SUFFIXES or not path.is_file():
            continue
        symbol = symbol_of(path)
        if symbol in found:
            raise DataError(path, None, f"symbol {symbol} also comes from {found[symbol].name}")
        found[symbol] = path
    if not found:
        raise DataError(folder, None, "no bar files (*.csv, *.parquet) in this folder")
    return found


def _scaled(column: pa.ChunkedArray | pa.Array) -> I64:
    """The unscaled int64 values of a decimal128(18, 4) column (exact ten-thousandths)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    words = np.frombuffer(array.buffers()[1], dtype=np.int64)  # little-endian lo, hi pairs
    lo = words[2 * array.offset : 2 * (array.offset + len(array)) : 2]
    return np.ascontiguousarray(lo, dtype=np.int64)


def _int_column(column: pa.ChunkedArray) -> I64:
    return np.asarray(column.combine_chunks().to_numpy(zero_copy_only=False), dtype=np.int64)


def _line_count(data: bytes) -> int:
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


class _SlowPathNeeded(Exception):
    """The fast reader cannot vouch for this file; re-read it line by line."""


def _fast_csv(data: bytes, first_column: str) -> tuple[pa.Table, int]:
    types = {name: _PRICE_TYPE for name in ("open", "high", "low", "close")}
    types[first_column] = pa.string()
    types["volume"] = pa.int64()
    try:
        table = pcsv.read_csv(
            io.BytesIO(data),
            convert_options=pcsv.ConvertOptions(column_types=types, strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _SlowPathNeeded from exc
    expected = INTRADAY_COLUMNS if first_column == "timestamp" else DAILY_COLUMNS
    if tuple(table.column_names) != expected:
        raise _SlowPathNeeded
    if any(table.column(name).null_count for name in expected):
        raise _SlowPathNeeded
    # A blank line would shift every line number after it: let the slow path count them.
    if _line_count(data) != table.num_rows + 1:
        raise _SlowPathNeeded
    return table, table.num_rows


def _parse_price(text: str, path: Path, line: int, name: str) -> int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise DataError(path, line, f"{name} {text!r} is not a number") from None
    scaled = value * PRICE_SCALE
    if not value.is_finite() or scaled != scaled.to_integral_value():
        raise DataError(path, line, f"{name} {text!r} is not a price with at most 4 decimals")
    return int(scaled)


def _parse_volume(text: str, path: Path, line: int) -> int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise DataError(path, line, f"volume {text!r} is not a number") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise DataError(path, line, f"volume {text!r} is not a whole number")
    return int(value)


def _parse_timestamp(text: str, path: Path, line: int) -> int:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DataError(path, line, f"timestamp {text!r} is not ISO 8601") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise DataError(
            path, line, f"timestamp {text!r} has no UTC offset (naive times are ambiguous)"
        )
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _parse_day(text: str, path: Path, line: int) -> int:
    try:
        return date.fromisoformat(text.strip()).toordinal() - _EPOCH_DAY.toordinal()
    except ValueError:
        raise DataError(path, line, f"date {text!r} is not YYYY-MM-DD") from None


def _slow_csv(data: bytes, path: Path, expected: tuple[str, ...]) -> list[list[int]]:
    """Line-by-line parse; returns columns [key, o, h, l, c, v, line]."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(path, None, f"not UTF-8 text ({exc.reason})") from None
    columns: list[list[int]] = [[] for _ in range(7)]
    reader = csv.reader(io.StringIO(text))
    header_seen = False
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue  # blank lines are harmless
        if not header_seen:
            names = tuple(cell.strip() for cell in row)
            if names != expected:
                hint = ""
                if names and names[0] in ("date", "timestamp") and names[0] != expected[0]:
                    kind = "a daily" if names[0] == "date" else "an intraday"
                    hint = f" (this looks like {kind} file)"
                raise DataError(
                    path, line, f"header must be {','.join(expected)}, got {','.join(names)}{hint}"
                )
            header_seen = True
            continue
        if len(row) != len(expected):
            raise DataError(path, line, f"expected {len(expected)} fields, got {len(row)}")
        if expected[0] == "timestamp":
            key = _parse_timestamp(row[0], path, line)
        else:
            key = _parse_day(row[0], path, line)
        values = [key]
        values += [_parse_price(row[k], path, line, expected[k]) for k in range(1, 5)]
        values += [_parse_volume(row[5], path, line), line]
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    if not header_seen:
        raise DataError(path, None, "empty file (no header)")
    return columns


def _validate(path: Path, key: I64, o: I64, h: I64, lo: I64, c: I64, v: I64, lines: I64) -> None:
    """OHLC consistency, positive prices, volume >= 0, strictly increasing keys."""
    bad = (lo <= 0) | (lo > np.minimum(o, c)) | (h < np.maximum(o, c)) | (v < 0)
    if bad.any():
        k = int(np.argmax(bad))
        line = int(lines[k])
        if v[k] < 0:
            raise DataError(path, line, f"negative volume {v[k]}")
        prices = "o={} h={} l={} c={}".format(*(x[k] / PRICE_SCALE for x in (o, h, lo, c)))
        raise DataError(path, line, f"inconsistent or non-positive prices ({prices})")
    if len(key) > 1:
        step = np.diff(key)
        if (step <= 0).any():
            k = int(np.argmax(step <= 0)) + 1
            what = "duplicate" if step[k - 1] == 0 else "out-of-order"
            raise DataError(
                path,
                int(lines[k]),
                f"{what} timestamp (line {int(lines[k - 1])} has the same or a later one)",
            )


def _decode(data: bytes, path: Path, first: str) -> tuple[I64, list[I64]]:
    """Columns (key, [o, h, l, c, v, lines]) of a CSV file, fast path first."""
    expected = INTRADAY_COLUMNS if first == "timestamp" else DAILY_COLUMNS
    try:
        table, rows = _fast_csv(data, first)
        raw_key = table.column(first).combine_chunks()
        if first == "timestamp":
            parsed = pc.strptime(raw_key, format="%Y-%m-%dT%H:%M:%S%z", unit="ns")
        else:
            parsed = pc.strptime(raw_key, format="%Y-%m-%d", unit="s")
        key = np.asarray(parsed.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
        if first == "date":
            key = key // 86_400
        prices = [_scaled(table.column(name)) for name in ("open", "high", "low", "close")]
        volume = _int_column(table.column("volume"))
        lines = np.arange(2, rows + 2, dtype=np.int64)
        return key, [*prices, volume, lines]
    except (_SlowPathNeeded, pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        columns = _slow_csv(data, path, expected)
        arrays = [np.asarray(column, dtype=np.int64) for column in columns]
        return arrays[0], arrays[1:]


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(path, None, f"cannot read ({exc.strerror})") from None


def _float_prices(values: pa.ChunkedArray, path: Path, name: str) -> I64:
    """Parquet prices stored as floats or decimals: exact ten-thousandths or an error."""
    as_float = np.asarray(
        values.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
    )
    scaled = np.round(as_float * PRICE_SCALE)
    off = ~np.isfinite(as_float) | (np.abs(as_float * PRICE_SCALE - scaled) > 1e-6)
    if off.any():
        row = int(np.argmax(off))
        raise DataError(path, row + 1, f"{name} {as_float[row]!r} has more than 4 decimals")
    return scaled.astype(np.int64)


def _read_parquet(path: Path) -> tuple[I64, list[I64]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(path, None, f"not a readable Parquet file ({exc})") from None
    missing = [name for name in INTRADAY_COLUMNS if name not in table.column_names]
    if missing:
        raise DataError(path, None, f"missing column(s) {', '.join(missing)}")
    for name in INTRADAY_COLUMNS:
        if table.column(name).null_count:
            row = int(np.argmax(table.column(name).is_null().to_numpy(zero_copy_only=False)))
            raise DataError(path, row + 1, f"empty {name}")
    stamps = table.column("timestamp")
    if pa.types.is_timestamp(stamps.type):
        if stamps.type.tz is None:
            raise DataError(path, 1, "timestamp column has no timezone (naive times)")
        key = np.asarray(
            stamps.cast(pa.timestamp("ns", "UTC")).cast(pa.int64()).to_numpy(),
            dtype=np.int64,
        )
    else:
        texts = stamps.cast(pa.string()).to_pylist()
        key = np.asarray(
            [_parse_timestamp(str(t), path, k + 1) for k, t in enumerate(texts)], dtype=np.int64
        )
    prices = [_float_prices(table.column(n), path, n) for n in ("open", "high", "low", "close")]
    volume_f = np.asarray(
        table.column("volume").cast(pa.float64()).to_numpy(zero_copy_only=False),
        dtype=np.float64,
    )
    if (volume_f != np.round(volume_f)).any():
        row = int(np.argmax(volume_f != np.round(volume_f)))
        raise DataError(path, row + 1, f"volume {volume_f[row]!r} is not a whole number")
    lines = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return key, [*prices, volume_f.astype(np.int64), lines]


def read_intraday(path: Path, symbol: str | None = None) -> RawBars:
    """Read and validate one intraday bar file (CSV or Parquet)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        key, (o, h, lo, c, v, lines) = _read_parquet(path)
    else:
        key, (o, h, lo, c, v, lines) = _decode(_read_bytes(path), path, "timestamp")
    _validate(path, key, o, h, lo, c, v, lines)
    return RawBars(path, symbol or symbol_of(path), key, o, h, lo, c, v, lines)


def read_daily(path: Path, symbol: str | None = None) -> RawDaily:
    """Read and validate one daily bar file (`date,open,high,low,close,volume`)."""
    key, (o, h, lo, c, v, lines) = _decode(_read_bytes(path), path, "date")
    _validate(path, key, o, h, lo, c, v, lines)
    return RawDaily(path, symbol or symbol_of(path), key, o, h, lo, c, v, lines)
