"""Benchmark of the drift check: speed against evidently on the full data, agreement, and signal quality.

Not part of ``make test``. Run: ``.venv/bin/python benchmarks/bench_drift.py [--rows 1000000]``;
``--skip-speed`` runs only the signal-quality study (about 2-3 minutes with the default sizes up
to 3k rows; the 10k-1M sizes add several minutes).

It prints:

1. ``python -m mlops drift`` (what ``make drift`` runs) on N reference x N current rows x 25
   columns from Parquet, with a champion model trained and evaluated on the reference: the
   decision path (from the process start until drift.json and drift.md are written, seen from
   outside by polling for drift.md; the exit code is known then), the whole run's wall time (the
   evidently HTML report is awaited after the decision), and the peak RSS of the whole process
   tree (the check plus its HTML worker), polled from /proc;
2. evidently 0.7.23's ``DataDriftPreset`` (default methods) run on the FULL data in its own
   process, with the same column kinds: wall time, peak RSS, and the per-column agreement
   (same decision, largest difference of values), and both side by side with the ratios;
3. signal quality, one table row per size (``--repeats size:splits``): on same-distribution
   splits of the generator (one seeded sample of 2 x size rows, split at random in two halves),
   the share of clean columns flagged and the share of splits called dataset drift; on the
   generator's drifted period (``drift=True``) against the same reference, the share of splits
   where dataset drift was raised and every injected column was flagged (and where exactly those
   were flagged). Three rules side by side: ours (the defaults of ``make drift``), the naive
   count of raw p < 0.05 flags (no correction; distances above the switch), and evidently's
   ``DataDriftPreset`` defaults (its per-column tests or distances and its dataset rule, share
   >= 0.5; also counted at this project's 0.1), for sizes up to ``--evidently-max-rows``.
   evidently's defaults are computed with its own ``get_stattest`` and test functions (what the
   preset calls per column); the first split of each size is also run through ``Report`` and must
   give the same values.

Data and the trained champion are cached in ``--workdir`` (default /tmp/mlops-bench-drift).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
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
from mlops.lineage import HOLDOUT_PREDICTIONS

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
# The stages run from this checkout's src/, whatever the venv's editable install points at (another worktree).
SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                                          os.environ.get("PYTHONPATH")]))}


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


def measure(argv: list[str], env: dict | None = None, watch: Path | None = None) -> dict:
    """Run a command: wall seconds, peak RSS of its process tree in MB, CPU seconds of the tree (user + system, its
    waited-for children included), the result, and the seconds until ``watch`` first existed (or None)."""
    peak, seen = [0], [None]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,  # pylint: disable=consider-using-with  # polled while it runs
                               env={**SUBPROCESS_ENV, **(env or {})})
    done = threading.Event()

    def poll():
        while not done.is_set():
            if watch is not None and seen[0] is None and watch.exists():
                seen[0] = time.perf_counter() - started
            peak[0] = max(peak[0], _tree_rss_kb(process.pid))
            time.sleep(0.01)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    out, err = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    thread.join()
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {"wall": wall, "peak_mb": peak[0] / 1024, "cpu": cpu, "watched": seen[0],
            "result": subprocess.CompletedProcess(argv, process.returncode, out, err)}


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
        "data": {"source": ref.name, "target": TARGET, "id_column": ID_COLUMN, "time_column": TIME_COLUMN,
                 "schema_file": f"schema-{rows}.yaml"},
        "split": {"method": "time", "test_size": 0.2, "seed": 42},
        "model": {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier", "params": {"max_iter": 30}},
        "drift": {"current": cur.name},
    }
    config_path = workdir / f"mlops-{rows}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    env = {"MLOPS_MODELS_DIR": str(workdir / f"models-{rows}"), "MLOPS_REPORTS_DIR": str(workdir / f"reports-{rows}")}
    latest = workdir / f"models-{rows}" / "LATEST"
    stages = [] if latest.exists() else [("schema", "--force"), ("train",)]
    if stages or not (workdir / f"models-{rows}" / latest.read_text().strip() / HOLDOUT_PREDICTIONS).exists():
        stages.append(("evaluate",))  # also records the held-out outputs prediction drift compares with
    if stages:
        print(f"{', '.join(s[0] for s in stages)} of the champion on {rows:,} rows (once; cached in {workdir}) ...",
              flush=True)
        # train checks the data contract first (gates.require_validation): draft it from the reference.
        for stage in stages:
            subprocess.run([PYTHON, "-m", "mlops", "--config", str(config_path), "-q", *stage], check=True,
                           env={**SUBPROCESS_ENV, **env}, cwd=workdir)
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
    """Wall and peak of ``python -m mlops drift`` (the whole process, HTML worker included), and its decision path:
    from the start until drift.md (written right after drift.json, before the HTML report is awaited) exists."""
    workdir = config_path.parent
    reports = workdir / f"reports-{rows}"
    env = {"MLOPS_MODELS_DIR": str(workdir / f"models-{rows}"), "MLOPS_REPORTS_DIR": str(reports)}
    for name in ("drift.json", "drift.md"):  # a previous run's files would look like this run's decision
        (reports / name).unlink(missing_ok=True)
    run = measure([PYTHON, "-m", "mlops", "--config", str(config_path), "-q", "drift"], env, watch=reports / "drift.md")
    if run["result"].returncode not in (0, 3):
        raise SystemExit(f"drift check failed:\n{run['result'].stderr}")
    record = json.loads((reports / "drift.json").read_text(encoding="utf-8"))
    return {**run, "decision": run["watched"], "exit": run["result"].returncode, "record": record}


def bench_captured(config_path: Path, rows: int) -> dict:
    """The same check with the current rows as an endpoint's captured traffic (one CSV request per row)."""
    from bench_capture import _write  # pylint: disable=import-outside-toplevel  # only with --captured

    workdir = config_path.parent
    folder = workdir / f"capture-{rows}"
    if not folder.exists():
        print(f"writing {rows:,} captured requests (once; cached in {folder}) ...", flush=True)
        current = pl.read_parquet(workdir / yaml.safe_load(config_path.read_text(encoding="utf-8"))["drift"]["current"])
        features = [c for c in current.columns if c not in (TARGET, ID_COLUMN, TIME_COLUMN)]
        _write(folder, current.select(features), 10, "csv")
    reports = workdir / f"reports-{rows}"
    env = {"MLOPS_MODELS_DIR": str(workdir / f"models-{rows}"), "MLOPS_REPORTS_DIR": str(reports)}
    for name in ("drift.json", "drift.md"):
        (reports / name).unlink(missing_ok=True)
    run = measure([PYTHON, "-m", "mlops", "--config", str(config_path), "-q", "drift", "--current",
                   f"capture:{folder.name}"], env, watch=reports / "drift.md")
    if run["result"].returncode not in (0, 3):
        raise SystemExit(f"drift check on captured traffic failed:\n{run['result'].stderr}")
    record = json.loads((reports / "drift.json").read_text(encoding="utf-8"))
    return {**run, "decision": run["watched"], "record": record}


