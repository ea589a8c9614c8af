"""Find the champion: the model a challenger is compared against, and whose training data drift uses.

Input: the config, optionally a base git ref or SHA (``--base-ref``, ``$MLOPS_BASE_REF``,
``$GITHUB_BASE_REF``, else ``main``). Output: a :class:`Champion` naming a local model folder
(``model.skops`` + ``metadata.json``) or saying plainly that there is no baseline, and the files
it was trained on (:func:`training_sources`).

For a comparison (:func:`resolve`, ``make compare``), first match wins:

a. ``registry``: the version the model registry's ``prod`` pointer names
   (``Registry.from_config(config).pointer("prod")``), when the registry is reachable: a local
   folder that exists, or an ``s3://`` URI with AWS credentials in the job.
b. ``base``: the base branch's model, trained from the base commit in a ``git worktree`` with the
   base commit's own code (``PYTHONPATH=<worktree>/src``; a repository that uses the actions by tag
   and has no src/ of its own: the running suite's code), config and data. Cached in
   ``.cache/champion/<base sha>/`` (or ``$MLOPS_CHAMPION_CACHE``) so a workflow can save and
   restore it with actions/cache keyed on the base SHA. Fork PRs without secrets still get a real
   comparison this way. The model file is loaded later with the committed trusted-types list.
c. ``none``: no baseline yet (first PR, or the base commit has no pipeline): the report shows
   the challenger alone and says so.

For drift (:func:`for_reference`, ``make drift``): the registry's prod model (a registry that
cannot be read is an error there, not a fallback), else ``models/LATEST``, else none (the
reference is then ``data.source``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from mlops import git, s3
from mlops.config import Config
from mlops.errors import MlopsError, ModelError
from mlops.io import atomic_dir, read_json
from mlops.lineage import MODEL_FILE, SUITE_HOME
from mlops.registry import Registry

log = logging.getLogger(__name__)

MODES = ("auto", "registry", "base", "none")
NO_PROD_MODEL = "no prod model yet"
TRAIN_TIMEOUT_SECONDS = 3600


@dataclass(frozen=True)
class Champion:
    """Where the champion came from; ``model_dir`` is None when there is no baseline."""

    source: str  # "registry", "base", "latest", "given" or "none"
    model_dir: Path | None
    description: str  # one sentence for the report
    base_sha: str | None = None
    cached: bool = False
    note: str = ""  # a caveat for the report (e.g. the base branch's model may not be what prod serves)

    @property
    def metadata(self) -> dict | None:
        """The champion's lineage record, or None without a champion."""
        path = self.model_dir / "metadata.json" if self.model_dir else None
        return read_json(path) if path and path.is_file() else None

    @property
    def metrics(self) -> dict | None:
        """The champion's held-out metrics (``metrics.json``), when it carries them."""
        path = self.model_dir / "metrics.json" if self.model_dir else None
        return read_json(path) if path and path.is_file() else None

    @property
    def version(self) -> str | None:
        """The champion's version id."""
        return (self.metadata or {}).get("version")


def cache_root(config: Config) -> Path:
    """Folder of cached champion models (``.cache/champion`` beside the config)."""
    return Path(config.resolve(os.environ.get("MLOPS_CHAMPION_CACHE", ".cache/champion")))


def from_registry(config: Config) -> tuple[Champion | None, str]:
    """(a) The registry's prod model, downloaded to the cache; (None, why not) when unavailable."""
    uri = config.registry.uri
    if s3.is_s3(uri) and not s3.has_credentials():
        return None, f"registry {uri} not readable: no AWS credentials in this job (fork PRs have none)"
    if not uri.startswith("s3://") and not Path(config.resolve(uri)).is_dir():
        return None, f"registry folder {uri} does not exist"
    return _fetch_prod(config, uri)


def _fetch_prod(config: Config, uri: str) -> tuple[Champion | None, str]:
    try:
        registry = Registry.from_config(config)
        pointer = registry.pointer("prod")
        if not pointer or not pointer.get("current"):
            return None, f"registry {uri} has {NO_PROD_MODEL}"
        version = pointer["current"]
        dest = cache_root(config) / "registry" / version
        if (dest / "metadata.json").is_file():
            return Champion("registry", dest, f"the prod model `{version}` from the registry", cached=True), ""
        with atomic_dir(dest) as temp:
            registry.fetch(version, temp)
    except MlopsError as exc:
        return None, f"registry {uri} could not be read: {exc}"
    except Exception as exc:  # pylint: disable=broad-exception-caught  # botocore errors: fall back to (b)
        return None, f"registry {uri} could not be read: {type(exc).__name__}: {exc}"
    return Champion("registry", dest, f"the prod model `{version}` from the registry"), ""


