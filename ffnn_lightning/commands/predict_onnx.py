"""``python -m ffnn_lightning predict --ckpt_path model.onnx --data.path new.csv``: an exported
model's predictions with onnxruntime, NumPy and pandas alone, so the command answers in a
fraction of the time PyTorch and Lightning take to import.

It writes the file ``predict`` writes from a checkpoint (``predictions-<file>.csv``, in the
model's run folder, never replacing an earlier one): ``row`` (the row's position in the
file), the file's columns that the model does not take (an ID, say), then ``label`` and
``probability_<class>`` for classes, ``prediction`` for regression. Columns are matched by
name, in any order; a gap is an empty cell. A row with a gap the model cannot fill (trained
with ``missing: drop``) gets empty predictions and a ``reason``. A model trained on unnamed
features (a data module that loads arrays) takes the file's columns in order. Conformal sets
(``--predictions.init_args.coverage``) and every other option need the ``.ckpt`` checkpoint.

:func:`predictions` does the same for a table already in pandas (in a service, say).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ffnn_lightning.errors import InputError
from ffnn_lightning.reading import apply_readers, infinite_cells, read_table, table_name
from ffnn_lightning.run_files import free_path, run_folder_of

if TYPE_CHECKING:
    import onnxruntime

# the data module a file of new rows is read by, as --data may name it
FILE_DATA = {
    "FileDataModule",
    "ffnn_lightning.data.FileDataModule",
    "ffnn_lightning.data.files.FileDataModule",
}
UNNAMED = "features"  # the one input of a model fitted on arrays: every column, in order
OPTIONS = "--ckpt_path, --data.path, --data.separator and --data.encoding"


def feeds(session: onnxruntime.InferenceSession, table: pd.DataFrame) -> dict[str, np.ndarray]:
    """One ``[rows, 1]`` array per model input, taken from the column of its name: numbers
    as float32 (a gap is NaN), categories as strings (a gap is the empty string)."""
    inputs = session.get_inputs()
    if [i.name for i in inputs] == [UNNAMED] and UNNAMED not in table.columns:
        # a model trained on unnamed features (arrays): the file's columns, in order
        return {UNNAMED: table.to_numpy(np.float32)}
    missing = [i.name for i in inputs if i.name not in table.columns]
    if missing:
        raise InputError(f"The file has no column {missing} (the model takes its columns by name).")
    arrays = {}
    for model_input in inputs:
        column = table[model_input.name]
        if model_input.type == "tensor(string)":
            arrays[model_input.name] = category_text(column.tolist()).reshape(-1, 1)
        else:
            arrays[model_input.name] = column.to_numpy(np.float32).reshape(-1, 1)
    return arrays


def category_text(values: list) -> np.ndarray:
    """Category cells as the text the ONNX model matches (``export`` writes a fit's levels
    so): a whole number without its decimal point (``2.0`` and ``2``, one level to the
    checkpoint's fit, are both ``"2"``), a gap as the empty string."""
    return np.array(
        ["" if pd.isna(v) else str(int(v)) if _whole(v) else str(v) for v in values],
        dtype=object,
    )


def _whole(value) -> bool:
    return isinstance(value, float | np.floating) and float(value).is_integer()


def onnx_name(column: str) -> str:
    """The input name skl2onnx gives a column: C-style (``mean radius`` -> ``mean_radius``)."""
    name = re.sub(r"[^\w+]", "_", str(column))
    return f"_{name}" if re.match("^[0-9]", name) else name


def by_input_names(session: onnxruntime.InferenceSession, table: pd.DataFrame) -> pd.DataFrame:
    """The table with each column the model takes under its input's name."""
    inputs = {i.name for i in session.get_inputs()}
    return table.rename(columns=lambda c: onnx_name(c) if onnx_name(c) in inputs else c)


def predictions(session: onnxruntime.InferenceSession, table: pd.DataFrame) -> pd.DataFrame:
    """``predict``'s columns for every row of ``table``, its columns read as the fit read
    them (numbers written as text, dates)."""
    meta = session.get_modelmeta().custom_metadata_map
    table = by_input_names(session, apply_readers(table, json.loads(meta.get("readers", "{}"))))
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, feeds(session, table)), strict=True))
    taken = {i.name for i in session.get_inputs()}
    result = pd.DataFrame({"row": range(len(table))})
    for column in table.columns:
        if column not in taken:
            result[column] = table[column].to_numpy()
    classes = json.loads(meta.get("classes", "null"))
    if classes is not None:
        result["label"] = outputs["label"]
        for i, name in enumerate(classes):
            result[f"probability_{name}"] = outputs["probability"][:, i]
    else:
        values = outputs["prediction"].reshape(len(table), -1)
        names = (
            ["prediction"]
            if values.shape[1] == 1
            else [f"prediction_{i}" for i in range(values.shape[1])]
        )
        for i, name in enumerate(names):
            result[name] = values[:, i]
    return (
        result if json.loads(meta.get("fills_gaps", "true")) else with_reasons(result, table, taken)
    )


