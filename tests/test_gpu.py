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
    # after fit Lightning moves the module back to the CPU; the strategy and data tell
    assert cli.trainer.strategy.root_device.type == "cuda"
    assert cli.trainer.train_dataloader.tensors[0].device.type == "cuda"
    assert cli.trainer.callback_metrics["val/acc"].item() > 0.95


def test_the_strong_preset_trains_on_the_gpu_and_exports_on_the_cpu(run_cli, tmp_path):
    pytest.importorskip("skl2onnx", reason="pip install -e '.[export]'")
    from ffnn_lightning.commands.export import export

    cli = run_cli(
        "fit",
        *("--config", str(CONFIGS / "breast_cancer.yaml")),
        *("--config", str(CONFIGS / "presets" / "strong.yaml")),
        "--trainer.accelerator=gpu",
        "--trainer.devices=1",
        "--trainer.max_epochs=3",
    )
    assert cli.trainer.strategy.root_device.type == "cuda"
    assert cli.trainer.callback_metrics["val/acc"].item() > 0.9
    model = export(tmp_path / cli.trainer.checkpoint_callback.best_model_path)
    assert model.stat().st_size > 0


def test_network_insight_measures_and_draws_on_the_gpu(run_cli, tmp_path):
    from ffnn_lightning.training.insight import NetworkInsight

    cli = run_cli(
        "fit",
        *("--config", str(CONFIGS / "circles.yaml")),
        *("--config", str(CONFIGS / "experiments" / "insight.yaml")),
        "--trainer.accelerator=gpu",
        "--trainer.devices=1",
        "--trainer.max_epochs=2",
    )
    insight = next(c for c in cli.trainer.callbacks if isinstance(c, NetworkInsight))
    assert insight.history["insight/grad_norm/layer_1"]
    assert insight.history["insight/dead/layer_1"]
    assert (tmp_path / cli.trainer.log_dir / "decision_boundary.png").is_file()
