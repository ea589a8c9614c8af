"""evidently's HTML drift report, built in a worker process (``python -m mlops.drift_html``).

The worker imports evidently first (3-5 s), then reads one JSON job from stdin: Parquet samples
of the reference and current data, the column kinds, the method and threshold per column (the
ones :mod:`mlops.drift_stats` used on the full data) and the output path. It writes evidently's
``DataDriftPreset`` report there atomically. An empty line means "no report": exit quietly.
:class:`HtmlReport` is the drift stage's side of it: started before the data is read, so the
import overlaps the real work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path


class HtmlReport:
    """evidently's HTML report, built by a worker process started before the data is read."""

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

    def finish(self, job: dict | None, timeout: float = 600) -> str | None:
        """Send the job (None cancels) and wait; return an error message or None."""
        if self.process is None:
            return None
        try:
            _, err = self.process.communicate(json.dumps(job) + "\n" if job else "\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            return f"the evidently report took longer than {timeout:.0f}s and was stopped"
        if self.process.returncode != 0:
            lines = [line for line in err.strip().splitlines() if line.strip()]
            return lines[-1] if lines else f"exit code {self.process.returncode}"
        return None


def build_report(job: dict) -> None:
    """Run evidently's DataDriftPreset on the samples and save its HTML report."""
    import pandas as pd  # pylint: disable=import-outside-toplevel  # imported with evidently, in the worker only
    from evidently import DataDefinition, Dataset, Report  # pylint: disable=import-outside-toplevel  # same
    from evidently.presets import DataDriftPreset  # pylint: disable=import-outside-toplevel  # same

    from mlops.io import atomic_path  # pylint: disable=import-outside-toplevel  # same

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
