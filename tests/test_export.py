"""export: one ONNX file from raw columns to predict's outputs, which ``predict`` runs without
PyTorch; TorchScript for the network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from ffnn_lightning.cli import main, run
from ffnn_lightning.errors import InputError
from ffnn_lightning.reading import table_name
from tests.conftest import CONFIGS

onnxruntime = pytest.importorskip("onnxruntime", reason="pip install -e '.[export]'")
pytest.importorskip("skl2onnx", reason="pip install -e '.[export]'")
pytest.importorskip("onnxscript", reason="pip install -e '.[export]'")
from ffnn_lightning.commands import predict_onnx  # noqa: E402 (after the skips)
from ffnn_lightning.commands.export import export  # noqa: E402

TARGETS = {"binary": "species", "multiclass": "species", "regression": "price"}


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


def data_args(task: str) -> list[str]:
    """The task's file data module, its --data.path left to the caller. The multiclass
    table's gaps imputed (the others have none: their preprocessing converts without
    imputers). The shops (45, a few of them unseen in training) are codes for an embedding in
    the classes' tables, one-hot in the regression's."""
    gaps = ["--data.missing=impute"] if task == "multiclass" else []
    codes = [] if task == "regression" else ["--data.category_embedding_min_levels=10"]
    codes += (
        [] if task == "regression" else ["--model.network=ffnn_lightning.model.CategoryEmbedding"]
    )
    return [
        "--data=ffnn_lightning.data.FileDataModule",
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
                *data_args(task),
                "--data.path=train.csv",
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
    """The ONNX model's answers for a frame, in process."""
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return predict_onnx.predictions(session, frame)


def checkpoint_predictions(run_cli, checkpoint: Path, new: Path, *data: str, **read):
    """``predict`` from the checkpoint on the file ``new``: the table it writes in the run's
    folder (``read`` goes to ``pd.read_csv``)."""
    run_cli("predict", *data, f"--data.path={new}", f"--ckpt_path={checkpoint}")
    return pd.read_csv(checkpoint.parent.parent / f"predictions-{table_name(new)}.csv", **read)


def command_predictions(model: Path, new: Path) -> pd.DataFrame:
    """``predict`` with the ONNX model on the file ``new``: the table it writes beside the
    model (the model's folder is its run)."""
    run(["predict", f"--ckpt_path={model}", f"--data.path={new}"])
    return pd.read_csv(model.parent / f"predictions-{table_name(new)}.csv")


def assert_same_numbers(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The probability and prediction columns agree to float32's precision."""
    numbers = [c for c in expected.columns if c.startswith(("probability", "prediction"))]
    assert numbers, f"no probability or prediction column in {list(expected.columns)}"
    np.testing.assert_allclose(got[numbers], expected[numbers], rtol=1e-5, atol=1e-5)


def test_onnx_gives_predicts_columns_and_values_on_a_new_file(exported, run_cli, tmp_path):
    task, checkpoint, model = exported
    new = tmp_path / "new.csv"
    table(task, 50, seed=1).drop(columns=TARGETS[task]).to_csv(new, index=False)
    expected = checkpoint_predictions(run_cli, checkpoint, new, *data_args(task))
    got = onnx_predictions(model, pd.read_csv(new))
    assert list(got.columns) == list(expected.columns)
    assert len(got) == 50
    if task != "regression":
        assert (got["label"] == expected["label"]).all()
    assert_same_numbers(got, expected)


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
    expected = checkpoint_predictions(
        run_cli, checkpoint, new, *data_args(task), keep_default_na=False
    )
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
    with pytest.raises(InputError, match=r"no column \['weight'\]"):
        onnx_predictions(model, new)


def test_predict_with_the_onnx_model_writes_the_file_predict_writes(exported, run_cli, tmp_path):
    task, checkpoint, model = exported
    new = tmp_path / "rows.csv.gz"  # named predictions-rows.csv on both routes
    table(task, 30, seed=3).drop(columns=TARGETS[task]).to_csv(new, index=False)
    expected = checkpoint_predictions(run_cli, checkpoint, new, *data_args(task))
    got = command_predictions(model, new)
    assert list(got.columns) == list(expected.columns)
    assert_same_numbers(got, expected)


def test_an_infinite_number_is_a_gap_or_refused_as_from_the_checkpoint(exported, run_cli, tmp_path):
    task, checkpoint, model = exported
    new = tmp_path / "infinite.csv"
    frame = table(task, 10, seed=6).drop(columns=TARGETS[task])
    frame.loc[4, "size"] = np.inf
    frame.to_csv(new, index=False)
    if task != "multiclass":  # trained with missing: drop, which fills no gap
        with pytest.raises(SystemExit, match=r"Infinite values in column 'size' rows \[4\]"):
            command_predictions(model, new)
        return
    expected = checkpoint_predictions(run_cli, checkpoint, new, *data_args(task))
    assert_same_numbers(command_predictions(model, new), expected)


def with_text_numbers_and_dates(rows: int, seed: int) -> pd.DataFrame:
    """A price written as text (``$1,234.50``), a date, a size and two classes of both."""
    rng = np.random.default_rng(seed)
    price = rng.uniform(500, 3000, size=rows)
    size = rng.normal(size=rows)
    when = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, rows), unit="D")
    return pd.DataFrame(
        {
            "price": [f"${p:,.2f}" for p in price],
            "when": when.strftime("%Y-%m-%d"),
            "size": size,
            "species": np.where(price / 1000 + size > 2, "cat", "dog"),
        }
    )


