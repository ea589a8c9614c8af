"""Train the model (``make train``).

Input: the config, the training data (``data.source``), the data contract.
Output: ``models/<version>/`` with ``model.skops`` and ``metadata.json`` (the lineage record:
git SHA, data fingerprint and row counts, config, features, library versions, training time),
and ``models/LATEST`` naming that version. The version folder appears only when all is written.
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import time
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np

from mlops.config import Config
from mlops.data import Dataset, Features, infer_features, split
from mlops.errors import DataError, ModelError
from mlops.io import atomic_dir, atomic_write_json, atomic_write_text, read_json
from mlops.model import MODEL_FILE, build_pipeline, save_model

log = logging.getLogger(__name__)

LIBRARIES = ("scikit-learn", "pandas", "polars", "numpy", "scipy", "skops", "pandera")


def git_sha(root: str) -> str:
    """The commit being built: ``$GITHUB_SHA`` in Actions, else ``git rev-parse``, else 'unknown'."""
    if os.environ.get("MLOPS_GIT_SHA"):
        return os.environ["MLOPS_GIT_SHA"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("GITHUB_SHA", "unknown")


def new_version(sha: str, now: datetime | None = None) -> str:
    """A sortable version id: UTC timestamp plus the short git SHA."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{sha[:7] if sha != 'unknown' else 'nogit'}"


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries a model depends on."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


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
    return classes


def train(config: Config, dataset: Dataset) -> tuple[str, Path]:
    """Fit the pipeline and write a new model version; return (version, folder)."""
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

    sha = git_sha(config.root)
    version = new_version(sha)
    metadata = {
        "version": version,
        "git_sha": sha,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "project": config.project,
        "task": config.task,
        "target": config.data.target,
        "classes": classes,
        "features": {"numeric": list(features.numeric), "categorical": list(features.categorical)},
        "estimator": config.model.estimator,
        "params": pipeline.named_steps["model"].get_params(),
        "data": {
            "source": config.data.source,
            "files": [os.path.relpath(f, config.root) if "://" not in f else f for f in dataset.files],
            "fingerprint": dataset.fingerprint,
            "rows": dataset.rows,
            "train_rows": len(parts.x_train),
            "test_rows": len(parts.x_test),
        },
        "split": config.split.model_dump(),
        "config": config.model_dump(mode="json"),
        "libraries": library_versions(),
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


def resolve_model_dir(config: Config, model: str | None = None) -> Path:
    """A model folder: the one given, or the version named in ``models/LATEST``."""
    if model:
        path = Path(model)
        if not path.is_dir():
            raise ModelError(f"model folder {path} not found")
        return path
    latest = config.models_dir / "LATEST"
    if not latest.is_file():
        raise ModelError(f"no trained model: {latest} is missing; run `make train` first")
    folder = config.models_dir / latest.read_text(encoding="utf-8").strip()
    if not folder.is_dir():
        raise ModelError(f"{latest} names {folder.name}, which does not exist; run `make train` again")
    return folder


def read_metadata(folder: Path) -> dict:
    """A model's lineage record."""
    path = folder / "metadata.json"
    if not path.is_file():
        raise ModelError(f"{path} is missing; the model folder is incomplete. Retrain with `make train`")
    return read_json(path)
