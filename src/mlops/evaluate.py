"""Evaluate a trained model on the held-out rows (``make evaluate``).

Input: a model folder (default: ``models/LATEST``), the config and the training data.
Output: ``reports/metrics.json`` (every metric of the task, confusion matrix, predict latency
per 1,000 rows, lineage summary), plots under ``reports/plots/``, and a copy of the metrics in
the model folder (``metrics.json``) so the model carries its scores.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from mlops.config import Config
from mlops.data import Dataset, Features, split
from mlops.io import atomic_write_json
from mlops.metrics import compute, predict
from mlops.model import load_model
from mlops.plots import confusion, make_plots
from mlops.lineage import MODEL_FILE, read_metadata

log = logging.getLogger(__name__)


def latency_ms_per_1k(pipeline, x, repeats: int = 7) -> dict[str, float]:
    """p50/p95 wall time of predicting 1,000 rows (or all rows, if fewer), in milliseconds."""
    batch = x.iloc[:1000]
    scale = 1000 / max(len(batch), 1)
    predict_fn = getattr(pipeline, "predict_proba", pipeline.predict)
    predict_fn(batch)  # warm-up: first call pays for lazy imports and allocation
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict_fn(batch)
        timings.append((time.perf_counter() - started) * 1000 * scale)
    return {"p50": round(float(np.percentile(timings, 50)), 3), "p95": round(float(np.percentile(timings, 95)), 3)}


def evaluate(config: Config, dataset: Dataset, model_dir: Path) -> dict:
    """Score the model on the held-out rows, write metrics and plots, return the metrics record."""
    metadata = read_metadata(model_dir)
    features = Features(tuple(metadata["features"]["numeric"]), tuple(metadata["features"]["categorical"]))
    pipeline = load_model(model_dir / MODEL_FILE)
    parts = split(config, dataset.frame, features)
    started = time.perf_counter()
    pred = predict(pipeline, parts.x_test, parts.y_test, config.task)
    predict_seconds = time.perf_counter() - started
    scores = compute(config.task, pred)
    out = config.reports_dir
    plots = make_plots(config.task, pred, out / "plots")
    record = {
        "version": metadata["version"],
        "task": config.task,
        "primary_metric": config.primary_metric,
        "metrics": scores,
        "test_rows": len(parts.y_test),
        "predict_seconds": round(predict_seconds, 4),
        "latency_ms_per_1k": latency_ms_per_1k(pipeline, parts.x_test),
        "plots": {name: str(path.relative_to(out)) for name, path in plots.items()},
        "data_fingerprint": dataset.fingerprint,
        "model_dir": str(model_dir),
    }
    if config.task != "regression":
        labels, matrix = confusion(pred)
        record["confusion_matrix"] = {"labels": [str(x) for x in labels], "matrix": matrix.tolist()}
    atomic_write_json(out / "metrics.json", record)
    atomic_write_json(model_dir / "metrics.json", record)
    log.info("evaluated %s on %s rows: %s=%.4f", metadata["version"], len(parts.y_test),
             config.primary_metric, scores[config.primary_metric])
    return record
