"""``python -m ffnn_lightning export``: a trained model that runs without PyTorch or Lightning.

    python -m ffnn_lightning export --ckpt_path lightning_logs/version_0/checkpoints/last.ckpt
    python -m ffnn_lightning export --ckpt_path X --format torchscript --output model.pt

``onnx`` (the default) writes one graph from the raw table columns, one input per column by
name (numbers as float32, categories as strings, each shaped ``[rows, 1]``), to what
``predict`` writes: ``label`` (the class name) and ``probability`` (one column per class), or
``prediction`` (regression, in the target's units). It is the checkpoint's fitted
scikit-learn preprocessing converted by ``skl2onnx``, then the network and its output
transform exported by ``torch.onnx``, joined with ``onnx.compose``. A gap in a number column
is NaN, in a category column the empty string. ``torchscript`` writes the network with its
output transform, for rows already preprocessed. ``predict --ckpt_path model.onnx`` runs the
ONNX file on a CSV with ``onnxruntime`` alone. Needs ``pip install -e ".[export]"``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ffnn_lightning.commands.predict_onnx import UNNAMED, category_text
from ffnn_lightning.data.base import TabularDataModule, fit_in_checkpoint
from ffnn_lightning.data.preprocessing import Fitted, SmoothClip, fit_from_state
from ffnn_lightning.errors import InputError
from ffnn_lightning.model.module import FeedForwardModule, member_axis, model_outputs
from ffnn_lightning.training.checkpoints import module_class

OPSET = {"": 18, "ai.onnx.ml": 3}
NETWORK_INPUT = "network_input"  # the preprocessing's output


class Predictor(nn.Module):
    """The trained network and its output transform: ``(label index, probability)`` for
    classes, ``(prediction,)`` in the target's units for regression. Plain PyTorch (the
    LightningModule's network, task and target scale), so that it traces and exports."""

    def __init__(self, module: FeedForwardModule) -> None:
        super().__init__()
        self.network = module.network.eval()
        self.predict = module.task.predict
        self.register_buffer("target_mean", module.target_mean)
        self.register_buffer("target_std", module.target_std)
        self.register_buffer("temperature", module.temperature)
        regression = module.task.name == "regression"
        self.outputs = ("prediction",) if regression else ("label", "probability")

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        outputs = member_axis(self.network(x))
        outputs = model_outputs(outputs, self.target_mean, self.target_std, self.temperature)
        predicted = self.predict(outputs)
        if "label" in predicted:
            predicted["label"] = predicted["label"].reshape(-1)
        return tuple(predicted[name] for name in self.outputs)


def load(checkpoint: Path, trusted: bool = False) -> tuple[FeedForwardModule, Fitted]:
    """The trained module (on the CPU, in eval mode) and the data's fit of a checkpoint;
    only a ``trusted`` one may name classes outside this package and its libraries."""
    remedy = "Pass --weights_only false to export a checkpoint you trust."
    module = module_class(checkpoint, None if trusted else set(), remedy).load_from_checkpoint(
        checkpoint, map_location="cpu", weights_only=not trusted
    )
    state, _ = fit_in_checkpoint(str(checkpoint), TabularDataModule)
    return module.eval(), fit_from_state(state, str(checkpoint))


def export(
    checkpoint: Path, kind: str = "onnx", output: Path | None = None, trusted: bool = False
) -> Path:
    """Write the checkpoint's model as ``kind`` (``onnx`` or ``torchscript``) to ``output``
    (by default beside the checkpoint, with the format's suffix); returns the path."""
    if kind not in WRITERS:
        raise InputError(f"Unknown export format {kind!r}. Use one of {sorted(WRITERS)}.")
    module, fitted = load(checkpoint, trusted)
    output = output or checkpoint.with_suffix(SUFFIXES[kind])
    WRITERS[kind](module, fitted, output)
    return output


def fills_gaps(preprocessor) -> bool:
    """Whether the fitted preprocessing imputes gaps (``missing: impute``)."""
    from sklearn.impute import SimpleImputer

    pipelines = getattr(preprocessor, "named_transformers_", {}).values()
    steps = [step for pipeline in pipelines for _, step in getattr(pipeline, "steps", [])]
    return any(isinstance(step, SimpleImputer) for step in steps)


def write_torchscript(module: FeedForwardModule, fitted: Fitted, output: Path) -> None:
    """The network and its output transform, traced, for rows already preprocessed."""
    example = torch.zeros(2, module.data_info["in_features"])
    with torch.no_grad(), _quiet_exporter():  # torch.jit's deprecation notices
        traced = torch.jit.trace(Predictor(module), example)
    traced.save(str(output))


