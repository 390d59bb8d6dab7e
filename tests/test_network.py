"""FeedForwardNetwork: plain PyTorch, shaped by its arguments."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ffnn_lightning.errors import InputError
from ffnn_lightning.network import FeedForwardNetwork
from ffnn_lightning.reference import ChapterNetwork


def test_chapter_shape_is_64_256_1024_1():
    network = FeedForwardNetwork(64, [256, 1024], 1)
    linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 256), (256, 1024), (1024, 1)]
    assert network(torch.zeros(5, 64)).shape == (5, 1)


def test_same_seed_gives_the_chapters_initial_weights():
    chapter = ChapterNetwork()  # seeds 2020 itself
    torch.manual_seed(2020)
    network = FeedForwardNetwork(64, [256, 1024], 1)
    x = torch.randn(8, 64)
    expected = torch.logit(chapter(x))  # the chapter's network ends in a sigmoid
    torch.testing.assert_close(network(x), expected, rtol=1e-4, atol=1e-4)


def test_no_hidden_layer_is_a_linear_model():
    network = FeedForwardNetwork(3, [], 2)
    assert [type(m) for m in network.layers] == [nn.Linear]


@pytest.mark.parametrize(
    ("name", "cls"),
    [("relu", nn.ReLU), ("tanh", nn.Tanh), ("identity", nn.Identity), ("torch.nn.Mish", nn.Mish)],
)
def test_activation_by_name_or_class_path(name, cls):
    network = FeedForwardNetwork(4, [8, 8], 1, activation=name)
    assert sum(isinstance(m, cls) for m in network.modules()) == 2


def test_unknown_activation_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown activation 'rellu'.*'relu'"):
        FeedForwardNetwork(4, [8], 1, activation="rellu")


@pytest.mark.parametrize("hidden", [[0], [16, -3]])
def test_non_positive_hidden_width_is_refused(hidden):
    with pytest.raises(ValueError, match="hidden width must be a positive integer"):
        FeedForwardNetwork(4, hidden, 1)


def test_dropout_and_batch_norm_sit_between_hidden_layers():
    network = FeedForwardNetwork(4, [8, 8], 1, dropout=0.5, batch_norm=True)
    kinds = [type(m).__name__ for m in network.layers]
    assert kinds == [
        "Linear", "BatchNorm1d", "ReLU", "Dropout",
        "Linear", "BatchNorm1d", "ReLU", "Dropout",
        "Linear",
    ]  # fmt: skip


def test_a_periodic_embedding_gives_the_first_layer_dim_numbers_per_input():
    torch.manual_seed(0)
    network = FeedForwardNetwork(5, [8], 3, embedding="periodic", embedding_dim=4)
    assert network.layers[0].in_features == 5 * 4
    out = network(torch.randn(7, 5))
    assert out.shape == (7, 3)
    out.sum().backward()
    grads = [p.grad for p in network.embedding.parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_coded_categories_are_looked_up_in_a_learned_table_each():
    torch.manual_seed(0)
    network = FeedForwardNetwork(4, [8], 2, category_levels=[5, 3], category_dim=3)
    assert network.layers[0].in_features == 2 + 2 * 3  # two numbers, two codes of 3 each
    x = torch.tensor([[0.5, -1.0, 4.0, -1.0]])  # shop 4 of 5; an unseen colour
    network(x).sum().backward()
    shops, colours = (table.weight.grad for table in network.categories)
    assert shops.abs().sum(1).nonzero().flatten().tolist() == [5]  # row 0: the unseen one
    assert colours.abs().sum(1).nonzero().flatten().tolist() == [0]


def test_category_levels_beyond_the_inputs_are_refused():
    with pytest.raises(InputError, match=r"category_levels \[5, 3, 2\] must be one positive"):
        FeedForwardNetwork(2, [8], 1, category_levels=[5, 3, 2])


def test_an_unknown_embedding_is_refused_with_the_choices():
    with pytest.raises(InputError, match=r"Unknown embedding 'fourier'.*\['periodic'\]"):
        FeedForwardNetwork(5, [8], 1, embedding="fourier")


def test_an_ensemble_stacks_its_members_outputs_each_from_its_own_weights():
    from ffnn_lightning.network import Ensemble, members_mean

    torch.manual_seed(0)
    ensemble = Ensemble([FeedForwardNetwork(4, [8], 2) for _ in range(3)])
    x = torch.randn(5, 4)
    out = ensemble(x)
    assert out.shape == (5, 3, 2)
    assert not torch.allclose(out[:, 0], out[:, 1])  # members start apart
    torch.testing.assert_close(out[:, 2], ensemble.members[2](x))
    torch.testing.assert_close(members_mean(ensemble, out), out.mean(1))


def test_only_an_ensemble_has_its_outputs_averaged_over_members():
    from ffnn_lightning.network import members_mean

    three_d = torch.randn(5, 3, 2)  # e.g. a network of one's own with per-step outputs
    assert members_mean(torch.nn.Identity(), three_d) is three_d
