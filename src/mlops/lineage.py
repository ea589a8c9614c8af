"""Lineage: what produced a model (git SHA, version id, library versions) and where models are.

Input: the config and a commit SHA (:func:`mlops.git.head_sha`). Output: version ids, the
lineage fields of ``metadata.json``, and model folders resolved from ``models/LATEST``. Standard
library only, so light stages (report, registry) need not import scikit-learn.
"""

from __future__ import annotations

import hashlib
import os
import platform
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

from mlops import __version__, git
from mlops.config import Config
from mlops.errors import ModelError
from mlops.io import read_json

# The model file inside a model folder (models/<version>/, registry versions, packages).
MODEL_FILE = "model.skops"
# Beside it, written by evaluate: the model's outputs on (a sample of) its held-out rows, the reference of
# prediction drift (mlops.monitoring); older or unevaluated models have none.
HOLDOUT_PREDICTIONS = "holdout_predictions.parquet"
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


# The suite's own folder (src/mlops/lineage.py -> the folder holding src/): a fork's checkout, or the
# action's checkout when another repository uses the actions by tag.
SUITE_HOME = Path(__file__).resolve().parents[2]


def suite_info() -> dict:
    """Which suite code runs: version, folder, commit (of a git checkout), the ref an action was used by, code digest.

    ``ref`` comes from ``$MLOPS_SUITE_REF``, which the actions set to ``<owner>/<repo>@<ref>``; a
    tarball the runner downloaded for ``uses: ...@v1`` has no .git, so the code digest (SHA-256 of
    the package's files) is what identifies the code there.
    """
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    commit = None
    if (SUITE_HOME / ".git").exists() and git.toplevel(SUITE_HOME) == SUITE_HOME:
        commit = git.run(SUITE_HOME, "rev-parse", "HEAD", check=False) or None
    ref = os.environ.get("MLOPS_SUITE_REF", "").strip()
    return {"version": __version__, "home": str(SUITE_HOME), "commit": commit,
            "ref": ref if ref and not ref.startswith("@") and not ref.endswith("@") else None,
            "code_sha256": digest.hexdigest()}


def suite_line(info: dict | None = None) -> str:
    """One line naming the suite: ``mlops 0.1.0 (commit abc123456789, acme/mlops@v1) from /path``."""
    info = info or suite_info()
    named = [f"commit {info['commit'][:12]}" if info.get("commit") else f"code {info['code_sha256'][:12]}"]
    named += [info["ref"]] if info.get("ref") else []
    return f"mlops {info['version']} ({', '.join(named)}) from {info['home']}"


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