def write_onnx(module: FeedForwardModule, fitted: Fitted, output: Path) -> None:
    """One ONNX graph: raw columns -> preprocessing -> network -> ``predict``'s outputs."""
    import onnx
    from onnx.compose import merge_models

    network = network_graph(module)
    preprocessing = preprocessing_graph(fitted, module.data_info["in_features"])
    # merge_models needs the same opset and IR version: skl2onnx takes the lowest opset
    # its operators need, torch.onnx's exporter 18
    preprocessing = onnx.version_converter.convert_version(preprocessing, OPSET[""])
    network.ir_version = preprocessing.ir_version
    model = merge_models(preprocessing, network, io_map=[(NETWORK_INPUT, "x")])
    if fitted.classes is not None:
        model = with_class_names(model, fitted.classes)
    # for predict to name the probability columns as from the checkpoint, to leave out the
    # rows it leaves out (a gap where the fit fills none), and to read a file's columns as
    # the fit did (numbers written as text, dates)
    described = {
        "task": fitted.task,
        "classes": json.dumps(fitted.classes),
        "fills_gaps": json.dumps(fills_gaps(fitted.preprocessor)),
        "readers": json.dumps(fitted.readers or {}),
    }
    onnx.helper.set_model_props(model, described)
    onnx.checker.check_model(model)
    onnx.save(model, output)


def network_graph(module: FeedForwardModule):
    """The network and its output transform as ONNX, any number of rows."""
    import onnx

    predictor = Predictor(module)
    example = (torch.zeros(2, module.data_info["in_features"]),)
    rows = torch.export.Dim("rows")
    with _quiet_exporter():
        program = torch.onnx.export(
            predictor,
            example,
            dynamo=True,
            input_names=["x"],
            output_names=list(predictor.outputs),
            dynamic_shapes=({0: rows},),
            opset_version=OPSET[""],
            verbose=False,
        )
    return onnx.shape_inference.infer_shapes(program.model_proto)


def preprocessing_graph(fitted: Fitted, width: int):
    """The fitted preprocessing as ONNX from one input per raw column (an identity from one
    ``features`` input where the data had no preprocessing), output ``network_input``."""
    from onnx import TensorProto, helper

    inputs = raw_inputs(fitted)
    if fitted.preprocessor is None:
        ((name, _),) = inputs
        graph = helper.make_graph(
            [helper.make_node("Identity", [name], [NETWORK_INPUT])],
            "preprocessing",
            [helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, width])],
            [helper.make_tensor_value_info(NETWORK_INPUT, TensorProto.FLOAT, [None, width])],
        )
        return helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid(d, v) for d, v in OPSET.items()],
            ir_version=10,
        )
    return converted(onnx_ready(fitted), inputs)


def raw_inputs(fitted: Fitted) -> list[tuple[str, object]]:
    """skl2onnx's input types: one ``[rows, 1]`` input per named column (strings for
    categories), or one ``features`` input of every column for a fit made on arrays."""
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    if fitted.columns is None:
        return [(UNNAMED, FloatTensorType([None, fitted.width]))]
    categorical = set(category_columns(fitted))
    return [
        (c, StringTensorType([None, 1]) if c in categorical else FloatTensorType([None, 1]))
        for c in fitted.columns
    ]


CATEGORIES = ("categorical", "codes")  # table_preprocessor's parts for category columns


def named_parts(transformer, columns: list[str]) -> list[tuple[str, object, list[str]]]:
    """A fitted ColumnTransformer's parts with their columns by name (the fit holds their
    positions in ``columns``); none for any other preprocessor."""
    parts = getattr(transformer, "transformers_", [])
    return [(name, step, [columns[int(i)] for i in positions]) for name, step, positions in parts]


def category_columns(fitted: Fitted) -> list[str]:
    """The raw columns the fitted ColumnTransformer encodes as categories."""
    parts = named_parts(fitted.preprocessor, fitted.columns)
    return [column for name, _, columns in parts if name in CATEGORIES for column in columns]


def onnx_ready(fitted: Fitted):
    """A copy of the preprocessor that skl2onnx converts alike: columns selected by name
    (skl2onnx takes only Python ints or names, the fit holds NumPy integers), a category gap
    as the empty string (skl2onnx imputes strings only from a string marker), and the
    levels of a category of numbers (``categorical: [zone]``) as the text ``predict`` feeds."""
    from sklearn.impute import SimpleImputer

    preprocessor = copy.deepcopy(fitted.preprocessor)
    if fitted.columns is None or not hasattr(preprocessor, "transformers_"):
        return preprocessor
    preprocessor.transformers_ = named_parts(preprocessor, fitted.columns)
    for part in CATEGORIES:
        categories = preprocessor.named_transformers_.get(part)
        for _, step in getattr(categories, "steps", []):
            if isinstance(step, SimpleImputer):
                step.missing_values = ""
            if hasattr(step, "statistics_"):  # not fitted where the part has no columns
                step.statistics_ = category_text(list(step.statistics_))
            if hasattr(step, "categories_"):
                step.categories_ = [category_text(list(levels)) for levels in step.categories_]
    return preprocessor


