"""Rows per second of the exported ONNX model (onnxruntime) against ``predict``, same rows.

    python benchmarks/export.py            # 1 row and 100,000 rows, median of 5 runs each
    python benchmarks/export.py --quick    # CI: 1 row and 1,000 rows, 3 runs

Trains a small model on a table of numbers and a category (3 epochs), exports it, then
times, on a CSV of new rows: ``python -m ffnn_lightning predict`` in-process (the CLI, reading
the file, the fitted preprocessing, the network, writing predictions.csv) and
``ffnn_lightning.commands.predict_onnx.predictions`` (what ``predict --ckpt_path model.onnx``
runs) on the file read by pandas (building the
inputs, onnxruntime, the output table). Both give the same numbers (tests/test_export.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(8)})
    frame["colour"] = rng.choice(["red", "green", "blue"], size=rows)
    frame["species"] = np.where(frame["x0"] + (frame["colour"] == "red") > 0.5, "cat", "dog")
    return frame


def median_seconds(work, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes, runs = ([1, 1000], 3) if args.quick else ([1, 100_000], 5)

    import onnxruntime

    from ffnn_lightning.cli import main as cli
    from ffnn_lightning.commands.export import export
    from ffnn_lightning.commands.predict_onnx import predictions
    from ffnn_lightning.commands.runs import quiet_runs

    quiet_runs()  # predict's lines, each run

    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        data = ["--data=ffnn_lightning.data.FileDataModule", "--data.target=species"]
        table(2000, 0).to_csv("train.csv", index=False)
        fit = [
            "fit", *data, "--data.path=train.csv", "--trainer.max_epochs=3", "--seed_everything=0",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        ]  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()):
            fitted = cli(fit)
        checkpoint = Path(fitted.trainer.checkpoint_callback.best_model_path)
        session = onnxruntime.InferenceSession(
            str(export(checkpoint)), providers=["CPUExecutionProvider"]
        )
        print(f"{'rows':>8} {'predict rows/s':>15} {'onnxruntime rows/s':>19} {'ratio':>7}")
        for rows in sizes:
            table(rows, 1).drop(columns="species").to_csv("new.csv", index=False)

            def with_predict() -> None:
                with contextlib.redirect_stdout(io.StringIO()):
                    cli(["predict", *data, "--data.path=new.csv", f"--ckpt_path={checkpoint}"])

            def with_onnx() -> None:
                predictions(session, pd.read_csv("new.csv"))

            predict_s, onnx_s = median_seconds(with_predict, runs), median_seconds(with_onnx, runs)
            print(
                f"{rows:>8} {rows / predict_s:>15,.0f} {rows / onnx_s:>19,.0f} "
                f"{predict_s / onnx_s:>6.1f}x"
            )


if __name__ == "__main__":
    main()
