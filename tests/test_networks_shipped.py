"""The residual MLP and TabM, each from its shipped overlay (configs/networks/): it trains,
resumes, exports to ONNX with predict's numbers, and runs under tune."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from ffnn_lightning.cli import run
from tests.conftest import CONFIGS

pytest.importorskip("onnxruntime", reason="pip install -e '.[export]'")
from tests.test_export import (
    assert_same_numbers,
    checkpoint_predictions,
    data_args,
    onnx_predictions,
    table,
)

NETWORKS = {
    "residual": ["--model.network.width=32"],
    "tabm": ["--model.network.k=4", "--model.network.width=32", "--model.network.blocks=2"],
}


def fit_args(network: str, task: str, *extra: str) -> list[str]:
    return [
        *data_args(task), "--data.path=train.csv",
        "--config", str(CONFIGS / "networks" / f"{network}.yaml"), *NETWORKS[network],
        "--seed_everything=0", "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false", *extra,
    ]  # fmt: skip


@pytest.mark.slow  # each fits, resumes and exports: the networks themselves in test_parts
@pytest.mark.parametrize("network", NETWORKS)
def test_a_shipped_network_resumes_and_exports_what_predict_gives(network, run_cli, tmp_path):
    task = "multiclass" if network == "tabm" else "regression"  # TabM reads the coded shops
    table(task, 200).to_csv("train.csv", index=False)
    fitted = run_cli("fit", *fit_args(network, task, "--trainer.max_epochs=2"))
    resumed = run_cli("fit", *fit_args(network, task, "--trainer.max_epochs=3"), "--ckpt_path=last")
    assert resumed.trainer.global_step == 3 * fitted.trainer.global_step // 2
    checkpoint = Path(resumed.trainer.checkpoint_callback.best_model_path).resolve()
    run(["export", "--ckpt_path", str(checkpoint), "--output", "model.onnx"])
    table(task, 40, seed=1).drop(columns=table(task, 1).columns[-1]).to_csv("new.csv", index=False)
    expected = checkpoint_predictions(run_cli, checkpoint, tmp_path / "new.csv", *data_args(task))
    assert_same_numbers(onnx_predictions(tmp_path / "model.onnx", pd.read_csv("new.csv")), expected)


@pytest.mark.slow  # one more fit or study: the slow set (CI runs both)
def test_tabm_runs_under_tune(run_cli, tmp_path):
    from ffnn_lightning.commands.tune import main as tune

    table("multiclass", 200).to_csv("train.csv", index=False)
    space = {"model.network.k": {"type": "categorical", "choices": [2, 4]}}
    Path("space.yaml").write_text(yaml.safe_dump(space))
    args = fit_args("tabm", "multiclass", "--trainer.max_epochs=1")
    folder = tune(["--search", "space.yaml", "--trials", "2", *args])
    best = yaml.safe_load((Path(folder) / "best.yaml").read_text())
    assert best["model"]["init_args"]["network"]["init_args"]["k"] in (2, 4)
