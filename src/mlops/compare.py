"""Compare a challenger model with the champion and apply the gates (``make compare``).

Inputs: the config (``gates`` and ``compare`` sections), the data (``data.source``), the
challenger's model folder (default ``models/LATEST``) and the champion's (see
:mod:`mlops.champion`). Outputs: ``reports/compare.json``, ``reports/compare.md`` (the PR
comment: verdict line first, under 65,000 characters, charts as Mermaid) and
``reports/compare.html`` (full report, SVG charts inlined), plus the verdict in
``$GITHUB_STEP_SUMMARY``. Raises :class:`~mlops.errors.GateFailed` when a gate fails, after
writing the reports.

Both models are scored on the SAME held-out rows (:func:`mlops.data.holdout_mask` of the
challenger's data). Public functions, for other stages (the retrain workflow calls them)::

    compare(config, dataset, champion_dir, challenger_dir, *, champion=None, validation=None,
            schema_diff=None, seed=0) -> dict          # scores, CIs, slices, gates, verdict
    render(result, out_dir=None) -> tuple[Path, Path, Path]  # compare.json, .md, .html
    run(config, *, model=None, data=None, champion_mode="auto", base_ref=None) -> dict
        # the whole `make compare`: resolve champion, validate, compare, render, summary, gate

``champion_dir`` may be None (no baseline: the challenger is judged alone).
"""

from __future__ import annotations

import io
import logging
import os
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from threadpoolctl import threadpool_limits

from mlops.bootstrap import paired_bootstrap
from mlops.champion import Champion, git_file, resolve
from mlops.config import Config
from mlops.data import Dataset, Features, holdout_mask, load, load_training, to_pandas
from mlops.errors import GateFailed
from mlops.io import atomic_write_json, atomic_write_text
from mlops.lineage import MODEL_FILE, read_metadata, resolve_model_dir
from mlops.metrics import Predictions, compute, higher_is_better, predict
from mlops.model import load_model
from mlops.report import environment, fit_comment

log = logging.getLogger(__name__)

CURVE_POINTS = 11  # points per Mermaid curve: 0.0, 0.1, ..., 1.0


def _side(config: Config, frame: pl.DataFrame, model_dir: Path, label: str) -> dict:
    """Score one model on the held-out rows; the record the report shows for it."""
    meta = read_metadata(model_dir)
    features = Features(tuple(meta["features"]["numeric"]), tuple(meta["features"]["categorical"]))
    missing = [c for c in features.all if c not in frame.columns]
    test = frame.with_columns(
        pl.lit(None, dtype=pl.Float64 if c in features.numeric else pl.String).alias(c) for c in missing)
    pipeline = load_model(model_dir / MODEL_FILE)
    x_test = to_pandas(test, features.all)
    pred = predict(pipeline, x_test, test.get_column(config.data.target).to_numpy(), config.task)
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
        "_timing": (pipeline, x_test.iloc[:1000]),
    }


def measure_latency(sides: list[dict], repeats: int = 7) -> None:
    """p50/p95 ms to predict 1,000 rows, for every side, timed in turns so both see the same load."""
    timings: list[list[float]] = [[] for _ in sides]
    for side in sides:
        pipeline, batch = side["_timing"]
        getattr(pipeline, "predict_proba", pipeline.predict)(batch)  # warm-up: lazy imports, allocation
    for _ in range(repeats):
        for side, times in zip(sides, timings):
            pipeline, batch = side["_timing"]
            started = time.perf_counter()
            getattr(pipeline, "predict_proba", pipeline.predict)(batch)
            times.append((time.perf_counter() - started) * 1000 * 1000 / max(len(batch), 1))
    for side, times in zip(sides, timings):
        side["latency_ms_per_1k"] = {"p50": round(float(np.percentile(times, 50)), 3),
                                     "p95": round(float(np.percentile(times, 95)), 3)}


def _direction(metric: str, delta: float) -> float:
    """A change expressed so that positive is better."""
    return delta if higher_is_better(metric) else -delta


def _metric_rows(config: Config, champ: dict | None, chall: dict, cis: dict) -> list[dict]:
    rows = []
    for name, value in chall["metrics"].items():
        row = {"name": name, "primary": name == config.primary_metric, "challenger": value,
               "higher_is_better": higher_is_better(name), "champion": None, "delta": None,
               "ci_low": None, "ci_high": None, "change": ""}
        if champ is not None:
            row.update(champion=champ["metrics"][name], delta=value - champ["metrics"][name], **{
                k: cis[name][k] for k in ("ci_low", "ci_high")})
            low, high = _direction(name, row["ci_low"]), _direction(name, row["ci_high"])
            if np.isnan(low):
                row["change"] = "n/a"
            else:
                row["change"] = "better" if min(low, high) > 0 else "worse" if max(low, high) < 0 else "no clear change"
        rows.append(row)
    rows.sort(key=lambda r: not r["primary"])
    return rows


