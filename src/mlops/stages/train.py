"""Train the model (``make train``).

Input: the config, the training data (``data.source``, or ``--data``), the data contract: data
that breaks it is refused before anything is written.
Output: ``models/<version>/`` with ``model.skops`` and ``metadata.json`` (the lineage record:
git SHA, data fingerprint and row counts, config, features, library versions, training time),
and ``models/LATEST`` naming that version; step outputs ``version`` and ``model-dir``. The version
folder appears only when all is written.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mlops import git, jobs, remote
from mlops.config import Config
from mlops.context import Context, Result
from mlops.data import Dataset, Features, infer_features, split
from mlops.errors import DataError, ModelError
from mlops.io import atomic_dir, atomic_write_json, atomic_write_text
from mlops.lineage import MODEL_FILE, library_versions, new_version, suite_info
from mlops.metrics import positive_label
from mlops.model import build_pipeline, save_model

log = logging.getLogger(__name__)


def run(ctx: Context) -> Result:
    """Train on the context's data; the next stage of a composition gets the new model."""
    if jobs.wanted(ctx.config):  # compute: sagemaker: a Training job runs this stage in its container
        version, folder = remote.train_job(ctx.config, ctx.data, ctx.source)
    else:
        version, folder = train(ctx.config, ctx.checked(), source=ctx.source)
    ctx.model = str(folder)
    return Result(message=f"Trained {version} -> {folder}",
                  outputs={"version": version, "model-dir": os.path.relpath(folder)})


def _check_target(config: Config, y) -> list:
    target = config.data.target
    if y.isna().any():
        raise DataError(
            f"target column '{target}' has {int(y.isna().sum())} null value(s) in training rows; drop or fill them"
        )
    if config.task == "regression":
        if not np.issubdtype(y.dtype, np.number):
            raise DataError(
                f"task is regression but target '{target}' is not numeric (dtype {y.dtype}); fix task in {config.path}"
            )
        return []
    classes = sorted(y.unique().tolist())
    if len(classes) < 2:
        raise DataError(
            f"target '{target}' has only one class ({classes[0]!r}) in the training rows; "
            "a classifier needs at least two. Check data.source and data.target"
        )
    if config.task == "binary" and len(classes) > 2:
        raise DataError(
            f"task is binary but target '{target}' has {len(classes)} classes {classes[:10]}; "
            f"set task: multiclass in {config.path}"
        )
    if config.task == "binary":
        try:
            positive_label(classes, config.data.positive_label)
        except ValueError as exc:
            raise DataError(f"{exc} of target '{target}' in the training rows; fix data.positive_label "
                            f"in {config.path}") from None
    return classes


def train(config: Config, dataset: Dataset, source: str | None = None) -> tuple[str, Path]:
    """Fit the pipeline and write a new model version; return (version, folder).

    ``source`` is what the lineage records as the data source (default ``data.source``).
    """
    features = infer_features(config, dataset.frame)
    _check_all_null(config, dataset, features)
    parts = split(config, dataset.frame, features)
    classes = _check_target(config, parts.y_train)
    pipeline = build_pipeline(config, features)
    log.info("training %s on %s rows, %s features", config.model.estimator, len(parts.x_train), len(features.all))
    started = time.perf_counter()
    try:
        pipeline.fit(parts.x_train, parts.y_train)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"fitting {config.model.estimator} failed: {exc}") from None
    seconds = time.perf_counter() - started

    sha = git.head_sha(config.root)
    version = new_version(sha)
    metadata = {
        "version": version,
        "git_sha": sha,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "project": config.project,
        "task": config.task,
        "target": config.data.target,
        "classes": classes,
        "positive_label": positive_label(classes, config.data.positive_label) if config.task == "binary" else None,
        "features": {"numeric": list(features.numeric), "categorical": list(features.categorical)},
        "estimator": config.model.estimator,
        "params": pipeline.named_steps["model"].get_params(),
        "data": {
            "source": source or config.data.source,
            "files": [os.path.relpath(f, config.root) if "://" not in f else f for f in dataset.files],
            "fingerprint": dataset.fingerprint,
            "rows": dataset.rows,
            "train_rows": len(parts.x_train),
            "test_rows": len(parts.x_test),
        },
        "split": config.split.model_dump(),
        "config": config.model_dump(mode="json"),
        "libraries": library_versions(),
        "suite": suite_info(),
        "training_seconds": round(seconds, 3),
    }
    root = config.models_dir
    with atomic_dir(root / version) as folder:
        save_model(pipeline, folder / MODEL_FILE)
        metadata["model_bytes"] = (folder / MODEL_FILE).stat().st_size
        atomic_write_json(folder / "metadata.json", metadata)
    atomic_write_text(root / "LATEST", version + "\n")
    log.info("trained %s in %.2fs -> %s", version, seconds, root / version)
    return version, root / version


def _check_all_null(config: Config, dataset: Dataset, features: Features) -> None:
    nulls = dataset.frame.select(features.all).null_count().row(0, named=True)
    empty = [name for name, count in nulls.items() if count == dataset.rows]
    if empty:
        raise DataError(
            f"feature column(s) {empty} are entirely null; remove them from the data or list them "
            f"under data.drop_columns in {config.path}"
        )