def converted(preprocessor, inputs):
    """skl2onnx's graph of ``preprocessor``, its output renamed ``network_input``; a step that
    has no converter is a one-line error naming it."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.exceptions import MissingConverter, MissingShapeCalculator

    register_smooth_clip()
    try:
        model = convert_sklearn(preprocessor, initial_types=inputs, target_opset=OPSET)
    except (MissingConverter, MissingShapeCalculator, NotImplementedError, RuntimeError) as error:
        raise InputError(
            f"The checkpoint's preprocessing cannot be exported to ONNX: {unconvertible(error)}. "
            "Export --format torchscript (rows preprocessed by you) or train with a scaler "
            "skl2onnx converts (standard, robust, robust_clip)."
        ) from error
    (out,) = model.graph.output
    renamed = out.name
    for node in model.graph.node:
        node.output[:] = [NETWORK_INPUT if o == renamed else o for o in node.output]
    out.name = NETWORK_INPUT
    return model


def unconvertible(error: Exception) -> str:
    """skl2onnx's message cut to the part that names the step."""
    text = str(error).strip().splitlines()[0]
    return text.split(" You may raise")[0].split(" It usually means")[0]


def register_smooth_clip() -> None:
    """Teach skl2onnx :class:`SmoothClip`: ``x / sqrt(1 + (x / limit)^2)`` in ONNX ops."""
    from skl2onnx import update_registered_converter
    from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxDiv, OnnxMul, OnnxSqrt

    def shape(operator) -> None:
        operator.outputs[0].type = operator.inputs[0].type.__class__(operator.inputs[0].type.shape)

    def convert(scope, operator, container) -> None:
        x = operator.inputs[0]
        version = container.target_opset
        limit = np.array([operator.raw_operator.limit], dtype=np.float32)
        scaled = OnnxDiv(x, limit, op_version=version)
        squared = OnnxMul(scaled, scaled, op_version=version)
        root = OnnxSqrt(
            OnnxAdd(squared, np.array([1.0], dtype=np.float32), op_version=version),
            op_version=version,
        )
        result = OnnxDiv(x, root, op_version=version, output_names=operator.outputs[:1])
        result.add_to(scope, container)

    update_registered_converter(SmoothClip, "FfnnSmoothClip", shape, convert)


def with_class_names(model, classes: list[str]):
    """``label`` as the class names (``predict``'s), mapped from the network's class index."""
    from onnx import TensorProto, helper

    graph = model.graph
    index = next(o for o in graph.output if o.name == "label")
    index.name = "label_index"
    for node in graph.node:
        node.output[:] = ["label_index" if o == "label" else o for o in node.output]
    graph.node.append(
        helper.make_node(
            "LabelEncoder",
            ["label_index"],
            ["label"],
            domain="ai.onnx.ml",
            keys_int64s=list(range(len(classes))),
            values_strings=list(classes),
            default_string="",
        )
    )
    # LabelEncoder's keys_int64s came with ai.onnx.ml 2; the ml operators skl2onnx uses for
    # preprocessing (Scaler, OneHotEncoder, Imputer...) are unchanged since 1
    ml = [o for o in model.opset_import if o.domain == "ai.onnx.ml"]
    if ml:
        ml[0].version = max(ml[0].version, 2)
    else:
        model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 2))
    outputs = [o for o in graph.output if o.name != "label_index"]
    del graph.output[:]
    graph.output.extend(
        [helper.make_tensor_value_info("label", TensorProto.STRING, [None]), *outputs]
    )
    return model


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """torch.onnx's exporter without its progress lines and torchvision notices."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


WRITERS = {"onnx": write_onnx, "torchscript": write_torchscript}
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}


def checkpoint_parser(command: str, description: str) -> argparse.ArgumentParser:
    """The parser of a command that reads a checkpoint: ``--ckpt_path`` and
    ``--weights_only``, which ``checked`` then checks."""
    parser = argparse.ArgumentParser(
        prog=f"python -m ffnn_lightning {command}", description=description
    )
    parser.add_argument("--ckpt_path", type=Path, required=True, help="a checkpoint of fit")
    parser.add_argument(
        "--weights_only",
        type=lambda text: text.lower() not in ("false", "0"),
        default=True,
        help="false: trust the checkpoint whole (its pickle, and classes from anywhere)",
    )
    return parser


def checked(args: argparse.Namespace) -> argparse.Namespace:
    """The parsed options, once their checkpoint exists."""
    if not args.ckpt_path.is_file():
        raise InputError(f"checkpoint {str(args.ckpt_path)!r} does not exist.")
    return args


def main(argv: list[str]) -> None:
    parser = checkpoint_parser("export", __doc__.splitlines()[0])
    parser.add_argument("--format", choices=sorted(WRITERS), default="onnx")
    parser.add_argument("--output", type=Path, help="the file (default: beside the checkpoint)")
    args = checked(parser.parse_args(argv))
    written = export(args.ckpt_path, args.format, args.output, not args.weights_only)
    print(f"Written: {written}")