@pytest.mark.slow  # one more fit and export: the slow set (CI runs both)
def test_the_onnx_model_reads_text_numbers_and_dates_as_the_fit_did(run_cli, tmp_path):
    with_text_numbers_and_dates(200, 0).to_csv(tmp_path / "train.csv", index=False)
    new = tmp_path / "new.csv"
    with_text_numbers_and_dates(40, 1).drop(columns="species").to_csv(new, index=False)
    data = ["--data=ffnn_lightning.data.FileDataModule", "--data.target=species"]
    cli = run_cli("fit", *data, "--data.path=train.csv", "--trainer.max_epochs=2",
                  "--trainer.enable_progress_bar=false")  # fmt: skip
    assert cli.datamodule.readers["price"]["as"] == "number"  # the case this test is about
    assert cli.datamodule.readers["when"]["as"] == "date"
    checkpoint = Path(cli.trainer.checkpoint_callback.best_model_path)
    model = export(checkpoint, output=tmp_path / "model.onnx")
    expected = checkpoint_predictions(run_cli, checkpoint, new, *data)
    got = command_predictions(model, new)
    assert (got["label"] == expected["label"]).all()
    assert_same_numbers(got, expected)


@pytest.mark.slow  # one more fit and export: the slow set (CI runs both)
def test_a_category_of_numbers_is_one_level_however_the_file_writes_it(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    zone, size = rng.integers(1, 5, 200), rng.normal(size=200)
    train = pd.DataFrame(
        {"zone": zone, "size": size, "y": np.where(size + (zone == 2) > 0.5, "a", "b")}
    )
    train.to_csv(tmp_path / "train.csv", index=False)
    # a gap makes pandas read the new file's zones as 1.0, 2.0, ...: the same levels
    new = tmp_path / "new.csv"
    pd.DataFrame({"zone": [1, 2, None, 4, 9], "size": [0.1, 0.2, 0.3, 0.4, 0.5]}).to_csv(
        new, index=False
    )
    data = ["--data=ffnn_lightning.data.FileDataModule", "--data.target=y",
            "--data.categorical=[zone]", "--data.missing=impute"]  # fmt: skip
    cli = run_cli("fit", *data, "--data.path=train.csv", "--trainer.max_epochs=2",
                  "--trainer.enable_progress_bar=false")  # fmt: skip
    checkpoint = Path(cli.trainer.checkpoint_callback.best_model_path)
    model = export(checkpoint, output=tmp_path / "zones.onnx")
    expected = checkpoint_predictions(run_cli, checkpoint, new)  # its data from the checkpoint
    got = command_predictions(model, new)
    assert (got["label"] == expected["label"]).all()
    assert_same_numbers(got, expected)


def test_predict_with_the_onnx_model_loads_neither_torch_nor_lightning(exported, tmp_path):
    task, _, model = exported
    new = tmp_path / "few.csv"
    table(task, 3, seed=4).drop(columns=TARGETS[task]).to_csv(new, index=False)
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['ffnn_lightning', 'predict', '--ckpt_path={model}', '--data.path={new}']\n"
        "runpy.run_module('ffnn_lightning', run_name='__main__')\n"
        "print(sorted({'torch', 'lightning'} & set(sys.modules)))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert shown.splitlines() == [
        f"Predictions for 3 rows written to {model.parent / 'predictions-few.csv'}",
        "[]",
    ]