def bench_evidently(record: dict, config_path: Path) -> dict:
    """evidently's DataDriftPreset on the full data, in its own process."""
    workdir = config_path.parent
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    job = {
        "reference": str(workdir / config["data"]["source"]), "current": str(workdir / config["drift"]["current"]),
        "numeric": [c["column"] for c in record["columns"] if c["kind"] == "numeric"],
        "categorical": [c["column"] for c in record["columns"] if c["kind"] == "categorical"],
    }
    run = measure([PYTHON, "-c", EVIDENTLY_SCRIPT, json.dumps(job)])
    if run["result"].returncode != 0:
        raise SystemExit(f"evidently failed:\n{run['result'].stderr[-3000:]}")
    return {**run, **json.loads(run["result"].stdout.strip().splitlines()[-1])}


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


class EvidentlyDefaults:
    """evidently 0.7.23's DataDriftPreset defaults, column by column, through its own stattest registry."""

    def __init__(self):
        # pylint: disable=import-outside-toplevel  # evidently takes ~4 s to import; only this study needs it
        import warnings

        warnings.filterwarnings("ignore")
        from evidently.legacy.calculations.stattests import get_stattest
        from evidently.legacy.core import ColumnType

        self.get_stattest, self.types = get_stattest, {"numeric": ColumnType.Numerical,
                                                       "categorical": ColumnType.Categorical}

    def columns(self, reference: pl.DataFrame, current: pl.DataFrame, kinds: dict[str, str]) -> dict[str, tuple]:
        """{column: (method, value, drifted)} as the preset decides them (nulls and infinities dropped first)."""
        out = {}
        ref_pd, cur_pd = reference.to_pandas(), current.to_pandas()
        for name, kind in kinds.items():
            ref = ref_pd[name].replace([np.inf, -np.inf], np.nan).dropna()
            cur = cur_pd[name].replace([np.inf, -np.inf], np.nan).dropna()
            test = self.get_stattest(ref, cur, self.types[kind], None)
            result = test(ref, cur, self.types[kind], None)
            out[name] = (test.display_name, float(result.drift_score), bool(result.drifted))
        return out

    @staticmethod
    def check_with_report(reference: pl.DataFrame, current: pl.DataFrame, kinds: dict[str, str],
                          expected: dict[str, tuple]) -> None:
        """Run the real ``Report([DataDriftPreset()])`` once and require the same values as :meth:`columns`."""
        # pylint: disable=import-outside-toplevel  # as in __init__
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        numeric = [c for c, k in kinds.items() if k == "numeric"]
        definition = DataDefinition(numerical_columns=numeric,
                                    categorical_columns=[c for c in kinds if c not in numeric])
        snapshot = Report([DataDriftPreset()]).run(
            current_data=Dataset.from_pandas(current.select(list(kinds)).to_pandas(), data_definition=definition),
            reference_data=Dataset.from_pandas(reference.select(list(kinds)).to_pandas(), data_definition=definition))
        for metric in snapshot.dict()["metrics"]:
            column = metric["config"].get("column")
            if metric["config"].get("type", "").endswith("ValueDrift") and column in expected:
                if not np.isclose(metric["value"], expected[column][1], rtol=1e-9, atol=1e-12):
                    raise SystemExit(f"evidently's Report disagrees with its stattests on {column}: "
                                     f"{metric['value']} vs {expected[column][1]}")


