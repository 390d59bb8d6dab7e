"""The chapter's menu: every task with its losses and several activations, the gradient-descent
variants, and the refusal of combinations that do not fit."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch

from ffnn_lightning import FeedForwardModule, FeedForwardNetwork
from ffnn_lightning.data import (
    BlobsDataModule,
    MoonsDataModule,
    RegressionDataModule,
    TabularDataModule,
)
from ffnn_lightning.tasks import TASKS
from tests.conftest import CONFIGS, build_module, quiet_trainer

DATA = {
    "binary": lambda: MoonsDataModule(n_samples=200, batch_size=16),
    "multiclass": lambda: BlobsDataModule(
        n_samples=300, centers=3, n_features=4, standardize=True, split="stratified"
    ),
    "regression": lambda: RegressionDataModule(n_samples=200, n_features=4, noise=1.0),
}
# every loss with ReLU by default; with tanh and sigmoid too under -m slow
COMBINATIONS = [
    pytest.param(task, loss, activation, marks=[pytest.mark.slow] if activation != "relu" else [])
    for task in TASKS
    for loss in TASKS[task].losses
    for activation in ("relu", "tanh", "sigmoid")
]


def full_batch_loss(module: FeedForwardModule, data: TabularDataModule) -> float:
    x, y = data.tensors["train"]
    with torch.no_grad():
        return module.model_step((x, y))[0].item()


@pytest.mark.parametrize(("task", "loss", "activation"), COMBINATIONS)
def test_every_task_loss_and_activation_learns(task, loss, activation):
    data = DATA[task]()
    torch.manual_seed(0)
    module = build_module(
        in_features=data.num_features,
        out_features=data.num_outputs,
        network=partial(FeedForwardNetwork, hidden=[16], activation=activation),
        task=data.task_name,
        loss=loss,
        optimizer=lambda params: torch.optim.Adam(params, lr=0.01),
    )
    before = full_batch_loss(module, data)
    quiet_trainer().fit(module, data)
    assert full_batch_loss(module, data) < before


@pytest.mark.parametrize(
    ("config", "loss", "message"),
    [
        ("blobs_adam.yaml", "cross_entropy", r"'cross_entropy' does not fit the binary task"),
        (
            "blobs_adam.yaml",
            "mse",
            r"'mse' does not fit the binary task.*\['bce', 'bce_sigmoid', 'hinge'\]",
        ),
        ("regression.yaml", "hinge", r"'hinge' does not fit the regression task"),
        ("blobs_multiclass.yaml", "bce", r"'bce' does not fit the multiclass task"),
    ],
)
def test_a_loss_that_does_not_fit_the_data_fails_before_training(run_cli, config, loss, message):
    with pytest.raises(ValueError, match=message):
        run_cli("fit", "--config", str(CONFIGS / config), f"--model.loss={loss}")
    assert not list(Path(".").rglob("*.ckpt"))


def circles_val_acc(run_cli, *args: str) -> float:
    cli = run_cli("fit", "--config", str(CONFIGS / "circles.yaml"), *args)
    return cli.trainer.callback_metrics["val/acc"].item()


def test_without_a_nonlinearity_circles_stay_unseparated(run_cli):
    linear = str(CONFIGS / "experiments" / "linear.yaml")
    assert circles_val_acc(run_cli, "--config", linear) < 0.70


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_with_a_nonlinearity_circles_are_separated(run_cli, activation):
    assert circles_val_acc(run_cli, f"--model.network.activation={activation}") > 0.95


@pytest.mark.parametrize(
    ("variant", "steps_per_epoch"),
    [("batch_gd.yaml", 1), ("stochastic_gd.yaml", 160), ("minibatch_gd.yaml", 3)],
)
def test_gradient_descent_variants_take_their_steps(run_cli, variant, steps_per_epoch):
    cli = run_cli(
        "fit",
        "--config", str(CONFIGS / "circles.yaml"),
        "--config", str(CONFIGS / "experiments" / variant),
        "--data.init_args.n_samples=200",
        "--trainer.max_epochs=2",
    )  # fmt: skip
    assert cli.trainer.global_step == 2 * steps_per_epoch
