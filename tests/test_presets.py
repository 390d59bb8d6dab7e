"""configs/presets/strong.yaml: the strong tabular recipe, every ingredient switched on."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping

from ffnn_lightning.schedules import WarmupCosineLR
from tests.conftest import CONFIGS

STRONG = ("--config", f"{CONFIGS}/breast_cancer.yaml", "--config", f"{CONFIGS}/presets/strong.yaml")


def test_the_strong_preset_switches_on_each_of_its_ingredients(run_cli):
    cli = run_cli("fit", *STRONG, "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false")
    assert cli.datamodule.scaler == "robust_clip"
    assert cli.model.network.embedding is not None
    assert cli.model.loss_fn.smoothing == pytest.approx(0.1)  # breast_cancer: binary
    optimizer = cli.trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["weight_decay"] == pytest.approx(0.01)
    assert isinstance(cli.trainer.lr_scheduler_configs[0].scheduler, WarmupCosineLR)
    assert any(isinstance(c, EarlyStopping) for c in cli.trainer.callbacks)


def test_early_stopping_leaves_test_the_best_epochs_weights(run_cli):
    cli = run_cli(
        "fit",
        *STRONG,
        "--trainer.max_epochs=40",
        "--trainer.callbacks.patience=2",
        "--model.optimizer.init_args.lr=0.03",  # over-fits within a few epochs
        "--model.lr_scheduler.init_args.max_epochs=40",
        "--trainer.enable_progress_bar=false",
    )
    stopping = cli.trainer.early_stopping_callback
    assert 0 < stopping.stopped_epoch < 39
    best = cli.trainer.checkpoint_callback.best_model_score.item()
    (last,) = cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)
    (restored,) = cli.trainer.validate(datamodule=cli.datamodule, ckpt_path="best", verbose=False)
    assert restored["val/loss"] == pytest.approx(best, abs=1e-6)
    assert last["val/loss"] > best