def _split(size: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """A same-distribution split (reference, clean current) and a drifted current, all of ``size`` rows."""
    both = pl.from_pandas(generate(2 * size, seed=1000 + seed))
    order = np.random.default_rng(seed).permutation(both.height)
    drifted = pl.from_pandas(generate(size, seed=5000 + seed, start="2024-07-01", days=31, drift=True))
    return both[order[:size]], both[order[size:]], drifted


class _Tally:
    """Counts for one rule at one size."""

    def __init__(self):
        self.column_alarms = self.columns = self.dataset_alarms = self.splits = 0
        self.raised = self.detected = self.exact = 0

    def add(self, clean: dict[str, bool], drifted: dict[str, bool], dataset_rule) -> None:
        """One split: per-column decisions on the clean and on the drifted batch."""
        self.splits += 1
        self.columns += len(clean)
        self.column_alarms += sum(clean.values())
        self.dataset_alarms += dataset_rule(clean)
        found = {c for c, flag in drifted.items() if flag}
        self.raised += dataset_rule(drifted)
        self.detected += dataset_rule(drifted) and found >= set(DRIFTED_COLUMNS)
        self.exact += found == set(DRIFTED_COLUMNS)

    def row(self) -> dict:
        """Rates over the splits."""
        return {"column_false_alarms": self.column_alarms / self.columns,
                "dataset_false_alarms": self.dataset_alarms / self.splits, "raised": self.raised / self.splits,
                "detected": self.detected / self.splits, "exact": self.exact / self.splits}


def share_rule(share: float):
    """The dataset decision from per-column flags: at least ``share`` of the columns flagged."""
    return lambda flags: sum(flags.values()) / len(flags) >= share


def signal_quality(sizes: list[int], repeats: dict[int, int], evidently_max_rows: int = 3000,
                   drift_share: float = 0.1) -> list[dict]:
    """False alarms on same-distribution splits and detection of the injected columns, per size and rule."""
    evidently = EvidentlyDefaults() if any(size <= evidently_max_rows for size in sizes) else None
    results = []
    for size in sizes:
        tallies = {name: _Tally() for name in ("ours", "naive", "evidently", "evidently_0.1")}
        by_test: dict[str, list[int]] = {}  # evidently's test -> [clean columns flagged, clean columns]
        started = time.perf_counter()
        for seed in range(repeats[size]):
            reference, clean, drifted = _split(size, seed)
            kinds = _kinds(reference)
            ours = [column_drift(reference, current, kinds, threshold=0.1) for current in (clean, drifted)]
            naive = [column_drift(reference, current, kinds, threshold=0.1, correction="none")
                     for current in (clean, drifted)]
            tallies["ours"].add(*({c.column: c.drifted for c in r} for r in ours), share_rule(drift_share))
            tallies["naive"].add(*({c.column: c.drifted for c in r} for r in naive), share_rule(drift_share))
            if evidently is None or size > evidently_max_rows:
                continue
            theirs = [evidently.columns(reference, current, kinds) for current in (clean, drifted)]
            if seed == 0:
                evidently.check_with_report(reference, clean, kinds, theirs[0])
            flags = [{c: v[2] for c, v in t.items()} for t in theirs]
            for method, _, flagged in theirs[0].values():
                counts = by_test.setdefault(method, [0, 0])
                counts[0] += flagged
                counts[1] += 1
            tallies["evidently"].add(*flags, share_rule(0.5))
            tallies["evidently_0.1"].add(*flags, share_rule(drift_share))
        results.append({"rows": size, "splits": repeats[size], "seconds": time.perf_counter() - started,
                        "evidently_by_test": {m: a / n for m, (a, n) in by_test.items()},
                        **{name: t.row() if t.splits else None for name, t in tallies.items()}})
    return results


def print_quality(rows: list[dict]) -> None:
    """The signal-quality tables: false alarms and detection per size, ours beside the naive count and evidently."""
    print("\n== signal quality: same-distribution splits (false alarms) and the drifted period (detection) ==")
    print("col = share of clean columns flagged; dataset = share of clean splits called dataset drift; "
          "detect = share of drifted batches called dataset drift with all 4 injected columns flagged")
    header = (f"{'rows/side':>9} {'splits':>6} | {'ours col':>8} {'dataset':>7} {'detect':>6} | "
              f"{'naive col':>9} {'dataset':>7} {'detect':>6} | {'evidently col':>13} {'dataset':>7} {'detect':>6} | "
              f"{'evidently@0.1 dataset':>21} {'detect':>6} | {'s':>4}")
    print(header)
    print("-" * len(header))
    for row in rows:
        ours, naive, theirs, theirs_01 = row["ours"], row["naive"], row["evidently"], row["evidently_0.1"]
        evidently = (f"{theirs['column_false_alarms']:>13.2%} {theirs['dataset_false_alarms']:>7.0%} "
                     f"{theirs['detected']:>6.0%} | {theirs_01['dataset_false_alarms']:>21.0%} "
                     f"{theirs_01['detected']:>6.0%}" if theirs
                     else f"{'(not run)':>13} {'':>7} {'':>6} | {'':>21} {'':>6}")
        print(f"{row['rows']:>9,} {row['splits']:>6} | {ours['column_false_alarms']:>8.2%} "
              f"{ours['dataset_false_alarms']:>7.0%} {ours['detected']:>6.0%} | "
              f"{naive['column_false_alarms']:>9.2%} {naive['dataset_false_alarms']:>7.0%} {naive['detected']:>6.0%} | "
              f"{evidently} | {row['seconds']:>4.0f}")
    print("ours: a distance above 1,000 non-null reference values, a test (KS, Z, two-sample chi-square) at or "
          "below, Benjamini-Hochberg across the tested columns, dataset drift at 10% of the columns; naive: the "
          "same without the correction; evidently: DataDriftPreset defaults (dataset drift at 50% of the "
          "columns; @0.1: its column decisions counted at this project's 10%).")
    print("\nours on the drifted batch: dataset drift raised / all 4 injected columns flagged / exactly those flagged "
          "(installment is computed from interest_rate, so it moves too)")
    for row in rows:
        ours = row["ours"]
        print(f"{row['rows']:>9,}: {ours['raised']:.0%} / {ours['detected']:.0%} / {ours['exact']:.0%}")
    if any(row["evidently_by_test"] for row in rows):
        print("\nevidently's defaults, clean columns flagged per test:")
    for row in rows:
        if row["evidently_by_test"]:
            rates = sorted(row["evidently_by_test"].items())
            print(f"{row['rows']:>9,}: " + ", ".join(f"{method} {rate:.1%}" for method, rate in rates))


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per side for the speed comparison")
    parser.add_argument("--workdir", default="/tmp/mlops-bench-drift")
    parser.add_argument("--runs", type=int, default=3, help="runs of `python -m mlops drift` (the median is compared)")
    parser.add_argument("--skip-evidently", action="store_true", help="do not run evidently on the full data")
    parser.add_argument("--skip-quality", action="store_true", help="do not run the false-alarm study")
    parser.add_argument("--skip-speed", action="store_true", help="run only the false-alarm study")
    parser.add_argument("--captured", action="store_true",
                        help="also check the current rows as captured traffic (SageMaker data-capture JSON Lines)")
    parser.add_argument("--repeats", default="100:100,300:100,1000:100,3000:50,10000:50,100000:20,1000000:5",
                        help="size:splits pairs for the false-alarm study")
    parser.add_argument("--evidently-max-rows", type=int, default=3000,
                        help="run evidently's defaults in the false-alarm study up to this size")
    args = parser.parse_args()

    if not args.skip_speed:
        speed(args)
    if not args.skip_quality:
        repeats = {int(k): int(v) for k, v in (pair.split(":") for pair in args.repeats.split(","))}
        print_quality(signal_quality(sorted(repeats), repeats, args.evidently_max_rows))
    return 0


def _row(label: str, wall: float, theirs: float, peak: float | None = None, cpu: float | None = None) -> str:
    ratio = f"{theirs / wall:>16.1f}x" if theirs else ""
    return (f"{label:<38} {wall:>8.2f} {'' if peak is None else f'{peak:.0f}':>12} "
            f"{'' if cpu is None else f'{cpu:.1f}':>8} {ratio}")


def speed(args: argparse.Namespace) -> None:
    """Parts 1 and 2: ``make drift`` (``--runs`` times) and evidently on the full data, side by side, and agreement."""
    config_path = prepare(Path(args.workdir), args.rows)
    runs = [bench_check(config_path, args.rows) for _ in range(args.runs)]
    ours = sorted(runs, key=lambda run: run["decision"])[len(runs) // 2]  # the median run by its decision path
    record = ours["record"]
    seconds = record["seconds"]
    print(f"\n== python -m mlops drift: {args.rows:,} x {args.rows:,} rows, {len(record['columns'])} feature columns "
          f"(+ target, prediction, performance), {len(runs)} run(s) ==")
    for run in runs:
        print(f"decision path (start -> drift.json and drift.md written) {run['decision']:.2f} s, "
              f"wall {run['wall']:.2f} s, peak RSS (process tree) {run['peak_mb']:.0f} MB, CPU {run['cpu']:.1f} s, "
              f"exit {run['exit']}")
    print(f"inside the median run (from the stage's start): load {seconds['load']:.2f} s, statistics "
          f"{seconds['statistics']:.2f} s, report sample {seconds['report_sample']:.2f} s, model (left after them) "
          f"{seconds['model']:.2f} s, decision {seconds['decision']:.2f} s, "
          f"HTML wait {seconds.get('html_wait', 0):.2f} s, total {seconds['total']:.2f} s; CPU of the process (all "
          f"threads, imports included, not the HTML worker) until the decision {seconds.get('decision_cpu', 0):.1f} s")
    print(f"HTML report: {record['html_report'] or record['html_error']}; prediction drift reference: "
          f"{(record['prediction_drift'] or {}).get('reference')}")
    print("drifted columns:", [c["column"] for c in record["columns"] if c["drifted"]])
    if args.captured:
        captured = bench_captured(config_path, args.rows)
        inner, capture = captured["record"]["seconds"], captured["record"]["capture"]
        same = [c["column"] for c in captured["record"]["columns"] if c["drifted"]] == \
            [c["column"] for c in record["columns"] if c["drifted"]]
        print(f"\n== the same check on captured traffic ({capture['events']:,} requests, {capture['files']} JSON "
              f"Lines files) ==\ndecision path {captured['decision']:.2f} s (reading and decoding the capture: "
              f"load {inner['load']:.2f} s), wall {captured['wall']:.2f} s, peak RSS {captured['peak_mb']:.0f} MB, "
              f"same drifted columns as on Parquet: {same}")
    if args.skip_evidently:
        return
    theirs = bench_evidently(record, config_path)
    agree = agreement(record, theirs)
    print(f"\n== evidently {args.rows:,} x {args.rows:,} rows, DataDriftPreset (default methods), full data ==")
    print(f"wall {theirs['wall']:.1f} s (Report.run {theirs['run_seconds']:.1f} s), "
          f"peak RSS {theirs['peak_mb']:.0f} MB, CPU {theirs['cpu']:.1f} s")
    decisions = [run["decision"] for run in runs]
    print(f"\n== side by side (same machine, one after the other; noisy when other jobs share the cores) ==\n"
          f"{'':<38} {'wall s':>8} {'peak RSS MB':>12} {'CPU s':>8} {'evidently / ours':>17}\n"
          + _row("ours: decision path (median run)", ours["decision"], theirs["wall"],
                 cpu=seconds.get("decision_cpu")) + "\n"
          + _row(f"ours: decision path (best of {len(runs)})", min(decisions), theirs["wall"]) + "\n"
          + _row("ours: whole run, HTML included (median)", ours["wall"], theirs["wall"], ours["peak_mb"], ours["cpu"])
          + "\n" + _row("evidently DataDriftPreset", theirs["wall"], 0, theirs["peak_mb"], theirs["cpu"]))
    print(f"decision path over {len(runs)} run(s): median {statistics.median(decisions):.2f} s, "
          f"min {min(decisions):.2f} s, max {max(decisions):.2f} s; peak RSS max "
          f"{max(run['peak_mb'] for run in runs):.0f} MB; "
          f"memory: evidently / ours x{theirs['peak_mb'] / ours['peak_mb']:.1f}")
    print(f"agreement: {agree['same']}/{agree['columns']} columns same decision; "
          f"max |value difference| {agree['max_abs_diff']:.2e}")
    for row in agree["rows"]:
        print(f"  {row[0]:<26} ours {row[1]:<13} {row[3]:.6f} {'DRIFT' if row[5] else '-':<5}  "
              f"evidently {row[2]:<30} {row[4]:.6f} {'DRIFT' if row[6] else '-'}")

if __name__ == "__main__":
    sys.exit(main())
