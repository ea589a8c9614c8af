"""Judge a challenger against a champion: metric rows, slices, the gates of ``mlops.yaml``, the verdict line.

Input: the config (``gates``, ``compare``) and the scored sides (:func:`mlops.scoring.score`)
with their paired intervals (:func:`mlops.intervals.paired_bootstrap`). Output: JSON-able rows
for the reports, each gate as ``{"gate", "passed", "detail"}`` (a failure's detail is the
message to print, naming the key in ``mlops.yaml``), and the headline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from mlops.config import Config
from mlops.errors import ConfigError
from mlops.metrics import compute
from mlops.tasks import higher_is_better, tolerance


def direction(metric: str, delta: float) -> float:
    """A change expressed so that positive is better."""
    return delta if higher_is_better(metric) else -delta


def metric_rows(config: Config, champ: dict | None, chall: dict, cis: dict) -> list[dict]:
    """Per metric: both values, the change, its interval and "better"/"worse"/"no clear change"; primary first."""
    rows = []
    for name, value in chall["metrics"].items():
        row = {"name": name, "primary": name == config.primary_metric, "challenger": value,
               "higher_is_better": higher_is_better(name), "champion": None, "delta": None,
               "ci_low": None, "ci_high": None, "change": ""}
        if champ is not None:
            row.update(champion=champ["metrics"][name], delta=value - champ["metrics"][name], **{
                k: cis[name][k] for k in ("ci_low", "ci_high")})
            low, high = direction(name, row["ci_low"]), direction(name, row["ci_high"])
            if np.isnan(low):
                row["change"] = "n/a"
            else:
                row["change"] = "better" if min(low, high) > 0 else "worse" if max(low, high) < 0 else "no clear change"
        rows.append(row)
    rows.sort(key=lambda r: not r["primary"])
    return rows


def slice_values(config: Config, frame: pl.DataFrame, column: str) -> np.ndarray:
    """The slice label of every row for ``column``: its value, or its quantile bin for a many-valued number.

    An unknown column, or a text column with more than ``compare.max_slice_values`` values, is a
    config error naming the fix (a 743-row slice table helps nobody).
    """
    settings = config.compare
    if column not in frame.columns:
        raise ConfigError(f"compare.slices names {column!r}, which is not a column of the data; columns are: "
                          f"{', '.join(frame.columns)} (fix compare.slices in {config.path})")
    series = frame.get_column(column)
    distinct = series.n_unique()
    if series.dtype.is_numeric() and distinct > 20:
        edges = np.unique(np.nanquantile(series.cast(pl.Float64).drop_nulls().to_numpy(),
                                         np.linspace(0, 1, settings.slice_bins + 1)))
        numbers = series.cast(pl.Float64).to_numpy()
        index = np.clip(np.searchsorted(edges, numbers, side="right") - 1, 0, len(edges) - 2)
        labels = np.array([f"[{edges[i]:.4g}, {edges[i + 1]:.4g}{']' if i == len(edges) - 2 else ')'}"
                           for i in range(len(edges) - 1)], dtype=object)
        return np.where(np.isnan(numbers), "(null)", labels[index])
    if distinct > settings.max_slice_values:
        raise ConfigError(f"compare.slices: column {column!r} has {distinct} distinct values (more than "
                          f"compare.max_slice_values {settings.max_slice_values}); slice by a column with fewer "
                          f"values, or bin it in the data, in {config.path}")
    return series.cast(pl.String).fill_null("(null)").to_numpy()


def slice_rows(config: Config, frame: pl.DataFrame, champ: dict | None, chall: dict) -> list[dict]:
    """The primary metric per value (or bin) of each ``compare.slices`` column; regressions are flagged.

    A slice is flagged when it is worse than the champion's by more than ``compare.slice_tolerance``
    (in the metric's units, or "N%" of the champion's value on that slice).
    """
    settings, metric, rows = config.compare, config.primary_metric, []
    for column in settings.slices:
        values = slice_values(config, frame, column)
        for value in sorted(set(values.tolist())):
            keep = values == value
            chall_value = compute(config.task, chall["pred"].subset(keep))[metric]
            champ_value = compute(config.task, champ["pred"].subset(keep))[metric] if champ else None
            judged = bool(keep.sum() >= settings.min_slice_rows and champ is not None
                          and not np.isnan(chall_value) and not np.isnan(champ_value))
            delta = chall_value - champ_value if champ is not None else None
            allowed = tolerance(settings.slice_tolerance, champ_value) if judged else None
            flagged = judged and direction(metric, delta) < -allowed
            rows.append({"column": column, "value": value, "rows": int(keep.sum()), "judged": judged,
                         "champion": champ_value, "challenger": chall_value, "delta": delta, "flagged": flagged,
                         "allowed": allowed})
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
        drop = -direction(name, primary["delta"])
        ci_best = max(direction(name, primary["ci_low"]), direction(name, primary["ci_high"]))
        allowed = tolerance(gates.max_drop, primary["champion"])
        ok = not (drop > allowed and ci_best < 0)
        level = f"{result['confidence']:.0%}"
        ci_text = f"{level} CI of the change {primary['ci_low']:+.4f} to {primary['ci_high']:+.4f}"
        limit = f"{allowed:.4g}" + (f" ({gates.max_drop} of the champion's)" if isinstance(gates.max_drop, str) else "")
        out.append({"gate": "max_drop", "passed": ok, "detail": (
            f"{name} changed by {primary['delta']:+.4f} vs the champion ({ci_text}); allowed drop {limit}"
            if ok else
            f"{name} dropped by {drop:.4f} vs the champion ({ci_text}), more than the allowed "
            f"{limit} (gates.max_drop in {where})")})
    if gates.require_validation:
        validation = result["validation"]
        ok = bool(validation and validation["passed"])
        out.append({"gate": "require_validation", "passed": ok, "detail": (
            f"the data meets the contract {config.data.schema_file}" if ok else
            f"the data broke the contract in {len(validation['failures']) if validation else '?'} way(s) "
            f"(gates.require_validation in {where}); run `make validate` for the table")})
    flagged = [s for s in result["slices"] if s["flagged"]]
    if gates.fail_on_slice_regression and flagged:
        worst = min(flagged, key=lambda s: direction(name, s["delta"]))
        out.append({"gate": "slices", "passed": False, "detail": (
            f"{len(flagged)} slice(s) regressed by more than {config.compare.slice_tolerance}, worst "
            f"{worst['column']}={worst['value']} ({name} {worst['delta']:+.4f}) "
            f"(gates.fail_on_slice_regression in {where})")})
    return out


def headline(result: dict) -> str:
    """The one-sentence verdict: pass or fail and why."""
    primary = next(r for r in result["metrics"] if r["primary"])
    name = primary["name"]
    if result["failures"]:
        return f"Fail: {result['failures'][0]}."
    if primary["champion"] is None:
        why = "the champion cannot be compared with it" if result.get("champion_source") == "incompatible" \
            else "no champion to compare with yet"
        return (f"Pass: {why}; the challenger's {name} is "
                f"{primary['challenger']:.4f} and every applicable gate passed.")
    level = f"{result['confidence']:.0%}"
    return (f"Pass: the challenger's {name} is {primary['challenger']:.4f} vs the champion's "
            f"{primary['champion']:.4f} ({primary['delta']:+.4f}, {level} CI {primary['ci_low']:+.4f} to "
            f"{primary['ci_high']:+.4f}); every gate passed.")
