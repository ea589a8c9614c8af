"""The consumer fixture's data: scikit-learn's bundled breast-cancer set (569 rows, 30 measurements).

Not the template's loan data: the consumer repository has its own columns, target and labels.
``write(folder)`` writes ``data/cells.csv`` (training) and ``data/production.csv`` (a later batch
whose size measurements grew by a quarter: drift).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer


def frame() -> pd.DataFrame:
    """The bundled set with snake_case columns, a ``sample_id`` and the ``diagnosis`` as text."""
    bunch = load_breast_cancer(as_frame=True)
    data = bunch.frame.rename(columns=lambda name: name.replace(" ", "_"))
    data["diagnosis"] = np.asarray(bunch.target_names)[bunch.target.to_numpy()]
    data = data.drop(columns="target")
    data.insert(0, "sample_id", np.arange(1, len(data) + 1))
    return data


def write(folder: Path) -> None:
    """data/cells.csv (all rows) and data/production.csv (300 rows, size columns scaled by 1.25)."""
    data = frame()
    (folder / "data").mkdir(parents=True, exist_ok=True)
    data.to_csv(folder / "data" / "cells.csv", index=False)
    batch = data.sample(300, random_state=1).reset_index(drop=True)
    batch["sample_id"] = np.arange(100_001, 100_001 + len(batch))
    for column in [c for c in batch.columns if c.endswith(("radius", "perimeter", "area"))]:
        batch[column] = batch[column] * 1.25
    batch.to_csv(folder / "data" / "production.csv", index=False)
