"""docs/data.md's "Add your own dataset" guide, run the way a user's own project would run it."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GUIDE = (EXAMPLES.parent / "docs" / "data.md").read_text()


def ffnn(folder: Path, *args: str) -> str:
    """``python -m ffnn_lightning ARGS`` in ``folder``, as a user would type it; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "ffnn_lightning", *args, "--trainer.enable_progress_bar=false"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def test_the_guide_shows_the_examples_as_they_are():
    for name in ("my_data.yaml", "spirals.yaml", "spirals.py"):
        assert (EXAMPLES / name).read_text() in GUIDE, f"the guide's copy of {name} differs"


@pytest.mark.slow  # two Python processes, 25 epochs; the shops test runs this path in-process
def test_a_data_module_of_ones_own_trains_and_predicts_from_outside_the_package(tmp_path):
    for name in ("spirals.py", "spirals.yaml"):
        shutil.copy(EXAMPLES / name, tmp_path)
    log = ffnn(tmp_path, "fit", "--config", "spirals.yaml", "--trainer.max_epochs=25")
    val_acc = float(log.split("val/acc=")[1].split(",")[0])
    assert val_acc > 0.95  # two spirals: far from what a straight line separates
    best = next(tmp_path.glob("lightning_logs/version_0/checkpoints/best-*.ckpt"))
    ffnn(tmp_path, "predict", "--config", "spirals.yaml", "--ckpt_path", str(best))
    with (tmp_path / "lightning_logs/version_0/predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 200  # 20% of 2 x 500
    assert {row["label"] for row in rows} == {"left", "right"}

    elsewhere = tmp_path / "elsewhere"  # where spirals.py cannot be imported
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "ffnn_lightning", "predict", "--ckpt_path", str(best)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "names spirals.SpiralsDataModule, from outside" in done.stderr.splitlines()[-1]
    named = ["--config", str(tmp_path / "spirals.yaml")]  # named, but not importable here
    done = subprocess.run(
        [sys.executable, "-m", "ffnn_lightning", "predict", "--ckpt_path", str(best), *named],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "module 'spirals' cannot be imported from here" in done.stderr.splitlines()[-1]

    # new rows from a file, with the fit the checkpoint carries: spirals.py is not needed
    points = pd.DataFrame(spiral_arm(40), columns=["x", "y"])
    pd.concat([points, -points]).to_csv(elsewhere / "points.csv", index=False)
    file_data = ("--data", "ffnn_lightning.data.FileDataModule", "--data.path", "points.csv")
    ffnn(elsewhere, "predict", "--ckpt_path", str(best), *file_data)
    predicted = pd.read_csv(tmp_path / "lightning_logs/version_0/predictions-points.csv")
    assert predicted["row"].tolist() == list(range(80))
    assert (predicted["label"] == ["left"] * 40 + ["right"] * 40).mean() > 0.9


def spiral_arm(points: int) -> np.ndarray:
    """Points along the left arm of examples/spirals.py's data, without noise."""
    angle = np.linspace(0.5, 1.5 * 2 * np.pi, points)
    return np.stack([angle * np.cos(angle), angle * np.sin(angle)], axis=1)


def test_the_no_code_example_trains_on_a_csv_with_gaps_and_categories(tmp_path, run_cli):
    rng = np.random.default_rng(0)
    rows = 200
    outcome = rng.choice(["healthy", "ill"], size=rows)
    patients = pd.DataFrame(
        {
            "patient_id": np.arange(1000, 1000 + rows),
            "age": rng.normal(50, 10, size=rows) + 15 * (outcome == "ill"),
            "smoker": rng.choice(["yes", "no"], size=rows),
            "outcome": outcome,
        }
    )
    patients.loc[::10, "age"] = np.nan
    patients.to_csv(tmp_path / "patients.csv", index=False)
    cli = run_cli("fit", "--config", str(EXAMPLES / "my_data.yaml"), "--trainer.max_epochs=5")
    assert cli.datamodule.class_names == ["healthy", "ill"]
    assert cli.datamodule.num_features == 3  # age, and smoker one-hot as two columns
    assert cli.trainer.callback_metrics["val/acc"] > 0.75


def test_the_shops_example_embeds_its_shops_and_predicts_an_unseen_one(
    tmp_path, run_cli, monkeypatch
):
    for name in ("shops.py", "shops.yaml"):
        shutil.copy(EXAMPLES / name, tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # as python -m finds it in the current folder
    small = ["--data.init_args.rows=2000", "--data.init_args.shops=100"]
    cli = run_cli("fit", "--config", "shops.yaml", *small, "--trainer.max_epochs=2")
    weights = cli.model.state_dict()
    assert weights["network.tables.0.weight"].shape == (100 + 1, 8)  # and one for unseen
    assert weights["network.network.layers.0.weight"].shape == (64, 2 + 8)  # price, hour, shop
    new = pd.DataFrame({"price": [50.0, 50.0], "hour": [12.0, 12.0], "shop": ["shop7", "kiosk"]})
    new.to_csv(tmp_path / "new.csv", index=False)
    best = cli.trainer.checkpoint_callback.best_model_path
    run_cli("predict", "--ckpt_path", best, "--data=FileDataModule", "--data.path=new.csv")
    with (tmp_path / "lightning_logs/version_0/predictions-new.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["label"] in ("large", "small") for row in rows] == [True, True]
