"""The feed-forward network itself: plain PyTorch, usable without Lightning."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ffnn_lightning.class_paths import class_at
from ffnn_lightning.errors import InputError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "identity": nn.Identity,
    "linear": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "prelu": nn.PReLU,
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
}


EMBEDDINGS = ("periodic",)


def numeric_embedding(kind: str | None, in_features: int, dim: int) -> tuple[nn.Module | None, int]:
    """The input embedding and the width it hands the first layer.

    ``periodic`` is Gorishniy et al. 2022's PLR (``rtdl_num_embeddings.PeriodicEmbeddings``):
    each input becomes ``dim`` numbers, a linear map of learned sines and cosines, so the
    first layer can bend along each input on its own; ``None``: none, the inputs as they are.
    """
    if kind is None or in_features == 0:
        return None, in_features
    if kind not in EMBEDDINGS:
        raise InputError(f"Unknown embedding {kind!r}. Use one of {list(EMBEDDINGS)} or None.")
    if dim < 1:
        raise InputError(f"embedding_dim must be a positive integer, got {dim}.")
    from rtdl_num_embeddings import PeriodicEmbeddings

    periodic = PeriodicEmbeddings(in_features, dim, lite=False)
    return nn.Sequential(periodic, nn.Flatten()), in_features * dim


def resolve_activation(name: str) -> type[nn.Module]:
    """Return the activation class for a short name ("relu") or a class path ("torch.nn.Mish")."""
    key = name.lower()
    if key in ACTIVATIONS:
        return ACTIVATIONS[key]
    cls = class_at(name, nn.Module)
    if cls is not None:
        return cls
    raise InputError(
        f"Unknown activation {name!r}. Use one of {sorted(ACTIVATIONS)} "
        "or the class path of a torch.nn.Module, e.g. 'torch.nn.Mish'."
    )


class FeedForwardNetwork(nn.Module):
    """Linear layers with an activation between them; the last layer outputs raw scores (logits).

    ``FeedForwardNetwork(64, [256, 1024], 1)`` is the chapter's network without its final
    sigmoid: the sigmoid belongs to the loss (``BCEWithLogitsLoss``) and to prediction.
    Layers are built input to output, so under the same seed the weights are initialised
    exactly as the chapter's ``fc1, fc2, out``. ``embedding="periodic"`` puts a numerical
    embedding (:func:`numeric_embedding`) of ``embedding_dim`` numbers per input before them.
    ``category_levels``: the last inputs are that many category codes (one per column, -1
    for a category the data's fit never saw), each looked up in a learned table of
    ``category_dim`` numbers per level (an entity embedding) instead of one-hot columns.
    """

    def __init__(
        self,
        in_features: int,
        hidden: list[int],
        out_features: int,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        embedding: str | None = None,
        embedding_dim: int = 16,
        category_levels: Sequence[int] = (),
        category_dim: int = 8,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if value < 1:
                raise InputError(f"{name} must be a positive integer, got {value}.")
        bad = [width for width in hidden if width < 1]
        if bad:
            raise InputError(f"Every hidden width must be a positive integer, got {list(hidden)}.")
        if not 0.0 <= dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1), got {dropout}.")
        act = resolve_activation(activation)
        numbers = in_features - len(category_levels)
        if numbers < 0 or category_dim < 1 or any(n < 1 for n in category_levels):
            raise InputError(
                f"category_levels {list(category_levels)} must be one positive count per coded "
                f"input (at most in_features, {in_features}), and category_dim a positive "
                f"integer, got {category_dim}."
            )
        self.embedding, width = numeric_embedding(embedding, numbers, embedding_dim)
        # one row per level, and row 0 for an unseen category (code -1)
        self.categories = nn.ModuleList(nn.Embedding(n + 1, category_dim) for n in category_levels)
        width += len(category_levels) * category_dim
        layers: list[nn.Module] = []
        for next_width in hidden:
            layers.append(nn.Linear(width, next_width))
            if batch_norm:
                layers.append(nn.BatchNorm1d(next_width))
            layers.append(act())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = next_width
        layers.append(nn.Linear(width, out_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        codes = len(self.categories)
        numbers = x[:, : x.shape[1] - codes]
        inputs = [numbers if self.embedding is None else self.embedding(numbers)]
        if codes:
            indices = x[:, -codes:].long() + 1
            inputs += [table(indices[:, i]) for i, table in enumerate(self.categories)]
        return self.layers(torch.cat(inputs, dim=1) if codes else inputs[0])


class Ensemble(nn.Module):
    """Several networks side by side on the same inputs, outputs ``[rows, members, outputs]``.

    Each member is initialised on its own (built one after another under the seed) and,
    in :class:`~ffnn_lightning.module.FeedForwardModule`, trained on its own loss; predictions
    average the members' outputs (logits for classes). A deep ensemble in one network.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise InputError(f"An ensemble needs at least 2 members, got {len(members)}.")
        self.members = nn.ModuleList(members)

    def forward(self, x):
        return torch.stack([member(x) for member in self.members], dim=1)


def members_mean(network: nn.Module, outputs: Tensor) -> Tensor:
    """The output to predict from: an :class:`Ensemble`'s ``[rows, members, outputs]``
    averaged over its members, any other network's ``outputs`` as they are (whatever their
    shape: a network of one's own may well return 3-D outputs)."""
    return outputs.mean(dim=1) if isinstance(network, Ensemble) else outputs