def test_predict_with_the_onnx_model_never_replaces_an_earlier_file(exported, tmp_path):
    _, _, model = exported
    new = tmp_path / "twice.parquet"  # Parquet too, read as FileDataModule reads it
    table(exported[0], 4, seed=5).drop(columns=TARGETS[exported[0]]).to_parquet(new)
    first = predict_onnx.main(["--ckpt_path", str(model), "--data.path", str(new)])
    second = predict_onnx.main(["--ckpt_path", str(model), "--data.path", str(new)])
    assert (first.name, second.name) == ("predictions-twice.csv", "predictions-twice-2.csv")
    pd.testing.assert_frame_equal(pd.read_csv(first), pd.read_csv(second))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trainer.accelerator=cpu"], "--trainer.accelerator=cpu is for a .ckpt checkpoint"),
        (["--predictions.init_args.coverage", "0.9"], "--predictions.init_args.coverage is for"),
        (["--config", "mine.yaml"], "--config is for a .ckpt checkpoint: with an ONNX model"),
        (["--data=ffnn_lightning.data.KeelDataModule"], "--data is FileDataModule .*KeelData"),
    ],
)
def test_an_option_the_onnx_model_cannot_take_is_named(args, message):
    with pytest.raises(SystemExit, match=message):
        run(["predict", "--ckpt_path", "m.onnx", "--data.path", "rows.csv", *args])


def test_predict_with_an_onnx_model_and_no_file_says_which_option(tmp_path):
    with pytest.raises(SystemExit, match=r"No rows to predict: set --data\.path"):
        run(["predict", "--ckpt_path", str(tmp_path / "m.onnx")])


def test_predict_with_an_onnx_model_lists_the_options_it_takes(capsys):
    with pytest.raises(SystemExit) as done:
        run(["predict", "--ckpt_path", "m.onnx", "--help"])
    assert done.value.code == 0
    assert "--data.path" in capsys.readouterr().out


def test_a_missing_or_foreign_onnx_model_is_one_line(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    rows = tmp_path / "rows.csv"
    rows.write_text("a\n1\n")
    (tmp_path / "text.onnx").write_text("not a model")
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Identity", ["a"], ["b"])],
        "identity",
        [value("a", TensorProto.FLOAT, [None, 1])],
        [value("b", TensorProto.FLOAT, [None, 1])],
    )
    onnx.save(helper.make_model(graph), tmp_path / "identity.onnx")
    expected = {
        "absent.onnx": "does not exist",
        "text.onnx": "is not an ONNX model onnxruntime can load",
        "identity.onnx": r"not a model of this template's export: its outputs are \['b'\]",
    }
    for name, message in expected.items():
        with pytest.raises(SystemExit, match=message) as error:
            run(["predict", f"--ckpt_path={tmp_path / name}", f"--data.path={rows}"])
        assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("args", "module"),
    [
        (["predict", "--ckpt_path", "a/last.onnx"], predict_onnx.__name__),
        (["predict", "--data.path=x.csv", "--ckpt_path=MODEL.ONNX"], predict_onnx.__name__),
        (["predict", "--ckpt_path", "a/last.ckpt"], None),
        (["predict", "--ckpt_path"], None),
        (["fit", "--ckpt_path", "a/last.onnx"], None),
        (["export", "--ckpt_path", "a/last.ckpt"], "ffnn_lightning.commands.export"),
    ],
)
def test_the_command_line_sends_predict_with_an_onnx_model_to_onnxruntime(args, module):
    from ffnn_lightning.commands import command_module

    assert command_module(args) == module


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
        *data_args("multiclass"),
        "--data.path=train.csv",
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
def test_a_column_is_found_under_the_input_name_skl2onnx_gave_it(column, input_name):
    assert predict_onnx.onnx_name(column) == input_name
