"""explain: permutation importance of the raw columns and integrated gradients mapped back to
them, from a checkpoint alone, for every task."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ffnn_lightning.cli import run
from ffnn_lightning.commands.explain import integrated_gradients
from tests.conftest import build_module

DECISIVE = {"x3", "shade"}


def table(task: str, rows: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Ten columns, two of which decide the target: the number x3 and the category shade."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(9)})
    frame["shade"] = rng.choice(["dark", "mid", "light"], size=rows)
    signal = frame["x3"] * 1.5 + frame["shade"].map({"dark": -2.0, "mid": 0.0, "light": 2.0})
    if task == "regression":
        frame["y"] = signal + rng.normal(scale=0.1, size=rows)
    elif task == "binary":
        frame["y"] = np.where(signal > 0, "yes", "no")
    else:
        frame["y"] = np.select([signal < -1, signal < 1], ["low", "mid"], "high")
    return frame


def read(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_the_two_deciding_columns_rank_first_in_both_explanations(task, run_cli, tmp_path):
    table(task).to_csv(tmp_path / "table.csv", index=False)
    cli = run_cli(
        "fit", "--data=ffnn_lightning.data.FileDataModule", "--data.path=table.csv",
        "--data.target=y", "--trainer.max_epochs=10", "--trainer.enable_progress_bar=false",
        "--model.network.hidden=[32, 32]",
    )  # fmt: skip
    checkpoint = Path(cli.trainer.log_dir) / "checkpoints" / "last.ckpt"
    run(["explain", "--ckpt_path", str(checkpoint), "--repeats", "3", "--rows", "100"])
    folder = checkpoint.parent.parent
    ranked = read(folder / "importance.csv")
    assert len(ranked) == 10  # the table's columns: shade's one-hot levels are one
    assert {row["column"] for row in ranked[:2]} == DECISIVE
    attributions = pd.read_csv(folder / "attributions.csv").drop(columns="row")
    assert len(attributions) == 100
    assert set(attributions.abs().mean().nlargest(2).index) == DECISIVE
    assert (folder / "importance.png").stat().st_size > 0


@pytest.mark.slow  # the fast set keeps one test of the kind
def test_explain_takes_the_rows_of_another_file(run_cli, tmp_path):
    table("binary").to_csv(tmp_path / "table.csv", index=False)
    cli = run_cli(
        "fit", "--data=ffnn_lightning.data.FileDataModule", "--data.path=table.csv",
        "--data.target=y", "--trainer.max_epochs=5", "--trainer.enable_progress_bar=false",
    )  # fmt: skip
    table("binary", rows=300, seed=5).to_csv(tmp_path / "fresh.csv", index=False)
    checkpoint = Path(cli.trainer.log_dir) / "checkpoints" / "last.ckpt"
    out = tmp_path / "explained"
    run(["explain", "--ckpt_path", str(checkpoint), "--data.path", "fresh.csv",
         "--output", str(out), "--rows", "300", "--repeats", "2"])  # fmt: skip
    assert len(pd.read_csv(out / "attributions.csv")) == 300


def test_integrated_gradients_add_up_to_the_output_minus_the_baselines():
    module = build_module(hidden=(8,), in_features=4, out_features=3, task="multiclass").eval()
    x = torch.randn(5, 4)
    attributions = integrated_gradients(module, x, steps=256)
    with torch.no_grad():
        outputs = module.model_outputs(module(x))
        base = module.model_outputs(module(torch.zeros_like(x)))
    chosen = outputs.argmax(dim=1, keepdim=True)
    expected = (outputs.gather(1, chosen) - base.gather(1, chosen)).reshape(-1)
    torch.testing.assert_close(attributions.sum(dim=1), expected, atol=2e-3, rtol=1e-2)


def test_explain_refuses_a_missing_checkpoint(tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        run(["explain", "--ckpt_path", str(tmp_path / "nothing.ckpt")])


@pytest.mark.slow  # one more fit or study: the slow set (CI runs both)
def test_a_callback_logs_the_importance_at_the_end_of_fit(run_cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ffnn_lightning.training.attribution import ColumnImportance

    table("binary").to_csv(tmp_path / "table.csv", index=False)
    cli = run_cli(
        "fit", "--data=ffnn_lightning.data.FileDataModule", "--data.path=table.csv",
        "--data.target=y", "--trainer.max_epochs=10", "--trainer.enable_progress_bar=false",
        "--trainer.callbacks+=ffnn_lightning.training.attribution.ColumnImportance",
        "--trainer.callbacks.repeats=2",
    )  # fmt: skip
    (callback,) = [c for c in cli.trainer.callbacks if isinstance(c, ColumnImportance)]
    assert {name for name, _, _ in callback.ranked[:2]} == DECISIVE
    folder = Path(cli.trainer.log_dir)
    assert (folder / "importance.png").is_file()
    events = EventAccumulator(str(folder))
    events.Reload()
    assert "importance/columns" in events.Tags()["images"]
