"""Workers on several machines share one study through a real PostgreSQL server, started by
the test as a throwaway cluster in a temporary folder on a local port."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import CONFIGS
from tests.test_tune import SPACE, write_space

optuna = pytest.importorskip("optuna")
pytest.importorskip("psycopg", reason="the tune extra's psycopg is not installed")

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # run by .ci/run with -m slow


def as_postgres(*command: str) -> list[str]:
    """A server command, as the postgres user where the tests run as root (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@pytest.fixture
def postgres_url():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    if not found[-1]:
        pytest.skip("PostgreSQL's server programs are not installed (apt-get install postgresql)")
    bin_dir = Path(found[-1]).parent
    folder = tempfile.mkdtemp(prefix="ffnn-postgres-")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    data, pg_ctl = f"{folder}/data", str(bin_dir / "pg_ctl")
    steps = [
        [str(bin_dir / "initdb"), "-D", data, "-U", "ffnn", "--auth=trust"],
        # the server's output to a file (-l): it would hold the captured pipes open
        [pg_ctl, "start", "-w", "-D", data, "-l", f"{folder}/log", "-o", options],
        [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "ffnn", "study"],
    ]
    for step in steps:
        done = subprocess.run(as_postgres(*step), capture_output=True, text=True, timeout=60)
        if done.returncode:
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip(f"no PostgreSQL server could start: {done.stderr.strip()[-300:]}")
    yield f"postgresql://ffnn@127.0.0.1:{port}/study"
    subprocess.run(as_postgres(pg_ctl, "stop", "-D", data, "-m", "immediate"), capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def test_two_machines_share_one_study_on_a_postgresql_server(tmp_path, postgres_url):
    config = ["--config", str(CONFIGS / "iris.yaml"), "--trainer.max_epochs=40"]
    shared = ["--storage", postgres_url, "--study-name", "shared", "--trials", "6"]
    machines = [tmp_path / "a", tmp_path / "b"]
    workers = []
    for machine in machines:
        machine.mkdir()
        command = ["tune", "--search", write_space(machine, SPACE), *shared, *config]
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "ffnn_lightning", *command],
                cwd=machine,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for worker in workers:
        assert worker.wait(timeout=300) == 0, worker.stderr.read()[-2000:]
    trials = optuna.load_study(study_name="shared", storage=postgres_url).get_trials()
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) >= 6
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both machines ran trials
    for machine in machines:  # each machine keeps the run folders of its own trials
        runs = {
            Path(t.user_attrs["run"]).name
            for t in trials
            if (machine / t.user_attrs["run"]).is_dir()
        }
        assert runs
