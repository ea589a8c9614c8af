"""Benchmark of the drift check: speed against evidently on the full data, agreement, and signal quality.

Not part of ``make test``. Run: ``.venv/bin/python benchmarks/bench_drift.py [--rows 1000000]``.

It prints:

1. ``python -m mlops drift`` (what ``make drift`` runs) on N reference x N current rows x 25
   columns from Parquet, with a champion model trained on the reference: wall time and peak RSS
   of the whole process tree (the check plus its evidently HTML worker), polled from /proc;
2. evidently 0.7.23's ``DataDriftPreset`` (default methods) run on the FULL data in its own
   process, with the same column kinds: wall time, peak RSS, and the per-column agreement
   (same decision, largest difference of values);
3. the false-alarm rate on same-distribution splits over repeated seeds at 10k, 100k and 1M rows
   (per column, and of the dataset-drift decision), and the detection of the generator's
   injected columns.

Data and the trained champion are cached in ``--workdir`` (default /tmp/mlops-bench-drift).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from mlops.stages.datagen import DRIFTED_COLUMNS, ID_COLUMN, TARGET, TIME_COLUMN, generate
from mlops.drift_stats import column_drift

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in KB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="utf-8") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        child = int(entry)
        children.setdefault(int(fields["PPid"].strip()), []).append(child)
        rss[child] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        stack.extend(children.get(current, []))
    return total


def measure(argv: list[str], env: dict | None = None) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run a command; return (wall seconds, peak RSS of its process tree in MB, result)."""
    peak = [0]
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,  # pylint: disable=consider-using-with  # polled while it runs
                               env={**os.environ, **(env or {})})
    done = threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_kb(process.pid))
            time.sleep(0.02)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    out, err = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    thread.join()
    return wall, peak[0] / 1024, subprocess.CompletedProcess(argv, process.returncode, out, err)


