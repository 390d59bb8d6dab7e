"""The networks: plain ``nn.Module`` classes, usable without Lightning.

Each takes the input and output widths first (``in_features``, ``out_features``: the module
passes them, from the data) and its own arguments after, which YAML sets under
``model.network.init_args``. A network returns ``[rows, outputs]``, or ``[rows, members,
outputs]`` when it is several networks in one (:class:`TabM`, or the part
:class:`~ffnn_lightning.model.parts.Ensemble`): each member is trained on its own loss and
predictions average them. Raw scores (logits): the sigmoid or softmax belongs to the loss
and to prediction.
"""

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


def resolve_activation(name: str) -> type[nn.Module]:
    """The activation class for a short name ("relu") or a class path ("torch.nn.Mish")."""
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


def check_widths(**widths: int) -> None:
    """Refuse a width below 1, naming it."""
    for name, value in widths.items():
        if value < 1:
            raise InputError(f"{name} must be a positive integer, got {value}.")


def check_dropout(**rates: float) -> None:
    for name, value in rates.items():
        if not 0.0 <= value < 1.0:
            raise InputError(f"{name} must be in [0, 1), got {value}.")


class FeedForwardNetwork(nn.Module):
    """Linear layers with an activation between them: the chapter's network, and the default.

    ``FeedForwardNetwork(64, 1, hidden=[256, 1024])`` is the chapter's 64 -> 256 -> 1024 -> 1
    without its final sigmoid. Layers are built input to output, so under the same seed the
    weights are initialised exactly as the chapter's ``fc1, fc2, out``.

    Args:
        in_features: input width (from the data).
        out_features: output width (from the data: 1 for binary, one per class or target).
        hidden: widths of the hidden layers, input to output; ``[]`` for none (a linear or
            logistic model).
        activation: hidden activation by name (``relu``, ``tanh``, ...) or class path.
        dropout: dropout probability after each hidden activation (0: none).
        batch_norm: batch normalisation before each hidden activation.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (256, 1024),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        check_widths(in_features=in_features, out_features=out_features)
        if any(width < 1 for width in hidden):
            raise InputError(f"Every hidden width must be a positive integer, got {list(hidden)}.")
        check_dropout(dropout=dropout)
        act = resolve_activation(activation)
        layers: list[nn.Module] = []
        width = in_features
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

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class ResidualBlock(nn.Module):
    """``x + Dropout(Linear(Dropout(ReLU(Linear(BatchNorm(x))))))``: one block of the ResNet."""

    def __init__(self, width: int, hidden: int, dropout: float, residual_dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm1d(width),
            nn.Linear(width, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, width),
            nn.Dropout(residual_dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResidualMLP(nn.Module):
    """The "ResNet" baseline of Gorishniy et al. 2021 ("Revisiting Deep Learning Models for
    Tabular Data"): a linear map to ``width``, ``blocks`` residual blocks, then
    BatchNorm -> ReLU -> Linear to the outputs.

    Args:
        in_features: input width (from the data).
        out_features: output width (from the data).
        width: the width of the residual stream (the paper's ``d``).
        blocks: how many residual blocks.
        hidden_factor: each block's hidden width as a multiple of ``width``.
        dropout: dropout inside each block (after its ReLU).
        residual_dropout: dropout on each block's output, before it joins the stream.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        width: int = 128,
        blocks: int = 2,
        hidden_factor: float = 2.0,
        dropout: float = 0.1,
        residual_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = int(width * hidden_factor)
        check_widths(in_features=in_features, out_features=out_features, width=width, hidden=hidden)
        check_dropout(dropout=dropout, residual_dropout=residual_dropout)
        self.first = nn.Linear(in_features, width)
        self.blocks = nn.Sequential(
            *(ResidualBlock(width, hidden, dropout, residual_dropout) for _ in range(blocks))
        )
        self.head = nn.Sequential(nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, out_features))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.first(x)))


class TabM(nn.Module):
    """TabM (Gorishniy et al., ICLR 2025) from the ``tabm`` package: ``k`` MLPs that share
    most of their weights (BatchEnsemble), trained at once, outputs ``[rows, k, outputs]``.

    Category columns the data gives as codes (``data.category_embedding_min_levels``) go in
    one-hot, as TabM's own encoding of them would, one more level for a level the data's fit
    never saw (done here in float: the ONNX exporter cannot join tabm's integer one-hots).
    The package's own ``TabM.forward`` is equal (a test checks it).

    Args:
        in_features: input width (from the data).
        out_features: output width (from the data).
        category_levels: levels of each coded category, the last inputs (from the data).
        k: how many members.
        blocks: MLP blocks per member.
        width: each block's width.
        dropout: dropout after each block.
        arch_type: ``tabm`` (BatchEnsemble), ``tabm-mini`` or ``tabm-packed`` (see tabm's README).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        category_levels: Sequence[int] | None = None,
        k: int = 32,
        blocks: int = 3,
        width: int = 512,
        dropout: float = 0.1,
        arch_type: str = "tabm",
    ) -> None:
        super().__init__()
        try:
            import tabm
        except ImportError as error:
            raise InputError("TabM needs the tabm package: pip install -e '.[tabm]'.") from error

        self.levels = [n + 1 for n in category_levels or ()]  # code -1: an unseen level
        self.codes = len(self.levels)
        check_widths(in_features=in_features, out_features=out_features, k=k, width=width)
        self.tabm = tabm.TabM.make(
            n_num_features=in_features - self.codes + sum(self.levels),
            d_out=out_features,
            k=k,
            n_blocks=blocks,
            d_block=width,
            dropout=dropout,
            arch_type=arch_type,
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.codes:
            split = x.shape[1] - self.codes
            codes = x[:, split:] + 1
            one_hot = [
                (codes[:, i : i + 1] == torch.arange(n, device=x.device)).to(x.dtype)
                for i, n in enumerate(self.levels)
            ]
            x = torch.cat([x[:, :split], *one_hot], dim=1)
        # tabm.TabM.forward on one 2-D input, without its column_stack of the inputs (which
        # the ONNX exporter turns into a loop fixed to the example's row count)
        return self.tabm.output(self.tabm.backbone(self.tabm.ensemble_view(x)))
