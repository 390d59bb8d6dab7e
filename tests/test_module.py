"""FeedForwardModule: the training step, its losses and its optimizers."""

from __future__ import annotations

import math
from functools import partial

import lightning as L
import pytest
import torch

from ffnn_lightning import BlobsDataModule, FeedForwardModule
from ffnn_lightning.errors import InputError
from ffnn_lightning.model import Ensemble, FeedForwardNetwork
from ffnn_lightning.training.fast_steps import FastSteps
from tests.conftest import build_module, quiet_trainer


def fit(module: FeedForwardModule, data=None, **trainer_kwargs) -> L.Trainer:
    trainer = quiet_trainer(**trainer_kwargs)
    trainer.fit(module, data or BlobsDataModule(n_samples=300, n_features=8))
    return trainer


def small_module(**kwargs) -> FeedForwardModule:
    torch.manual_seed(0)
    return build_module(in_features=8, hidden=[16], **kwargs)


def weights(module: FeedForwardModule) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_fast_route_makes_exactly_the_updates_of_lightnings_own_steps():
    plain, fast = small_module(), small_module()
    fit(plain)
    fast_steps = FastSteps(steps_per_call=7)  # 15 batches an epoch: calls of 7, 7 and 1
    trainer = fit(fast, callbacks=[fast_steps])
    for a, b in zip(weights(plain), weights(fast), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert trainer.global_step == 2 * 15  # 240 training rows / 16 per batch, per epoch
    assert type(fast).training_step is FeedForwardModule.training_step
    assert fast.automatic_optimization and "training_step" not in vars(fast)  # handed back


class CountsOptimizerSteps(L.Callback):
    """Overrides a hook that runs around every optimizer step: Lightning's route is needed."""

    def __init__(self) -> None:
        self.calls = 0

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.calls += 1


def test_fast_route_steps_aside_for_a_callback_that_watches_every_step(caplog):
    counter = CountsOptimizerSteps()
    trainer = fit(small_module(), callbacks=[FastSteps(), counter])
    assert counter.calls == trainer.global_step == 2 * 15
    assert (
        "Fast steps off: CountsOptimizerSteps runs on_before_optimizer_step for every batch"
        in caplog.text
    )


def test_fast_route_steps_epoch_schedulers_as_lightning_does():
    def scheduled(*callbacks) -> float:
        module = small_module(
            optimizer=partial(torch.optim.SGD, lr=1.0),
            lr_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5),
        )
        return (
            fit(module, max_epochs=3, callbacks=list(callbacks)).optimizers[0].param_groups[0]["lr"]
        )

    assert scheduled(FastSteps()) == scheduled() == pytest.approx(0.125)


def test_epoch_loss_is_the_mean_over_all_samples():
    # a model that does not move (lr=0) has one loss over the epoch: the full-batch mean
    frozen = small_module(optimizer=partial(torch.optim.SGD, lr=0.0))
    data = BlobsDataModule(n_samples=300, n_features=8, batch_size=64)  # short last batch
    trainer = fit(frozen, data, max_epochs=1, limit_val_batches=0)
    x, y = data.tensors["train"]
    with torch.no_grad():
        expected = torch.nn.functional.binary_cross_entropy_with_logits(frozen.network(x), y)
    assert trainer.callback_metrics["train/loss"].item() == pytest.approx(expected.item())


def test_the_trainers_gradient_clipping_limits_each_update():
    clipped = small_module(optimizer=partial(torch.optim.SGD, lr=1.0))
    before = torch.cat([p.flatten() for p in weights(clipped)])
    fit(clipped, max_epochs=-1, max_steps=1, limit_val_batches=0, gradient_clip_val=1e-3)
    after = torch.cat([p.flatten() for p in weights(clipped)])
    assert (after - before).norm().item() == pytest.approx(1e-3, rel=1e-3)


def test_a_loss_by_class_path_trains():
    module = build_module(
        in_features=8, hidden=[16], task="regression", loss="torch.nn.SmoothL1Loss"
    )
    assert isinstance(module.loss_fn, torch.nn.SmoothL1Loss)


