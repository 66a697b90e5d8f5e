"""The one error type for unusable market data: it names the file and, when known, the line."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Market data that cannot be used as it is.

    `path` is the file (or folder) at fault and `line` the 1-based line of a CSV file (the
    header is line 1, so the first bar is line 2) or the 1-based row of a Parquet file;
    `line` is None when the problem is not tied to one line (an empty folder, a file whose
    bar size cannot be inferred).
    """

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = message
        where = f"{self.path}" if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")