def with_reasons(result: pd.DataFrame, table: pd.DataFrame, taken: set[str]) -> pd.DataFrame:
    """Empty predictions, and the reason, for the rows with a gap (for a model whose
    preprocessing fills none: trained with ``missing: drop``)."""
    outputs = [c for c in result.columns if c == "label" or c.startswith(("prob", "pred"))]
    gaps = table[[c for c in table.columns if c in taken]].isna()
    unanswered = gaps.any(axis=1).to_numpy()
    if not unanswered.any():
        return result
    reasons = ["no value in " + ", ".join(gaps.columns[row]) for row in gaps.to_numpy()]
    result = result.astype({c: object for c in outputs})
    result.loc[unanswered, outputs] = ""
    result["reason"] = np.where(unanswered, reasons, "")
    return result


def run(argv: list[str]) -> None:
    """:func:`main` with a bad input reported in one line (``python -m ffnn_lightning``)."""
    try:
        main(argv)
    except InputError as error:
        sys.exit(f"error: {error}")


def main(argv: list[str]) -> Path:
    """``predict``'s file for the rows of ``--data.path``, from the ONNX model ``--ckpt_path``."""
    args = arguments(argv)
    session = load(Path(args.ckpt_path))
    path = Path(args.path)
    table = predictions(session, finite(session, read_table(path, args.separator, args.encoding)))
    out = free_path(run_folder_of(args.ckpt_path) / f"predictions-{table_name(path)}.csv")
    table.to_csv(out, index=False)
    unanswered = int((table["reason"] != "").sum()) if "reason" in table else 0
    left_out = f", and {unanswered} rows it could not predict" if unanswered else ""
    print(f"Predictions for {len(table) - unanswered} rows{left_out} written to {out}")
    return out


def finite(session: onnxruntime.InferenceSession, table: pd.DataFrame) -> pd.DataFrame:
    """The table with an infinite number in a column the model takes as a gap where the model
    fills gaps (as ``predict`` from a checkpoint of ``missing: impute``), else refused, naming
    the cells."""
    inputs = {i.name for i in session.get_inputs()}
    taken = [c for c in table.columns if onnx_name(c) in inputs or inputs == {UNNAMED}]
    where = infinite_cells(table, taken)
    if not where:
        return table
    if not json.loads(session.get_modelmeta().custom_metadata_map.get("fills_gaps", "true")):
        raise InputError(
            f"Infinite values in column {where} (rows counted from 0 after the header), which "
            "this model cannot take (it was trained with missing: drop). Fix them."
        )
    print(f"Infinite values in column {where}: filled as gaps.")
    return table.replace([np.inf, -np.inf], np.nan)


def arguments(argv: list[str]) -> argparse.Namespace:
    """The options an ONNX model takes; any other is refused, naming it."""
    parser = argparse.ArgumentParser(
        prog="python -m ffnn_lightning predict",
        description="Predictions of an exported ONNX model for every row of a file.",
        allow_abbrev=False,
    )
    parser.add_argument("--ckpt_path", required=True, help="the .onnx file export wrote")
    parser.add_argument("--data", default="FileDataModule", help="FileDataModule, the only one")
    for name, default, what in (
        ("path", "", "the CSV or Parquet file of rows"),
        ("separator", ",", "its CSV separator"),
        ("encoding", "utf-8", "its text encoding"),
    ):
        parser.add_argument(
            f"--data.{name}", f"--data.init_args.{name}", dest=name, default=default, help=what
        )
    args, others = parser.parse_known_args(argv)
    if others:
        raise InputError(
            f"{others[0]} is for a .ckpt checkpoint: with an ONNX model, predict takes {OPTIONS}."
        )
    if args.data not in FILE_DATA:
        raise InputError(
            f"An ONNX model predicts on a file: --data is FileDataModule (or left out), "
            f"not {args.data!r}."
        )
    if not args.path:
        raise InputError("No rows to predict: set --data.path to a CSV or Parquet file.")
    return args


def load(model: Path) -> onnxruntime.InferenceSession:
    """The model's session on the CPU; one line for a missing package or a file that is not
    one of ``export``'s models."""
    try:
        import onnxruntime
    except ImportError as error:
        raise InputError(
            f'predict with an ONNX model needs onnxruntime: pip install -e ".[export]" ({error})'
        ) from error
    if not model.is_file():
        raise InputError(f"ONNX model {str(model)!r} does not exist.")
    try:
        session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's (InvalidProtobuf, NoSuchFile...) derive from it
        reason = str(error).splitlines()[0][:120]
        raise InputError(
            f"{str(model)!r} is not an ONNX model onnxruntime can load ({reason})."
        ) from error
    outputs = sorted(o.name for o in session.get_outputs())
    if outputs not in (["label", "probability"], ["prediction"]):
        raise InputError(
            f"{str(model)!r} is not a model of this template's export: its outputs are "
            f"{outputs}, not label and probability (classes) or prediction (regression)."
        )
    return session
