"""``tune`` and ``cv`` through the real command line: files, HParams, a best config that
reproduces its trial, a killed study resumed, workers sharing one study, refusals."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ffnn_lightning.cli import run
from ffnn_lightning.commands.runs import final_metrics, fit_run
from ffnn_lightning.training.logs import read_hparams
from tests.conftest import CONFIGS

optuna = pytest.importorskip("optuna")

IRIS = ["--config", str(CONFIGS / "iris.yaml"), "--trainer.max_epochs=2"]
SPACE = {
    "model.network.hidden": {"type": "categorical", "choices": [[8], [16, 16]]},
    "model.optimizer.init_args.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
}


def write_space(folder: Path, space: dict | None = None) -> str:
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(space or SPACE))
    return str(path)


def trials_of(folder: Path) -> list:
    study = optuna.load_study(study_name=folder.name, storage=f"sqlite:///{folder / 'study.db'}")
    return study.get_trials(deepcopy=False)


def tune_command(folder: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ffnn_lightning", "tune", "--search", write_space(folder), *args]


def test_a_study_writes_its_files_and_its_best_config_reproduces_the_best_trial(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    run(["tune", "--search", write_space(tmp_path), "--trials", "3", *IRIS])
    folder = tmp_path / "lightning_logs" / "tune_0"
    for name in ("study.db", "trials.csv", "best.yaml", "history.png", "importances.png"):
        assert (folder / name).is_file(), name
    rows = list(csv.DictReader((folder / "trials.csv").open()))
    assert [r["state"] for r in rows] == ["COMPLETE"] * 3
    hparams, metrics = read_hparams(folder / "trial_0")
    assert "tune/model.optimizer.init_args.lr" in hparams and "final/val/loss" in metrics

    best = min(rows, key=lambda r: float(r["value"]))
    cli = fit_run(["--config", str(folder / "best.yaml")], tmp_path / "again", "best")
    assert final_metrics(cli)["val/loss"] == pytest.approx(float(best["value"]), rel=1e-5)


def test_cross_validation_writes_each_fold_and_the_mean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(["cv", "--folds", "3", *IRIS])
    folder = tmp_path / "lightning_logs" / "cv_0"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["fold_0", "fold_1", "fold_2"]
    losses = [float(r["val/loss"]) for r in csv.DictReader((folder / "cv.csv").open())]
    assert len(set(losses)) == 3
    assert f"| val/loss | {sum(losses) / 3:.4g} |" in (folder / "summary.md").read_text()


def test_tune_with_folds_optimizes_the_mean_over_the_folds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(["tune", "--search", write_space(tmp_path), "--trials", "1", "--cv", "2", *IRIS])
    folder = tmp_path / "lightning_logs" / "tune_0"
    (trial,) = trials_of(folder)
    folds = [read_val_losses(folder / "trial_0" / f"fold_{k}")[-1] for k in (0, 1)]
    assert trial.value == pytest.approx(sum(folds) / 2, rel=1e-6)
    assert "tune/model.optimizer.init_args.lr" in read_hparams(folder / "trial_0" / "fold_0")[0]
    assert "folds: null" in (folder / "best.yaml").read_text()


def test_a_diverging_trial_is_recorded_as_failed_and_the_study_goes_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = {"model.optimizer.init_args.lr": {"type": "float", "low": 1e8, "high": 1e9}}
    regression = ["--config", str(CONFIGS / "diabetes.yaml"), "--trainer.max_epochs=2"]
    sgd = ["--model.optimizer=torch.optim.SGD", "--data.init_args.standardize_target=false"]
    run(["tune", "--search", write_space(tmp_path, space), "--trials", "2", *regression, *sgd])
    states = [t.state.name for t in trials_of(tmp_path / "lightning_logs" / "tune_0")]
    assert states == ["FAIL", "FAIL"]


@pytest.mark.slow  # two Python starts: run by .ci/run with -m slow
def test_a_killed_study_resumes_to_the_requested_trials_with_none_lost(tmp_path):
    slow = ["--config", str(CONFIGS / "iris.yaml"), "--trainer.max_epochs=40"]
    command = tune_command(tmp_path, "--trials", "4", *slow)
    worker = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    folder = tmp_path / "lightning_logs" / "tune_0"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        trials = trials_of(folder) if (folder / "study.yaml").exists() else []
        states = [t.state.name for t in trials]
        if "COMPLETE" in states and states[-1] == "RUNNING" and len(trials[-1].params) == 2:
            break  # killed in the middle of a trial that has its values
        time.sleep(0.05)
    else:
        worker.kill()
        pytest.fail(f"no trial running after a finished one: {worker.stderr.read()[-2000:]}")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    interrupted = trials_of(folder)[-1]

    subprocess.run([*command, "--resume"], cwd=tmp_path, check=True, capture_output=True)
    trials = trials_of(folder)
    done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(done) == 4
    assert trials[interrupted.number].state.name == "FAIL"
    assert any(t.params == interrupted.params for t in done)  # its values were run again


@pytest.mark.slow  # two Python starts: run by .ci/run with -m slow
def test_two_workers_share_one_study_with_distinct_trials(tmp_path):
    slow = ["--config", str(CONFIGS / "iris.yaml"), "--trainer.max_epochs=40"]
    command = tune_command(tmp_path, "--trials", "6", "--workers", "2", *slow)
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True, timeout=300)
    trials = trials_of(tmp_path / "lightning_logs" / "tune_0")
    # the other worker finishes the trial it is in when the sixth ends
    assert len(trials) >= 6 and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    assert len({t.number for t in trials}) == len({t.user_attrs["run"] for t in trials})


@pytest.mark.parametrize(
    ("space", "options", "message"),
    [
        (
            {"model.network.hiden": {"type": "categorical", "choices": [[8]]}},
            [],
            "has no option 'model.network.hiden'. Did you mean model.network.hidden",
        ),
        (
            {"model.network.dropout": {"type": "float", "low": 0.5, "high": 0.1}},
            [],
            "low (0.5) is above",
        ),
        (
            {"model.network.activation": {"type": "categorical", "choices": []}},
            [],
            "non-empty list",
        ),
        (SPACE, ["--trials", "0"], "--trials must be at least 1, got 0"),
        (SPACE, ["--storage", "sqlite:////no/such/folder/x.db"], "cannot be reached"),
        (SPACE, ["--cv", "1"], "--cv must be at least 2 folds"),
    ],
)
def test_bad_studies_are_refused_in_one_line_writing_nothing(
    tmp_path, monkeypatch, capsys, space, options, message
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        run(["tune", "--search", write_space(tmp_path, space), *options, *IRIS])
    assert message in str(exit_.value.code) and "\n" not in str(exit_.value.code)
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--folds", "1"], "--folds must be at least 2"),
        (["--folds", "60"], "folds=60 is more than the smallest class has rows"),
    ],
)
def test_bad_cross_validations_are_refused_in_one_line_writing_nothing(
    tmp_path, monkeypatch, args, message
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        run(["cv", *args, *IRIS])
    assert message in str(exit_.value.code)
    assert not list(tmp_path.glob("lightning_logs/cv_0/*"))


class PrunedAtSecondReport:
    """A stand-in trial: records the reports, and gives up on the second."""

    def __init__(self):
        self.reports = []

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return len(self.reports) == 2


def test_a_trial_reports_about_ten_times_and_stops_when_pruned(tmp_path):
    from ffnn_lightning.commands.tune import PruneTrial

    trial = PrunedAtSecondReport()
    config = ["--config", str(CONFIGS / "iris.yaml"), "--trainer.max_epochs=20"]
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 4"):
        fit_run(config, tmp_path / "runs", "pruned", [PruneTrial(trial, "val/loss")])
    assert [step for step, _ in trial.reports] == [1, 3]  # every second epoch of 20
    logged = read_val_losses(tmp_path / "runs" / "pruned")
    assert [value for _, value in trial.reports] == pytest.approx([logged[1], logged[3]])


def read_val_losses(run_folder: Path) -> list[float]:
    from ffnn_lightning.training.logs import read_scalars

    return [value for _, value in read_scalars(run_folder)["val/loss"]]


@pytest.mark.parametrize("space", sorted((CONFIGS / "search").glob("*.yaml")), ids=lambda p: p.name)
def test_the_shipped_search_spaces_name_real_options(space):
    from ffnn_lightning.commands.search_space import SearchSpace
    from ffnn_lightning.commands.tune import check_options

    # each space with the configs its header names (strong.yaml searches over the preset)
    bases = {"optimizers": ["blobs_adam.yaml"], "strong": ["wine.yaml", "presets/strong.yaml"]}
    configs = [
        arg
        for base in bases.get(space.stem, ["wine.yaml"])
        for arg in ("--config", str(CONFIGS / base))
    ]
    check_options(SearchSpace.from_file(space), configs)
