"""evidently's HTML drift report, built in a worker process (``python -m mlops.drift_html``).

The worker imports evidently first (3-5 s), then reads one JSON job from stdin: Parquet samples
of the reference and current data, the column kinds, the method and threshold per column (the
ones :mod:`mlops.drift_stats` used on the full data) and the output path. It writes evidently's
``DataDriftPreset`` report there atomically. An empty line means "no report": exit quietly.
:class:`HtmlReport` is the drift stage's side of it: started before the data is read, at a
lower CPU priority, so the import overlaps the real work without slowing it; the stage writes its
decision first and waits for the report afterwards, at most ``drift.report_timeout_seconds``.

Small samples are decided by tests whose p-values are corrected across the columns
(:mod:`mlops.drift_tests`); evidently compares each raw p-value with its column's threshold, so
:func:`evidently_thresholds` gives it the raw cutoff that makes the same decisions, and the
worker registers our two-sample chi-square test (``chi2_homogeneity``) with evidently.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the worker imports this module: it loads only evidently's stack
    import polars as pl

    from mlops.config import Config

# evidently's tests that flag p <= threshold; the others (z) flag p < threshold.
_INCLUSIVE = {"ks", "chi2_homogeneity"}


def evidently_thresholds(family: list) -> dict[str, float]:
    """Per column of one check (:class:`~mlops.drift_stats.ColumnDrift`), the threshold evidently needs.

    A distance keeps its threshold. The tested columns of a family share a raw p-value cutoff:
    the level when no correction changed a p-value, else the largest p-value that drifted (or
    just below the smallest one when none did).
    """
    out = {c.column: c.threshold for c in family}
    tested = [c for c in family if c.tested and c.value is not None]
    if not tested:
        return out
    if all(c.adjusted == c.value for c in tested):
        cutoff = math.nextafter(tested[0].threshold, 0.0)  # ours is p < level; evidently's ks is p <= cutoff
    else:
        drifted = [c.value for c in tested if c.drifted]
        cutoff = max(drifted) if drifted else math.nextafter(min(c.value for c in tested), -math.inf)
    for c in tested:
        out[c.column] = cutoff if c.method in _INCLUSIVE else math.nextafter(cutoff, math.inf)
    return out


def html_job(config: Config, reference: pl.DataFrame, current: pl.DataFrame, families: list[list],
             workdir: Path, out: Path) -> dict:
    """Write the samples of both sides to ``workdir`` (Parquet); the job for the worker.

    ``families`` are the checks' :class:`~mlops.drift_stats.ColumnDrift` lists (the feature
    columns, the target), whose p-value cutoffs are computed apart (:func:`evidently_thresholds`).
    """
    rows, seed = config.drift.report_sample_rows, config.split.seed
    columns = [c for family in families for c in family]
    names = [c.column for c in columns]
    paths = {}
    for side, frame in (("reference", reference), ("current", current)):
        path = workdir / f"{side}.parquet"
        picked = frame.select(names)
        (picked.sample(rows, seed=seed) if picked.height > rows else picked).write_parquet(path)
        paths[side] = str(path)
    return {
        **paths,
        "numeric": [c.column for c in columns if c.kind == "numeric"],
        "categorical": [c.column for c in columns if c.kind == "categorical"],
        "methods": {c.column: c.method for c in columns},
        "thresholds": {name: value for family in families for name, value in evidently_thresholds(family).items()},
        "drift_share": config.drift.drift_share,
        "out": str(out),
    }


class HtmlReport:
    """evidently's HTML report, built by a worker process started before the data is read.

    The worker runs at a lower CPU priority (nice +10): it takes what the drift check leaves idle,
    so its import and report do not slow the decision. :meth:`send` hands it the job and returns at
    once; :meth:`wait` (after the decision is written) waits at most a timeout, then stops it.
    """

    NICENESS = 10

    def __init__(self, enabled: bool):
        self.process = None
        if enabled:
            # The worker imports this same mlops package, whatever the venv's install points at.
            package_root = str(Path(__file__).resolve().parents[1])
            path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with  # lives across the check
                [sys.executable, "-m", "mlops.drift_html"], env={**os.environ, "PYTHONPATH": path},
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            try:
                os.setpriority(os.PRIO_PROCESS, self.process.pid, self.NICENESS)
            except (AttributeError, OSError):  # not POSIX, or not allowed: it runs at normal priority
                pass

    def send(self, job: dict | None) -> None:
        """Hand the worker its job (None: no report) and return at once; it builds the report meanwhile."""
        if self.process is None:
            return
        try:
            self.process.stdin.write(json.dumps(job) + "\n" if job else "\n")
            self.process.stdin.flush()
        except OSError:  # the worker is gone (BrokenPipeError): wait() says why
            pass

    def wait(self, timeout: float) -> str | None:
        """Wait at most ``timeout`` seconds for the report; return an error message or None."""
        if self.process is None:
            return None
        try:
            _, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return f"the evidently report took longer than {timeout:g}s (drift.report_timeout_seconds) and was stopped"
        if self.process.returncode != 0:
            lines = [line for line in err.strip().splitlines() if line.strip()]
            return lines[-1] if lines else f"exit code {self.process.returncode}"
        return None

    def stop(self) -> None:
        """Stop the worker if it still runs (a failed check, or a report past its timeout)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def register_chi2_homogeneity() -> None:
    """Make our two-sample chi-square test (``chi2_homogeneity``) a method evidently knows by name."""
    # pylint: disable=import-outside-toplevel  # evidently, numpy and scipy load in the worker only
    import numpy as np
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    from mlops.drift_tests import chi2_homogeneity

    def test(reference, current, _feature_type, threshold):
        keys = sorted(set(reference.dropna().unique()) | set(current.dropna().unique()), key=str)
        ref, cur = (np.array([side.get(key, 0) for key in keys], dtype=float)
                    for side in (reference.value_counts(), current.value_counts()))
        p_value = chi2_homogeneity(ref, cur).p_value
        return p_value, p_value <= threshold

    register_stattest(StatTest(name="chi2_homogeneity", display_name="chi-square homogeneity p_value",
                               allowed_feature_types=[ColumnType.Categorical, ColumnType.Numerical],
                               default_threshold=0.05), test)


def build_report(job: dict) -> None:
    """Run evidently's DataDriftPreset on the samples and save its HTML report."""
    import pandas as pd  # pylint: disable=import-outside-toplevel  # imported with evidently, in the worker only
    from evidently import DataDefinition, Dataset, Report  # pylint: disable=import-outside-toplevel  # same
    from evidently.presets import DataDriftPreset  # pylint: disable=import-outside-toplevel  # same

    from mlops.io import atomic_path  # pylint: disable=import-outside-toplevel  # same

    if "chi2_homogeneity" in job["methods"].values():
        register_chi2_homogeneity()
    definition = DataDefinition(numerical_columns=job["numeric"], categorical_columns=job["categorical"])
    reference = pd.read_parquet(job["reference"])
    current = pd.read_parquet(job["current"])
    preset = DataDriftPreset(
        columns=[*job["numeric"], *job["categorical"]],
        per_column_method=job["methods"],
        per_column_threshold=job["thresholds"],
        drift_share=job["drift_share"],
    )
    snapshot = Report([preset]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    with atomic_path(job["out"]) as temp:
        snapshot.save_html(temp)


def main() -> int:
    """Import evidently, wait for the job, build the report."""
    warnings.filterwarnings("ignore")
    import evidently.presets  # pylint: disable=import-outside-toplevel,unused-import  # warm the import before the job arrives

    line = sys.stdin.readline().strip()
    if not line:
        return 0
    build_report(json.loads(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
