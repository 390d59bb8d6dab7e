"""Predictions on new rows: the checkpoint carries the fit that turns raw rows into inputs."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from ffnn_lightning.cli import main, run
from ffnn_lightning.data import BundledDataModule, FileDataModule
from ffnn_lightning.errors import InputError
from ffnn_lightning.reading import table_name

PETS = [
    "--data=ffnn_lightning.data.FileDataModule",
    "--data.path=pets.csv",
    "--data.target=species",
    "--data.drop=[id]",
    "--model.network.hidden=[8]",
    "--trainer.max_epochs=10",
    "--model.optimizer=Adam",
    "--model.optimizer.lr=0.01",
    "--seed_everything=0",
]


def pets(rows: int, seed: int = 0) -> pd.DataFrame:
    """Two species told apart by size, with a categorical colour and an ID column."""
    rng = np.random.default_rng(seed)
    species = np.array(["cat", "dog"])[np.arange(rows) % 2]
    return pd.DataFrame(
        {
            "id": [f"pet{i}" for i in range(rows)],
            "size": rng.normal(size=rows) + 3 * (species == "dog") + 50,  # far from 0: scaling
            "colour": rng.choice(["red", "green", "blue"], size=rows),
            "species": species,
        }
    )


def read(path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def pets_run(tmp_path_factory) -> tuple[Path, str, str]:
    """One fit on pets.csv for the module: its folder, best checkpoint and run folder (both
    relative to the folder)."""
    folder = tmp_path_factory.mktemp("pets_run")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        pets(200).to_csv("pets.csv", index=False)
        cli = main(["fit", *PETS, "--trainer.enable_model_summary=false"])
    checkpoint = cli.trainer.checkpoint_callback.best_model_path
    assert not Path(checkpoint).is_absolute()  # each test's copy has its own
    return folder, checkpoint, cli.trainer.log_dir


@pytest.fixture
def trained(pets_run, run_cli, tmp_path):
    """A copy of the pets run in this test's folder (its own predictions files); returns its
    best checkpoint and run folder."""
    folder, checkpoint, run_folder = pets_run
    shutil.copytree(folder, tmp_path, dirs_exist_ok=True)
    return checkpoint, tmp_path / run_folder


def test_new_rows_get_class_names_probabilities_and_ids_in_their_order(run_cli, trained):
    checkpoint, folder = trained
    run_cli("predict", *PETS, "--ckpt_path", checkpoint)  # the held-out rows, with targets
    held_out = {row["id"]: row for row in read(folder / "predictions.csv")}
    # the same rows in another order, without the target, in a file of their own
    new = pets(200).set_index("id").loc[list(held_out)[::-1]].reset_index()
    new.drop(columns="species").to_csv("new.csv", index=False)

    run_cli("predict", "--ckpt_path", checkpoint, "--data.path=new.csv")
    rows = read(folder / "predictions-new.csv")
    assert list(rows[0]) == ["row", "id", "label", "probability_cat", "probability_dog"]
    assert [row["id"] for row in rows] == list(new["id"])
    for row in rows:  # scaled with the training's fit: a refit on these rows would differ
        same = held_out[row["id"]]
        assert row["label"] == same["label"] in ("cat", "dog")
        assert float(row["probability_dog"]) == pytest.approx(float(same["probability_dog"]))


@pytest.mark.parametrize(
    ("file", "name"),
    [
        ("new.csv", "new"),
        ("new.csv.gz", "new"),
        ("new.CSV.BZ2", "new"),
        ("new.parquet", "new"),
        ("new.parquet.zst", "new"),
        ("new.tsv.xz", "new"),
        ("visits.2024.csv.zip", "visits.2024"),
        ("new.gz", "new"),
        ("folder.v2/new", "new"),
    ],
)
def test_predictions_are_named_after_the_file_without_format_or_compression(file, name):
    assert table_name(file) == name


def test_predictions_on_a_compressed_file_are_named_after_its_table(run_cli, trained):
    checkpoint, folder = trained
    pets(6, seed=1).drop(columns="species").to_csv("new.csv.gz", index=False)
    run_cli("predict", "--ckpt_path", checkpoint, "--data.path=new.csv.gz")
    assert len(read(folder / "predictions-new.csv")) == 6


@pytest.mark.parametrize(
    "named",
    [
        "FileDataModule",
        "ffnn_lightning.data.FileDataModule",
        "ffnn_lightning.data.files.FileDataModule",
    ],
)
def test_naming_the_checkpoints_own_data_module_keeps_its_arguments(run_cli, trained, named):
    checkpoint, folder = trained
    new = pets(6, seed=1).drop(columns="species")
    new.to_csv("new.csv", index=False)  # its id column is the fit's drop column
    run_cli("predict", "--ckpt_path", checkpoint, f"--data={named}", "--data.path=new.csv")
    rows = read(folder / "predictions-new.csv")
    assert [row["id"] for row in rows] == list(new["id"])


def test_columns_that_do_not_match_are_listed(trained, tmp_path):
    checkpoint, _ = trained
    pets(5).drop(columns=["species", "colour"]).assign(age=1).to_csv("new.csv", index=False)
    data = FileDataModule(path="new.csv", target="species", drop=["id"], checkpoint=checkpoint)
    with pytest.raises(InputError, match=r"Missing: \['colour'\]. Unexpected: \['age'\]"):
        data.prepare()


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "error: Data file 'new.csv' is empty."), ("id,size,colour\n", "has a header but no")],
)
def test_predicting_on_an_empty_file_is_a_clear_error(trained, content, message, capsys):
    checkpoint, _ = trained
    with open("new.csv", "w") as handle:
        handle.write(content)
    with pytest.raises(SystemExit, match=message):
        run(["predict", "--ckpt_path", checkpoint, "--data.path=new.csv"])


def test_a_table_without_targets_cannot_be_tested(trained):
    checkpoint, _ = trained
    pets(5).drop(columns="species").to_csv("new.csv", index=False)
    with pytest.raises(SystemExit, match="has no targets"):
        run(["test", "--ckpt_path", checkpoint, "--data.path=new.csv"])


def test_regression_metrics_and_predictions_are_in_the_targets_units(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    table = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "price": 1000 + 300 * x[:, 0] - 50 * x[:, 1]})
    table.to_csv("prices.csv", index=False)
    data = ["--data=ffnn_lightning.data.FileDataModule", "--data.path=prices.csv"]
    data += ["--data.target=price", "--data.test_fraction=0.2"]
    adam = ["--model.optimizer=Adam", "--model.optimizer.lr=0.05"]
    cli = run_cli("fit", *data, *adam, "--model.network.hidden=[]", "--trainer.max_epochs=20")
    checkpoint = cli.trainer.checkpoint_callback.best_model_path
    tested = run_cli("test", *data, "--ckpt_path", checkpoint).trainer.callback_metrics

    run_cli("predict", *data, "--ckpt_path", checkpoint)
    rows = read(tmp_path / cli.trainer.log_dir / "predictions.csv")
    error = [float(r["prediction"]) - float(r["target"]) for r in rows]
    assert tested["test/mae"].item() == pytest.approx(np.mean(np.abs(error)), rel=1e-4)
    assert tested["test/r2"].item() > 0.99  # a linear target, learnt in standardized units


def test_a_new_file_with_its_target_is_predicted_whole_in_file_order(run_cli, trained):
    checkpoint, folder = trained
    pets(40, seed=2).to_csv("labelled.csv", index=False)  # the target column is there too
    run_cli("predict", "--ckpt_path", checkpoint, "--data.path=labelled.csv")
    rows = read(folder / "predictions-labelled.csv")
    assert [row["id"] for row in rows] == [f"pet{i}" for i in range(40)]
    assert [row["target"] for row in rows] == list(pets(40, seed=2)["species"])


def test_predicting_again_never_replaces_an_earlier_predictions_file(run_cli, trained):
    checkpoint, folder = trained
    run_cli("predict", *PETS, "--ckpt_path", checkpoint)
    first = (folder / "predictions.csv").read_text()
    run_cli("predict", *PETS, "--ckpt_path", checkpoint)
    assert (folder / "predictions.csv").read_text() == first
    assert (folder / "predictions-2.csv").read_text() == first


def test_every_row_of_a_labelled_new_file_can_be_tested(run_cli, trained):
    checkpoint, _ = trained
    pets(30, seed=1).assign(part="test").to_csv("labelled.csv", index=False)
    args = ["--data.path=labelled.csv", "--data.split_column=part", "--ckpt_path", checkpoint]
    tested = run_cli("test", *args)
    assert tested.datamodule.row_ids("test")["row"] == list(range(30))
    assert tested.trainer.callback_metrics["test/acc"] > 0.8  # dogs are 3 bigger: learnt


class Doubler(BaseEstimator, TransformerMixin):
    """A transformer of the user's own: skops cannot know it is safe to rebuild."""

    def fit(self, x, y=None):
        return self

    def transform(self, x):
        return np.asarray(x) * 2