def test_extra_metrics_from_the_config_are_logged_on_validation():
    module = small_module(metrics={"precision": "torchmetrics.classification.BinaryPrecision"})
    trainer = fit(module, max_epochs=1)
    assert 0.0 <= trainer.callback_metrics["val/precision"].item() <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "binary", "out_features": 3}, "needs exactly 1 output unit"),
        ({"task": "multiclass", "out_features": 1}, "needs at least 2 output unit"),
        ({"task": "regression", "loss": "hinge"}, "Loss 'hinge' does not fit the regression"),
        ({"task": "ranking"}, r"Unknown task 'ranking'. Valid tasks: \['binary'"),
        ({"task": "binary", "loss": "torch.nn.NoSuchLoss"}, r"or the class path of a torch"),
        ({"metrics": {"p": "torch.nn.ReLU"}}, r"Metric p: 'torch.nn.ReLU' is not the class path"),
    ],
)
def test_misfitting_choices_fail_when_built(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_module(**kwargs)


def test_balanced_class_weights_make_each_class_weigh_as_much():
    from ffnn_lightning.model.module import class_weights

    weights = class_weights("balanced", [90, 10])
    assert weights == pytest.approx([100 / 180, 100 / 20])
    assert 90 * weights[0] == pytest.approx(10 * weights[1])


def test_binary_class_weights_become_the_positive_weight_of_the_loss():
    model = build_module(in_features=2, hidden=[], class_weight=[1.0, 9.0])
    logits, target = torch.zeros(4, 1), torch.tensor([[1.0], [0.0], [0.0], [0.0]])
    expected = (9 * math.log(2) + 3 * math.log(2)) / 4  # a positive row counts nine times
    assert model.loss_fn(logits, target).item() == pytest.approx(expected)


def test_class_weights_of_the_wrong_length_or_loss_are_refused():
    with pytest.raises(InputError, match="one weight per class"):
        build_module(task="multiclass", out_features=3, class_weight=[1, 2], class_counts=[5, 5, 5])
    with pytest.raises(InputError, match="class_weight and label_smoothing are for the bce loss"):
        build_module(loss="hinge", class_weight="balanced", class_counts=[5, 5])


def test_balanced_class_weights_raise_the_balanced_accuracy_of_rare_positives(run_cli):
    rare = [
        "--data=ffnn_lightning.data.ClassificationDataModule",
        "--data.weights=[0.95, 0.05]",
        "--data.n_samples=2000",
        "--trainer.max_epochs=3",
        "--model.network.hidden=[16]",
        "--trainer.enable_progress_bar=false",
    ]
    plain = run_cli("fit", *rare).trainer.callback_metrics
    weighted = run_cli("fit", *rare, "--model.class_weight=balanced").trainer.callback_metrics
    assert weighted["val/bal_acc"] > plain["val/bal_acc"] + 0.05


def test_label_smoothing_trains_binary_rows_towards_softened_targets():
    model = build_module(in_features=2, hidden=[], label_smoothing=0.2)
    logits, target = torch.full((1, 1), 2.0), torch.ones(1, 1)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.full((1, 1), 0.9))
    assert model.loss_fn(logits, target).item() == pytest.approx(expected.item())


def test_class_weights_do_not_skip_the_output_width_check():
    with pytest.raises(InputError, match="needs exactly 1 output unit"):
        build_module(out_features=3, class_weight="balanced", class_counts=[5, 5])


def test_an_ensemble_trains_each_member_on_its_own_loss_and_predicts_their_mean():
    torch.manual_seed(0)
    network = partial(Ensemble, network=partial(FeedForwardNetwork, hidden=[8]), members=3)
    module = build_module(in_features=4, out_features=3, task="multiclass", network=network)
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    loss, outputs, _ = module.model_step((x, y))
    members = [member(x) for member in module.network.members]
    each = [torch.nn.functional.cross_entropy(m, y) for m in members]
    torch.testing.assert_close(loss, torch.stack(each).mean())
    torch.testing.assert_close(outputs, torch.stack(members, 1).mean(1))
    predicted = module.predict_step((x,), 0)
    torch.testing.assert_close(predicted["probability"], torch.softmax(outputs, -1))


def test_every_member_of_an_ensemble_learns_through_the_trainer():
    torch.manual_seed(0)
    network = partial(Ensemble, network=partial(FeedForwardNetwork, hidden=[16]), members=2)
    module = build_module(in_features=8, network=network)
    before = weights(module)
    fit(module)
    assert all(not torch.equal(a, b) for a, b in zip(before, weights(module), strict=True))
