"""FeedForwardNetwork: plain PyTorch, shaped by its arguments."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarks.reference import ChapterNetwork
from ffnn_lightning.model.networks import FeedForwardNetwork


def test_chapter_shape_is_64_256_1024_1():
    network = FeedForwardNetwork(64, 1, [256, 1024])
    linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 256), (256, 1024), (1024, 1)]
    assert network(torch.zeros(5, 64)).shape == (5, 1)


def test_same_seed_gives_the_chapters_initial_weights():
    chapter = ChapterNetwork()  # seeds 2020 itself
    torch.manual_seed(2020)
    network = FeedForwardNetwork(64, 1, [256, 1024])
    x = torch.randn(8, 64)
    expected = torch.logit(chapter(x))  # the chapter's network ends in a sigmoid
    torch.testing.assert_close(network(x), expected, rtol=1e-4, atol=1e-4)


def test_no_hidden_layer_is_a_linear_model():
    network = FeedForwardNetwork(3, 2, [])
    assert [type(m) for m in network.layers] == [nn.Linear]


@pytest.mark.parametrize(
    ("name", "cls"),
    [("relu", nn.ReLU), ("tanh", nn.Tanh), ("identity", nn.Identity), ("torch.nn.Mish", nn.Mish)],
)
def test_activation_by_name_or_class_path(name, cls):
    network = FeedForwardNetwork(4, 1, [8, 8], activation=name)
    assert sum(isinstance(m, cls) for m in network.modules()) == 2


def test_unknown_activation_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown activation 'rellu'.*'relu'"):
        FeedForwardNetwork(4, 1, [8], activation="rellu")


@pytest.mark.parametrize("hidden", [[0], [16, -3]])
def test_non_positive_hidden_width_is_refused(hidden):
    with pytest.raises(ValueError, match="hidden width must be a positive integer"):
        FeedForwardNetwork(4, 1, hidden)


def test_dropout_and_batch_norm_sit_between_hidden_layers():
    network = FeedForwardNetwork(4, 1, [8, 8], dropout=0.5, batch_norm=True)
    kinds = [type(m).__name__ for m in network.layers]
    assert kinds == [
        "Linear", "BatchNorm1d", "ReLU", "Dropout",
        "Linear", "BatchNorm1d", "ReLU", "Dropout",
        "Linear",
    ]  # fmt: skip
