"""Training speed of the template next to the chapter's raw PyTorch loop, and how it scales.

    python benchmarks/throughput.py            # the full tables (about 20 minutes on 2 cores)
    python benchmarks/throughput.py --quick    # seconds: proves the script still runs (CI)
    python benchmarks/throughput.py --width    # only the wide-table rows (a minute or two)
    python benchmarks/throughput.py --chapter  # only the chapter's run at batch 16 (minutes)

Every measurement runs in a fresh process (so that peak RSS is its own), the variants
alternating, and the tables give medians over the repeats. The template runs as a user gets
it: the shipped config through the CLI, with the progress bar, TensorBoard logging of the
epoch metrics, validation every epoch and checkpoints. The raw loop is the chapter's listing
3-4 (`benchmarks/reference.py`), training only; "raw + validation" adds what the template
does each epoch that the listing does not: a forward pass over the validation rows, and the
epoch's validation loss and accuracy. Only the training call is timed; imports and data
generation are not. Memory in training is the peak resident size while training, less the
process's size after its imports: the data and whatever the run adds to it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "blobs_adam.yaml"
TRAIN_FRACTION = 0.8
# measure this tree, whatever is installed; reference.py lies beside this script
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")])}


# -- one measurement, in its own process ---------------------------------------------------
def measure_raw(samples: int, batch_size: int | None, epochs: int, validate: bool) -> dict:
    import torch
    from reference import ChapterNetwork, chapter_data, train_network

    imported = _rss_mb()
    x_train, y_train, x_val, y_val = chapter_data(samples)
    size = batch_size or len(x_train)
    model = ChapterNetwork()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    on_epoch_end = _validation(model, x_val, y_val) if validate else None
    _start_peak()
    start = time.perf_counter()
    train_network(model, optimizer, epochs, size, x_train, y_train, on_epoch_end)
    seconds = time.perf_counter() - start
    return _result(epochs * -(-len(x_train) // size), epochs, seconds, imported)


def _validation(model, x_val, y_val, batch_size: int = 4096):
    """The raw loop's share of the template's epoch end: validation loss and accuracy."""
    import torch

    def validate(epoch: int) -> None:
        model.eval()
        loss, correct = torch.zeros(()), torch.zeros(())
        with torch.inference_mode():
            for i in range(0, len(x_val), batch_size):
                probabilities, labels = model(x_val[i : i + batch_size]), y_val[i : i + batch_size]
                loss += torch.nn.functional.binary_cross_entropy(
                    probabilities, labels, reduction="sum"
                )
                correct += ((probabilities > 0.5) == labels).sum()
        model.train()
        loss.item(), correct.item()  # the values a user would print or log

    return validate


def measure_template(samples: int, batch_size: int | None, epochs: int) -> dict:
    from ffnn_lightning.cli import main

    imported = _rss_mb()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        cli = main(
            [
                "--config", str(CONFIG),
                f"--data.init_args.n_samples={samples}",
                f"--data.init_args.batch_size={'null' if batch_size is None else batch_size}",
                f"--trainer.max_epochs={epochs}",
                "--trainer.enable_model_summary=false",
            ],
            run=False,
        )  # fmt: skip
        cli.datamodule.prepare()  # data generation is not timed, as for the raw loop
        _start_peak()
        start = time.perf_counter()
        cli.trainer.fit(cli.model, cli.datamodule)
        seconds = time.perf_counter() - start
    return _result(cli.trainer.global_step, epochs, seconds, imported)


def _rss_mb(field: str = "VmRSS") -> float:
    """This process's resident size (``VmRSS``) or its peak since :func:`_start_peak`."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")  # not Linux


def _start_peak() -> None:
    """Forget the peak so far (data generation's), so that the next is training's own."""
    gc.collect()
    with contextlib.suppress(OSError):  # not Linux: the peak then includes data generation
        Path("/proc/self/clear_refs").write_text("5")


def _result(steps: int, epochs: int, seconds: float, imported_mb: float) -> dict:
    peak_mb = _rss_mb("VmHWM")
    return {
        "steps_per_s": steps / seconds,
        "s_per_epoch": seconds / epochs,
        "peak_rss_mb": peak_mb,
        "training_mb": peak_mb - imported_mb,
    }


def run_worker(kind: str, samples: int, batch_size: int | None, epochs: int) -> dict:
    """One measurement in a fresh Python process."""
    command = [sys.executable, __file__, "--worker", kind, "--samples", str(samples)]
    command += ["--epochs", str(epochs), "--batch-size", str(batch_size or 0)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=ENV)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the tables --------------------------------------------------------------------------------
