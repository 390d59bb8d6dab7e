"""DDP across two CPU processes (gloo): sharded fast batches, reduced metrics, rank 0 writes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from ffnn_lightning.training.logs import read_scalars
from tests.conftest import CONFIGS

ADAM = str(CONFIGS / "blobs_adam.yaml")
SMALL = ["--data.init_args.n_samples=1000", "--trainer.enable_progress_bar=false"]


def cli(*args: str, cwd) -> None:
    subprocess.run(
        [sys.executable, "-m", "ffnn_lightning", *args], cwd=cwd, check=True, capture_output=True
    )


@pytest.mark.slow  # two processes of DDP
def test_two_process_ddp_logs_what_one_process_measures_on_the_same_rows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ddp = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"]
    cli("fit", "--config", ADAM, *SMALL, *ddp, "--trainer.max_epochs=2", cwd=tmp_path)

    runs = list((tmp_path / "lightning_logs").iterdir())
    assert [run.name for run in runs] == ["version_0"]  # only rank 0 opened a run
    assert len(list(runs[0].glob("events.out.tfevents.*"))) == 1
    logged = read_scalars(runs[0])
    assert [step for step, _ in logged["val/loss"]] == [step for step, _ in logged["train/loss"]]
    assert len(logged["val/loss"]) == 2

    checkpoint = runs[0] / "checkpoints" / "last.ckpt"
    # each process trains on its own 400 of the 800 training rows: 25 steps of 16 per epoch
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 2 * 25
    cli("predict", "--config", ADAM, *SMALL, "--ckpt_path", str(checkpoint), cwd=tmp_path)
    rows = (runs[0] / "predictions.csv").read_text().splitlines()
    assert len(rows) == 1 + 200  # header and every held-out row, once

    from ffnn_lightning.cli import main

    single = main(["validate", "--config", ADAM, *SMALL, "--ckpt_path", str(checkpoint)])
    single_val_loss = single.trainer.callback_metrics["val/loss"].item()
    assert logged["val/loss"][-1][1] == pytest.approx(single_val_loss, rel=1e-5)
