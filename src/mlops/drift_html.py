"""Worker process for the evidently HTML drift report (``python -m mlops.drift_html``).

It imports evidently first (3-5 s), then reads one JSON job from stdin: Parquet samples of the
reference and current data, the column kinds, the method and threshold per column (the ones
:mod:`mlops.drift_stats` used on the full data) and the output path. It writes evidently's
``DataDriftPreset`` report there atomically. An empty line means "no report": exit quietly.
The drift check starts it before reading data, so the import overlaps the real work.
"""

from __future__ import annotations

import json
import sys
import warnings


def build(job: dict) -> None:
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
    build(json.loads(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