def prepare(workdir: Path, rows: int) -> Path:
    """Reference (Jan-Jun) and drifted current (Jul) Parquet files, a config, and a trained champion."""
    workdir.mkdir(parents=True, exist_ok=True)
    ref, cur = workdir / f"reference-{rows}.parquet", workdir / f"current-{rows}.parquet"
    if not ref.exists():
        generate(rows, seed=1).to_parquet(ref, index=False)
    if not cur.exists():
        generate(rows, seed=2, start="2024-07-01", days=31, drift=True).to_parquet(cur, index=False)
    config = {
        "project": "bench-drift", "task": "binary",
        "data": {"source": ref.name, "target": TARGET, "id_column": ID_COLUMN, "time_column": TIME_COLUMN},
        "split": {"method": "time", "test_size": 0.2, "seed": 42},
        "model": {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier", "params": {"max_iter": 30}},
        "drift": {"current": cur.name},
    }
    config_path = workdir / f"mlops-{rows}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    env = {"MLOPS_MODELS_DIR": str(workdir / f"models-{rows}"), "MLOPS_REPORTS_DIR": str(workdir / f"reports-{rows}")}
    if not (workdir / f"models-{rows}" / "LATEST").exists():
        print(f"training the champion on {rows:,} rows (once; cached in {workdir}) ...", flush=True)
        for stage in ("train", "evaluate"):
            subprocess.run([PYTHON, "-m", "mlops", "--config", str(config_path), "-q", stage], check=True,
                           env={**os.environ, **env}, cwd=workdir)
    return config_path


EVIDENTLY_SCRIPT = textwrap.dedent("""
    import json, sys, time, warnings
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    job = json.loads(sys.argv[1])
    reference = pd.read_parquet(job["reference"], columns=job["numeric"] + job["categorical"])
    current = pd.read_parquet(job["current"], columns=job["numeric"] + job["categorical"])
    definition = DataDefinition(numerical_columns=job["numeric"], categorical_columns=job["categorical"])
    run_started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition))
    run_seconds = time.perf_counter() - run_started
    values = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            values[config["column"]] = {"method": config["method"], "value": metric["value"],
                                        "threshold": config["threshold"]}
    print(json.dumps({"run_seconds": run_seconds, "columns": values}))
""")


def bench_check(config_path: Path, rows: int) -> dict:
    """Wall and peak of ``python -m mlops drift`` (the whole process, HTML worker included)."""
    workdir = config_path.parent
    env = {"MLOPS_MODELS_DIR": str(workdir / f"models-{rows}"), "MLOPS_REPORTS_DIR": str(workdir / f"reports-{rows}")}
    wall, peak, result = measure([PYTHON, "-m", "mlops", "--config", str(config_path), "-q", "drift"], env)
    if result.returncode not in (0, 3):
        raise SystemExit(f"drift check failed:\n{result.stderr}")
    record = json.loads((workdir / f"reports-{rows}" / "drift.json").read_text(encoding="utf-8"))
    return {"wall": wall, "peak_mb": peak, "exit": result.returncode, "record": record}


def bench_evidently(record: dict, config_path: Path) -> dict:
    """evidently's DataDriftPreset on the full data, in its own process."""
    workdir = config_path.parent
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    job = {
        "reference": str(workdir / config["data"]["source"]), "current": str(workdir / config["drift"]["current"]),
        "numeric": [c["column"] for c in record["columns"] if c["kind"] == "numeric"],
        "categorical": [c["column"] for c in record["columns"] if c["kind"] == "categorical"],
    }
    wall, peak, result = measure([PYTHON, "-c", EVIDENTLY_SCRIPT, json.dumps(job)])
    if result.returncode != 0:
        raise SystemExit(f"evidently failed:\n{result.stderr[-3000:]}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    return {"wall": wall, "peak_mb": peak, **out}


def agreement(record: dict, evidently: dict) -> dict:
    """Same decision per column, and the largest value difference."""
    same, differences, rows = 0, [], []
    for column in record["columns"]:
        theirs = evidently["columns"][column["column"]]
        their_drift = theirs["value"] >= theirs["threshold"]
        same += column["drifted"] == their_drift
        differences.append(abs(column["value"] - theirs["value"]))
        rows.append((column["column"], column["method"], theirs["method"], column["value"], theirs["value"],
                     column["drifted"], their_drift))
    return {"same": same, "columns": len(record["columns"]), "max_abs_diff": max(differences), "rows": rows}


def _kinds(frame: pl.DataFrame) -> dict[str, str]:
    skip = {ID_COLUMN, TIME_COLUMN, TARGET}
    return {c: "numeric" if d.is_numeric() else "categorical" for c, d in frame.schema.items() if c not in skip}


def signal_quality(sizes: list[int], repeats: dict[int, int], drift_share: float = 0.1) -> list[dict]:
    """False alarms on same-distribution splits and detection of the injected columns, per size."""
    results = []
    for size in sizes:
        column_alarms, dataset_alarms, detected_exactly, checks, columns = 0, 0, 0, 0, 0
        started = time.perf_counter()
        for seed in range(repeats[size]):
            both = pl.from_pandas(generate(2 * size, seed=1000 + seed))
            order = np.random.default_rng(seed).permutation(both.height)
            reference, current = both[order[:size]], both[order[size:]]
            kinds = _kinds(reference)
            clean = column_drift(reference, current, kinds, threshold=0.1)
            flagged = sum(c.drifted for c in clean)
            column_alarms += flagged
            columns += len(clean)
            dataset_alarms += flagged / len(clean) >= drift_share
            drifted = pl.from_pandas(generate(size, seed=5000 + seed, start="2024-07-01", days=31, drift=True))
            found = {c.column for c in column_drift(reference, drifted, kinds, threshold=0.1) if c.drifted}
            detected_exactly += found == set(DRIFTED_COLUMNS)
            checks += 1
        results.append({"rows": size, "repeats": checks, "column_false_alarm_rate": column_alarms / columns,
                        "dataset_false_alarm_rate": dataset_alarms / checks,
                        "injected_detected_exactly": detected_exactly / checks,
                        "seconds": time.perf_counter() - started})
    return results


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per side for the speed comparison")
    parser.add_argument("--workdir", default="/tmp/mlops-bench-drift")
    parser.add_argument("--skip-evidently", action="store_true", help="do not run evidently on the full data")
    parser.add_argument("--skip-quality", action="store_true", help="do not run the false-alarm study")
    parser.add_argument("--repeats", default="10000:50,100000:20,1000000:5",
                        help="size:repeats pairs for the false-alarm study")
    args = parser.parse_args()

    config_path = prepare(Path(args.workdir), args.rows)
    ours = bench_check(config_path, args.rows)
    record = ours["record"]
    print(f"\n== python -m mlops drift: {args.rows:,} x {args.rows:,} rows, {len(record['columns'])} feature columns "
          f"(+ target, prediction, performance) ==")
    print(f"wall {ours['wall']:.2f} s, peak RSS (process tree) {ours['peak_mb']:.0f} MB, exit {ours['exit']}; "
          f"inside: load {record['seconds']['load']:.2f} s, statistics {record['seconds']['statistics']:.2f} s, "
          f"total {record['seconds']['total']:.2f} s; HTML report: {record['html_report'] or record['html_error']}")
    print("drifted columns:", [c["column"] for c in record["columns"] if c["drifted"]])

    if not args.skip_evidently:
        theirs = bench_evidently(record, config_path)
        agree = agreement(record, theirs)
        print(f"\n== evidently {args.rows:,} x {args.rows:,} rows, DataDriftPreset (default methods), full data ==")
        print(f"wall {theirs['wall']:.1f} s (Report.run {theirs['run_seconds']:.1f} s), "
              f"peak RSS {theirs['peak_mb']:.0f} MB")
        print(f"speed-up (wall) x{theirs['wall'] / ours['wall']:.1f}; "
              f"memory ratio x{theirs['peak_mb'] / ours['peak_mb']:.1f}")
        print(f"agreement: {agree['same']}/{agree['columns']} columns same decision; "
              f"max |value difference| {agree['max_abs_diff']:.2e}")
        for row in agree["rows"]:
            print(f"  {row[0]:<26} ours {row[1]:<13} {row[3]:.6f} {'DRIFT' if row[5] else '-':<5}  "
                  f"evidently {row[2]:<30} {row[4]:.6f} {'DRIFT' if row[6] else '-'}")

    if not args.skip_quality:
        repeats = {int(k): int(v) for k, v in (pair.split(":") for pair in args.repeats.split(","))}
        print("\n== signal quality: same-distribution splits (false alarms) and the drifted period (detection) ==")
        for row in signal_quality(sorted(repeats), repeats):
            print(f"{row['rows']:>9,} rows x {row['repeats']:>2} seeds: column false alarms "
                  f"{row['column_false_alarm_rate']:.2%}, dataset false alarms {row['dataset_false_alarm_rate']:.0%}, "
                  f"injected columns found exactly {row['injected_detected_exactly']:.0%} ({row['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
