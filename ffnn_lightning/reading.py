"""Reading a table file: CSV or Parquet, compressed or not, with a one-line error for what
cannot be read, and its columns by the readers a fit chose (``data/columns.py``: numbers
written as text, dates). It imports neither PyTorch nor Lightning (pandas when first
called), so that ``predict`` with an ONNX model reads a file as ``FileDataModule`` does."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ffnn_lightning.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

SYMBOLS = re.compile(r"[$€£¥₹\s\u00a0\u202f]")  # currency signs and spaces, inside numbers too
DATE_PARTS = ("year", "month", "weekday", "days")  # the numbers a date column becomes
COMPRESSED = (".gz", ".bz2", ".xz", ".zip", ".zst")


def unpacked_name(path: Path) -> Path:
    """The path without its compression suffix: ``new.csv.gz`` -> ``new.csv``."""
    return path.with_suffix("") if path.suffix.lower() in COMPRESSED else path


def table_name(path: str | Path) -> str:
    """A table file's name without its format and compression: ``new.csv.gz`` -> ``new``
    (what predictions made on it are named after)."""
    return unpacked_name(Path(path)).stem


def read_table(path: Path, separator: str = ",", encoding: str = "utf-8"):
    """A CSV or Parquet file (compressed or not) as a DataFrame, with a clear error for what
    cannot be read."""
    import pandas as pd

    if not str(path) or str(path) == ".":
        raise InputError("No data file given: set --data.path to a CSV or Parquet file.")
    if path.is_dir():
        raise InputError(f"Data file {str(path)!r} is a folder: name a CSV or Parquet file.")
    if not path.is_file():
        raise InputError(f"Data file {str(path)!r} does not exist.")
    unpacked = unpacked_name(path)
    packed, kind = unpacked != path, unpacked.suffix.lower()
    # utf-8-sig: a byte-order mark, as spreadsheet programs write, is not a column name
    encoding = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        if kind == ".parquet":
            frame = pd.read_parquet(_unpacked(path) if packed else path)
        else:
            frame = pd.read_csv(path, sep=separator, encoding=encoding)
            _check_separator(path, frame, separator)
            _refuse_duplicate_names(path, separator, encoding)
    except pd.errors.EmptyDataError as error:
        raise InputError(f"Data file {str(path)!r} is empty.") from error
    except LookupError as error:
        raise InputError(f"Unknown encoding {encoding!r} for {str(path)!r} ({error}).") from error
    except (UnicodeDecodeError, pd.errors.ParserError) as error:
        remedy = (
            "If it is text in another encoding, name it: --data.init_args.encoding latin-1 "
            "(or cp1252, ...)."
        )
        raise InputError(
            f"Data file {str(path)!r} is not a {encoding.replace('-sig', '').upper()} CSV file "
            f"({_reason(error)}). {remedy}"
        ) from error
    except (OSError, EOFError, ValueError) as error:  # a broken archive, or no Parquet inside
        raise InputError(f"Data file {str(path)!r} cannot be read ({_reason(error)}).") from error
    if frame.empty:
        raise InputError(f"Data file {str(path)!r} has a header but no rows.")
    return frame


def _reason(error: Exception) -> str:
    return (
        f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
        if str(error)
        else type(error).__name__
    )


def _unpacked(path: Path):
    """The content of a compressed file, for a reader that takes no compression itself."""
    import bz2
    import gzip
    import io
    import lzma
    import zipfile

    suffix = path.suffix.lower()
    if suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            return io.BytesIO(archive.read(archive.namelist()[0]))
    if suffix == ".zst":
        import zstandard  # pandas' own choice for .zst

        with path.open("rb") as handle:
            return io.BytesIO(zstandard.ZstdDecompressor().stream_reader(handle).read())
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}[suffix]
    with opener(path, "rb") as handle:
        return io.BytesIO(handle.read())


def _refuse_duplicate_names(path: Path, separator: str, encoding: str) -> None:
    """Refuse a CSV header that names a column twice (pandas would rename one ``a.1``)."""
    import pandas as pd

    header = pd.read_csv(path, sep=separator, encoding=encoding, header=None, nrows=1)
    names = [str(name) for name in header.iloc[0].tolist()]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(f"Data file {str(path)!r} names these columns more than once: {twice}.")


def _check_separator(path: Path, frame, separator: str) -> None:
    """Refuse a file read as one column whose header holds another usual separator."""
    if len(frame.columns) != 1:
        return
    header = str(frame.columns[0])
    found = next((s for s in (";", "\t", "|", ",") if s != separator and s in header), None)
    if found is not None:
        shown = "\\t" if found == "\t" else found
        raise InputError(
            f"Data file {str(path)!r} looks separated by {found!r}, not {separator!r}: set "
            f"--data.separator '{shown}'."
        )


def number_pattern(thousands: str, decimal: str) -> re.Pattern:
    grouped = rf"\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})+|" if thousands else ""
    return re.compile(rf"^[+-]?(?:{grouped}\d+)(?:{re.escape(decimal)}\d+)?%?$")


def cleaned(values: pd.Series) -> pd.Series:
    """The cells as text without spaces and currency signs."""
    return values.astype(str).str.strip().str.replace(SYMBOLS, "", regex=True)


def read_numbers(values: pd.Series, thousands: str, decimal: str) -> pd.Series:
    """The cells as numbers under one convention (``%`` divides by 100); NaN where one does
    not read."""
    import pandas as pd

    text = cleaned(values)
    ok = text.str.match(number_pattern(thousands, decimal))
    plain = text.str.rstrip("%")
    if thousands:
        plain = plain.str.replace(thousands, "", regex=False)
    plain = plain.str.replace(decimal, ".", regex=False)
    numbers = pd.to_numeric(plain.where(ok), errors="coerce")
    return numbers.where(~text.str.endswith("%"), numbers / 100).where(values.notna())


def date_columns(column: str, values: pd.Series, reader: dict) -> dict[str, pd.Series]:
    """A date column as numbers a network can use: year, month, weekday (0 is Monday) and
    days since 1970-01-01 (the trend, with the time of day as a fraction)."""
    import pandas as pd

    text = values.astype(str).str.strip()
    if reader["format"] != "ISO8601":
        text = text.str.replace(r"[.-]", "/", regex=True)
    when = pd.to_datetime(text.where(values.notna()), format=reader["format"], errors="coerce")
    days = (when - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    parts = (when.dt.year, when.dt.month, when.dt.day_of_week, days)
    return {
        f"{column}.{name}": part.astype(float) for name, part in zip(DATE_PARTS, parts, strict=True)
    }


def apply_readers(frame: pd.DataFrame, readers: dict[str, dict]) -> pd.DataFrame:
    """The table with each reader applied: numbers parsed, dates as numbers, columns left out
    removed. A cell that does not read becomes a gap (the ``missing`` policy then applies)."""
    import pandas as pd

    columns = {}
    for column in frame.columns:
        reader = readers.get(str(column))
        values = frame[column]
        if reader is None:
            columns[column] = values
        elif reader["as"] == "number":
            columns[column] = read_numbers(values, reader["thousands"], reader["decimal"])
        elif reader["as"] == "date":
            columns.update(date_columns(str(column), values, reader))
    return pd.DataFrame(columns, index=frame.index)


def infinite_cells(frame: pd.DataFrame, columns: list[str]) -> str:
    """Where the number columns hold an infinite value (``'a' rows [3, 9]; ...``: the first
    five rows of each), or ``""``."""
    import numpy as np

    numeric = [c for c in columns if frame[c].dtype.kind == "f"]
    infinite = {c: frame.index[np.isinf(frame[c].to_numpy())].tolist() for c in numeric}
    return "; ".join(f"{c!r} rows {rows[:5]}" for c, rows in infinite.items() if rows)
