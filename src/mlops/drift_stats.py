"""Per-column drift statistics in one vectorised pass (polars), with evidently 0.7.23's definitions.

Input: a reference and a current polars frame, and the columns to compare with their kind
(``numeric`` or ``categorical``). Output: one :class:`ColumnDrift` per column: the method, its
value, the threshold, the rule that decided, and whether the column drifted.

Which rule decides depends on the column's non-null reference values, as in evidently's
defaults: above ``small_sample_rows`` (1,000) a distance at a fixed threshold (below); at or
below it a two-sample test at ``p_value`` (0.05), the p-values of the columns tested in one call
adjusted together (Benjamini-Hochberg; :mod:`mlops.drift_tests` says which tests and why).

Each column is reduced to a small table (distinct value, reference count, current count) by one
polars group-by per side, all columns collected in parallel; every statistic below is exact on
that table, so nothing is sampled and nothing is hashed or copied per method. Definitions follow
``evidently.legacy.calculations.stattests`` in evidently 0.7.23, so the decisions agree with
evidently's own tests run on the full data:

- ``wasserstein``: ``scipy.stats.wasserstein_distance(ref, cur) / max(std(ref), 0.001)`` (std with
  ddof=0); drifted when the value is at least the threshold.
- ``jensenshannon``: ``scipy.spatial.distance.jensenshannon(p_ref, p_cur)`` (natural log; same formula,
  re-implemented here to spare the scipy import) on the
  shares of each category, or, for a numeric column with more than 20 distinct reference values,
  on a Sturges histogram spanning both samples; drifted when at least the threshold.
- ``psi``: ``sum((p_ref - p_cur) * ln(p_ref / p_cur))`` on the same bins, empty bins given a tiny
  share (evidently's ``feel_zeroes``); drifted when at least the threshold.

As in evidently, nulls, NaN and infinities are dropped first, and a numeric column with at most 5
distinct values (both samples together) is compared like a categorical one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from mlops.drift_tests import CORRECTIONS, TEST_NAMES, benjamini_hochberg, choose_test, two_sample_test

if TYPE_CHECKING:
    from mlops.config import DriftConfig

log = logging.getLogger(__name__)

NUMERIC_METHODS = ("wasserstein", "jensenshannon", "psi")
CATEGORICAL_METHODS = ("jensenshannon", "psi")
# evidently compares a numeric column with at most this many distinct values like a categorical one.
LOW_CARDINALITY = 5
# evidently bins a numeric column into a histogram when the reference has more distinct values.
HISTOGRAM_MIN_DISTINCT = 20
# At or below this many reference values evidently's defaults switch to p-value tests; distances get noisy.
SMALL_REFERENCE = 1000
# The significance level of those tests (evidently's default for KS, chi-square and Z).
P_VALUE = 0.05


@dataclass(frozen=True)
class ColumnDrift:  # pylint: disable=too-many-instance-attributes  # one field per drift.json key
    """The drift decision for one column.

    ``value`` is the distance, or the test's p-value; ``adjusted`` the p-value after the
    correction across the call's tested columns (None for distances); ``threshold`` the distance
    threshold or the p-value level; ``rule`` says in words which of them decided.
    """

    column: str
    kind: str
    method: str
    value: float | None
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int
    note: str = ""
    rule: str = ""
    statistic: float | None = None
    adjusted: float | None = None
    evidently_value: float | None = None

    @property
    def tested(self) -> bool:
        """True when a p-value decided (a small sample), False when a distance did."""
        return self.method in TEST_NAMES

    def to_dict(self) -> dict:
        """JSON-ready record (NaN and infinities become None)."""
        record = asdict(self)
        for key, value in record.items():
            if isinstance(value, float) and not math.isfinite(value):
                record[key] = None
        return record


def _counts_query(reference: pl.LazyFrame, current: pl.LazyFrame, column: str, kind: str) -> pl.LazyFrame:
    """Distinct values of ``column`` with their count in each frame, sorted by value."""
    if kind == "numeric":
        value = pl.col(column).cast(pl.Float64)
        clean = pl.col("value").is_finite()
    else:
        value = pl.col(column).cast(pl.String)
        clean = pl.col("value").is_not_null()

    def side(frame: pl.LazyFrame, name: str) -> pl.LazyFrame:
        return frame.select(value.alias("value")).filter(clean.fill_null(False)).group_by("value").agg(
            pl.len().cast(pl.Int64).alias(name))

    joined = side(reference, "ref").join(side(current, "cur"), on="value", how="full", coalesce=True)
    return joined.with_columns(pl.col("ref").fill_null(0), pl.col("cur").fill_null(0)).sort("value")


def _sturges_edges(values: np.ndarray, total: int, integer: bool) -> np.ndarray:
    """``np.histogram_bin_edges(both_samples, "sturges")`` computed from the distinct values."""
    first, last = float(values[0]), float(values[-1])
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = (last - first) / (np.log2(total) + 1.0)
    if integer and width < 1:
        width = 1
    bins = int(np.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, bins + 1, endpoint=True)


def _shares(values: np.ndarray, ref: np.ndarray, cur: np.ndarray, kind: str, integer: bool):
    """Reference and current shares per bin (evidently's ``get_binned_data``)."""
    n_ref, n_cur = ref.sum(), cur.sum()
    if kind == "numeric" and np.count_nonzero(ref) > HISTOGRAM_MIN_DISTINCT:
        edges = _sturges_edges(values, int(n_ref + n_cur), integer)
        ref_hist = np.histogram(values, edges, weights=ref)[0]
        cur_hist = np.histogram(values, edges, weights=cur)[0]
        return ref_hist / n_ref, cur_hist / n_cur
    return ref / n_ref, cur / n_cur


def _fill_zeroes(shares: np.ndarray) -> np.ndarray:
    """Give empty bins a tiny share so PSI's logarithm is finite (evidently's ``feel_zeroes``)."""
    shares = shares.astype(float).copy()
    smallest = shares[shares != 0].min()
    shares[shares == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return shares


def _jensenshannon(p_ref: np.ndarray, p_cur: np.ndarray) -> float:
    """``scipy.spatial.distance.jensenshannon`` (natural log), without importing scipy (~1 s)."""
    p_ref, p_cur = p_ref / p_ref.sum(), p_cur / p_cur.sum()
    middle = (p_ref + p_cur) / 2.0

    def relative_entropy(p: np.ndarray) -> float:
        used = p > 0
        return float(np.sum(p[used] * np.log(p[used] / middle[used])))

    return math.sqrt(max(relative_entropy(p_ref) + relative_entropy(p_cur), 0.0) / 2.0)


def _wasserstein_normed(values: np.ndarray, ref: np.ndarray, cur: np.ndarray) -> float:
    n_ref, n_cur = ref.sum(), cur.sum()
    cdf_gap = np.abs(np.cumsum(ref) / n_ref - np.cumsum(cur) / n_cur)
    distance_ = float(np.sum(cdf_gap[:-1] * np.diff(values)))
    mean = float(np.dot(ref, values) / n_ref)
    std = math.sqrt(float(np.dot(ref, (values - mean) ** 2) / n_ref))
    return distance_ / max(std, 0.001)


def _statistic(method: str, values: np.ndarray, ref: np.ndarray, cur: np.ndarray, kind: str, integer: bool) -> float:
    if method == "wasserstein":
        return _wasserstein_normed(values, ref, cur)
    p_ref, p_cur = _shares(values, ref.astype(float), cur.astype(float), kind, integer)
    if method == "jensenshannon":
        return _jensenshannon(p_ref, p_cur)
    p_ref, p_cur = _fill_zeroes(p_ref), _fill_zeroes(p_cur)
    return float(np.sum((p_ref - p_cur) * np.log(p_ref / p_cur)))


def choose_method(kind: str, distinct: int, numeric_method: str, categorical_method: str) -> str:
    """The method for a column: the categorical method for categorical and low-cardinality numeric ones."""
    if kind == "numeric" and distinct > LOW_CARDINALITY:
        return numeric_method
    return categorical_method


def _rule(method: str, limit: float, tested: int, correction: str) -> str:
    """The decision rule in words, e.g. ``p-value < 0.05 (KS test)`` or ``wasserstein >= 0.1``."""
    if method not in TEST_NAMES:
        return f"{method} >= {limit:g}"
    if tested > 1 and correction == "benjamini-hochberg":
        return f"Benjamini-Hochberg adjusted p-value < {limit:g} over {tested} tested columns ({TEST_NAMES[method]})"
    return f"p-value < {limit:g} ({TEST_NAMES[method]})"


def _adjust(results: list[ColumnDrift], p_value: float, correction: str) -> list[ColumnDrift]:
    """Adjust the p-values of the tested columns together and decide them (distances are already decided)."""
    tested = [i for i, r in enumerate(results) if r.tested and r.value is not None]
    raw = [results[i].value for i in tested]
    adjusted = benjamini_hochberg(raw) if correction == "benjamini-hochberg" else raw
    for i, value in zip(tested, adjusted):
        results[i] = replace(results[i], adjusted=value, drifted=bool(value < p_value),
                             rule=_rule(results[i].method, p_value, len(tested), correction))
    return results


def drift_options(settings: DriftConfig, threshold: float | None = None) -> dict:
    """The keyword arguments of :func:`column_drift` from the config's ``drift`` section (``threshold`` overrides)."""
    return {"threshold": settings.threshold if threshold is None else threshold,
            "numeric_method": settings.numeric_method, "categorical_method": settings.categorical_method,
            "thresholds": settings.column_thresholds, "small_sample_rows": settings.small_sample_rows,
            "p_value": settings.p_value, "correction": settings.correction}


def column_drift(reference: pl.DataFrame, current: pl.DataFrame, columns: dict[str, str],
                 **options) -> list[ColumnDrift]:
    """Drift decisions for ``columns`` ({name: "numeric" | "categorical"}), in order; ``options``: :func:`decide`'s."""
    ref_lazy, cur_lazy = reference.lazy(), current.lazy()
    tables = pl.collect_all([_counts_query(ref_lazy, cur_lazy, name, kind) for name, kind in columns.items()])
    integers = {name for name, kind in columns.items() if kind == "numeric" and reference.schema[name].is_integer()}
    return decide(tables, columns, integers, **options)


def decide(  # pylint: disable=too-many-arguments,too-many-locals  # one argument per setting keeps call sites explicit
    tables: list[pl.DataFrame],
    columns: dict[str, str],
    integers: set[str],
    *,
    threshold: float,
    numeric_method: str = "wasserstein",
    categorical_method: str = "jensenshannon",
    thresholds: dict[str, float] | None = None,
    small_sample_rows: int = SMALL_REFERENCE,
    p_value: float = P_VALUE,
    correction: str = "benjamini-hochberg",
) -> list[ColumnDrift]:
    """Decisions from each column's count table (``value``, ``ref``, ``cur``, sorted by value): all they need.

    ``integers``: numeric columns with an integer reference dtype. Above ``small_sample_rows`` reference
    values a distance decides (``threshold`` or ``thresholds[name]``), else a test at ``p_value`` after
    ``correction``. Tables merged from shards (:mod:`mlops.shards`) therefore decide exactly as one pass.
    """
    if numeric_method not in NUMERIC_METHODS or categorical_method not in CATEGORICAL_METHODS:
        raise ValueError(f"unknown drift method {numeric_method!r} / {categorical_method!r}")
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; use one of {', '.join(CORRECTIONS)}")
    thresholds = thresholds or {}
    results = []
    for (name, kind), table in zip(columns.items(), tables):
        ref = table.get_column("ref").to_numpy()
        cur = table.get_column("cur").to_numpy()
        n_ref, n_cur = int(ref.sum()), int(cur.sum())
        small = n_ref <= small_sample_rows
        if small:
            method, limit = choose_test(kind, table.height), p_value
        else:
            method = choose_method(kind, table.height, numeric_method, categorical_method)
            limit = thresholds.get(name, threshold)
        if n_ref == 0 or n_cur == 0:
            side = "reference" if n_ref == 0 else "current"
            results.append(ColumnDrift(name, kind, method, None, limit, True, n_ref, n_cur,
                                       note=f"no non-null values in the {side} data",
                                       rule=f"no values to compare in the {side} data"))
            continue
        values = table.get_column("value").to_numpy() if kind == "numeric" else np.arange(table.height)
        if small:
            test = two_sample_test(method, values, ref, cur)
            results.append(ColumnDrift(name, kind, method, test.p_value, limit, False, n_ref, n_cur,
                                       statistic=test.statistic, evidently_value=test.evidently_value))
            continue
        integer = kind == "numeric" and name in integers
        value = _statistic(method, values, ref, cur, kind, integer)
        note = f"reference has only {n_ref} values; the distance is noisy" if n_ref <= SMALL_REFERENCE else ""
        results.append(ColumnDrift(name, kind, method, value, limit, bool(value >= limit), n_ref, n_cur, note,
                                   rule=_rule(method, limit, 0, correction)))
    return _adjust(results, p_value, correction)


def dataset_drift(results: list[ColumnDrift], drift_share: float, correction: str = "benjamini-hochberg") -> dict:
    """The dataset decision: at least ``drift_share`` of the feature columns drifted, each by its own rule.

    Why this holds at small sizes: the tested columns' p-values were already adjusted together
    (Benjamini-Hochberg, :func:`column_drift`), so when no column moved the chance that any
    column is flagged is at most ``p_value`` (for independent or positively dependent tests), and
    a dataset alarm, which needs ``drift_share`` of the columns, is rarer still. Counting raw
    p < 0.05 flags instead would call about 10% of clean 22-column batches drifted (3 or more of
    22 independent columns at 5% each; 3-8% measured on the generator, whose columns are
    correlated). A correction keeps the same test per column and the same ``drift_share``, so
    the rule reads the same at every size; a binomial test on the count would instead assume
    independent columns, which correlated features are not.
    """
    drifted = sum(c.drifted for c in results)
    share = drifted / len(results) if results else 0.0
    tested = sum(c.tested for c in results)
    rule = f"Dataset drift when at least {drift_share:.0%} of the {len(results)} feature columns drifted"
    if tested > 1 and correction == "benjamini-hochberg":
        rule += f"; the p-values of the {tested} tested columns adjusted together (Benjamini-Hochberg)"
    return {"drifted": bool(results) and share >= drift_share, "drifted_columns": drifted,
            "columns": len(results), "share": share, "drift_share": drift_share,
            "tested_columns": tested, "distance_columns": len(results) - tested, "rule": rule}
