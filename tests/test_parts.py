"""The parts that wrap a network, and how the module builds one from what the data knows."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from ffnn_lightning.errors import InputError
from ffnn_lightning.model import (
    CategoryEmbedding,
    Ensemble,
    FeedForwardNetwork,
    PeriodicEmbedding,
    ResidualMLP,
    TabM,
)
from ffnn_lightning.model.parts import accepted_arguments, build_network
from tests.conftest import build_module


def mlp(**kwargs):
    return partial(FeedForwardNetwork, hidden=[8], **kwargs)


def test_a_periodic_embedding_gives_the_network_dim_numbers_per_input():
    torch.manual_seed(0)
    network = PeriodicEmbedding(5, 3, network=mlp(), dim=4)
    assert network.network.layers[0].in_features == 5 * 4
    out = network(torch.randn(7, 5))
    assert out.shape == (7, 3)
    out.sum().backward()
    grads = [p.grad for p in network.embedding.parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_a_periodic_embedding_learns_as_many_frequencies_per_input_as_asked():
    network = PeriodicEmbedding(5, 1, network=mlp(), dim=4, frequencies=6)
    periodic = network.embedding[0]
    assert periodic.periodic.weight.shape == (5, 6)  # a sine and a cosine of each
    assert periodic.linear.weight.shape == (5, 2 * 6, 4)
    assert network(torch.randn(3, 5)).shape == (3, 1)


def test_a_periodic_embedding_refuses_no_frequencies():
    with pytest.raises(InputError, match="frequencies must be a positive integer, got 0"):
        PeriodicEmbedding(5, 1, network=mlp(), frequencies=0)


def test_a_periodic_embedding_stays_out_of_a_table_under_its_min_rows():
    network = PeriodicEmbedding(5, 1, network=mlp(), min_rows=100, train_rows=99)
    assert network.embedding is None
    assert network.network.layers[0].in_features == 5


def test_a_periodic_embedding_passes_coded_categories_on_unembedded():
    network = PeriodicEmbedding(
        4, 1, network=partial(CategoryEmbedding, network=mlp(), dim=3), dim=2,
        category_levels=[5],
    )  # fmt: skip
    inner = network.network  # the category tables see the code, the MLP both embeddings
    assert inner.network.layers[0].in_features == 3 * 2 + 3
    assert network(torch.tensor([[0.1, 0.2, 0.3, 4.0]])).shape == (1, 1)


def test_a_periodic_embedding_embeds_the_numbers_and_passes_one_hot_columns_on():
    torch.manual_seed(0)
    network = PeriodicEmbedding(5, 1, network=mlp(), dim=4, number_features=2)
    assert network.network.layers[0].in_features == 2 * 4 + 3  # two numbers, three 0/1 columns
    x = torch.tensor([[0.5, -1.0, 1.0, 0.0, 0.0]])
    embedded = network.embedding(x[:, :2])
    torch.testing.assert_close(network(x), network.network(torch.cat([embedded, x[:, 2:]], 1)))


def test_a_periodic_embedding_of_a_table_without_numbers_embeds_nothing():
    network = PeriodicEmbedding(6, 1, network=mlp(), number_features=0)
    assert network.embedding is None
    assert network.network.layers[0].in_features == 6


def test_coded_categories_are_looked_up_in_a_learned_table_each():
    torch.manual_seed(0)
    network = CategoryEmbedding(4, 2, network=mlp(), dim=3, category_levels=[5, 3])
    assert network.network.layers[0].in_features == 2 + 2 * 3  # two numbers, two codes of 3
    x = torch.tensor([[0.5, -1.0, 4.0, -1.0]])  # shop 4 of 5; an unseen colour
    network(x).sum().backward()
    shops, colours = (table.weight.grad for table in network.tables)
    assert shops.abs().sum(1).nonzero().flatten().tolist() == [5]  # row 0: the unseen one
    assert colours.abs().sum(1).nonzero().flatten().tolist() == [0]


def test_category_levels_beyond_the_inputs_are_refused():
    with pytest.raises(InputError, match=r"category_levels \[5, 3, 2\] must be one positive"):
        CategoryEmbedding(2, 1, network=mlp(), category_levels=[5, 3, 2])


def test_codes_for_a_network_that_does_not_take_them_are_refused_with_the_wrapper():
    with pytest.raises(InputError, match=r"does not take category_levels. Wrap it in .*Category"):
        build_network(mlp(), 4, 1, category_levels=[5])


def test_an_ensemble_stacks_its_members_outputs_each_from_its_own_weights():
    torch.manual_seed(0)
    ensemble = Ensemble(4, 2, network=mlp(), members=3)
    x = torch.randn(5, 4)
    out = ensemble(x)
    assert out.shape == (5, 3, 2)
    assert not torch.allclose(out[:, 0], out[:, 1])  # members start apart
    torch.testing.assert_close(out[:, 2], ensemble.members[2](x))


def test_an_ensemble_needs_two_members():
    with pytest.raises(InputError, match="at least 2 members, got 1"):
        Ensemble(4, 1, network=mlp(), members=1)


@pytest.mark.parametrize(
    ("factory", "taken"),
    [
        (FeedForwardNetwork, {"in_features", "out_features", "hidden"}),
        (mlp(), {"in_features", "out_features"}),
        (partial(TabM, k=2), {"category_levels"}),
        (lambda in_features, out_features: nn.Linear(in_features, out_features), {"in_features"}),
    ],
)
def test_a_network_is_given_the_facts_its_signature_takes(factory, taken):
    assert taken <= accepted_arguments(factory)
    assert "train_rows" not in accepted_arguments(factory)


def test_a_network_that_takes_any_keyword_is_given_every_fact():
    seen = {}

    def network(**facts):
        seen.update(facts)
        return nn.Linear(facts["in_features"], facts["out_features"])

    build_network(network, 3, 1, category_levels=[2], train_rows=10, number_features=1)
    assert seen == {
        "in_features": 3, "out_features": 1, "category_levels": [2], "train_rows": 10,
        "number_features": 1,
    }  # fmt: skip


def test_a_residual_mlp_keeps_its_stream_width_through_each_block():
    torch.manual_seed(0)
    network = ResidualMLP(6, 3, width=16, blocks=3, hidden_factor=2.0)
    assert len(network.blocks) == 3
    assert network.blocks[0].body[1].out_features == 32
    x = torch.randn(4, 16)
    block = network.blocks[0].eval()
    torch.testing.assert_close(block(x) - x, block.body(x))  # a residual: x + f(x)
    assert network(torch.randn(4, 6)).shape == (4, 3)


def test_tabm_gives_k_members_outputs_and_reads_coded_categories():
    torch.manual_seed(0)
    network = TabM(4, 3, category_levels=[5], k=4, blocks=1, width=16)
    x = torch.tensor([[0.1, 0.2, 0.3, 4.0], [0.0, 0.0, 0.0, -1.0]])
    assert network(x).shape == (2, 4, 3)


def test_tabm_gives_what_the_tabm_package_gives_for_the_same_weights():
    torch.manual_seed(0)
    network = TabM(4, 2, k=3, blocks=2, width=16).eval()
    x = torch.randn(5, 4)
    torch.testing.assert_close(network(x), network.tabm(x))


def test_the_module_trains_every_member_on_its_own_loss_whatever_the_network():
    torch.manual_seed(0)
    module = build_module(in_features=4, out_features=3, task="multiclass",
                          network=partial(TabM, k=4, blocks=1, width=16, dropout=0.0))  # fmt: skip
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    loss, outputs, _ = module.model_step((x, y))
    members = module.network(x)
    each = [torch.nn.functional.cross_entropy(members[:, i], y) for i in range(4)]
    torch.testing.assert_close(loss, torch.stack(each).mean())
    torch.testing.assert_close(outputs, members.mean(1))
