"""Predict with an exported model where there is no PyTorch: onnxruntime, NumPy and pandas.

    python -m ffnn_lightning export --ckpt_path lightning_logs/version_0/checkpoints/last.ckpt
    python examples/predict_onnx.py lightning_logs/version_0/checkpoints/last.onnx new.csv

Writes ``predictions-<file>.csv`` beside the CSV with the columns ``predict`` writes: ``row``
(the row's position in the file), the file's columns that the model does not take (an ID,
say), then ``label`` and ``probability_<class>`` for classes, ``prediction`` for regression.
Columns are matched by name, in any order; a gap is an empty cell. A row with a gap the model
cannot fill (it was trained with ``missing: drop``) gets empty predictions and a ``reason``,
as ``predict`` writes it. A model trained on unnamed features (a data module that loads
arrays) takes the file's columns in order.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd


def feeds(session: onnxruntime.InferenceSession, table: pd.DataFrame) -> dict[str, np.ndarray]:
    """One ``[rows, 1]`` array per model input, taken from the column of its name: numbers
    as float32 (a gap is NaN), categories as strings (a gap is the empty string)."""
    inputs = session.get_inputs()
    if [i.name for i in inputs] == ["features"] and "features" not in table.columns:
        # a model trained on unnamed features (arrays): the file's columns, in order
        return {"features": table.to_numpy(np.float32)}
    missing = [i.name for i in inputs if i.name not in table.columns]
    if missing:
        raise SystemExit(f"error: the file has no column {missing} (the model takes them by name)")
    arrays = {}
    for model_input in inputs:
        column = table[[model_input.name]]
        if model_input.type == "tensor(string)":
            arrays[model_input.name] = (
                column.astype(object).where(column.notna(), "").astype(str).to_numpy(object)
            )
        else:
            arrays[model_input.name] = column.to_numpy(np.float32)
    return arrays


def onnx_name(column: str) -> str:
    """The input name skl2onnx gives a column: C-style (``mean radius`` -> ``mean_radius``)."""
    name = re.sub(r"[^\w+]", "_", str(column))
    return f"_{name}" if re.match("^[0-9]", name) else name


def by_input_names(session: onnxruntime.InferenceSession, table: pd.DataFrame) -> pd.DataFrame:
    """The table with each column the model takes under its input's name."""
    inputs = {i.name for i in session.get_inputs()}
    return table.rename(columns=lambda c: onnx_name(c) if onnx_name(c) in inputs else c)


def predictions(session: onnxruntime.InferenceSession, table: pd.DataFrame) -> pd.DataFrame:
    """``predict``'s columns for every row of ``table``."""
    table = by_input_names(session, table)
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, feeds(session, table)), strict=True))
    taken = {i.name for i in session.get_inputs()}
    result = pd.DataFrame({"row": range(len(table))})
    for column in table.columns:
        if column not in taken:
            result[column] = table[column].to_numpy()
    classes = json.loads(session.get_modelmeta().custom_metadata_map.get("classes", "null"))
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
    meta = session.get_modelmeta().custom_metadata_map
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


def main(model: str, csv: str) -> Path:
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    path = Path(csv)
    out = path.with_name(f"predictions-{path.stem}.csv")
    predictions(session, pd.read_csv(path)).to_csv(out, index=False)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(f"Written: {main(*sys.argv[1:])}")
