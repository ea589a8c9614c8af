"""Evaluate a trained model on the held-out rows (``make evaluate``).

Input: a model folder (default: ``models/LATEST``, or ``--model``), the config and the data
(refused before anything is written when it breaks the data contract).
Output: ``reports/metrics.json`` (every metric of the task, confusion matrix, predict latency
per 1,000 rows, lineage summary), plots under ``reports/plots/``, and a copy of the metrics in
the model folder (``metrics.json``) so the model carries its scores, with its outputs on the
held-out rows (``holdout_predictions.parquet``, at most ``drift.model_sample_rows`` of them): the
reference that prediction drift compares production outputs with.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import polars as pl

from mlops.config import Config
from mlops.context import Context, Result
from mlops.data import Dataset, split
from mlops.io import atomic_path, atomic_write_json
from mlops.lineage import HOLDOUT_PREDICTIONS, MODEL_FILE, read_metadata, resolve_model_dir
from mlops.errors import DataError
from mlops.metrics import Predictions, compute, confusion_record, model_outputs, predict, undefined_reason
from mlops.model import load_model
from mlops.plots import make_plots
from mlops.scoring import features_of, latency, latency_batch

log = logging.getLogger(__name__)


def run(ctx: Context) -> Result:
    """Score the model (the context's, else models/LATEST) on the held-out rows."""
    record = evaluate(ctx.config, ctx.checked(), resolve_model_dir(ctx.config, ctx.model))
    primary = record["primary_metric"]
    return Result(message=f"Evaluated {record['version']} on {record['test_rows']} held-out rows: "
                          f"{primary}={record['metrics'][primary]:.4f}")


def evaluate(config: Config, dataset: Dataset, model_dir: Path) -> dict:
    """Score the model on the held-out rows, write metrics and plots, return the metrics record."""
    metadata = read_metadata(model_dir)
    pipeline = load_model(model_dir / MODEL_FILE)
    parts = split(config, dataset.frame, features_of(metadata))
    started = time.perf_counter()
    pred = predict(pipeline, parts.x_test, parts.y_test, config.task, config.data.positive_label)
    predict_seconds = time.perf_counter() - started
    scores = compute(config.task, pred)
    why = undefined_reason(config.task, pred, config.primary_metric, scores[config.primary_metric])
    if why:
        raise DataError(f"cannot evaluate {metadata['version']}: {why} held out. Hold out more rows "
                        f"(split.test_size), use split.method: random, or add data; see {config.path}")
    out = config.reports_dir
    plots = make_plots(config.task, pred, out / "plots")
    record = {
        "version": metadata["version"],
        "task": config.task,
        "primary_metric": config.primary_metric,
        "positive_label": pred.positive if config.task == "binary" else None,
        "metrics": scores,
        "test_rows": len(parts.y_test),
        "predict_seconds": round(predict_seconds, 4),
        "latency_ms_per_1k": latency([(pipeline, latency_batch(parts.x_test))])[0],
        "plots": {name: str(path.relative_to(out)) for name, path in plots.items()},
        "data_fingerprint": dataset.fingerprint,
        "model_dir": str(model_dir),
    }
    if config.task != "regression":
        record["confusion_matrix"] = confusion_record(pred)
    atomic_write_json(out / "metrics.json", record)
    atomic_write_json(model_dir / "metrics.json", record)
    write_holdout_predictions(config, pred, model_dir / HOLDOUT_PREDICTIONS)
    log.info("evaluated %s on %s rows: %s=%.4f", metadata["version"], len(parts.y_test),
             config.primary_metric, scores[config.primary_metric])
    return record


def write_holdout_predictions(config: Config, pred: Predictions, path: Path) -> None:
    """The model's outputs on at most ``drift.model_sample_rows`` held-out rows (seeded), for prediction drift."""
    outputs = model_outputs(pred, config.task)
    rows = config.drift.model_sample_rows
    if len(outputs) > rows:
        outputs = outputs[np.sort(np.random.default_rng(config.split.seed).choice(len(outputs), rows, replace=False))]
    frame = pl.DataFrame({"prediction": outputs.tolist() if outputs.dtype == object else outputs})
    with atomic_path(path) as temp:
        frame.write_parquet(temp)
