"""The chapter's experiment, reproduced through the template."""

from __future__ import annotations

import pytest
import torch

from benchmarks.reference import ChapterNetwork, chapter_data, train_network
from ffnn_lightning.training.logs import read_scalars
from tests.conftest import CONFIGS


@pytest.mark.parametrize(
    ("config", "loss", "optimizer"),
    [
        ("blobs_adam.yaml", "bce", lambda p: torch.optim.Adam(p, lr=0.001)),
        # the listing's own sigmoid + BCELoss follows even SGD's chaotic path step for step
        ("blobs_sgd.yaml", "bce_sigmoid", lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9)),
    ],
    ids=["adam", "sgd-listing-loss"],
)
def test_two_epochs_match_the_chapters_loop(run_cli, config, loss, optimizer):
    cli = run_cli(
        "fit", "--config", str(CONFIGS / config), "--trainer.max_epochs=2", f"--model.loss={loss}"
    )
    logged = [value for _, value in read_scalars(cli.trainer.log_dir)["train/loss"]]

    x_train, y_train, _, _ = chapter_data()
    model = ChapterNetwork()
    expected = train_network(model, optimizer(model.parameters()), 2, 16, x_train, y_train)
    assert logged == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow  # the two-epoch comparison above is its fast equivalent
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_full_ten_epoch_run_completes(run_cli, optimizer):
    cli = run_cli("fit", "--config", str(CONFIGS / f"blobs_{optimizer}.yaml"))
    assert cli.trainer.current_epoch == 10
    metrics = cli.trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss"])
    if optimizer == "adam":
        assert metrics["val/acc"].item() >= 0.99
