"""The optimizer comparison: one fresh run per config, a plot, tables, TensorBoard overlays."""

from __future__ import annotations

import csv
import re
import statistics
import struct

import pytest

from ffnn_lightning.commands.compare import main as compare
from tests.conftest import CONFIGS

SHRUNK = ["--", "--trainer.max_epochs=3", "--data.init_args.n_samples=400"]


def png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", header[16:24])


def test_chapter_comparison_writes_plot_tables_and_one_run_per_optimizer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overlays = [str(CONFIGS / "optimizers" / f"{name}.yaml") for name in ("adam", "sgd", "rmsprop")]
    folder = compare(
        ["--base", str(CONFIGS / "blobs_adam.yaml"), *overlays, "--log-scale", *SHRUNK]
    )

    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["adam", "rmsprop", "sgd"]
    width, height = png_size(folder / "loss.png")
    assert width >= 600 and height >= 400

    rows = list(csv.DictReader((folder / "epochs.csv").open()))
    assert [(r["run"], r["epoch"]) for r in rows] == [
        (run, str(epoch)) for run in ("adam", "sgd", "rmsprop") for epoch in (1, 2, 3)
    ]
    assert all(float(r["train/loss"]) > 0 for r in rows)
    summary = (folder / "summary.md").read_text()
    assert "| epoch | adam | sgd | rmsprop |" in summary
    assert re.search(r"^\| 3 \| \S+ \| \S+ \| \S+ \|$", summary, re.MULTILINE)  # epoch 3, each run


def test_each_run_really_uses_its_own_optimizer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    configs = [str(CONFIGS / f"blobs_{name}.yaml") for name in ("adam", "sgd")]
    folder = compare([*configs, *SHRUNK])
    for name, optimizer in (("blobs_adam", "Adam"), ("blobs_sgd", "SGD")):
        assert (
            f"class_path: torch.optim.{optimizer}\n" in (folder / name / "config.yaml").read_text()
        )


def test_a_missing_config_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        compare(["configs/nope.yaml"])
    assert "config 'configs/nope.yaml' does not exist" in capsys.readouterr().err


def test_several_seeds_give_mean_and_spread(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = str(CONFIGS / "blobs_sgd.yaml")
    folder = compare([config, "--seeds", "3", *SHRUNK])
    assert sorted(p.name for p in (folder / "blobs_sgd").iterdir()) == [
        "seed_0",
        "seed_1",
        "seed_2",
    ]
    rows = list(csv.DictReader((folder / "epochs.csv").open()))
    last = [float(r["train/loss"]) for r in rows if r["epoch"] == "3"]
    assert len(last) == 3 and len(set(last)) == 3  # the seeds train differently
    mean, std = statistics.mean(last), statistics.stdev(last)
    summary = (folder / "summary.md").read_text()
    assert f"| 3 | {mean:.4g} ± {std:.2g} |" in summary
    assert "mean ± std over 3 seeds" in summary