def alternate(
    samples: int, batch_size: int | None, epochs: int, repeats: int, kinds: tuple[str, ...]
) -> tuple[dict[str, dict], dict[str, float]]:
    """Each kind in turn, ``repeats`` times: the medians of each kind, and for each baseline
    kind the median ratio of the template's speed to it over the rounds (on a machine whose
    speed drifts, one round shares its conditions better than two medians do)."""
    runs: dict[str, list[dict]] = {kind: [] for kind in (*kinds, "template")}
    for _ in range(repeats):
        for kind, results in runs.items():
            results.append(run_worker(kind, samples, batch_size, epochs))
    ratios = {
        kind: statistics.median(
            t["steps_per_s"] / b["steps_per_s"]
            for b, t in zip(runs[kind], runs["template"], strict=True)
        )
        for kind in kinds
    }
    return {kind: _median(results) for kind, results in runs.items()}, ratios


def compare(cases: list[tuple[int, int | None, int]], repeats: int) -> list[list[str]]:
    """Steps per second of the three, the template's ratios and peak memory, a row per case."""
    rows = []
    for samples, batch_size, epochs in cases:
        runs, ratios = alternate(samples, batch_size, epochs, repeats, ("raw", "raw_val"))
        rows.append(
            [
                f"{int(samples * TRAIN_FRACTION):,}",
                "whole split" if batch_size is None else str(batch_size),
                f"{runs['raw']['steps_per_s']:.0f}",
                f"{runs['raw_val']['steps_per_s']:.0f}",
                f"{runs['template']['steps_per_s']:.0f}",
                f"{ratios['raw']:.2f}",
                f"{ratios['raw_val']:.2f}",
                f"{runs['raw']['peak_rss_mb']:.0f}",
                f"{runs['template']['peak_rss_mb']:.0f}",
            ]
        )
        print_table(THROUGHPUT_HEADER, rows[-1:], header=len(rows) == 1)
    return rows


def scale(sizes: list[int], batch_size: int, repeats: int) -> list[list[str]]:
    rows = []
    for samples in sizes:
        runs, _ = alternate(samples, batch_size, 1, repeats, ("raw",))
        raw, template = runs["raw"], runs["template"]
        rows.append(
            [
                f"{samples:,}",
                f"{raw['s_per_epoch']:.2f}",
                f"{template['s_per_epoch']:.2f}",
                f"{template['s_per_epoch'] / samples * 1e6:.1f}",
                f"{samples * (64 + 1) * 4 / 2**20:.0f}",
                f"{raw['training_mb']:.0f}",
                f"{template['training_mb']:.0f}",
                f"{raw['peak_rss_mb']:.0f}",
                f"{template['peak_rss_mb']:.0f}",
            ]
        )
        print_table(SCALE_HEADER, rows[-1:], header=len(rows) == 1)
    return rows


RAW_SCRIPT = """
import torch
from reference import ChapterNetwork, chapter_data, train_network
x_train, y_train, _, _ = chapter_data()
model = ChapterNetwork()
train_network(model, torch.optim.Adam(model.parameters(), lr=0.001), 10, 16, x_train, y_train)
"""


def startup(repeats: int, epochs: int = 10) -> list[str]:
    """Wall time of whole processes: the chapter's script vs the CLI on the shipped config."""
    template = [sys.executable, "-m", "ffnn_lightning", "fit", "--config", str(CONFIG)]
    template.append(f"--trainer.max_epochs={epochs}")
    raw = [sys.executable, "-c", RAW_SCRIPT.replace("10, 16", f"{epochs}, 16")]
    times: dict[str, list[float]] = {"raw": [], "template": []}
    for _ in range(repeats):
        for kind, command in (("raw", raw), ("template", template)):
            with tempfile.TemporaryDirectory() as folder:
                start = time.perf_counter()
                subprocess.run(command, cwd=folder, env=ENV, check=True, capture_output=True)
                times[kind].append(time.perf_counter() - start)
    raw_s, template_s = (statistics.median(times[k]) for k in ("raw", "template"))
    row = [f"{epochs}", f"{raw_s:.2f}", f"{template_s:.2f}", f"{template_s / raw_s:.2f}"]
    print_table(["epochs", "raw script s", "template CLI s", "ratio"], [row])
    return row


