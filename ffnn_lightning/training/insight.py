"""Looking inside the network: the chapter's ideas as TensorBoard curves, histograms and images.

Add ``--trainer.callbacks+=ffnn_lightning.training.insight.NetworkInsight`` (or the overlay
``configs/experiments/insight.yaml``) to any fit. Per hidden layer (each activation module of
the network, input to output) and per epoch, from the validation pass:

- ``insight/dead/layer_i``: the share of a ReLU-family layer's units that were never positive
  on any validation row (they pass no gradient: "dead ReLUs");
- ``insight/saturated/layer_i``: the share of a sigmoid/tanh layer's units whose
  pre-activation was beyond :data:`SATURATION` (where the derivative is under 7% of its peak)
  on more than half of the rows (they learn slowly: saturation, vanishing gradients);
- ``insight/activation_mean/layer_i`` and ``insight/activation_std/layer_i``.

Per linear layer (``layer_1`` the first, the last is the output layer), every
``every_n_steps`` optimizer steps, on a real training step: ``insight/grad_norm/layer_i`` (the
weight gradient's norm) and ``insight/update_ratio/layer_i`` (the update's norm over the
weights' norm, per optimizer step; on the fast route, the mean over the steps of one call).
Histograms of weights, activations and gradients every ``histogram_every_n_epochs`` epochs.
For data of 2 inputs, the decision boundary: an image in TensorBoard every
``boundary_every_n_epochs`` epochs, and ``decision_boundary.png`` and ``.gif`` (how it formed)
in the run folder at the end.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

RELU_FAMILY = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish
)  # fmt: skip
# |pre-activation| beyond which a unit counts as saturated on that row: the derivative there
# is under 7% of its peak (sigmoid'(4) = 0.018 of 0.25, tanh'(2) = 0.07 of 1)
SATURATION: dict[type[nn.Module], float] = {nn.Sigmoid: 4.0, nn.Tanh: 2.0}
HISTOGRAM_VALUES = 100_000  # activations kept per layer for a histogram


def hidden_activations(network: nn.Module) -> list[nn.Module]:
    """The network's activation modules, input to output: ``torch.nn``'s activation classes
    and the Identity of a linear network (any network, not only FeedForwardNetwork's)."""
    return [
        m
        for m in network.modules()
        if type(m).__module__ == "torch.nn.modules.activation" or isinstance(m, nn.Identity)
    ]


def linear_layers(network: nn.Module) -> list[nn.Linear]:
    return [m for m in network.modules() if isinstance(m, nn.Linear)]


class LayerStats:
    """One activation layer's statistics, accumulated over the batches of a pass."""

    def __init__(self, activation: nn.Module) -> None:
        self.kind = type(activation)
        self.rows = 0
        self.total = self.squares = 0.0
        self.highest: Tensor | None = None  # per unit: the largest pre-activation seen
        self.saturated_rows: Tensor | None = None  # per unit: rows beyond the threshold
        self.sample: list[Tensor] = []

    def update(self, pre: Tensor, post: Tensor) -> None:
        pre, post = pre.detach().flatten(1).float(), post.detach().flatten(1).float()
        self.rows += len(pre)
        self.total += post.sum().item()
        self.squares += post.square().sum().item()
        highest = pre.max(0).values
        self.highest = highest if self.highest is None else torch.maximum(self.highest, highest)
        limit = SATURATION.get(self.kind)
        if limit is not None:
            beyond = (pre.abs() > limit).sum(0)
            self.saturated_rows = beyond + (
                0 if self.saturated_rows is None else self.saturated_rows
            )
        if sum(len(s) for s in self.sample) < HISTOGRAM_VALUES:
            self.sample.append(post.flatten()[:HISTOGRAM_VALUES].cpu())

    def result(self) -> dict[str, float]:
        """``dead`` (ReLU family) or ``saturated`` (sigmoid, tanh) shares of the units, and
        the activations' mean and std over every unit and row."""
        values = self.rows * len(self.highest)
        mean = self.total / values
        out = {
            "activation_mean": mean,
            "activation_std": max(self.squares / values - mean**2, 0) ** 0.5,
        }
        if issubclass(self.kind, RELU_FAMILY):
            out["dead"] = (self.highest <= 0).float().mean().item()
        if self.saturated_rows is not None:
            out["saturated"] = (self.saturated_rows > self.rows / 2).float().mean().item()
        return out


class ActivationWatch:
    """Forward hooks on a network's activations, feeding one LayerStats each."""

    def __init__(self, network: nn.Module) -> None:
        activations = hidden_activations(network)
        self.layers = [LayerStats(m) for m in activations]
        self.handles = [
            m.register_forward_hook(lambda _, args, out, s=stats: s.update(args[0], out))
            for m, stats in zip(activations, self.layers, strict=True)
        ]

    def close(self) -> list[dict[str, float]]:
        for handle in self.handles:
            handle.remove()
        return [stats.result() for stats in self.layers if stats.rows]


def activation_stats(network: nn.Module, x: Tensor) -> list[dict[str, float]]:
    """Each hidden layer's statistics (see :meth:`LayerStats.result`) on the rows ``x``."""
    watch = ActivationWatch(network)
    try:
        with torch.no_grad():
            network(x)
    finally:
        results = watch.close()
    return results


def class_grid(predict, bounds: tuple[float, float, float, float], resolution: int):
    """The predicted class and its probability at each point of a ``resolution`` square grid
    over ``(x_min, x_max, y_min, y_max)``; row 0 is the lowest y. ``predict`` maps ``[n, 2]``
    inputs to per-class probabilities ``[n, classes]``."""
    x_min, x_max, y_min, y_max = bounds
    xs, ys = torch.linspace(x_min, x_max, resolution), torch.linspace(y_min, y_max, resolution)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    with torch.no_grad():
        probability = predict(grid)
    confidence, label = probability.max(-1)
    shape = (resolution, resolution)
    return label.reshape(shape).numpy(), confidence.reshape(shape).numpy()


def boundary_image(
    predict, points: np.ndarray, labels: np.ndarray, title: str, resolution: int = 200
) -> np.ndarray:
    """An RGB image (``uint8``, ``[height, width, 3]``): the predicted class over the plane
    of the points (paler where less sure), the points coloured by their true class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    low, high = points.min(0), points.max(0)
    margin = (high - low) * 0.1
    bounds = (low[0] - margin[0], high[0] + margin[0], low[1] - margin[1], high[1] + margin[1])
    label, confidence = class_grid(predict, bounds, resolution)
    colours = plt.get_cmap("tab10")
    fill = colours(label % 10)[..., :3]
    # pale where the network is unsure, the points in the full colour of their true class
    sureness = (confidence[..., None] - confidence.min()) / max(np.ptp(confidence), 1e-9)
    fill = 1 - (1 - fill) * (0.1 + 0.35 * sureness)
    figure, axes = plt.subplots(figsize=(4, 4), dpi=80)
    axes.imshow(fill, origin="lower", extent=bounds, aspect="auto", interpolation="nearest")
    axes.scatter(*points.T, c=colours(labels % 10), s=8, edgecolors="black", linewidths=0.3)
    axes.set(title=title, xlabel="input 1", ylabel="input 2")
    figure.tight_layout()
    figure.canvas.draw()
    image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return image


class NetworkInsight(L.Callback):
    """Dead and saturated units, activation statistics, gradient norms and update ratios per
    layer, histograms, and for 2-D data decision boundaries (see the module's docstring).

    Args:
        every_n_steps: measure gradients and updates on one training step in this many.
        histogram_every_n_epochs: histograms of weights, activations, gradients; 0: none.
        boundary_every_n_epochs: a decision-boundary image (2-D data only); 0: none.
        boundary_resolution: grid points per side of the decision-boundary image.
    """

    handles_step_chunks = True  # on the fast route, its batch hooks run once per call

    def __init__(
        self,
        every_n_steps: int = 50,
        histogram_every_n_epochs: int = 5,
        boundary_every_n_epochs: int = 2,
        boundary_resolution: int = 200,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be a positive integer, got {every_n_steps}.")
        self.every_n_steps = every_n_steps
        self.histogram_every_n_epochs = histogram_every_n_epochs
        self.boundary_every_n_epochs = boundary_every_n_epochs
        self.boundary_resolution = boundary_resolution
        self.history: dict[str, list[tuple[int, float]]] = {}  # tag -> (step, value)
        self.frames: list[np.ndarray] = []
        self._next_step = 0
        self._before: list[Tensor] | None = None
        self._step_before = 0
        self._gradients: list[Tensor] = []
        self._watch: ActivationWatch | None = None
        self._points: list[tuple[Tensor, Tensor]] = []

    # -- gradients and updates, on sampled training steps --------------------------------
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step >= self._next_step:
            self._before = [m.weight.detach().clone() for m in linear_layers(_network(pl_module))]
            self._step_before = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._before is None:
            return
        steps = max(trainer.global_step - self._step_before, 1)
        values = {}
        self._gradients = []
        for i, (layer, before) in enumerate(
            zip(linear_layers(_network(pl_module)), self._before, strict=True), 1
        ):
            weight = layer.weight.detach()
            if layer.weight.grad is not None:
                self._gradients.append(layer.weight.grad.detach().clone())
                values[f"insight/grad_norm/layer_{i}"] = layer.weight.grad.norm().item()
            change = (weight - before).norm().item() / steps
            values[f"insight/update_ratio/layer_{i}"] = change / max(before.norm().item(), 1e-12)
        self._record(trainer, values)
        self._before = None
        self._next_step = trainer.global_step + self.every_n_steps

    # -- activations, on the validation pass ---------------------------------------------
    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._watch = ActivationWatch(_network(pl_module))
            self._points = []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *_) -> None:
        if self._watch is not None and self._no_boundary_because(pl_module) is None:
            self._points.append((batch[0].detach().cpu(), batch[1].detach().cpu()))

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self._watch is None:
            return
        watch, self._watch = self._watch, None
        layers = watch.close()
        values = {
            f"insight/{name}/layer_{i}": value
            for i, stats in enumerate(layers, 1)
            for name, value in stats.items()
        }
        self._record(trainer, values)
        epoch = trainer.current_epoch
        if _due(epoch, self.histogram_every_n_epochs, trainer):
            self._histograms(trainer, pl_module, watch)
        if self._points and _due(epoch, self.boundary_every_n_epochs, trainer):
            activation = _activation_name(pl_module)
            image = self._boundary(pl_module, f"{activation}, epoch {epoch + 1}")
            self.frames.append(image)
            experiment = _tensorboard(trainer)
            if experiment is not None:
                experiment.add_image(
                    "insight/decision_boundary", image, trainer.global_step, dataformats="HWC"
                )

    def on_fit_start(self, trainer, pl_module) -> None:
        reason = self._no_boundary_because(pl_module)
        if self.boundary_every_n_epochs and reason is not None:
            rank_zero_info(f"NetworkInsight: no decision boundary ({reason}).")

    def on_fit_end(self, trainer, pl_module) -> None:
        log_dir = trainer.log_dir  # every process asks: a collective call under DDP
        if not self.frames or not trainer.is_global_zero or not log_dir:
            return
        from PIL import Image

        folder = Path(log_dir)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.frames[-1]).save(folder / "decision_boundary.png")
        frames = [Image.fromarray(f) for f in self.frames]
        frames[0].save(
            folder / "decision_boundary.gif",
            save_all=True,
            append_images=frames[1:],
            duration=400,
            loop=0,
        )
        rank_zero_info(f"Decision boundary: {folder / 'decision_boundary.png'} (and .gif)")

    # -- helpers ------------------------------------------------------------------------
    def _record(self, trainer, values: dict[str, float]) -> None:
        step = trainer.global_step
        for tag, value in values.items():
            self.history.setdefault(tag, []).append((step, value))
        if trainer.logger is not None and values:
            trainer.logger.log_metrics(values, step=step)

    def _histograms(self, trainer, pl_module, watch: ActivationWatch) -> None:
        experiment = _tensorboard(trainer)
        if experiment is None:
            return
        step = trainer.global_step
        for i, layer in enumerate(linear_layers(_network(pl_module)), 1):
            experiment.add_histogram(
                f"insight/weights/layer_{i}", layer.weight.detach().cpu(), step
            )
        for i, gradient in enumerate(self._gradients, 1):
            experiment.add_histogram(f"insight/gradients/layer_{i}", gradient.cpu(), step)
        for i, stats in enumerate(watch.layers, 1):
            if stats.sample:
                experiment.add_histogram(
                    f"insight/activations/layer_{i}", torch.cat(stats.sample), step
                )

    def _no_boundary_because(self, pl_module) -> str | None:
        """Why this run gets no decision boundary, or None if it gets one."""
        info = getattr(pl_module, "data_info", {})
        width = info.get("in_features")
        if not self.boundary_every_n_epochs:
            return "boundary_every_n_epochs is 0"
        if width != 2:
            return f"drawn for 2 inputs; the data has {width}"
        if info.get("task") == "regression":
            return "drawn for classes, not regression"
        return None

    def _boundary(self, pl_module, title: str) -> np.ndarray:
        x = torch.cat([p for p, _ in self._points]).numpy()
        y = torch.cat([t for _, t in self._points]).reshape(len(x), -1)[:, 0].long().numpy()
        device = pl_module.device

        def predict(grid: Tensor) -> Tensor:
            return pl_module.predict_step((grid.to(device),), 0)["probability"].cpu()

        was_training = pl_module.training
        pl_module.eval()
        try:
            return boundary_image(predict, x, y, title, self.boundary_resolution)
        finally:
            pl_module.train(was_training)


def _network(pl_module: nn.Module) -> nn.Module:
    """The module's network where it has one (FeedForwardModule's), so that activations or
    linear layers elsewhere in the module (a loss, a metric) are not counted; else the module."""
    network = getattr(pl_module, "network", None)
    return network if isinstance(network, nn.Module) else pl_module


def _due(epoch: int, every: int, trainer) -> bool:
    """Every ``every`` epochs (0: never), and at the last epoch."""
    return bool(every) and ((epoch + 1) % every == 0 or epoch + 1 == trainer.max_epochs)


def _tensorboard(trainer):
    """The TensorBoard writer, or None with another logger (scalars still go to any)."""
    logger = trainer.logger
    return logger.experiment if isinstance(logger, TensorBoardLogger) else None


def _activation_name(pl_module: nn.Module) -> str:
    """The network's hidden activation, for the boundary's title (``ReLU``), or ``network``."""
    activations = hidden_activations(_network(pl_module))
    return type(activations[0]).__name__ if activations else "network"