def _subset(pred: Predictions, keep: np.ndarray) -> Predictions:
    proba = pred.proba[keep] if pred.proba is not None else None
    return Predictions(pred.y_true[keep], pred.y_pred[keep], proba, pred.classes)


def slice_rows(config: Config, frame: pl.DataFrame, champ: dict | None, chall: dict) -> list[dict]:
    """The primary metric per value of each ``compare.slices`` column; regressions are flagged."""
    settings, metric, rows = config.compare, config.primary_metric, []
    for column in settings.slices:
        if column not in frame.columns:
            rows.append({"column": column, "value": "(column not in the data)", "rows": 0, "judged": False,
                         "champion": None, "challenger": None, "delta": None, "flagged": False})
            continue
        values = frame.get_column(column).cast(pl.String).fill_null("(null)").to_numpy()
        for value in sorted(set(values.tolist())):
            keep = values == value
            chall_value = compute(config.task, _subset(chall["pred"], keep))[metric]
            champ_value = compute(config.task, _subset(champ["pred"], keep))[metric] if champ else None
            judged = bool(keep.sum() >= settings.min_slice_rows and champ is not None
                          and not np.isnan(chall_value) and not np.isnan(champ_value))
            delta = chall_value - champ_value if champ is not None else None
            flagged = judged and _direction(metric, delta) < -settings.slice_tolerance
            rows.append({"column": column, "value": value, "rows": int(keep.sum()), "judged": judged,
                         "champion": champ_value, "challenger": chall_value, "delta": delta, "flagged": flagged})
    return rows


def check_gates(config: Config, result: dict) -> list[dict]:
    """Each gate as {"gate", "passed", "detail"}; ``detail`` of a failure is the message to print."""
    gates, name, where = config.gates, config.primary_metric, Path(config.path).name
    primary = next(r for r in result["metrics"] if r["primary"])
    out = []
    if gates.min_primary is not None:
        value, better = primary["challenger"], higher_is_better(name)
        ok = bool(value >= gates.min_primary if better else value <= gates.min_primary)
        word = "below" if better else "above"
        out.append({"gate": "min_primary", "passed": ok, "detail": (
            f"{name}={value:.4f} reaches the gate {gates.min_primary}" if ok else
            f"{name}={value:.4f} is {word} the gate {gates.min_primary} (gates.min_primary in {where})")})
    if primary["champion"] is not None and not np.isnan(primary["ci_low"]):
        drop = -_direction(name, primary["delta"])
        ci_best = max(_direction(name, primary["ci_low"]), _direction(name, primary["ci_high"]))
        ok = not (drop > gates.max_drop and ci_best < 0)
        level = f"{result['confidence']:.0%}"
        ci_text = f"{level} CI of the change {primary['ci_low']:+.4f} to {primary['ci_high']:+.4f}"
        out.append({"gate": "max_drop", "passed": ok, "detail": (
            f"{name} changed by {primary['delta']:+.4f} vs the champion ({ci_text}); allowed drop {gates.max_drop}"
            if ok else
            f"{name} dropped by {drop:.4f} vs the champion ({ci_text}), more than the allowed "
            f"{gates.max_drop} (gates.max_drop in {where})")})
    if gates.require_validation:
        validation = result["validation"]
        ok = bool(validation and validation["passed"])
        out.append({"gate": "require_validation", "passed": ok, "detail": (
            f"the data meets the contract {config.data.schema_file}" if ok else
            f"the data broke the contract in {len(validation['failures']) if validation else '?'} way(s) "
            f"(gates.require_validation in {where}); run `make validate` for the table")})
    flagged = [s for s in result["slices"] if s["flagged"]]
    if gates.fail_on_slice_regression and flagged:
        worst = min(flagged, key=lambda s: _direction(name, s["delta"]))
        out.append({"gate": "slices", "passed": False, "detail": (
            f"{len(flagged)} slice(s) regressed by more than {config.compare.slice_tolerance}, worst "
            f"{worst['column']}={worst['value']} ({name} {worst['delta']:+.4f}) "
            f"(gates.fail_on_slice_regression in {where})")})
    return out


