"""Trackers through the CLI: MLflow against a real store (SQLite in a temporary folder, and a
server), W&B offline. What a TensorBoard run holds, the run folder whatever the loggers, one
line without the package."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from ffnn_lightning.cli import run
from ffnn_lightning.training.logs import read_scalars
from tests.conftest import CONFIGS

mlflow = pytest.importorskip("mlflow")

ADAM = str(CONFIGS / "blobs_adam.yaml")
OVERLAY = str(CONFIGS / "loggers" / "mlflow.yaml")
SHORT = ["--trainer.max_epochs=2", "--data.init_args.n_samples=300"]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def at(tmp_path: Path) -> str:
    """The overlay's store, by absolute path: MLflow keeps one store per URI in a process,
    and the tests run in one process from different folders."""
    return f"--trainer.logger.tracking_uri=sqlite:///{tmp_path / 'mlruns.db'}"


def only_run(store: str):
    client = mlflow.MlflowClient(store)
    experiments = [e.experiment_id for e in client.search_experiments()]
    (found,) = client.search_runs(experiments)
    return client, found


def test_the_overlay_gives_mlflow_what_tensorboard_has(run_cli, tmp_path):
    cli = run_cli("fit", "--config", ADAM, "--config", OVERLAY, *SHORT, *QUIET, at(tmp_path))
    client, logged = only_run(f"sqlite:///{tmp_path / 'mlruns.db'}")
    params = logged.data.params
    assert params["config/model/init_args/loss"] == "bce"
    assert params["config/data/init_args/n_samples"] == "300"
    assert params["data/n_samples"] == "300" and params["loss"] == "bce"
    assert params["network/init_args/hidden"] == "[256, 1024]"
    tensorboard = read_scalars(Path(cli.trainer.log_dir))
    for tag in ("train/loss", "val/loss", "val/acc"):
        steps = [m.step for m in client.get_metric_history(logged.info.run_id, tag)]
        assert steps == [step for step, _ in tensorboard[tag]], tag
    assert "config.yaml" in [a.path for a in client.list_artifacts(logged.info.run_id)]
    stored = [a.path for a in client.list_artifacts(logged.info.run_id, "checkpoints")]
    assert stored == ["checkpoints/best-epoch=1.ckpt", "checkpoints/last.ckpt"]
    assert logged.data.tags["run_folder"] == str(Path(cli.trainer.log_dir).resolve())
    assert logged.info.run_name == "version_0"  # not a name the seed fixes for every run
    assert Path(cli.trainer.log_dir).name == "version_0"  # TensorBoard's folder is the run's


@pytest.mark.slow  # the fast set keeps one test of the kind
def test_checkpoints_can_go_to_mlflow_as_their_paths(run_cli, tmp_path):
    paths = "--trackers.init_args.checkpoints=paths"
    cli = run_cli("fit", "--config", ADAM, "--config", OVERLAY, *SHORT, *QUIET, at(tmp_path), paths)
    client, logged = only_run(f"sqlite:///{tmp_path / 'mlruns.db'}")
    folder = Path(cli.trainer.log_dir).resolve() / "checkpoints"
    assert logged.data.tags["checkpoint/best"] == str(folder / "best-epoch=1.ckpt")
    assert logged.data.tags["checkpoint/latest"] == str(folder / "last.ckpt")
    assert not client.list_artifacts(logged.info.run_id, "checkpoints")


def test_test_and_predict_of_a_checkpoint_are_child_runs_of_its_fit(run_cli, tmp_path):
    trained = run_cli("fit", "--config", ADAM, "--config", OVERLAY, *SHORT, *QUIET, at(tmp_path))
    checkpoint = str(Path(trained.trainer.log_dir) / "checkpoints" / "last.ckpt")
    for command in ("test", "predict"):
        run_cli(command, "--ckpt_path", checkpoint, "--config", OVERLAY, *QUIET, at(tmp_path))
    grouped = runs_by_parent(f"sqlite:///{tmp_path / 'mlruns.db'}")
    (fit,) = grouped[None]
    children = {run.info.run_name: run for run in grouped[fit.info.run_id]}
    assert set(children) == {"test", "predict"}
    assert children["test"].data.metrics["test/acc"] > 0.9
    assert children["predict"].data.tags["checkpoint"] == str(Path(checkpoint).resolve())
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    stored = [a.path for a in client.list_artifacts(children["predict"].info.run_id)]
    assert stored == ["predictions.csv"]
    assert not (tmp_path / "lightning_logs" / "version_1").exists()  # no TensorBoard run


def test_mlflow_alone_still_has_a_run_folder_for_config_and_checkpoints(run_cli, tmp_path, caplog):
    mlflow_only = [
        "--trainer.logger=lightning.pytorch.loggers.MLFlowLogger",
        f"--trainer.logger.tracking_uri=sqlite:///{tmp_path / 'alone.db'}",
    ]
    cli = run_cli("fit", "--config", ADAM, *SHORT, *QUIET, *mlflow_only)
    _, logged = only_run(f"sqlite:///{tmp_path / 'alone.db'}")
    folder = Path(cli.trainer.log_dir)
    assert folder.name == logged.info.run_id
    assert (folder / "config.yaml").is_file() and (folder / "checkpoints" / "last.ckpt").is_file()
    assert (
        f"Run folder:  {folder}" in caplog.text
        and f"MLflow: run {logged.info.run_id}" in caplog.text
    )


@pytest.mark.slow  # the fast set keeps one test of the kind
def test_a_run_with_both_loggers_resumes_from_its_last_checkpoint(run_cli, tmp_path):
    run_cli("fit", "--config", ADAM, "--config", OVERLAY, *SHORT, *QUIET, at(tmp_path))
    resumed = run_cli(
        "fit", "--config", ADAM, "--config", OVERLAY, *SHORT, *QUIET, at(tmp_path),
        "--trainer.max_epochs=3", "--ckpt_path=last",
    )  # fmt: skip
    assert resumed.trainer.current_epoch == 3
    assert Path(resumed.trainer.log_dir).name == "version_0"


def test_mlflow_named_without_its_package_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    with pytest.raises(SystemExit) as stopped:
        run(["fit", "--config", ADAM, "--config", OVERLAY, *SHORT, *QUIET])
    assert str(stopped.value.code).startswith(
        'error: MLFlowLogger needs its package: pip install -e ".[mlflow]"'
    )


@pytest.fixture
def server(tmp_path):
    """A ``mlflow server`` on 127.0.0.1 at a free port, stopped after the test."""
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = f"sqlite:///{tmp_path / 'server.db'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store,
         "--artifacts-destination", str(tmp_path / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start")
        yield uri
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow  # starts a server process
def test_a_run_reaches_a_tracking_server(run_cli, server):
    run_cli(
        "fit", "--config", ADAM, "--config", OVERLAY, *SHORT, *QUIET,
        f"--trainer.logger.tracking_uri={server}",
    )  # fmt: skip
    client, logged = only_run(server)
    assert [m.step for m in client.get_metric_history(logged.info.run_id, "val/loss")] == [15, 30]
    assert "config.yaml" in [a.path for a in client.list_artifacts(logged.info.run_id)]


def runs_by_parent(store: str) -> dict[str | None, list]:
    client = mlflow.MlflowClient(store)
    found = client.search_runs([e.experiment_id for e in client.search_experiments()])
    grouped: dict[str | None, list] = {}
    for logged in found:
        grouped.setdefault(logged.data.tags.get("mlflow.parentRunId"), []).append(logged)
    return grouped


IRIS = ["--config", str(CONFIGS / "iris.yaml"), "--trainer.max_epochs=2", *QUIET]


@pytest.mark.slow  # three trials; the cv test below checks the grouping fast
def test_a_studys_trials_are_children_of_one_run_with_the_best_values(tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    monkeypatch.chdir(tmp_path)
    space = tmp_path / "space.yaml"
    space.write_text("model.optimizer.init_args.lr: {type: float, low: 0.001, high: 0.1}\n")
    run(["tune", "--search", str(space), "--trials", "3", *IRIS, "--config", OVERLAY, at(tmp_path)])
    grouped = runs_by_parent(f"sqlite:///{tmp_path / 'mlruns.db'}")
    (parent,) = grouped[None]
    children = grouped[parent.info.run_id]
    assert parent.info.run_name == "tune_0"
    assert sorted(c.info.run_name for c in children) == ["trial_0", "trial_1", "trial_2"]
    losses = [c.data.metrics["val/loss"] for c in children]
    assert parent.data.metrics["best/val/loss"] == pytest.approx(min(losses), rel=1e-6)
    assert "best/model.optimizer.init_args.lr" in parent.data.params
    assert (tmp_path / "lightning_logs" / "tune_0" / "trial_2" / "config.yaml").is_file()


@pytest.mark.slow  # two folds' fits; tune's trials as children are tested beside it
def test_cross_validations_folds_are_children_of_one_run_with_the_means(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(["cv", "--folds", "2", *IRIS, "--config", OVERLAY, at(tmp_path)])
    grouped = runs_by_parent(f"sqlite:///{tmp_path / 'mlruns.db'}")
    (parent,) = grouped[None]
    children = grouped[parent.info.run_id]
    assert sorted(c.info.run_name for c in children) == ["fold_0", "fold_1"]
    mean = sum(c.data.metrics["val/loss"] for c in children) / 2
    assert parent.data.metrics["mean/val/loss"] == pytest.approx(mean, rel=1e-6)
    assert "std/val/loss" in parent.data.metrics
    assert (tmp_path / "lightning_logs" / "cv_0" / "fold_1" / "config.yaml").is_file()


@pytest.mark.slow  # the fast set keeps one test of the kind
def test_compare_groups_its_runs_under_one_mlflow_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sgd = str(CONFIGS / "blobs_sgd.yaml")
    run(["compare", ADAM, sgd, "--", "--config", OVERLAY, *SHORT, *QUIET, at(tmp_path)])
    grouped = runs_by_parent(f"sqlite:///{tmp_path / 'mlruns.db'}")
    (parent,) = grouped[None]
    assert parent.info.run_name == "compare_0" and parent.info.status == "FINISHED"
    names = sorted(child.info.run_name for child in grouped[parent.info.run_id])
    assert names == ["blobs_adam", "blobs_sgd"]


@pytest.mark.slow  # two worker processes, four trials
def test_a_studys_workers_share_one_parent_run(tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    monkeypatch.chdir(tmp_path)
    space = tmp_path / "space.yaml"
    space.write_text("model.optimizer.init_args.lr: {type: float, low: 0.001, high: 0.1}\n")
    tune = ["tune", "--search", str(space), "--trials", "4", "--workers", "2"]
    run([*tune, *IRIS, "--config", OVERLAY, at(tmp_path)])
    grouped = runs_by_parent(f"sqlite:///{tmp_path / 'mlruns.db'}")
    (parent,) = grouped[None]  # every trial's run, whichever process ran it, is its child
    assert len(grouped[parent.info.run_id]) >= 4  # two workers may both start the last trial


def test_wandb_offline_keeps_a_run_folder_with_the_config_and_the_metrics(
    run_cli, tmp_path, monkeypatch
):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    overlay = str(CONFIGS / "loggers" / "wandb.yaml")
    cli = run_cli("fit", "--config", ADAM, "--config", overlay, *SHORT, *QUIET)
    wandb.finish()  # as the process's exit does: the records are written out
    (folder,) = (tmp_path / "wandb").glob("offline-run-*")
    saved = (folder / "files" / "config.yaml").read_text()
    assert saved == (Path(cli.trainer.log_dir) / "config.yaml").read_text()
    # the run's records (wandb's own binary format: each value's name is stored as text),
    # written by wandb's service process, which may still be writing when finish() returns
    names = (b"train/loss", b"val/acc", b"config", b"n_samples", b"trainer/global_step")
    names += (b"run_folder", b"checkpoint/latest")  # the last two: its summary
    for _ in range(40):
        records = next(folder.glob("run-*.wandb")).read_bytes()
        if all(name in records for name in names):
            break
        time.sleep(0.5)
    for name in names:
        assert name in records, name
    assert records.count(b"val/loss") >= 2  # one history row per epoch, at least
