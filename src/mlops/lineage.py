"""Lineage: what produced a model (git SHA, version id, library versions) and where models are.

Input: the config and a commit SHA (:func:`mlops.git.head_sha`). Output: version ids, the
lineage fields of ``metadata.json``, and model folders resolved from ``models/LATEST``. Standard
library only, so light stages (report, registry) need not import scikit-learn.
"""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

from mlops.config import Config
from mlops.errors import ModelError
from mlops.io import read_json

# The model file inside a model folder (models/<version>/, registry versions, packages).
MODEL_FILE = "model.skops"
# A version id: UTC timestamp and short git SHA (new_version); the serving stack's ModelVersion pattern.
VERSION_PATTERN = r"[0-9]{8}T[0-9]{6}Z-[0-9a-z]{1,40}"
LIBRARIES = ("scikit-learn", "pandas", "polars", "numpy", "scipy", "skops", "pandera")


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
