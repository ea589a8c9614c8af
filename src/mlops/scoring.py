"""Score a model folder on rows, and time its predictions: what evaluate and compare both measure.

Input: a model folder (``model.skops`` + ``metadata.json``), the config and a polars frame of
rows (with the target). Output: a record per model (its predictions, every metric of the task,
lineage fields for the report, the columns it needed that the rows lack) and predict latency
p50/p95 per 1,000 rows, timed in turns when several models are timed so all see the same load.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl

from mlops.config import Config
from mlops.data import features_of, to_pandas
from mlops.lineage import MODEL_FILE, read_metadata
from mlops.metrics import compute, predict
from mlops.model import load_model

LATENCY_ROWS = 1000


def score(config: Config, frame: pl.DataFrame, model_dir: Path, label: str) -> dict:
    """Score one model on ``frame``; the record the reports show for it (``pred`` and ``_timing`` are private)."""
    meta = read_metadata(model_dir)
    features = features_of(meta)
    missing = [c for c in features.all if c not in frame.columns]
    rows = frame.with_columns(
        pl.lit(None, dtype=pl.Float64 if c in features.numeric else pl.String).alias(c) for c in missing)
    pipeline = load_model(model_dir / MODEL_FILE)
    x = to_pandas(rows, features.all)
    pred = predict(pipeline, x, rows.get_column(config.data.target).to_numpy(), config.task,
                   config.data.positive_label)
    return {
        "label": label,
        "pred": pred,
        "metrics": compute(config.task, pred),
        "version": meta["version"],
        "git_sha": meta.get("git_sha", "unknown"),
        "estimator": meta.get("estimator", "?"),
        "data_source": meta.get("data", {}).get("source"),
        "data_fingerprint": meta.get("data", {}).get("fingerprint", ""),
        "train_rows": meta.get("data", {}).get("train_rows"),
        "training_seconds": meta.get("training_seconds"),
        "model_bytes": meta.get("model_bytes") or (model_dir / MODEL_FILE).stat().st_size,
        "missing_columns": missing,
        "_timing": (pipeline, latency_batch(x)),
    }


def latency_batch(x):
    """Exactly LATENCY_ROWS rows to time: the first ones, repeated when there are fewer (a small held-out
    set timed as-is and scaled up would charge per-call overhead to every row)."""
    return x.iloc[np.resize(np.arange(len(x)), LATENCY_ROWS)] if len(x) else x


def latency(models: list[tuple], repeats: int = 7) -> list[dict[str, float]]:
    """p50/p95 ms to predict 1,000 rows for each (pipeline, rows), timed in turns (same load for all)."""
    timings: list[list[float]] = [[] for _ in models]
    for pipeline, batch in models:
        getattr(pipeline, "predict_proba", pipeline.predict)(batch)  # warm-up: lazy imports, allocation
    for _ in range(repeats):
        for (pipeline, batch), times in zip(models, timings):
            started = time.perf_counter()
            getattr(pipeline, "predict_proba", pipeline.predict)(batch)
            times.append((time.perf_counter() - started) * 1000 * LATENCY_ROWS / max(len(batch), 1))
    return [{"p50": round(float(np.percentile(times, 50)), 3), "p95": round(float(np.percentile(times, 95)), 3)}
            for times in timings]


def measure_latency(sides: list[dict], repeats: int = 7) -> None:
    """Set ``latency_ms_per_1k`` on every scored side (see :func:`latency`)."""
    for side, measured in zip(sides, latency([side["_timing"] for side in sides], repeats)):
        side["latency_ms_per_1k"] = measured
