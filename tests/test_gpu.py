"""A short fit on a CUDA GPU, chosen only by the accelerator flag; skipped without one."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import CONFIGS

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_short_fit_trains_on_the_gpu_with_data_moved_once(run_cli):
    cli = run_cli(
        "fit",
        "--config",
        str(CONFIGS / "blobs_adam.yaml"),
        "--trainer.accelerator=gpu",
        "--trainer.devices=1",
        "--trainer.max_epochs=2",
    )
    assert next(cli.model.parameters()).device.type == "cuda"
    assert cli.trainer.train_dataloader.tensors[0].device.type == "cuda"
    assert cli.trainer.callback_metrics["val/acc"].item() > 0.95
