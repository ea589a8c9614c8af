"""A challenger scored beside the champion on the same held-out rows: metrics, paired intervals, slices, gates.

Input: the config (``gates`` and ``compare`` sections), the data, both model folders (the
champion's may be None: no baseline, the challenger is judged alone). Output: :func:`compare`'s
JSON-able result, which ``make compare`` renders (:mod:`mlops.stages.compare`) and which a
SageMaker Processing job computes the same way when the held-out rows outgrow the runner
(``compute.compare_above_rows``, :mod:`mlops.remote`); plus the diffs of the contract and of
``mlops.yaml`` against the champion's base commit.

Both models are scored on the SAME held-out rows (:func:`mlops.data.holdout_mask` of the
challenger's data).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from threadpoolctl import threadpool_limits

from mlops import git
from mlops.champion import Champion, incompatibility
from mlops.config import Config
from mlops.data import Dataset, holdout_mask
from mlops.errors import DataError
from mlops.gates import check_gates, headline, metric_rows, slice_rows, slice_values
from mlops.intervals import paired_bootstrap
from mlops.lineage import read_metadata
from mlops.metrics import confusion_record, undefined_reason
from mlops.scoring import measure_latency, score

log = logging.getLogger(__name__)

CURVE_POINTS = 11  # points per Mermaid curve: 0.0, 0.1, ..., 1.0


def compare(config: Config, dataset: Dataset, champion_dir: Path | None, challenger_dir: Path, *,
            champion: Champion | None = None, validation: dict | None = None,
            schema_diff: dict | None = None, seed: int = 0) -> dict:
    """Score both models on the same held-out rows; return the JSON-able result with gates and verdict."""
    started = time.perf_counter()
    frame = dataset.frame.filter(pl.Series(holdout_mask(config, dataset.frame)))
    # One thread: on a shared 2-core runner OpenMP threads of tree ensembles fight over cores
    # (10x slower under load), and single-request serving latency is what the report shows.
    for column in config.compare.slices:  # an unknown or unusable slice column fails before any scoring
        slice_values(config, frame, column)
    champion = champion or Champion("given" if champion_dir else "none", champion_dir,
                                    "the given champion model" if champion_dir else "no champion given")
    if champion_dir is not None:
        why_not = incompatibility(read_metadata(champion_dir), read_metadata(challenger_dir), frame)
        if why_not:  # e.g. the first PR after switching data: judge the challenger alone, say why
            log.warning("no comparison with the champion: %s", why_not)
            champion = replace(champion, source="incompatible", model_dir=None,
                               description=f"{champion.description} cannot be compared with this model: {why_not}")
            champion_dir = None
    with threadpool_limits(1):
        chall = score(config, frame, challenger_dir, "challenger")
        champ = score(config, frame, champion_dir, "champion") if champion_dir is not None else None
        measure_latency([side for side in (champ, chall) if side])
    why = undefined_reason(config.task, chall["pred"], config.primary_metric, chall["metrics"][config.primary_metric])
    if why:
        raise DataError(f"cannot compare: {why} held out, so no gate can judge the challenger. Hold out more rows "
                        f"(split.test_size), use split.method: random, or add data; see {config.path}")
    settings = config.compare
    cis = paired_bootstrap(config.task, champ["pred"], chall["pred"], resamples=settings.bootstrap_resamples,
                           confidence=settings.confidence, seed=seed) if champ else {}
    bootstrap_seconds = time.perf_counter() - started
    result = {
        "task": config.task,
        "primary_metric": config.primary_metric,
        "positive_label": chall["pred"].positive if config.task == "binary" else None,
        "test_rows": frame.height,
        "data": {"source": config.data.source, "fingerprint": dataset.fingerprint, "rows": dataset.rows},
        "confidence": settings.confidence,
        "resamples": settings.bootstrap_resamples,
        "champion_source": champion.source,
        "champion_description": champion.description,
        "base_sha": champion.base_sha,
        "champion": _public(champ, config.task),
        "challenger": _public(chall, config.task),
        "metrics": metric_rows(config, champ, chall, cis),
        "slices": slice_rows(config, frame, champ, chall),
        "slice_tolerance": settings.slice_tolerance,
        "validation": validation,
        "schema_diff": schema_diff,
        "curves": _curves(config.task, champ, chall),
        "notes": _notes(config, dataset, champ, champion) + ([champion.note] if champion.note else []),
        "config_diff": config_diff(config, champion.base_sha),
        "artifact": os.environ.get("MLOPS_REPORT_ARTIFACT") or None,
    }
    result["gates"] = check_gates(config, result)
    result["failures"] = [g["detail"] for g in result["gates"] if not g["passed"]]
    result["verdict"] = "fail" if result["failures"] else "pass"
    result["headline"] = headline(result)
    result["seconds"] = round(time.perf_counter() - started, 3)
    log.info("compared on %s rows in %.2fs (scoring + bootstrap %.2fs): %s", frame.height, result["seconds"],
             bootstrap_seconds, result["verdict"])
    return result


def _notes(config: Config, dataset: Dataset, champ: dict | None, champion: Champion) -> list[str]:
    notes = []
    if champ is None:
        lead = "No comparison" if champion.source == "incompatible" else "No baseline yet"
        notes.append(f"{lead}: {champion.description}. The challenger is shown alone; "
                     "the gates that need a champion are skipped.")
        return notes
    if champ["missing_columns"]:
        notes.append(f"The champion uses column(s) {', '.join(champ['missing_columns'])} that this data no longer "
                     "has; it was scored with them empty (treated as missing values).")
    same_source = champ["data_source"] == config.data.source
    if champ["data_fingerprint"] and champ["data_fingerprint"] != dataset.fingerprint:
        what = "This PR changed the evaluation data" if champion.source == "base" else \
            "The champion was trained on different data"
        source = "" if same_source else f" (`{champ['data_source']}` -> `{config.data.source}`)"
        notes.append(f"{what}{source}: sha256 `{champ['data_fingerprint'][:12]}` -> `{dataset.fingerprint[:12]}`. "
                     "Both models are scored on the held-out rows of the new data.")
    return notes


def _curves(task: str, champ: dict | None, chall: dict) -> dict:
    """ROC and precision-recall curves at fixed x positions, for Mermaid line charts."""
    if task != "binary":
        return {}
    from sklearn import metrics as skm  # pylint: disable=import-outside-toplevel  # binary-only

    grid = np.linspace(0, 1, CURVE_POINTS)
    out: dict = {"grid": [round(float(x), 2) for x in grid], "roc": {}, "pr": {}}
    for side in filter(None, (champ, chall)):
        pred = side["pred"]
        positive = (pred.y_true == pred.positive_label).astype(int)
        if positive.min() == positive.max():
            return {}
        fpr, tpr, _ = skm.roc_curve(positive, pred.positive_score)
        precision, recall, _ = skm.precision_recall_curve(positive, pred.positive_score)
        out["roc"][side["label"]] = [round(float(v), 3) for v in np.interp(grid, fpr, tpr)]
        out["pr"][side["label"]] = [round(float(v), 3) for v in np.interp(grid, recall[::-1], precision[::-1])]
    return out


def _confusion(task: str, side: dict | None) -> dict | None:
    if side is None or task == "regression":
        return None
    return confusion_record(side["pred"])


def _public(side: dict | None, task: str) -> dict | None:
    if side is None:
        return None
    out = {k: v for k, v in side.items() if k not in ("pred", "_timing")}
    out["confusion_matrix"] = _confusion(task, side)
    return out


def contract_diff(config: Config, sha: str | None) -> dict | None:
    """Columns added, removed or changed in the data contract since the base commit ``sha``."""
    if not sha:
        return None
    path = Path(config.resolve(config.data.schema_file))
    old_text = git.show(config.root, sha, path)
    if old_text is None or not path.is_file():
        return None
    old = (yaml.safe_load(old_text) or {}).get("columns") or {}
    new = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("columns") or {}
    changed = []
    for column in sorted(set(old) & set(new)):
        before, after = old[column] or {}, new[column] or {}
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                changed.append({"column": column, "key": key, "before": before.get(key), "after": after.get(key)})
    return {"added": sorted(set(new) - set(old)), "removed": sorted(set(old) - set(new)), "changed": changed,
            "base_sha": sha, "file": config.data.schema_file}


# The settings whose change a reviewer wants to see next to the metrics ("What changed").
WATCHED = ("task", "data", "split", "model", "metrics", "gates", "compare")


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_diff(config: Config, sha: str | None) -> list[dict] | None:
    """The keys of mlops.yaml this change set (estimator, params, features, data source, ...) vs the base commit."""
    if not sha:
        return None
    old_text = git.show(config.root, sha, Path(config.path))
    if old_text is None:
        return None
    try:
        old = yaml.safe_load(old_text) or {}
    except yaml.YAMLError:
        return None
    new = yaml.safe_load(Path(config.path).read_text(encoding="utf-8")) or {}
    before = _flatten({k: old.get(k) for k in WATCHED if k in old})
    after = _flatten({k: new.get(k) for k in WATCHED if k in new})
    return [{"key": key, "before": before.get(key), "after": after.get(key)}
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