def base_sha(config: Config, base_ref: str | None = None) -> str | None:
    """The base commit's SHA, from ``base_ref`` or the environment; None when it cannot be found."""
    candidates = [base_ref, os.environ.get("MLOPS_BASE_REF")]
    if os.environ.get("GITHUB_BASE_REF"):
        candidates += [f"origin/{os.environ['GITHUB_BASE_REF']}", os.environ["GITHUB_BASE_REF"]]
    candidates += ["origin/main", "main"] if not any(candidates) else []
    for ref in filter(None, candidates):
        sha = git.resolve_commit(config.root, ref)
        if sha:
            return sha
    return None


def _suite_outside(top: Path) -> bool:
    """True when the running suite is not this repository's own code (the actions used by tag)."""
    return not SUITE_HOME.resolve().is_relative_to(top.resolve())


def _train_at(config: Config, top: Path, sha: str, dest: Path) -> str:
    """Train the base commit's model into ``dest``; return '' or why it could not be trained."""
    config_rel = Path(config.path).resolve().relative_to(top.resolve())
    with tempfile.TemporaryDirectory(prefix="mlops-champion-") as temp:
        tree = Path(temp) / "tree"
        git.run(top, "worktree", "add", "--detach", "--quiet", str(tree), sha)
        try:
            if not (tree / config_rel).is_file():
                return f"the base commit {sha[:12]} has no {config_rel}: no baseline yet"
            # A fork trains with the base commit's own code. A repository using the actions by tag has
            # no src/: its base model is trained by the suite that runs now (the action's ref).
            code = [str(tree / "src")] if (tree / "src" / "mlops").is_dir() else []
            if not code and not _suite_outside(top):
                return f"the base commit {sha[:12]} has no src/mlops package: no baseline yet"
            env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_CONFIG", "GITHUB_STEP_SUMMARY")}
            paths = [*code, str(SUITE_HOME / "src"), env.get("PYTHONPATH")]
            env.update(PYTHONPATH=os.pathsep.join(filter(None, paths)),
                       MLOPS_MODELS_DIR=str(Path(temp) / "models"), MLOPS_REPORTS_DIR=str(Path(temp) / "reports"),
                       MLOPS_GIT_SHA=sha, GITHUB_ACTIONS="false")
            log.info("training the base commit %s's model in %s", sha[:12], tree)
            run = subprocess.run(
                [sys.executable, "-m", "mlops", "--config", str(tree / config_rel), "-q", "train"],
                cwd=(tree / config_rel).parent, env=env, capture_output=True, text=True,
                timeout=TRAIN_TIMEOUT_SECONDS, check=False,
            )
            if run.returncode != 0:
                last = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
                return f"the base commit {sha[:12]}'s model could not be trained: {last}"
            version = (Path(temp) / "models" / "LATEST").read_text(encoding="utf-8").strip()
            with atomic_dir(dest) as target:
                for item in (Path(temp) / "models" / version).iterdir():
                    shutil.move(item, target / item.name)
        finally:
            git.run(top, "worktree", "remove", "--force", str(tree), check=False)
            git.run(top, "worktree", "prune", check=False)
    return ""


def from_base(config: Config, sha: str) -> Champion:
    """(b) The base commit's model, from the cache or trained now; (c) when it has no pipeline."""
    dest = cache_root(config) / sha
    if (dest / "metadata.json").is_file() and (dest / MODEL_FILE).is_file():
        log.info("reusing the cached base model %s", dest)
        return Champion("base", dest, f"the base branch's model, trained from {sha[:12]} (cached)", sha, True)
    top = git.toplevel(config.root)
    if top is None:
        return Champion("none", None, f"{config.root} is not a git repository, so there is no base branch", sha)
    why = _train_at(config, top, sha, dest)
    if why:
        return Champion("none", None, why, sha)
    return Champion("base", dest, f"the base branch's model, trained from {sha[:12]}", sha)


