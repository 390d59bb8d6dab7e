"""The package grouped by job: class paths that configs and checkpoints name keep working,
or fail in one line."""

from __future__ import annotations

import importlib

import pytest
import torch

from ffnn_lightning import MOVED
from ffnn_lightning.cli import run


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_imports_the_module_now_at_its_new_path(old):
    assert importlib.import_module(old) is importlib.import_module(MOVED[old])


def test_a_config_naming_an_old_class_path_still_builds(tmp_path):
    from ffnn_lightning.cli import main
    from ffnn_lightning.training.insight import NetworkInsight

    old = "trainer:\n  callbacks:\n    - class_path: ffnn_lightning.insight.NetworkInsight\n"
    (tmp_path / "old.yaml").write_text(old)
    blobs = ["--data=ffnn_lightning.data.BlobsDataModule", "--data.n_samples=100"]
    cli = main(["--config", str(tmp_path / "old.yaml"), *blobs], run=False)
    assert any(isinstance(c, NetworkInsight) for c in cli.trainer.callbacks)


def test_a_checkpoint_of_the_earlier_module_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hparams = {"in_features": 64, "hidden": [256, 1024], "activation": "relu"}
    torch.save({"hyper_parameters": hparams, "state_dict": {}}, "old.ckpt")
    with pytest.raises(SystemExit) as stopped:
        run(["predict", "--ckpt_path", "old.ckpt"])
    assert str(stopped.value.code) == (
        "error: old.ckpt was written by an earlier ffnn-lightning, whose module took "
        "in_features, hidden, activation: these are now the network's arguments "
        "(model.network.init_args.hidden, ...). Train it again with this version."
    )
