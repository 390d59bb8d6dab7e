"""A run killed in the middle of an epoch and resumed ends exactly as one that never stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from ffnn_lightning.training.logs import read_scalars
from tests.conftest import CONFIGS

ROOT = Path(__file__).resolve().parents[2]
# circles: a seeded random split and reshuffled batches, 25 steps of 32 rows an epoch
RUN = [
    "fit", "--config", str(CONFIGS / "circles.yaml"), "--trainer.max_epochs=4",
    "--last_checkpoint.every_n_steps=10", "--trainer.enable_progress_bar=false",
]  # fmt: skip


class KillAt(L.Callback):
    """SIGKILLs its own process once training reaches ``step``: a crash, not a clean exit."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ffnn_lightning", *args], cwd=cwd, env=env, capture_output=True
    )


def last_checkpoint(folder: Path) -> dict:
    return torch.load(folder / "lightning_logs/version_0/checkpoints/last.ckpt", weights_only=True)


@pytest.mark.slow  # a killed process and its resumed twin
def test_killed_mid_epoch_and_resumed_ends_with_the_same_weights_and_metrics(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()
    assert cli(*RUN, cwd=whole).returncode == 0

    killer = [
        "--trainer.callbacks+=tests.reliability.test_resume.KillAt",
        "--trainer.callbacks.step=45",
    ]
    assert cli(*RUN, *killer, cwd=killed).returncode == -signal.SIGKILL
    saved_step = last_checkpoint(killed)["global_step"]
    assert 25 < saved_step < 50 and saved_step % 25 != 0  # written in the middle of epoch 2

    resumed = cli(*RUN, "--ckpt_path=last", cwd=killed)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]

    expected, actual = last_checkpoint(whole), last_checkpoint(killed)
    assert actual["global_step"] == expected["global_step"] == 100
    for name, tensor in expected["state_dict"].items():
        torch.testing.assert_close(actual["state_dict"][name], tensor, rtol=0, atol=1e-6)
    runs = [read_scalars(folder / "lightning_logs/version_0") for folder in (whole, killed)]
    for tag in ("train/loss", "train/acc", "val/loss", "val/acc"):
        assert [v for _, v in runs[1][tag]] == [v for _, v in runs[0][tag]], tag
