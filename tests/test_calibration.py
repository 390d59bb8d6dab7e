"""Calibration: a temperature fitted on the validation rows (lower log loss, the same labels,
kept in the checkpoint and the ONNX model), and split conformal sets and intervals that reach
their coverage on fresh rows."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from ffnn_lightning.errors import InputError
from ffnn_lightning.training.calibration import (
    conformal_threshold,
    ece,
    fit_temperature,
    nll,
)
from ffnn_lightning.training.callbacks import PredictionsWriter
from tests.conftest import CONFIGS

CALIBRATED = ["--calibration", "ffnn_lightning.training.calibration.Calibration"]
QUIET = ["--trainer.enable_progress_bar=false"]
# a small noisy table and a wide network trained long: an over-confident model
OVERFIT = [
    "--config", str(CONFIGS / "blobs_multiclass.yaml"),
    "--data.init_args.n_samples=1000", "--data.init_args.cluster_std=12.0",
    "--trainer.max_epochs=40", *QUIET,
]  # fmt: skip


@pytest.fixture(scope="module")
def overfit(tmp_path_factory):
    """One calibrated fit of the over-confident model, shared: the tests only read it."""
    from ffnn_lightning.cli import main

    folder = tmp_path_factory.mktemp("overfit")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        cli = main(["fit", *OVERFIT, *CALIBRATED, "--trainer.enable_model_summary=false"])
    return cli, folder / cli.trainer.log_dir


def drawn_labels(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.multinomial(torch.softmax(logits, dim=1), 1, generator=generator).reshape(-1)


def test_the_temperature_undoes_logits_made_four_times_too_sharp():
    generator = torch.Generator().manual_seed(0)
    honest = torch.randn(20000, 5, generator=generator) * 2
    labels = drawn_labels(honest, generator)
    assert fit_temperature(honest * 4, labels) == pytest.approx(4.0, rel=0.05)
    assert fit_temperature(honest / 2, labels) == pytest.approx(0.5, rel=0.05)


def test_a_binary_networks_single_logit_is_calibrated_like_two_classes():
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(20000, 1, generator=generator) * 2
    labels = (torch.rand(20000, 1, generator=generator) < torch.sigmoid(z)).float()
    assert fit_temperature(3 * z, labels) == pytest.approx(3.0, rel=0.05)
    assert float(ece(z, labels)) < 0.02 < float(ece(3 * z, labels))


def test_validation_rows_that_are_all_right_do_not_make_it_certain():
    logits = torch.tensor([[4.0, 0.0], [0.0, 4.0], [3.0, 0.0]])
    temperature = fit_temperature(logits, torch.tensor([0, 1, 0]))
    assert 0.3 < temperature < 3  # the plain optimum is T -> 0


def test_fit_lowers_the_validation_log_loss_of_an_overconfident_model(overfit):
    cli, folder = overfit
    metrics = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    assert metrics["val/temperature"] > 1.2  # over-confident: the logits are softened
    assert metrics["val/nll"] < 0.9 * metrics["val/nll_raw"]
    assert metrics["val/ece"] < metrics["val/ece_raw"]
    assert (folder / "reliability.png").is_file()


def test_the_temperature_keeps_every_label_and_reaches_the_checkpoint(overfit):
    cli, folder = overfit
    module = copy.deepcopy(cli.model).eval()
    x = cli.datamodule.tensors["val"][0]
    with torch.no_grad():
        calibrated = module.predict_step((x,), 0)
        module.temperature.fill_(1.0)
        raw = module.predict_step((x,), 0)
    assert torch.equal(calibrated["label"], raw["label"])
    assert not torch.allclose(calibrated["probability"], raw["probability"])
    stored = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)
    assert float(stored["state_dict"]["temperature"]) == pytest.approx(
        float(cli.trainer.callback_metrics["val/temperature"])
    )
    assert stored["state_dict"]["conformal_scores"].shape == (len(x),)


def test_test_reports_the_log_loss_before_and_after(overfit, run_cli):
    ckpt = str(overfit[1] / "checkpoints" / "last.ckpt")
    tested = run_cli("test", "--ckpt_path", ckpt, *CALIBRATED, *QUIET)
    metrics = {k: float(v) for k, v in tested.trainer.callback_metrics.items()}
    assert metrics["test/nll"] < metrics["test/nll_raw"]
    assert metrics["test/temperature"] > 1.2


def test_a_checkpoint_from_before_calibration_loads_with_temperature_one(run_cli):
    cli = run_cli("fit", *OVERFIT, "--trainer.max_epochs=1")
    path = Path(cli.trainer.log_dir) / "checkpoints" / "last.ckpt"
    state = torch.load(path, weights_only=True)
    for name in ("temperature", "conformal_scores"):
        del state["state_dict"][name]
    torch.save(state, path)
    loaded = type(cli.model).load_from_checkpoint(path, weights_only=True)
    assert float(loaded.temperature) == 1.0 and loaded.conformal_scores.numel() == 0


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_conformal_intervals_cover_fresh_rows_as_often_as_asked(coverage):
    rng = np.random.default_rng(0)
    reached = []
    for _ in range(300):  # many draws of 200 validation rows and 500 fresh ones
        scores = torch.from_numpy(np.abs(rng.standard_t(3, 200)))  # |y - prediction|
        threshold = conformal_threshold(scores, coverage)
        reached.append(np.mean(np.abs(rng.standard_t(3, 500)) <= threshold))
    assert np.mean(reached) == pytest.approx(coverage, abs=0.01)


def test_conformal_sets_cover_fresh_rows_as_often_as_asked():
    generator = torch.Generator().manual_seed(2)
    reached = []
    for _ in range(300):
        logits = torch.randn(700, 4, generator=generator)
        labels = drawn_labels(logits, generator)
        probability = torch.softmax(logits, dim=1)
        scores = 1 - probability[:200].gather(1, labels[:200, None]).reshape(-1)
        threshold = conformal_threshold(scores, 0.9)
        in_set = probability[200:] >= 1 - threshold
        reached.append(float(in_set.gather(1, labels[200:, None]).float().mean()))
    assert np.mean(reached) == pytest.approx(0.9, abs=0.01)


def test_too_few_rows_for_a_coverage_give_every_class():
    assert conformal_threshold(torch.rand(5), 0.9) == float("inf")  # ceil(6 * 0.9) = 6 > 5


@pytest.mark.parametrize("coverage", [0.0, 1.0, 1.5, -0.1])
def test_a_coverage_outside_zero_and_one_is_refused(coverage):
    with pytest.raises(InputError, match=f"coverage must be between 0 and 1.*got {coverage}"):
        conformal_threshold(torch.rand(10), coverage)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_predict_gives_sets_that_hold_the_test_rows_classes(overfit, run_cli):
    ckpt = str(overfit[1] / "checkpoints" / "last.ckpt")
    coverage = ["--predictions.init_args.coverage=0.9"]
    cli = run_cli("predict", "--ckpt_path", ckpt, *coverage, *QUIET)
    (writer,) = [c for c in cli.trainer.callbacks if isinstance(c, PredictionsWriter)]
    rows = read_rows(writer.written)
    covered = np.mean([row["target"] in row["set"].split("|") for row in rows])
    assert 0.84 <= covered <= 0.96  # 200 rows: 0.9 within a few points
    assert any("|" in row["set"] for row in rows)  # unsure rows get more than one class


@pytest.mark.slow  # one more fit or study: the slow set (CI runs both)
def test_predict_gives_intervals_for_a_regression(run_cli):
    regression = ["--config", str(CONFIGS / "regression.yaml"), "--trainer.max_epochs=10"]
    cli = run_cli("fit", *regression, *QUIET, *CALIBRATED)
    ckpt = str(Path(cli.trainer.log_dir) / "checkpoints" / "last.ckpt")
    coverage = ["--predictions.init_args.coverage=0.9"]
    run_cli("predict", "--ckpt_path", ckpt, *coverage, *QUIET)
    rows = read_rows(Path(cli.trainer.log_dir) / "predictions.csv")
    inside = [float(r["lower"]) <= float(r["target"]) <= float(r["upper"]) for r in rows]
    assert 0.85 <= np.mean(inside) <= 0.95  # 400 rows
    assert "val/temperature" not in cli.trainer.callback_metrics  # a regression has no classes


def test_coverage_without_conformal_scores_names_the_callback(run_cli):
    cli = run_cli("fit", *OVERFIT, "--trainer.max_epochs=1")
    ckpt = str(Path(cli.trainer.log_dir) / "checkpoints" / "last.ckpt")
    with pytest.raises(InputError, match=r"--calibration ffnn_lightning\.training\.calibration"):
        run_cli("predict", "--ckpt_path", ckpt, "--predictions.init_args.coverage=0.9", *QUIET)


def test_nll_is_the_log_loss():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    expected = -(np.log(1 / (1 + np.exp(-2.0))) + np.log(1 / (1 + np.exp(-1.0)))) / 2
    assert float(nll(logits, torch.tensor([0, 1]))) == pytest.approx(expected, rel=1e-6)