def resolve(config: Config, mode: str = "auto", base_ref: str | None = None) -> Champion:
    """The champion by the resolution order (registry, base branch, none), or the one ``mode`` forces."""
    if mode not in MODES:
        raise MlopsError(f"--champion {mode!r} is not one of {', '.join(MODES)}")
    reasons = []
    if mode in ("auto", "registry"):
        champion, why = from_registry(config)
        if champion:
            log.info("champion: %s", champion.description)
            return champion
        reasons.append(why)
        if mode == "registry":
            raise MlopsError(f"--champion registry: {why}")
    if mode in ("auto", "base"):
        sha = base_sha(config, base_ref)
        if sha:
            champion = from_base(config, sha)
            if reasons and NO_PROD_MODEL in reasons[0]:
                # Say plainly that nothing is in production yet, and what is compared instead.
                champion = replace(champion, description=f"{champion.description}; {reasons[0]}")
            elif reasons and "not readable" in reasons[0] and champion.model_dir is not None:
                champion = replace(champion, note=(
                    f"This run cannot read the registry ({reasons[0]}), so the champion is the base branch's model. "
                    "Prod may serve another version (after a rollback, for one); a run with the read-only role "
                    "compares with what prod serves."))
            log.info("champion: %s", champion.description)
            return champion
        reasons.append("no base commit found (set --base-ref or MLOPS_BASE_REF)")
    return Champion("none", None, "; ".join(reasons) or "no champion requested (--champion none)")


def incompatibility(champion_meta: dict, challenger_meta: dict, frame) -> str | None:
    """Why two models cannot be compared on ``frame`` (task, target, labels, features), or None.

    A champion needing a column the data lacks is still compared (scored with it empty); one whose
    features are all gone, or whose numeric feature now holds text, cannot be scored at all.
    """
    if champion_meta.get("task") != challenger_meta.get("task"):
        return (f"the task changed: the champion is {champion_meta.get('task')}, "
                f"this model {challenger_meta.get('task')}")
    if champion_meta.get("target") != challenger_meta.get("target"):
        return (f"the target changed: the champion predicts '{champion_meta.get('target')}', this model "
                f"'{challenger_meta.get('target')}'")
    old, new = champion_meta.get("classes") or [], challenger_meta.get("classes") or []
    if {str(c) for c in old} != {str(c) for c in new}:
        return f"the label set changed: the champion knows {old[:10]}, this model {new[:10]}"
    features = champion_meta.get("features", {})
    wanted = [*features.get("numeric", []), *features.get("categorical", [])]
    if wanted and not any(name in frame.columns for name in wanted):
        return "the feature set changed: none of the champion's feature columns is in this data"
    numeric_now_text = [name for name in features.get("numeric", []) if name in frame.columns
                        and not (frame.schema[name].is_numeric() or str(frame.schema[name]) == "Null")]
    if numeric_now_text:
        return f"the feature set changed: the champion's numeric column(s) {numeric_now_text} now hold text"
    return None


def for_reference(config: Config) -> Champion:
    """The model whose training data is drift's reference: registry prod, else models/LATEST, else none."""
    champion, why = from_registry(config)
    if champion:
        return champion
    if "could not be read" in why or "not readable" in why:
        raise ModelError(f"cannot read the prod pointer: {why}. Check registry.uri and your credentials")
    latest = config.models_dir / "LATEST"
    if latest.is_file():
        folder = config.models_dir / latest.read_text(encoding="utf-8").strip()
        if (folder / "metadata.json").is_file():
            return Champion("latest", folder, f"models/LATEST `{folder.name}`")
    return Champion("none", None, "data.source (no trained model found)")


def training_sources(config: Config, champion: Champion) -> list[str]:
    """The files the champion was trained on (its lineage record), or ``data.source``."""
    metadata = champion.metadata
    if metadata:
        data = metadata.get("data", {})
        source = data.get("source") or ""
        if source.endswith(".json") and os.path.isfile(config.resolve(source)):
            # Trained from a data manifest: the same pinned files, versions and time window.
            return [config.resolve(source)]
        files = [config.resolve(f) for f in data.get("files", [])]
        if files and all("://" in f or os.path.exists(f) for f in files):
            return files
        if source:
            log.warning("some training files of %s are gone; using its recorded data.source %s",
                        champion.version, source)
            return [config.resolve(source)]
    return [config.resolve(config.data.source)]
