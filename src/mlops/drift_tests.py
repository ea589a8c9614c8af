"""Two-sample tests for small samples, and the correction across the columns of one check.

Input: one column reduced to its table of distinct values with a reference and a current count
(as :mod:`mlops.drift_stats` builds it), or the p-values of a family of columns. Output: a
:class:`TestResult` (the test, its statistic and p-value, and evidently's own value where ours
differs), or the Benjamini-Hochberg adjusted p-values of the family.

At or below ``drift.small_sample_rows`` reference values a distance at a fixed threshold is
mostly sampling noise, so a p-value decides instead, with the tests evidently 0.7.23's defaults
pick there (``evidently.legacy.calculations.stattests.registry._get_default_stattest``):

- ``ks``: numeric columns with more than 5 distinct values: ``scipy.stats.ks_2samp`` on the two
  samples, exactly evidently's ``ks_stat_test``;
- ``z``: columns with at most 2 distinct values: the pooled two-proportion Z-test, evidently's
  ``z_stat_test`` (the same formula; ``erfc`` instead of ``1 - cdf`` keeps tiny p-values exact);
- ``chi2_homogeneity``: other categorical columns and numeric ones with 3-5 values. Here we
  deviate from evidently on purpose: its ``chisquare`` is a goodness-of-fit test that treats the
  reference shares as exact, which ignores the reference's own sampling noise and flags
  unshifted columns far more often than 5% (52-63% in repeated trials; twice the variance when
  both sides are the same size). We use Pearson's two-sample test of homogeneity on the 2 x k
  table (``scipy.stats.chi2_contingency`` without continuity correction), which for k = 2 is
  the Z-test squared. evidently's value is kept in ``evidently_value`` for comparison.

:func:`benjamini_hochberg` adjusts the p-values of the columns tested in one check. When no
column moved, the chance that it flags any column is at most the level (for independent or
positively dependent tests), so the dataset-level false alarm rate stays at ``drift.p_value``
however many columns are tested; when columns moved, at most that share of the flagged ones is
expected to be wrong.

scipy is imported only when a test runs (about 1 s), so large checks never pay for it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

# Human-readable names, used in each column's ``rule``.
TEST_NAMES = {"ks": "KS test", "z": "Z-test", "chi2_homogeneity": "two-sample chi-square test"}
CORRECTIONS = ("benjamini-hochberg", "none")


@dataclass(frozen=True)
class TestResult:
    """One column's test: its name, statistic, p-value, and evidently's value where it differs."""

    __test__ = False  # not a pytest test class, whatever its name

    method: str
    statistic: float
    p_value: float
    evidently_value: float | None = None


def choose_test(kind: str, distinct: int) -> str:
    """evidently's default test for a column of ``kind`` with ``distinct`` values (both samples together)."""
    if kind == "numeric" and distinct > 5:
        return "ks"
    return "z" if distinct <= 2 else "chi2_homogeneity"


def ks_test(values: np.ndarray, ref: np.ndarray, cur: np.ndarray) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test on the samples the counts describe (``scipy.stats.ks_2samp``)."""
    from scipy.stats import ks_2samp  # pylint: disable=import-outside-toplevel  # ~1 s; only small checks need it

    with warnings.catch_warnings():
        # With many ties scipy's exact method can fail and it falls back to the asymptotic one, as
        # it does inside evidently; the warning says nothing the p-value does not.
        warnings.simplefilter("ignore", RuntimeWarning)
        result = ks_2samp(np.repeat(values, ref), np.repeat(values, cur))
    return TestResult("ks", float(result.statistic), float(result.pvalue))


def z_test(ref: np.ndarray, cur: np.ndarray) -> TestResult:
    """Pooled two-proportion Z-test of the first value's share against the rest (evidently's ``z_stat_test``)."""
    if len(ref) < 2:
        return TestResult("z", 0.0, 1.0)
    n_ref, n_cur = float(ref.sum()), float(cur.sum())
    p_ref, p_cur = 1.0 - ref[0] / n_ref, 1.0 - cur[0] / n_cur
    pooled = (p_ref * n_ref + p_cur * n_cur) / (n_ref + n_cur)
    z = (p_ref - p_cur) / math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    return TestResult("z", float(z), math.erfc(abs(z) / math.sqrt(2.0)))


def evidently_chisquare(ref: np.ndarray, cur: np.ndarray) -> float:
    """evidently's ``chisquare`` p-value: current counts against reference shares taken as exact."""
    from scipy.stats import chi2  # pylint: disable=import-outside-toplevel  # as in ks_test

    expected = ref * (cur.sum() / ref.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(expected > 0, (cur - expected) ** 2 / expected, np.where(cur > 0, np.inf, 0.0))
    return float(chi2.sf(float(terms.sum()), len(ref) - 1))


def chi2_homogeneity(ref: np.ndarray, cur: np.ndarray) -> TestResult:
    """Pearson's chi-square test of homogeneity on the 2 x k table of counts (no continuity correction)."""
    from scipy.stats import chi2  # pylint: disable=import-outside-toplevel  # as in ks_test

    table = np.vstack([ref, cur]).astype(float)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return TestResult("chi2_homogeneity", statistic, float(chi2.sf(statistic, len(ref) - 1)),
                      evidently_value=evidently_chisquare(ref, cur))


def two_sample_test(method: str, values: np.ndarray, ref: np.ndarray, cur: np.ndarray) -> TestResult:
    """Run ``method`` (``ks``, ``z`` or ``chi2_homogeneity``) on one column's table of counts."""
    if method == "ks":
        return ks_test(values, ref, cur)
    if method == "z":
        return z_test(ref, cur)
    return chi2_homogeneity(ref, cur)


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values, in the given order (a column drifts when its value is below the level)."""
    if not p_values:
        return []
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    adjusted = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out.tolist()
