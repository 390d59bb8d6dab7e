"""Pieces that wrap a network: numerical (periodic) embeddings, category embeddings and
ensembles, and the one way a network is built from what the data knows.

A part is itself a network (it takes ``in_features`` and ``out_features``) that takes another
network as ``network``, so parts nest in YAML::

    model:
      network:
        class_path: ffnn_lightning.model.Ensemble
        init_args:
          members: 4
          network:
            class_path: ffnn_lightning.model.PeriodicEmbedding
            init_args:
              network:
                class_path: ffnn_lightning.model.FeedForwardNetwork
                init_args: {hidden: [256, 256]}
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

from ffnn_lightning.errors import InputError
from ffnn_lightning.model.networks import FeedForwardNetwork, check_widths


class NetworkFactory(Protocol):
    """What ``model.network`` holds: a network class (or any callable) that the module calls
    with what the data knows. Its arguments named here come from the data and are not set in
    YAML; a network takes those it needs (``in_features`` and ``out_features`` at least)."""

    def __call__(
        self,
        in_features: int,
        out_features: int,
        category_levels: list[int] | None = None,
        train_rows: int | None = None,
        number_features: int | None = None,
    ) -> nn.Module: ...


def build_network(
    factory: NetworkFactory,
    in_features: int,
    out_features: int,
    category_levels: Sequence[int] | None = None,
    train_rows: int | None = None,
    number_features: int | None = None,
) -> nn.Module:
    """``factory`` called with the data's facts that it takes (all, if it takes ``**kwargs``).

    Category codes among the inputs (``category_levels``) must go to a network that takes
    them: a network that does not would read the codes as numbers, so it is refused."""
    facts = {
        "in_features": in_features,
        "out_features": out_features,
        "category_levels": list(category_levels) if category_levels else None,
        "train_rows": train_rows,
        "number_features": number_features,
    }
    taken = accepted_arguments(factory)
    if facts["category_levels"] and taken is not None and "category_levels" not in taken:
        raise InputError(
            f"The data gives {len(facts['category_levels'])} category column(s) as codes "
            f"(data.init_args.category_embedding_min_levels), and the network "
            f"{network_name(factory)} does not take category_levels. Wrap it in "
            "ffnn_lightning.model.CategoryEmbedding (model.network.init_args.network: your "
            "network), or set category_embedding_min_levels to null (one-hot columns)."
        )
    return factory(**{k: v for k, v in facts.items() if taken is None or k in taken})


def network_class(factory: Any) -> Any:
    """The class (or function) behind ``factory``: jsonargparse hands the module a
    ``functools.partial`` holding the class named in the config."""
    while isinstance(factory, functools.partial):
        classes = [a for a in factory.args if isinstance(a, type)]
        factory = classes[-1] if classes else factory.func
    return factory


def network_name(factory: Any) -> str:
    target = network_class(factory)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', target)}"


def accepted_arguments(factory: Any) -> set[str] | None:
    """The argument names ``factory`` takes, or None where it takes any (``**kwargs``)."""
    try:
        parameters = inspect.signature(network_class(factory)).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters}


class Ensemble(nn.Module):
    """``members`` networks side by side on the same inputs, outputs ``[rows, members,
    outputs]``: each built on its own (one after another under the seed), trained on its own
    loss; predictions average their outputs (logits for classes). A deep ensemble.

    Args:
        network: the members' network, with its arguments.
        members: how many networks (at least 2).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        network: NetworkFactory = FeedForwardNetwork,
        members: int = 4,
        category_levels: list[int] | None = None,
        train_rows: int | None = None,
        number_features: int | None = None,
    ) -> None:
        super().__init__()
        if members < 2:
            raise InputError(f"An ensemble needs at least 2 members, got {members}.")
        self.members = nn.ModuleList(
            build_network(
                network, in_features, out_features, category_levels, train_rows, number_features
            )
            for _ in range(members)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([member(x) for member in self.members], dim=1)


class PeriodicEmbedding(nn.Module):
    """Each number input embedded in ``dim`` learned periodic features before the network:
    Gorishniy et al. 2022's PLR (``rtdl_num_embeddings.PeriodicEmbeddings``), a linear map of
    learned sines and cosines, so the first layer can bend along each input on its own.
    One-hot and coded category inputs (the last ones) pass through as they are: a 0/1 input
    has two values, which a linear layer already maps as it likes.

    Args:
        network: the network that reads the embedded inputs.
        dim: numbers per input.
        frequencies: learned frequencies per input, each giving a sine and a cosine for the
            linear map to ``dim`` (rtdl's default, 48); the embedding's cost grows with them.
        min_rows: embed only when the training split has at least this many rows; below it
            the inputs go in as they are (on small tables the embedding's weights overfit).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        network: NetworkFactory = FeedForwardNetwork,
        dim: int = 16,
        frequencies: int = 48,
        min_rows: int = 0,
        category_levels: list[int] | None = None,
        train_rows: int | None = None,
        number_features: int | None = None,
    ) -> None:
        super().__init__()
        check_widths(dim=dim, frequencies=frequencies)
        codes = len(category_levels or ())
        self.numbers = numbers = in_features - codes if number_features is None else number_features
        self.embedding = None
        if train_rows is not None and train_rows < min_rows:
            rank_zero_info(
                f"No periodic embedding: {train_rows} training rows, under min_rows "
                f"({min_rows}); the inputs go to the network as they are."
            )
        elif numbers > 0:
            from rtdl_num_embeddings import PeriodicEmbeddings

            periodic = PeriodicEmbeddings(numbers, dim, n_frequencies=frequencies, lite=False)
            self.embedding = nn.Sequential(periodic, nn.Flatten())
            in_features += numbers * (dim - 1)
            number_features = numbers * dim
        self.network = build_network(
            network, in_features, out_features, category_levels, train_rows, number_features
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.embedding is None:
            return self.network(x)
        if self.numbers == x.shape[1]:
            return self.network(self.embedding(x))
        numbers = self.embedding(x[:, : self.numbers])
        return self.network(torch.cat([numbers, x[:, self.numbers :]], dim=1))


class CategoryEmbedding(nn.Module):
    """The coded category inputs (the last ones, one per column, -1 for a level the data's fit
    never saw) each looked up in a learned table of ``dim`` numbers per level, an entity
    embedding, before the network; the data codes a column instead of one-hot encoding it
    where ``data.init_args.category_embedding_min_levels`` says so.

    Args:
        network: the network that reads the numbers and the embedded categories.
        dim: numbers per level.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        network: NetworkFactory = FeedForwardNetwork,
        dim: int = 8,
        category_levels: list[int] | None = None,
        train_rows: int | None = None,
        number_features: int | None = None,
    ) -> None:
        super().__init__()
        levels = list(category_levels or ())
        numbers = in_features - len(levels)
        if numbers < 0 or dim < 1 or any(n < 1 for n in levels):
            raise InputError(
                f"category_levels {levels} must be one positive count per coded input (at "
                f"most in_features, {in_features}), and dim a positive integer, got {dim}."
            )
        # one row per level, and row 0 for an unseen category (code -1)
        self.tables = nn.ModuleList(nn.Embedding(n + 1, dim) for n in levels)
        width = numbers + len(levels) * dim
        self.network = build_network(
            network, width, out_features, None, train_rows, number_features
        )

    def forward(self, x: Tensor) -> Tensor:
        codes = len(self.tables)
        if not codes:
            return self.network(x)
        indices = x[:, -codes:].long() + 1
        embedded = [table(indices[:, i]) for i, table in enumerate(self.tables)]
        return self.network(torch.cat([x[:, : x.shape[1] - codes], *embedded], dim=1))