def _curves(task: str, champ: dict | None, chall: dict) -> dict:
    """ROC and precision-recall curves at fixed x positions, for Mermaid line charts."""
    if task != "binary":
        return {}
    from sklearn import metrics as skm  # pylint: disable=import-outside-toplevel  # binary-only

    grid = np.linspace(0, 1, CURVE_POINTS)
    out: dict = {"grid": [round(float(x), 2) for x in grid], "roc": {}, "pr": {}}
    for side in filter(None, (champ, chall)):
        pred = side["pred"]
        positive = (pred.y_true == pred.classes[1]).astype(int)
        if positive.min() == positive.max():
            return {}
        fpr, tpr, _ = skm.roc_curve(positive, pred.proba[:, 1])
        precision, recall, _ = skm.precision_recall_curve(positive, pred.proba[:, 1])
        out["roc"][side["label"]] = [round(float(v), 3) for v in np.interp(grid, fpr, tpr)]
        out["pr"][side["label"]] = [round(float(v), 3) for v in np.interp(grid, recall[::-1], precision[::-1])]
    return out


def _confusion(task: str, side: dict | None) -> dict | None:
    if side is None or task == "regression":
        return None
    from mlops.plots import confusion  # pylint: disable=import-outside-toplevel  # loads matplotlib

    labels, matrix = confusion(side["pred"])
    return {"labels": [str(x) for x in labels], "matrix": matrix.tolist()}


def _public(side: dict | None, task: str) -> dict | None:
    if side is None:
        return None
    out = {k: v for k, v in side.items() if k not in ("pred", "_timing")}
    out["confusion_matrix"] = _confusion(task, side)
    return out


def compare(config: Config, dataset: Dataset, champion_dir: Path | None, challenger_dir: Path, *,
            champion: Champion | None = None, validation: dict | None = None,
            schema_diff: dict | None = None, seed: int = 0) -> dict:
    """Score both models on the same held-out rows; return the JSON-able result with gates and verdict."""
    started = time.perf_counter()
    frame = dataset.frame.filter(pl.Series(holdout_mask(config, dataset.frame)))
    # One thread: on a shared 2-core runner OpenMP threads of tree ensembles fight over cores
    # (10x slower under load), and single-request serving latency is what the report shows.
    with threadpool_limits(1):
        chall = _side(config, frame, challenger_dir, "challenger")
        champ = _side(config, frame, champion_dir, "champion") if champion_dir is not None else None
        measure_latency([side for side in (champ, chall) if side])
    settings = config.compare
    cis = paired_bootstrap(config.task, champ["pred"], chall["pred"], resamples=settings.bootstrap_resamples,
                           confidence=settings.confidence, seed=seed) if champ else {}
    bootstrap_seconds = time.perf_counter() - started
    champion = champion or Champion("given" if champion_dir else "none", champion_dir,
                                    "the given champion model" if champion_dir else "no champion given")
    result = {
        "task": config.task,
        "primary_metric": config.primary_metric,
        "test_rows": frame.height,
        "data": {"source": config.data.source, "fingerprint": dataset.fingerprint, "rows": dataset.rows},
        "confidence": settings.confidence,
        "resamples": settings.bootstrap_resamples,
        "champion_source": champion.source,
        "champion_description": champion.description,
        "base_sha": champion.base_sha,
        "champion": _public(champ, config.task),
        "challenger": _public(chall, config.task),
        "metrics": _metric_rows(config, champ, chall, cis),
        "slices": slice_rows(config, frame, champ, chall),
        "slice_tolerance": settings.slice_tolerance,
        "validation": validation,
        "schema_diff": schema_diff,
        "curves": _curves(config.task, champ, chall),
        "notes": _notes(config, dataset, champ, champion),
    }
    result["gates"] = check_gates(config, result)
    result["failures"] = [g["detail"] for g in result["gates"] if not g["passed"]]
    result["verdict"] = "fail" if result["failures"] else "pass"
    result["headline"] = _headline(result)
    result["seconds"] = round(time.perf_counter() - started, 3)
    log.info("compared on %s rows in %.2fs (scoring + bootstrap %.2fs): %s", frame.height, result["seconds"],
             bootstrap_seconds, result["verdict"])
    return result


