"""What a table's columns really hold, found when a file is first read and said one line per
column: numbers written as text, dates, identifiers and free text, labels with stray spaces.

Each decision is a *reader* (a plain dict per column, kept in the checkpoint's fit), so new
rows to predict on are read exactly as the training rows were.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
from lightning.pytorch.utilities import rank_zero_info

from ffnn_lightning.errors import InputError
from ffnn_lightning.reading import DATE_PARTS, cleaned, infinite_cells, number_pattern

if TYPE_CHECKING:
    import pandas as pd

# (thousands, decimal) conventions tried in turn; the first that reads every cell wins
CONVENTIONS = [("", "."), (",", "."), (".", ","), ("", ","), ("'", ".")]
NUMBER_LIKE = re.compile(r"^[+-]?[\d.,']*\d[\d.,']*%?$")
ISO_DATE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?")
SLASH_DATE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
ID_NAME = re.compile(r"(^|[_\s.-])(id|ids|key|uuid|guid|index)$|^(id|row|index)[_\s.-]", re.I)
MIN_ROWS = 20  # fewer rows say too little to call a column an identifier


def is_text(values: pd.Series) -> bool:
    """Whether a column holds text (pandas' ``object`` or ``str`` dtype)."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    return is_object_dtype(values) or is_string_dtype(values)


def number_reader(
    column: str, values: pd.Series, thousands: str | None, decimal: str | None
) -> dict | None:
    """How to read a text column of numbers (``3,750``, ``$12.50``, ``7 %``, ``1.234,5``), or
    None where it does not hold numbers. Refuses a column of numbers no single convention
    reads, naming two cells."""
    cells = values.dropna()
    if cells.empty:
        return None
    text = cleaned(cells)
    if not text.str.match(NUMBER_LIKE).all():
        return None
    given = [(thousands or "", decimal or ".")] if thousands or decimal else CONVENTIONS
    for t, d in given:
        if text.str.match(number_pattern(t, d)).all():
            return {"as": "number", "thousands": t, "decimal": d}
    samples = _conflicting_cells(text)
    raise InputError(
        f"column {column!r} holds numbers written in more than one way ({samples}): say how "
        "to read them with --data.init_args.thousands and --data.init_args.decimal (e.g. "
        "thousands ',' decimal '.'), or fix those cells."
    )


def _conflicting_cells(text: pd.Series) -> str:
    """Two cells that no one convention reads together."""
    unread = {(t, d): text[~text.str.match(number_pattern(t, d))].iloc[0] for t, d in CONVENTIONS}
    first = unread[CONVENTIONS[0]]
    other = next((c for c in unread.values() if c != first), text.iloc[0])
    return f"{first!r}, {other!r}"


def date_reader(values: pd.Series) -> dict | None:
    """How to read a column of dates (``2008-03-14``, ``2008-03-14 09:30``, ``14/03/2008``),
    or None. Day and month of ``a/b/yyyy`` are told apart by a value above 12 (month first
    where none is)."""
    text = values.dropna().astype(str).str.strip()
    if text.empty:
        return None
    if text.str.match(ISO_DATE).all():
        return {"as": "date", "format": "ISO8601"}
    parts = text.str.extract(SLASH_DATE)
    if parts.isna().any().any():
        return None
    first, second = parts[0].astype(int), parts[1].astype(int)
    day_first = bool((first > 12).any()) and not (second > 12).any()
    return {"as": "date", "format": "%d/%m/%Y" if day_first else "%m/%d/%Y"}


def not_a_feature(column: str, values: pd.Series) -> str | None:
    """Why a column is no feature: an identifier, free text, or a category with about as
    many levels as rows (one-hot, one input per row it has seen); None if it is one."""
    cells = values.dropna()
    rows, levels = len(cells), cells.nunique()
    if rows < MIN_ROWS:
        return None
    if levels == rows and ID_NAME.search(str(column)):
        return f"an identifier (a distinct value in each of {rows} rows)"
    if values.dtype.kind in "iufb" or cleaned(cells).str.match(NUMBER_LIKE).mean() >= 0.9:
        return None  # numbers (a few cells of text among them are reported on their own)
    if levels >= 0.9 * rows:
        words = cells.astype(str).str.split().str.len().mean()
        if words >= 3:
            return f"free text ({levels} distinct values in {rows} rows, {words:.0f} words each)"
        return f"an identifier ({levels} distinct values in {rows} rows)"
    if levels >= 0.5 * rows:
        return f"a category with about as many levels as rows ({levels} in {rows})"
    return None


def decide(
    frame: pd.DataFrame,
    categorical: set[str],
    kept: set[str],
    thousands: str | None,
    decimal: str | None,
    source: str,
) -> dict[str, dict]:
    """A reader for each feature column that needs one, each said in one line. Columns named
    in ``categorical`` stay as they are, those ``kept`` (named in ``features``) are never left
    out: on purpose."""
    readers = {}
    for column in frame.columns:
        values = frame[column]
        if column in categorical:
            continue
        reader = None
        if is_text(values):
            reader = number_reader(column, values, thousands, decimal) or date_reader(values)
        why = None if reader or column in kept else not_a_feature(column, values)
        if why:
            reader = {"as": "left out", "why": why}
        if reader:
            readers[column] = reader
            rank_zero_info(f"{source}: column {column!r} {_said(reader, values)}")
    return readers


def _said(reader: dict, values: pd.Series) -> str:
    """What was seen and done, and the option that changes it."""
    kind = reader["as"]
    keep = "name it in categorical to keep it as text"
    if kind == "left out":
        keep = "name it in features (or categorical) to keep it"
    if kind == "number":
        example = values.dropna().astype(str).iloc[0]
        convention = f"thousands {reader['thousands']!r}, decimal {reader['decimal']!r}"
        return (
            f"holds numbers written as text ({example!r}): read as numbers ({convention}); {keep}."
        )
    if kind == "date":
        parts = ", ".join(DATE_PARTS)
        return f"holds dates ({reader['format']}): read as {parts} (days since 1970); {keep}."
    return f"is {reader['why']}: left out; {keep}."


def renamed(names: list[str], readers: dict[str, dict]) -> list[str]:
    """Column names after the readers: a date's parts in its place, left-out columns gone."""
    out = []
    for name in names:
        kind = readers.get(name, {}).get("as")
        if kind == "date":
            out += [f"{name}.{part}" for part in DATE_PARTS]
        elif kind != "left out":
            out.append(name)
    return out


def refuse_infinite(frame: pd.DataFrame, columns: list[str], impute: bool, source: str):
    """Infinite numbers: refused, naming the column and rows; gaps where ``impute``."""
    where = infinite_cells(frame, columns)
    if not where:
        return frame
    if not impute:
        raise InputError(
            f"{source}: infinite values in column {where} (rows counted from 0 after the "
            "header). Fix them, or set --data.init_args.missing impute to fill them as gaps."
        )
    rank_zero_info(f"{source}: infinite values in column {where}: imputed as gaps.")
    return frame.replace([np.inf, -np.inf], np.nan)


def clean_labels(labels: pd.Series, source: str) -> pd.Series:
    """Text labels without surrounding spaces (`` Adelie`` and ``Adelie `` are one class),
    said in one line; labels that differ only by letter case are named, and kept apart."""
    if not is_text(labels):
        return labels
    text = labels.where(labels.isna(), labels.astype(str))
    stripped = text.str.strip()
    spaced = sorted(set(text[stripped != text].dropna()))
    if spaced:
        rank_zero_info(
            f"{source}: {len(spaced)} labels differ from others only by surrounding spaces "
            f"({', '.join(map(repr, spaced[:3]))}): read without them."
        )
    distinct = sorted(set(stripped.dropna()))
    by_case: dict[str, list[str]] = {}
    for label in distinct:
        by_case.setdefault(label.casefold(), []).append(label)
    cased = [group for group in by_case.values() if len(group) > 1]
    if cased:
        shown = "; ".join(" / ".join(map(repr, group)) for group in cased[:3])
        rank_zero_info(
            f"{source}: labels that differ only by letter case are kept as different classes "
            f"({shown}). Fix the file if they are one."
        )
    return stripped
