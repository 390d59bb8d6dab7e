"""NetworkInsight: dead and saturated units, gradient flow, histograms and decision boundaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ffnn_lightning.model.networks import FeedForwardNetwork
from ffnn_lightning.training.insight import (
    NetworkInsight,
    activation_stats,
    boundary_image,
    class_grid,
)
from tests.conftest import CONFIGS

CIRCLES = ("--config", f"{CONFIGS}/circles.yaml")
INSIGHT = ("--config", f"{CONFIGS}/experiments/insight.yaml")


def one_layer(activation: str, weight: list[list[float]], bias: list[float]) -> FeedForwardNetwork:
    network = FeedForwardNetwork(2, 1, [len(bias)], activation=activation)
    with torch.no_grad():
        network.layers[0].weight.copy_(torch.tensor(weight))
        network.layers[0].bias.copy_(torch.tensor(bias))
    return network


def test_the_dead_share_is_the_units_never_positive_on_any_row():
    weight = [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0], [0.0, 0.0], [1.0, -1.0]]
    bias = [0.0, 0.0, -0.1, 0.0, -0.5]
    x = torch.rand(64, 2)  # inputs in [0, 1)
    network = one_layer("relu", weight, bias)
    (stats,) = activation_stats(network, x)
    by_hand = ((x @ torch.tensor(weight).T + torch.tensor(bias)).max(0).values <= 0).float().mean()
    assert stats["dead"] == pytest.approx(by_hand.item())
    assert stats["dead"] >= 0.4  # units 3 and 4 at least: never above 0 on inputs in [0, 1)


def test_a_tanh_layer_with_large_weights_is_saturated_and_one_with_small_is_not():
    x = torch.rand(64, 2) + 0.5
    saturated = one_layer("tanh", [[10.0, 10.0], [-10.0, -10.0], [8.0, 5.0]], [0.0, 0.0, 0.0])
    calm = one_layer("tanh", [[0.1, 0.1], [-0.1, 0.1], [0.2, 0.0]], [0.0, 0.0, 0.0])
    assert activation_stats(saturated, x)[0]["saturated"] == 1.0
    assert activation_stats(calm, x)[0]["saturated"] == 0.0
    assert "dead" not in activation_stats(calm, x)[0]  # dead units are ReLU-family's


def test_every_hidden_layer_of_any_built_network_is_measured():
    network = FeedForwardNetwork(3, 2, [8, 8, 8], activation="gelu", dropout=0.2, batch_norm=True)
    stats = activation_stats(network.eval(), torch.randn(32, 3))
    assert len(stats) == 3
    assert all({"dead", "activation_mean", "activation_std"} <= set(s) for s in stats)


def test_the_class_grid_follows_the_predicted_side_of_the_plane():
    def right_is_class_1(grid: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(10 * grid[:, :1])
        return torch.cat([1 - p, p], 1)

    label, confidence = class_grid(right_is_class_1, (-1.0, 1.0, -1.0, 1.0), resolution=10)
    assert label.shape == (10, 10)
    assert (label[:, :5] == 0).all() and (label[:, 5:] == 1).all()
    assert (confidence >= 0.5).all()


def test_the_boundary_image_is_an_rgb_picture_of_the_given_size():
    points = np.random.default_rng(0).normal(size=(50, 2))
    image = boundary_image(
        lambda g: torch.softmax(g @ torch.eye(2), 1), points, (points[:, 0] > 0).astype(int), "t"
    )
    assert image.shape == (320, 320, 3) and image.dtype == np.uint8  # 4 x 4 inches at 80 dpi
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10  # not a blank canvas


def insight_of(cli) -> NetworkInsight:
    return next(c for c in cli.trainer.callbacks if isinstance(c, NetworkInsight))


def test_deep_sigmoid_layers_pass_the_first_layer_a_vanishing_gradient(run_cli):
    cli = run_cli(
        "fit", *CIRCLES, "--config", f"{CONFIGS}/experiments/deep_sigmoid.yaml",
        "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
    )  # fmt: skip
    history = insight_of(cli).history
    first = history["insight/grad_norm/layer_1"][-1][1]
    last = history["insight/grad_norm/layer_9"][-1][1]  # the output layer, after 8 hidden
    assert first * 100 <= last


def test_tensorboard_holds_the_histograms_the_boundary_and_the_run_folder_its_files(
    run_cli, tmp_path, caplog
):
    cli = run_cli(
        "fit", *CIRCLES, *INSIGHT, "--trainer.max_epochs=2",
        "--trainer.callbacks.init_args.histogram_every_n_epochs=1",
        "--trainer.callbacks.init_args.boundary_every_n_epochs=1",
        "--trainer.enable_progress_bar=false",
    )  # fmt: skip
    folder = tmp_path / cli.trainer.log_dir
    events = EventAccumulator(str(folder), size_guidance={"histograms": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    for kind in ("weights", "activations", "gradients"):
        assert f"insight/{kind}/layer_1" in tags["histograms"]
    assert len(events.Images("insight/decision_boundary")) == 2
    assert {"insight/dead/layer_1", "insight/update_ratio/layer_3"} <= set(tags["scalars"])
    assert (folder / "decision_boundary.png").is_file()
    assert (folder / "decision_boundary.gif").is_file()
    assert "Fast steps off" not in caplog.text  # the measurements ride on the fast route


def test_wider_data_gets_a_note_instead_of_a_boundary(run_cli, tmp_path, caplog):
    cli = run_cli(
        "fit", "--config", f"{CONFIGS}/iris.yaml", *INSIGHT, "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
    )  # fmt: skip
    assert "no decision boundary (drawn for 2 inputs; the data has 4)" in caplog.text
    assert not (tmp_path / cli.trainer.log_dir / "decision_boundary.png").exists()
    assert insight_of(cli).history["insight/dead/layer_1"]


def test_a_regression_on_two_inputs_gets_a_note_instead_of_a_boundary(run_cli, caplog):
    run_cli(
        "fit", "--config", f"{CONFIGS}/regression.yaml", *INSIGHT, "--data.init_args.n_features=2",
        "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
    )  # fmt: skip
    assert "no decision boundary (drawn for classes, not regression)" in caplog.text
