"""Your own table: a CSV or Parquet file, one row per sample, one column the target."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from lightning.pytorch.utilities import rank_zero_info

from ffnn_lightning.data.base import TabularDataModule
from ffnn_lightning.data.columns import (
    clean_labels,
    decide,
    is_text,
    number_reader,
    refuse_infinite,
    renamed,
)
from ffnn_lightning.data.preprocessing import table_preprocessor
from ffnn_lightning.errors import InputError
from ffnn_lightning.reading import apply_readers, read_table, table_name


class FileDataModule(TabularDataModule):
    """A CSV (``.csv``) or Parquet (``.parquet``) file.

    Args:
        path: the file.
        target: the column to predict; string, integer or float labels, or numbers.
        features: the input columns; ``None`` takes every other column.
        categorical: columns to one-hot encode; ``None`` takes the non-numeric ones.
        drop: columns that are not features (IDs, free text); predict copies them into
            ``predictions.csv`` beside each row's predictions.
        split_column: a column naming each row's split, ``train``, ``val`` or ``test`` (then
            the fractions, ``split`` and ``seed`` do not draw one); it is not a feature.
        group_column: a column naming each row's group (a patient, a site): with ``folds``,
            a group's rows stay in one fold; it is not a feature.
        missing: rows with a missing feature value are dropped (``drop``) or the value is
            filled (``impute``: the training rows' median, or most frequent category). Rows
            without a target are always dropped. Either way the count is printed.
        separator: the CSV's field separator (``;`` for many European spreadsheets).
        encoding: the text's encoding (``latin-1``, ``cp1252``, ...); a byte-order mark is
            skipped. Compressed files (``.gz``, ``.bz2``, ``.xz``, ``.zip``, ``.zst``) are read
            as their content.
        thousands, decimal: how numbers written as text read (``"3,750"``, ``"1.234,5"``);
            ``None`` finds the one convention that reads every cell of a column.

    When the file is first read, each column that is not what it seems is said in one line,
    with what was done: numbers written as text are read as numbers, dates become year,
    month, weekday and days since 1970, identifiers, free text and categories with about as
    many levels as rows are left out (name a column in ``categorical`` or ``features`` to
    keep it); class labels lose surrounding spaces. New rows are read the same way.

    Numeric columns are scaled (``standardize``, ``scaler``) and categories one-hot encoded, both
    fitted on the training rows only; other arguments are those of TabularDataModule's.
    """

    def __init__(
        self,
        path: str = "data.csv",
        target: str = "target",
        features: list[str] | None = None,
        categorical: list[str] | None = None,
        drop: list[str] | None = None,
        split_column: str | None = None,
        group_column: str | None = None,
        missing: Literal["drop", "impute"] = "drop",
        separator: str = ",",
        encoding: str = "utf-8",
        thousands: str | None = None,
        decimal: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.path, self.target = path, target
        self.features, self.categorical, self.drop = features, categorical, drop or []
        self.split_column, self.group_column = split_column, group_column
        self.missing = missing
        self.separator, self.encoding = separator, encoding
        self.thousands, self.decimal = thousands, decimal
        # what load() found in the file
        self._ids = None  # the drop columns of the loaded rows
        self._split_names = None  # the split column's values, if there is one
        self._groups = None  # the group column's values, if there is one
        self._left_out = None  # rows dropped for a gap: drop columns and the reason

    def load(self):
        """The feature columns and the target; no target (``None``) for a table without its
        column when a checkpoint's fit is given: that table is one to predict on."""
        frame = read_table(Path(self.path), self.separator, self.encoding)
        not_features = [self.target, self.split_column, self.group_column, *self.drop]
        columns = [c for c in frame.columns if c not in not_features]
        frame = self._read_columns(frame, self.features or columns)
        columns = [c for c in frame.columns if c not in not_features]
        wanted = renamed(self.features, self.readers) if self.features is not None else columns
        needed = [*wanted, *self.drop]
        if not self.checkpoint:
            needed += [c for c in (self.split_column, self.group_column) if c]
        has_target = self.target in frame.columns
        if not self.checkpoint:  # a table to predict on needs no target
            needed.insert(0, self.target)
        absent = [c for c in needed if c not in frame.columns]
        if absent:
            raise InputError(
                f"{self.path} has no column {', '.join(map(repr, absent))}. "
                f"Its columns: {list(frame.columns)}."
            )
        if not self.checkpoint:  # rows to predict on may all miss a value, to be imputed
            _refuse_empty_columns(self.path, frame, wanted)
        frame = refuse_infinite(frame, wanted, self.missing == "impute", self.path)
        frame = self._drop_missing(frame, wanted, has_target)
        self._ids = frame[self.drop]
        has_split = self.split_column in frame.columns
        self._split_names = frame[self.split_column].to_numpy() if has_split else None
        has_groups = self.group_column in frame.columns
        self._groups = frame[self.group_column].to_numpy() if has_groups else None
        return frame[wanted], frame[self.target].to_numpy() if has_target else None

    def _read_columns(self, frame, features: list[str]):
        """The table with its columns read for what they hold (:mod:`columns`): decided when
        fitting, as the checkpoint's fit decided for new rows."""
        if self.restored is not None:
            self.readers = self.restored.readers or {}
        else:
            kept = set(self.features or [])
            self.readers = decide(
                frame[[c for c in features if c in frame.columns]],
                set(self.categorical or []),
                kept,
                self.thousands,
                self.decimal,
                self.path,
            )
        if self.target in frame.columns:
            frame[self.target] = clean_labels(frame[self.target], self.path)
            if self.restored is None and is_text(frame[self.target]):
                target = frame[self.target]
                reader = number_reader(self.target, target, self.thousands, self.decimal)
                self.readers.update({self.target: reader} if reader else {})
        return apply_readers(frame, self.readers)

    def left_out_rows(self, split: str) -> dict[str, list]:
        """Where every row of the file is predicted on (another file than the fit's): the
        rows left out for a gap, with the reason, so that ``predictions.csv`` has them all."""
        if split != "predict" or self._left_out is None or self._left_out.empty:
            return {}
        rows = self._left_out
        return {"row": rows.index.tolist(), **{c: rows[c].tolist() for c in rows.columns}}

    def row_ids(self, split: str) -> dict[str, list]:
        """``row``: the row's position in the file (after the header), and the drop columns."""
        ids = self._ids.iloc[self.prepare().rows[split]]
        return {"row": ids.index.tolist(), **{c: ids[c].tolist() for c in ids.columns}}

    def is_other_data(self, fitted_on: dict) -> bool:
        """Another file than the one the fit was made on, or a fit made on other than a file
        (a code data module's)."""
        theirs = fitted_on.get("path")
        return theirs is None or Path(theirs).resolve() != Path(self.path).resolve()

    def output_name(self) -> str:
        """The file's name, for the predictions made on it."""
        return table_name(self.path)

    def assigned_splits(self):
        return self._split_names

    def groups(self):
        return self._groups

    def categorical_columns(self, frame) -> list[str]:
        """``categorical``, or else the columns that do not hold numbers (and a word where a
        column of numbers is read as text because of a few cells)."""
        if self.categorical is not None:
            return list(self.categorical)
        found = super().categorical_columns(frame)
        _report_numbers_with_text(self.path, frame, found)
        return found

    def preprocessor(self):
        """The table's preprocessing, with gaps imputed where ``missing: impute``."""
        return table_preprocessor(
            self.columns,
            self.category_columns,
            self.numeric_scaler,
            self.missing == "impute",
            self.coded_columns,
        )

    def _drop_missing(self, frame, features: list[str], has_target: bool):
        """Drop rows without a target, and (policy ``drop``) rows missing a feature."""
        import pandas as pd

        no_target = frame[self.target].isna() if has_target else pd.Series(False, frame.index)
        gaps = frame[features].isna()
        gone = no_target | (gaps.any(axis=1) if self.missing == "drop" else False)
        names = [str(c) for c in features]
        reasons = [
            _gap_reason([n for n, gap in zip(names, row, strict=True) if gap], self.target, t)
            for t, row in zip(no_target[gone], gaps[gone].to_numpy(), strict=True)
        ]
        self._left_out = frame.loc[gone, self.drop].assign(reason=reasons)
        if self.missing == "drop":
            gone = no_target | gaps.any(axis=1)
            if gone.any():
                rank_zero_info(f"{self.path}: dropped {int(gone.sum())} rows with missing values.")
            frame = frame[~gone]
        else:
            frame = frame[~no_target]
            if no_target.any():
                rank_zero_info(f"{self.path}: dropped {int(no_target.sum())} rows without target.")
            counts = gaps[~no_target].sum()
            filled = ", ".join(f"{c}: {n}" for c, n in counts.items() if n)
            if filled:
                rank_zero_info(f"{self.path}: imputing missing values ({filled}).")
        if frame.empty:
            raise InputError(f"{self.path}: no rows left after dropping rows with missing values.")
        return frame


def _gap_reason(missing: list[str], target: str, no_target: bool) -> str:
    """Why a row could not be given to the network: the columns it has no value in."""
    return "no value in " + ", ".join(([target] if no_target else []) + missing)


def _refuse_empty_columns(path: str, frame, features: list[str]) -> None:
    """Refuse feature columns without a single value: nothing to learn from or impute."""
    empty = [c for c in features if frame[c].isna().all()]
    if empty:
        raise InputError(
            f"{path}: the columns {empty} hold no values at all. Leave them out "
            f"(drop: {empty}) or fill them."
        )


def _report_numbers_with_text(path: str, frame, categories: list[str]) -> None:
    """Say so where a column of numbers is read as text because of a few cells: it is then
    one-hot encoded, one input per distinct value."""
    import pandas as pd

    for column in categories:
        values = frame[column].dropna()
        numbers = pd.to_numeric(values, errors="coerce")
        text = values[numbers.isna()]
        if 0 < len(text) <= 0.1 * len(values):
            shown = sorted({str(v) for v in text})[:5]
            rank_zero_info(
                f"{path}: column {column!r} holds numbers but for {len(text)} cells {shown}, "
                "so it is one-hot encoded as text. Fix those cells, or name it in categorical "
                "to keep it so."
            )
