"""The commands beside LightningCLI's: ``tune``, ``cv``, ``compare``, ``export`` and ``explain``,
each a module with ``main(argv)`` that ``python -m ffnn_lightning <command>`` dispatches to,
and ``predict`` with an exported ONNX model (:mod:`ffnn_lightning.commands.predict_onnx`).

This module imports nothing heavy: ``python -m ffnn_lightning --help`` prints :func:`overview`
without loading PyTorch or Lightning; each command's own ``--help`` lists its options."""

from __future__ import annotations

# command -> (module, what it does)
COMMANDS = {
    "tune": ("ffnn_lightning.commands.tune", "an Optuna study over a search space"),
    "cv": ("ffnn_lightning.commands.cv", "k-fold cross-validation, one fit per fold"),
    "compare": ("ffnn_lightning.commands.compare", "one fit per config, side by side"),
    "export": ("ffnn_lightning.commands.export", "a checkpoint as ONNX or TorchScript"),
    "explain": ("ffnn_lightning.commands.explain", "which input columns matter"),
}
# LightningCLI's subcommands (FFNNCLI.subcommands(), lr_find added)
LIGHTNING_COMMANDS = {
    "fit": "train, validating each epoch; checkpoints and logs in lightning_logs/",
    "validate": "one pass over the validation rows (--ckpt_path)",
    "test": "one pass over the test rows (--ckpt_path)",
    "predict": "predictions.csv for a file's rows (--ckpt_path a .ckpt or an exported .onnx)",
    "lr_find": "Lightning's learning-rate finder, with a plot",
}
# ``predict`` with an exported ONNX model: onnxruntime answers, without PyTorch or Lightning
ONNX_PREDICT = "ffnn_lightning.commands.predict_onnx"


def command_module(args: list[str]) -> str | None:
    """The module of the command ``args`` names, if it is not one of LightningCLI's."""
    if args and args[0] in COMMANDS:
        return COMMANDS[args[0]][0]
    if args[:1] == ["predict"] and _checkpoint(args[1:]).lower().endswith(".onnx"):
        return ONNX_PREDICT
    return None


def _checkpoint(args: list[str]) -> str:
    """The value of ``--ckpt_path`` on a command line, or ``""``."""
    for i, arg in enumerate(args):
        if arg.startswith("--ckpt_path="):
            return arg.partition("=")[2]
        if arg == "--ckpt_path" and i + 1 < len(args):
            return args[i + 1]
    return ""


def overview() -> str:
    """The top-level help: every command in a line."""
    lines = [
        "usage: python -m ffnn_lightning <command> [--config CONFIG] [options]",
        "",
        "A feed-forward network on a table, configured from YAML and flags.",
        "",
        "commands:",
        *(f"  {name:<10}{what}" for name, what in LIGHTNING_COMMANDS.items()),
        *(f"  {name:<10}{what}" for name, (_, what) in COMMANDS.items()),
        "",
        "python -m ffnn_lightning <command> --help lists a command's options; for example",
        "  python -m ffnn_lightning fit --config configs/blobs_adam.yaml",
    ]
    return "\n".join(lines)