WIDE_RAW_SCRIPT = """
import sys, numpy as np, pandas as pd, torch
frame = pd.read_csv(sys.argv[1])
y = torch.tensor(frame.pop("target").to_numpy(), dtype=torch.float32).reshape(-1, 1)
x = frame.to_numpy(np.float32)
train = int(len(x) * 0.8)
x = (x - x[:train].mean(0)) / x[:train].std(0)
x = torch.from_numpy(np.ascontiguousarray(x))
torch.manual_seed(0)
hidden = torch.nn.Linear(x.shape[1], 64)
model = torch.nn.Sequential(hidden, torch.nn.ReLU(), torch.nn.Linear(64, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
for epoch in range(2):
    for i in range(0, train, 16):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[i:i + 16]), y[i:i + 16])
        loss.backward()
        optimizer.step()
"""


def width(columns: list[int], rows: int = 200) -> list[list[str]]:
    """Whole processes on a wide CSV (``rows`` rows, numeric columns): a raw script (pandas,
    standardization, a 2-epoch torch loop) against ``fit`` with FileDataModule, which also
    checks the table, fits and stores its preprocessing, validates and writes checkpoints."""
    import numpy as np

    table = []
    for count in columns:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "wide.csv"
            rng = np.random.default_rng(0)
            x = rng.normal(size=(rows, count)).astype(np.float32)
            header = ",".join([*(f"f{i}" for i in range(count)), "target"])
            np.savetxt(path, np.column_stack([x, x[:, 0] > 0]), delimiter=",", header=header,
                       comments="", fmt="%.6g")  # fmt: skip
            raw = [sys.executable, "-c", WIDE_RAW_SCRIPT, str(path)]
            template = [
                sys.executable, "-m", "ffnn_lightning", "fit",
                "--data=ffnn_lightning.data.FileDataModule", f"--data.path={path}",
                "--data.target=target", "--model.network.hidden=[64]", "--trainer.max_epochs=2",
            ]  # fmt: skip
            seconds = []
            for command in (raw, template):
                start = time.perf_counter()
                subprocess.run(command, cwd=folder, env=ENV, check=True, capture_output=True)
                seconds.append(time.perf_counter() - start)
            megabytes = path.stat().st_size / 2**20
        table.append([f"{count:,}", f"{megabytes:.0f}", *(f"{t:.1f}" for t in seconds),
                      f"{seconds[1] / seconds[0]:.2f}"])  # fmt: skip
        print_table(WIDTH_HEADER, table[-1:], header=len(table) == 1)
    return table


def _median(results: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


THROUGHPUT_HEADER = [
    "train rows", "batch", "raw steps/s", "raw + validation steps/s", "template steps/s",
    "ratio to raw", "ratio to raw + validation", "raw RSS MB", "template RSS MB",
]  # fmt: skip
SCALE_HEADER = [
    "rows", "raw s/epoch", "template s/epoch", "template µs/row", "data MB",
    "raw memory in training MB", "template memory in training MB", "raw peak RSS MB",
    "template peak RSS MB",
]  # fmt: skip


WIDTH_HEADER = ["columns", "CSV MB", "raw script s", "template fit s", "ratio"]


def print_table(columns: list[str], rows: list[list[str]], header: bool = True) -> None:
    """Markdown rows, printed as they come so that a long run shows progress."""
    if header:
        print("| " + " | ".join(columns) + " |")
        print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row) + " |", flush=True)


WORKERS = {
    "raw": functools.partial(measure_raw, validate=False),
    "raw_val": functools.partial(measure_raw, validate=True),
    "template": measure_template,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (CI)")
    parser.add_argument("--width", action="store_true", help="only the wide-table rows")
    parser.add_argument("--chapter", action="store_true", help="only the chapter's batch-16 row")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        measure = WORKERS[args.worker]
        print(json.dumps(measure(args.samples, args.batch_size or None, args.epochs)))
        return

    if args.width:
        width([1_000, 10_000, 50_000])
        return
    repeats = 1 if args.quick else args.repeats
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"Machine: {machine}; medians of {repeats} runs\n")
    if args.chapter:
        compare([(5000, 16, 10)], args.repeats)
        return
    if args.quick:
        compare([(1000, 16, 1), (1000, None, 2)], repeats=1)
        print()
        scale([1000, 2000], batch_size=256, repeats=1)
        print()
        startup(repeats=1, epochs=1)
        print()
        width([1000])
        return
    chapter = 5000
    compare(
        [(chapter, 16, 10), (chapter, 64, 10), (chapter, 256, 20), (chapter, None, 40),
         (125_000, 256, 1)],
        args.repeats,
    )  # fmt: skip
    print()
    scale([5_000, 50_000, 500_000, 1_000_000], batch_size=256, repeats=max(1, args.repeats // 2))
    print()
    startup(args.repeats)
    print()
    width([1_000, 10_000, 50_000])


if __name__ == "__main__":
    main()
