"""Benchmark each pipeline stage at several sizes: wall time and peak memory per process.

Usage: python benchmarks/bench_pipeline.py [--rows 10000 100000 1000000]

For each size it generates loan data (Parquet), then runs `python -m mlops <stage>` for
validate, train, evaluate, report, compare and drift as separate processes (as the Makefile
does), and a bare
scikit-learn fit + predict of the same pipeline on the same rows for comparison. Prints a
Markdown table; goals: validation of 1M x 25 under 1 s (the check itself, as reported in
validation.json), and validate + evaluate + report at most the bare fit + predict time at 1M.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import yaml

from _measure import PYTHON, ROOT, bench_table, run

BARE = """
import sys, time
from mlops.config import load_config
from mlops.data import load_training, infer_features, split
from mlops.model import build_pipeline
config = load_config(sys.argv[1])
dataset = load_training(config)
features = infer_features(config, dataset.frame)
parts = split(config, dataset.frame, features)
pipeline = build_pipeline(config, features)
started = time.perf_counter()
pipeline.fit(parts.x_train, parts.y_train)
fit = time.perf_counter() - started
started = time.perf_counter()
pipeline.predict_proba(parts.x_test)
print(fit, time.perf_counter() - started)
"""


REGISTER = """
import sys
from mlops.config import load_config
from mlops.lineage import resolve_model_dir
from mlops.registry import Registry
config = load_config(sys.argv[1])
registry = Registry.from_config(config)
registry.set_pointer("prod", registry.register(resolve_model_dir(config)))
"""


def bench(rows: int, workdir: Path) -> dict:
    """Time every stage on ``rows`` generated rows."""
    (workdir / "data").mkdir(parents=True)
    run([PYTHON, "-m", "mlops", "-q", "datagen", "--rows", str(rows), "--seed", "1", "--days", "365",
         "--out", str(workdir / "data" / "loans.parquet")])
    config = yaml.safe_load((ROOT / "mlops.yaml").read_text())
    config["data"]["source"] = "data/loans.parquet"
    (workdir / "mlops.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(ROOT / "schema.yaml", workdir / "schema.yaml")
    result = {"rows": rows}
    for stage in ("validate", "train", "evaluate", "report"):
        seconds, peak, _ = run([PYTHON, "-m", "mlops", "-q", "--config", str(workdir / "mlops.yaml"), stage])
        result[stage] = (seconds, peak)
    result["check_seconds"] = json.loads((workdir / "reports" / "validation.json").read_text())["seconds"]
    # compare: the trained model as the registry's prod champion against itself (the full
    # scoring + 1,000-resample paired bootstrap work, without a second training).
    mlops = [PYTHON, "-m", "mlops", "-q", "--config", str(workdir / "mlops.yaml")]
    run([PYTHON, "-c", REGISTER, str(workdir / "mlops.yaml")])
    result["compare"] = run([*mlops, "compare"], env={"MLOPS_CHAMPION": "registry"})[:2]
    # drift: a drifted batch of the same size against the champion's training data.
    run([PYTHON, "-m", "mlops", "-q", "datagen", "--rows", str(rows), "--seed", "2", "--start", "2025-01-01",
         "--days", "30", "--drift", "--out", str(workdir / "data" / "current.parquet")])
    result["drift"] = run([*mlops, "drift", "--current", str(workdir / "data" / "current.parquet"),
                           "--exit-zero"])[:2]
    _, _, out = run([PYTHON, "-c", BARE, str(workdir / "mlops.yaml")])
    fit, predict = map(float, out.split())
    result["bare_fit_predict"] = fit + predict
    return result


def measure(sizes: list[int]) -> list[dict]:
    """Benchmark rows for ``make bench``: one per stage and size."""
    out = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as workdir:
            r = bench(size, Path(workdir))
        notes = {"validate": "whole process; the contract check alone < 1 s at 1M",
                 "compare": "champion = the same model from the registry; 1,000 paired resamples",
                 "drift": "reference and current both this size; goal < 10 s and < 1.5 GB at 1M"}
        for stage in ("validate", "train", "evaluate", "report", "compare", "drift"):
            goal = notes.get(stage, "")
            out.append({"stage": stage, "rows": size, "seconds": r[stage][0], "peak_mib": r[stage][1], "note": goal})
        out.append({"stage": "validate: contract check only", "rows": size, "seconds": r["check_seconds"],
                    "peak_mib": None, "note": "goal < 1 s at 1M x 25"})
        overhead = r["validate"][0] + r["evaluate"][0] + r["report"][0]
        out.append({"stage": "bare fit + predict (reference)", "rows": size, "seconds": r["bare_fit_predict"],
                    "peak_mib": None, "note": ""})
        out.append({"stage": "validate + evaluate + report", "rows": size, "seconds": overhead, "peak_mib": None,
                    "note": f"{overhead / r['bare_fit_predict']:.2f}x bare fit+predict (goal <= 1x at 1M)"})
    return out


def main() -> None:
    """Run the sizes given and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    print(bench_table(measure(args.rows)))


if __name__ == "__main__":
    main()
