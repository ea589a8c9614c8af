"""Benchmark of the paired bootstrap in `make compare` (goal: 1,000 resamples at 10k rows well under 1 s).

Scores two synthetic models on the same rows for each task and times
:func:`mlops.bootstrap.paired_bootstrap` (every metric of the task, both models, the same
resamples). Prints a Markdown table: rows, resamples, task, best and median wall time of
``--repeats`` runs.

    .venv/bin/python benchmarks/bench_compare.py [--rows 10000 100000] [--resamples 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import table  # noqa: E402  # pylint: disable=wrong-import-position  # after the sys.path line

from mlops.intervals import paired_bootstrap  # pylint: disable=wrong-import-position  # same
from mlops.metrics import Predictions  # pylint: disable=wrong-import-position  # same


def models(task: str, n: int, seed: int = 0) -> tuple[Predictions, Predictions]:
    """A champion and a slightly different challenger on the same n rows."""
    rng = np.random.default_rng(seed)
    if task == "regression":
        y = rng.normal(size=n)
        return (Predictions(y, y + rng.normal(size=n), None, ()),
                Predictions(y, y + rng.normal(size=n) * 0.95, None, ()))
    classes = (0, 1) if task == "binary" else (0, 1, 2)
    y = rng.integers(0, len(classes), n)
    out = []
    for shift in (0.0, 0.05):
        logits = rng.normal(size=(n, len(classes)))
        logits[np.arange(n), y] += 1.0 + shift
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        out.append(Predictions(y, proba.argmax(axis=1), proba, classes))
    return out[0], out[1]


def main() -> None:
    """Time the paired bootstrap per task and row count; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for n in args.rows:
        for task in ("binary", "multiclass", "regression"):
            champion, challenger = models(task, n)
            timings = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                paired_bootstrap(task, champion, challenger, resamples=args.resamples)
                timings.append(time.perf_counter() - started)
            rows.append([f"{n:,}", args.resamples, task, f"{min(timings):.3f}", f"{statistics.median(timings):.3f}"])
    print(table(["rows", "resamples", "task", "best s", "median s"], rows))


if __name__ == "__main__":
    main()