class DoubledIris(BundledDataModule):
    def preprocessor(self):
        return Doubler()


def test_a_fit_with_types_not_known_to_be_safe_is_refused_by_name(tmp_path):
    checkpoint = tmp_path / "doubled.ckpt"
    torch.save({"DoubledIris": DoubledIris().state_dict()}, checkpoint)
    with pytest.raises(
        InputError, match=r"not known to be safe to load: \['tests.test_predict.Doubler'\]"
    ):
        DoubledIris(checkpoint=str(checkpoint)).prepare()


def test_a_balanced_class_weight_checkpoint_predicts_a_file_without_targets(run_cli, tmp_path):
    pets(200).to_csv(tmp_path / "pets.csv", index=False)
    fitted = run_cli("fit", *PETS, "--model.class_weight=balanced", "--trainer.max_epochs=1")
    pets(20, seed=1).drop(columns="species").to_csv("new.csv", index=False)
    checkpoint = fitted.trainer.checkpoint_callback.best_model_path
    predicted = run_cli("predict", "--ckpt_path", checkpoint, "--data.path=new.csv")
    # the training rows' class counts come with the checkpoint's fit
    assert predicted.model.data_info["class_counts"] == fitted.model.data_info["class_counts"]
    assert len(read(tmp_path / fitted.trainer.log_dir / "predictions-new.csv")) == 20
