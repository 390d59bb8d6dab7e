"""FeedForwardModule: the training step, its losses and its optimizers."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch

from ffnn_lightning import BlobsDataModule, FeedForwardModule


def fit(module: FeedForwardModule, data=None, **trainer_kwargs) -> L.Trainer:
    trainer = L.Trainer(
        **{
            "max_epochs": 2,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            **trainer_kwargs,
        }
    )
    trainer.fit(module, data or BlobsDataModule(n_samples=300, n_features=8))
    return trainer


def small_module(**kwargs) -> FeedForwardModule:
    torch.manual_seed(0)
    return FeedForwardModule(in_features=8, hidden=[16], **kwargs)


def weights(module: FeedForwardModule) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_steps_per_call_does_not_change_the_updates():
    one, many = small_module(steps_per_call=1), small_module(steps_per_call=7)
    fit(one)
    trainer = fit(many)
    for a, b in zip(weights(one), weights(many), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert trainer.global_step == 2 * 15  # 240 training rows / 16 per batch, per epoch


class CountsOptimizerSteps(L.Callback):
    """Overrides a hook that runs around every optimizer step: Lightning's route is needed."""

    def __init__(self) -> None:
        self.calls = 0

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.calls += 1


def test_direct_steps_make_the_same_updates_as_lightnings_hooked_route():
    direct, hooked = small_module(), small_module()
    fit(direct)
    counter = CountsOptimizerSteps()
    trainer = fit(hooked, callbacks=[counter])
    assert (direct._direct, hooked._direct) == (True, False)
    for a, b in zip(weights(direct), weights(hooked), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert counter.calls == trainer.global_step == 2 * 15  # a callback's hook still runs


def test_max_steps_is_exact_whatever_steps_per_call():
    trainer = fit(small_module(steps_per_call=7), max_epochs=-1, max_steps=10)
    assert trainer.global_step == 10


def test_epoch_loss_is_the_mean_over_all_samples():
    # a model that does not move (lr=0) has one loss over the epoch: the full-batch mean
    frozen = small_module(optimizer=partial(torch.optim.SGD, lr=0.0))
    data = BlobsDataModule(n_samples=300, n_features=8, batch_size=64)  # short last batch
    trainer = fit(frozen, data, max_epochs=1, limit_val_batches=0)
    x, y = data.tensors["train"]
    with torch.no_grad():
        expected = torch.nn.functional.binary_cross_entropy_with_logits(frozen(x), y)
    assert trainer.callback_metrics["train/loss"].item() == pytest.approx(expected.item())


def test_gradient_clipping_limits_each_update():
    clipped = small_module(
        optimizer=partial(torch.optim.SGD, lr=1.0), gradient_clip_val=1e-3, steps_per_call=1
    )
    before = torch.cat([p.flatten() for p in weights(clipped)])
    fit(clipped, max_epochs=-1, max_steps=1, limit_val_batches=0)
    after = torch.cat([p.flatten() for p in weights(clipped)])
    assert (after - before).norm().item() == pytest.approx(1e-3, rel=1e-3)


def test_scheduler_steps_once_per_epoch():
    module = small_module(
        optimizer=partial(torch.optim.SGD, lr=1.0),
        lr_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5),
    )
    trainer = fit(module, max_epochs=3)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.125)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "binary", "loss": "mse"}, r"Loss 'mse' does not fit the binary task.*'bce'"),
        ({"task": "binary", "out_features": 3}, "needs exactly 1 output unit"),
        ({"task": "multiclass", "out_features": 1}, "needs at least 2 output unit"),
        ({"task": "regression", "loss": "hinge"}, "Loss 'hinge' does not fit the regression"),
        ({"task": "ranking"}, r"Unknown task 'ranking'. Valid tasks: \['binary'"),
        ({"steps_per_call": 0}, "steps_per_call must be a positive integer"),
    ],
)
def test_misfitting_choices_fail_when_built(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeedForwardModule(**kwargs)