def _notes(config: Config, dataset: Dataset, champ: dict | None, champion: Champion) -> list[str]:
    notes = []
    if champ is None:
        notes.append(f"No baseline yet: {champion.description}. The challenger is shown alone; "
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


def _headline(result: dict) -> str:
    primary = next(r for r in result["metrics"] if r["primary"])
    name = primary["name"]
    if result["failures"]:
        return f"Fail: {result['failures'][0]}."
    if primary["champion"] is None:
        return (f"Pass: no champion to compare with yet; the challenger's {name} is "
                f"{primary['challenger']:.4f} and every applicable gate passed.")
    level = f"{result['confidence']:.0%}"
    return (f"Pass: the challenger's {name} is {primary['challenger']:.4f} vs the champion's "
            f"{primary['champion']:.4f} ({primary['delta']:+.4f}, {level} CI {primary['ci_low']:+.4f} to "
            f"{primary['ci_high']:+.4f}); every gate passed.")


def contract_diff(config: Config, sha: str | None) -> dict | None:
    """Columns added, removed or changed in the data contract since the base commit ``sha``."""
    if not sha:
        return None
    path = Path(config.resolve(config.data.schema_file))
    old_text = git_file(config, sha, path)
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


def _svg_curves(result: dict) -> dict[str, str]:
    """ROC / PR overlays of both models as inline SVG (for the HTML report only)."""
    curves = result["curves"]
    if not curves:
        return {}
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel  # mlops.plots set the Agg backend

    out = {}
    for key, title, xlabel, ylabel in (("roc", "ROC curve", "false positive rate", "true positive rate"),
                                       ("pr", "Precision-recall curve", "recall", "precision")):
        fig, ax = plt.subplots(figsize=(4.5, 4))
        for label, values in curves[key].items():
            ax.plot(curves["grid"], values, marker="o", label=label)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(loc="lower right" if key == "roc" else "lower left")
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight")
        plt.close(fig)
        out[key] = buffer.getvalue()[buffer.getvalue().find("<svg"):]
    return out


def render(result: dict, out_dir: Path) -> tuple[Path, Path, Path]:
    """Write compare.json, compare.md (the PR comment) and compare.html into ``out_dir``."""
    env = environment()
    env.filters["signed"] = lambda v, d=4: "n/a" if v is None or np.isnan(v) else f"{v:+.{d}f}"
    context = {"r": result, "validation": result["validation"], "svgs": _svg_curves(result)}
    markdown = fit_comment(env.get_template("compare.md.j2").render(**context))
    html = env.get_template("compare.html.j2").render(**context)
    paths = out_dir / "compare.json", out_dir / "compare.md", out_dir / "compare.html"
    atomic_write_json(paths[0], result)
    atomic_write_text(paths[1], markdown)
    atomic_write_text(paths[2], html)
    log.info("wrote %s, %s and %s", *paths)
    return paths


def write_step_summary(result: dict) -> None:
    """Append the verdict and the metric table to ``$GITHUB_STEP_SUMMARY`` (when set)."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return
    lines = [f"### {'✅' if result['verdict'] == 'pass' else '❌'} {result['headline']}", "",
             "| metric | champion | challenger | change | CI |", "|---|---:|---:|---:|---|"]
    for row in result["metrics"]:
        champ = "n/a" if row["champion"] is None else f"{row['champion']:.4f}"
        delta = "n/a" if row["delta"] is None else f"{row['delta']:+.4f}"
        ci = "n/a" if row["ci_low"] is None else f"{row['ci_low']:+.4f} to {row['ci_high']:+.4f}"
        lines.append(f"| {row['name']} | {champ} | {row['challenger']:.4f} | {delta} | {ci} |")
    with open(summary, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def run(config: Config, *, model: str | None = None, data: str | None = None, champion_mode: str = "auto",
        base_ref: str | None = None) -> dict:
    """``make compare``: resolve the champion, validate, compare, render, summarise; raise GateFailed on failure."""
    from mlops.schema import load_contract  # pylint: disable=import-outside-toplevel  # pandera is slow to import
    from mlops.validate import validate  # pylint: disable=import-outside-toplevel  # same

    dataset = load(data, label="--data") if data else load_training(config)
    challenger_dir = resolve_model_dir(config, model)
    champion = resolve(config, champion_mode, base_ref)
    validation = validate(dataset.frame, load_contract(config), source=data or config.data.source)
    validation["schema_file"] = config.data.schema_file  # relative: no runner paths in the comment
    result = compare(config, dataset, champion.model_dir, challenger_dir, champion=champion,
                     validation=validation, schema_diff=contract_diff(config, champion.base_sha))
    render(result, config.reports_dir)
    write_step_summary(result)
    print(("✅ " if result["verdict"] == "pass" else "❌ ") + result["headline"])
    if result["failures"]:
        raise GateFailed("; ".join(result["failures"]))
    return result
