"""The README's "Extend" recipes, run from a user's folder that holds examples/my_net.py,
through the command line: a network, a module subclass, a loss and a callback by class path."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml

from ffnn_lightning.cli import main, run
from ffnn_lightning.training.fast_steps import FastSteps
from tests.conftest import CONFIGS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
README = (EXAMPLES.parent / "README.md").read_text()
SMALL = [
    "--config", str(CONFIGS / "blobs_adam.yaml"), "--data.init_args.n_samples=400",
    "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]  # fmt: skip


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    """A folder holding the user's my_net.py, importable as a user's own file is (the folder
    the command runs in is on the path)."""
    shutil.copy(EXAMPLES / "my_net.py", tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("my_net", None)


def fit(*args: str):
    return main(["fit", *SMALL, *args])


def test_the_readme_shows_the_recipes_as_they_are():
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) == 4
    for block in blocks:
        assert block in (EXAMPLES / "my_net.py").read_text(), block.splitlines()[0]


def test_a_network_of_ones_own_by_class_path_gets_the_datas_widths(user_folder):
    cli = fit("--model.network", "my_net.ResidualMLP", "--model.network.width", "32")
    network = cli.model.network
    assert type(network).__name__ == "ResidualMLP"
    assert (network.first.in_features, network.first.out_features) == (64, 32)
    assert network.out.out_features == 1
    assert cli.trainer.callback_metrics["val/acc"] > 0.9


@pytest.mark.parametrize("option", ["--model", "--model.class_path"])
def test_a_module_subclass_by_class_path_takes_its_own_arguments(user_folder, option):
    cli = fit(option, "my_net.L1Module", "--model.l1", "0.001")
    assert type(cli.model).__name__ == "L1Module" and cli.model.l1 == 0.001
    assert cli.model.network.layers[0].in_features == 64  # the config's network, linked widths
    fast = next(c for c in cli.trainer.callbacks if isinstance(c, FastSteps))
    assert fast.reason is None  # it says its training_step may run in chunks


def test_the_l1_penalty_of_the_subclass_shrinks_the_weights(user_folder):
    def l1_norm(*args: str) -> float:
        torch.manual_seed(0)
        cli = fit("--model", "my_net.L1Module", *args)
        return sum(p.abs().sum().item() for p in cli.model.network.parameters())

    assert l1_norm("--model.l1", "0.01") < 0.7 * l1_norm("--model.l1", "0.0")


def test_a_loss_and_a_callback_of_ones_own_by_class_path(user_folder, capsys):
    cli = fit("--model.loss", "my_net.FocalLoss", "--trainer.callbacks+=my_net.PrintLoss")
    assert type(cli.model.loss_fn).__name__ == "FocalLoss"
    assert "epoch 0: val/loss" in capsys.readouterr().out


def test_a_subclass_checkpoint_predicts_and_exports_as_its_class(user_folder):
    fitted = fit("--model", "my_net.L1Module", "--model.l1", "0.001")
    checkpoint = fitted.trainer.checkpoint_callback.best_model_path
    predicted = main(["predict", "--ckpt_path", checkpoint, "--model", "my_net.L1Module"])
    assert type(predicted.model).__name__ == "L1Module" and predicted.model.l1 == 0.001
    from ffnn_lightning.commands.export import load

    module, _ = load(Path(checkpoint), trusted=True)
    assert type(module).__name__ == "L1Module"


def test_a_subclass_checkpoint_is_refused_until_its_class_is_named(user_folder):
    fitted = fit("--model", "my_net.L1Module")
    checkpoint = fitted.trainer.checkpoint_callback.best_model_path
    with pytest.raises(SystemExit) as stopped:
        run(["predict", "--ckpt_path", checkpoint])
    assert "names my_net.L1Module, from outside ffnn_lightning" in str(stopped.value.code)
    assert "--model my_net.L1Module" in str(stopped.value.code)


def test_a_checkpoint_whose_class_cannot_be_imported_is_one_line(user_folder, monkeypatch):
    fitted = fit("--model", "my_net.L1Module")
    checkpoint = str(Path(fitted.trainer.checkpoint_callback.best_model_path).resolve())
    elsewhere = user_folder / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delitem(sys.modules, "my_net")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(user_folder)])
    with pytest.raises(SystemExit) as stopped:
        run(["predict", "--ckpt_path", checkpoint, "--model", "my_net.L1Module"])
    assert str(stopped.value.code) == (
        f"error: {checkpoint} was trained with the model my_net.L1Module, and module "
        "'my_net' cannot be imported from here. Run from the folder that holds my_net.py, "
        "or add that folder to PYTHONPATH."
    )


@pytest.mark.slow  # one more fit or study: the slow set (CI runs both)
def test_tune_searches_an_argument_of_a_module_subclass(user_folder):
    space = {"model.l1": {"type": "categorical", "choices": [0.0, 0.001]}}
    (user_folder / "space.yaml").write_text(yaml.safe_dump(space))
    from ffnn_lightning.commands.tune import main as tune

    folder = tune(["--search", "space.yaml", "--trials", "2", *SMALL, "--model", "my_net.L1Module"])
    best = yaml.safe_load((Path(folder) / "best.yaml").read_text())
    assert best["model"]["class_path"] == "my_net.L1Module"
