"""export: one ONNX file from raw columns to predict's outputs; TorchScript for the network."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from ffnn_lightning.cli import main, run
from ffnn_lightning.errors import InputError
from tests.conftest import CONFIGS

onnxruntime = pytest.importorskip("onnxruntime", reason="pip install -e '.[export]'")
pytest.importorskip("skl2onnx", reason="pip install -e '.[export]'")
pytest.importorskip("onnxscript", reason="pip install -e '.[export]'")
from ffnn_lightning.commands.export import export  # noqa: E402 (after the skips)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "predict_onnx.py"
TARGETS = {"binary": "species", "multiclass": "species", "regression": "price"}


def load_example():
    """examples/predict_onnx.py as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location("predict_onnx", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(task: str, rows: int, seed: int = 0) -> pd.DataFrame:
    """Numbers far from 0 (so scaling matters), a colour and a shop category (of many levels)
    and the task's target;
    the multiclass table has string labels and gaps in a number and in the category."""
    rng = np.random.default_rng(seed)
    size = rng.normal(size=rows) + 50
    weight = rng.normal(size=rows) * 10
    colour = rng.choice(["red", "green", "blue"], size=rows).astype(object)
    shops = 40 if seed == 0 else 45  # new rows (another seed) from 5 shops never seen
    shop = rng.choice([f"shop{i}" for i in range(shops)], size=rows).astype(object)
    frame = pd.DataFrame({"size": size, "weight": weight, "colour": colour, "shop": shop})
    if task == "regression":
        frame["price"] = 1000 + 300 * (size - 50) - 20 * weight + 40 * (colour == "red")
        return frame
    names = ["cat", "dog"] if task == "binary" else ["cat", "dog", "fox"]
    frame["species"] = np.array(names)[(size > 50).astype(int) + (weight > 5) * (task != "binary")]
    if task == "multiclass":
        frame.loc[frame.index % 7 == 3, "size"] = np.nan
        frame.loc[frame.index % 11 == 5, ["colour", "shop"]] = np.nan
    return frame


def data_args(path: str, task: str) -> list[str]:
    """The file's data module; the multiclass table's gaps imputed (the others have none:
    their preprocessing converts without imputers). The shops (45, a few of them unseen in
    training) are codes for an embedding in the classes' tables, one-hot in the regression's."""
    gaps = ["--data.missing=impute"] if task == "multiclass" else []
    codes = [] if task == "regression" else ["--data.category_embedding_min_levels=10"]
    codes += (
        [] if task == "regression" else ["--model.network=ffnn_lightning.model.CategoryEmbedding"]
    )
    return [
        "--data=ffnn_lightning.data.FileDataModule",
        f"--data.path={path}",
        f"--data.target={TARGETS[task]}",
        *gaps,
        *codes,
    ]


# the multiclass export in the slow set: binary and the regression ensemble cover the paths
@pytest.fixture(
    scope="module",
    params=["binary", pytest.param("multiclass", marks=pytest.mark.slow), "regression"],
)
def exported(request, tmp_path_factory):
    """A run fitted on the task's table; its best checkpoint and the ONNX file exported
    through the command line (once per task: the tests only read them). The regression is
    an ensemble of two networks, so that the members' mean is exported too."""
    task = request.param
    wrapper = "Ensemble" if task == "regression" else "CategoryEmbedding"  # for the codes
    network = [
        f"--model.network=ffnn_lightning.model.{wrapper}",
        "--model.network.network.hidden=[16]",
    ]
    network += ["--model.network.members=2"] if task == "regression" else []
    folder = tmp_path_factory.mktemp(task)
    table(task, 240).to_csv(folder / "train.csv", index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        cli = main(
            [
                "fit",
                *data_args("train.csv", task),
                *network,
                "--trainer.max_epochs=3",
                "--seed_everything=0",
                "--trainer.enable_progress_bar=false",
                "--trainer.enable_model_summary=false",
                "--calibration=ffnn_lightning.training.calibration.Calibration",
            ]
        )
    checkpoint = Path(folder, cli.trainer.checkpoint_callback.best_model_path)
    model = folder / f"{task}.onnx"
    run(["export", "--ckpt_path", str(checkpoint), "--output", str(model)])
    return task, checkpoint, model


def onnx_predictions(model: Path, frame: pd.DataFrame) -> pd.DataFrame:
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return load_example().predictions(session, frame)


def test_onnx_gives_predicts_columns_and_values_on_a_new_file(exported, run_cli, tmp_path):
    task, checkpoint, model = exported
    new = tmp_path / "new.csv"
    table(task, 50, seed=1).drop(columns=TARGETS[task]).to_csv(new, index=False)
    run_cli("predict", *data_args(str(new), task), "--ckpt_path", str(checkpoint))
    expected = pd.read_csv(checkpoint.parent.parent / "predictions-new.csv")
    got = onnx_predictions(model, pd.read_csv(new))
    assert list(got.columns) == list(expected.columns)
    assert len(got) == 50
    if task != "regression":
        assert (got["label"] == expected["label"]).all()
    numbers = [c for c in expected.columns if c.startswith(("probability", "prediction"))]
    np.testing.assert_allclose(got[numbers], expected[numbers], rtol=1e-5, atol=1e-5)


def test_the_onnx_model_divides_by_the_checkpoints_temperature(exported):
    task, checkpoint, _ = exported  # the test above: its probabilities are predict's
    temperature = float(torch.load(checkpoint, weights_only=True)["state_dict"]["temperature"])
    assert (temperature == 1.0) == (task == "regression")


def test_onnx_and_predict_answer_every_row_the_gaps_with_a_reason(exported, run_cli, tmp_path):
    task, checkpoint, model = exported
    new = tmp_path / "gaps.csv"
    frame = table(task, 40, seed=1).drop(columns=TARGETS[task])
    frame.loc[[2, 9], "size"] = np.nan
    frame.loc[[9, 30], "colour"] = np.nan
    frame.to_csv(new, index=False)
    run_cli("predict", *data_args(str(new), task), "--ckpt_path", str(checkpoint))
    expected = pd.read_csv(checkpoint.parent.parent / "predictions-gaps.csv", keep_default_na=False)
    got = onnx_predictions(model, pd.read_csv(new))
    assert len(got) == len(expected) == 40
    if task == "multiclass":  # its gaps are imputed: every row answered
        assert "reason" not in got and "reason" not in expected
        return
    assert got["reason"].tolist() == expected["reason"].tolist()
    assert expected["reason"][9] == "no value in size, colour"
    answered = expected["reason"] == ""
    assert answered.sum() == 37 and (got.loc[~answered, got.columns[-2]] == "").all()


def test_onnx_takes_the_columns_by_name_in_any_order(exported):
    task, _, model = exported
    new = table(task, 30, seed=2).drop(columns=TARGETS[task])
    shuffled = new[list(reversed(new.columns))]
    pd.testing.assert_frame_equal(onnx_predictions(model, shuffled), onnx_predictions(model, new))


def test_a_missing_column_is_named(exported):
    task, _, model = exported
    new = table(task, 5).drop(columns=[TARGETS[task], "weight"])
    with pytest.raises(SystemExit, match=r"no column \['weight'\]"):
        onnx_predictions(model, new)


@pytest.mark.slow  # one more fit or study: the slow set (CI runs both)
def test_a_model_fitted_on_arrays_takes_the_files_columns_in_order(run_cli, tmp_path):
    cli = run_cli(
        "fit", "--config", f"{CONFIGS}/blobs_adam.yaml", "--data.n_samples=300",
        "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
    )  # fmt: skip
    model = export(
        Path(cli.trainer.checkpoint_callback.best_model_path), output=tmp_path / "b.onnx"
    )
    x = cli.datamodule.tensors["val"][0]  # the chapter scales nothing: these are the raw rows
    got = onnx_predictions(model, pd.DataFrame(x.numpy(), columns=[f"f{i}" for i in range(64)]))
    with torch.no_grad():
        expected = cli.model.eval().predict_step((x,), 0)
    np.testing.assert_allclose(
        got[["probability_0", "probability_1"]], expected["probability"], atol=1e-6
    )


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")  # the issue asks for it
def test_torchscript_reloads_and_gives_the_networks_outputs(run_cli, tmp_path):
    table("multiclass", 120).to_csv("train.csv", index=False)
    cli = run_cli(
        "fit",
        *data_args("train.csv", "multiclass"),
        "--trainer.max_epochs=1",
        "--seed_everything=0",
    )
    checkpoint = cli.trainer.checkpoint_callback.best_model_path
    run(["export", "--ckpt_path", checkpoint, "--format", "torchscript", "--output", "net.pt"])
    scripted = torch.jit.load("net.pt")
    x = cli.datamodule.tensors["val"][0]
    cli.model.eval()
    with torch.no_grad():
        expected = cli.model.task.predict(cli.model.model_outputs(cli.model(x)))
        label, probability = scripted(x)
    torch.testing.assert_close(probability, expected["probability"])
    assert torch.equal(label, expected["label"])


class Doubling(TransformerMixin, BaseEstimator):
    """A user's own preprocessing step, which skl2onnx has no converter for."""

    def fit(self, x, y=None):
        return self

    def transform(self, x):
        return np.asarray(x) * 2


def test_a_preprocessing_step_without_a_converter_is_named_in_one_line():
    from skl2onnx.common.data_types import FloatTensorType

    from ffnn_lightning.commands.export import converted

    step = Doubling().fit(np.zeros((3, 2)))
    with pytest.raises(InputError, match="Doubling") as error:
        converted(step, [("features", FloatTensorType([None, 2]))])
    assert "\n" not in str(error.value)


def test_a_missing_checkpoint_is_one_line(capsys):
    with pytest.raises(SystemExit, match="does not exist"):
        run(["export", "--ckpt_path", "nowhere.ckpt"])


@pytest.mark.parametrize(
    ("column", "input_name"),
    [("mean radius", "mean_radius"), ("size (cm)", "size__cm_"), ("2nd", "_2nd"), ("ok_1", "ok_1")],
)
def test_the_example_finds_a_column_under_the_input_name_skl2onnx_gave_it(column, input_name):
    assert load_example().onnx_name(column) == input_name
