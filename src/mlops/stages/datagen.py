"""Seeded generator of the bundled example problem: consumer-loan default (binary).

Output: a pandas DataFrame of ``n`` loan applications with 25 columns (an id, an application
timestamp, 15 numeric and 7 categorical features, the ``default`` target), some missing
values, and a target with learnable signal. ``drift=True`` makes a later "production" period
in which the columns in :data:`DRIFTED_COLUMNS` shift; every other column keeps its distribution.

``python -m mlops datagen --rows N --out PATH`` (:func:`run`) writes any size as CSV or Parquet
(1M+ rows for benchmarks).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops.context import Context, Result
from mlops.io import atomic_path

TARGET = "default"
ID_COLUMN = "loan_id"
TIME_COLUMN = "application_date"
# Columns whose distribution moves in the drifted production period (known truth for tests).
DRIFTED_COLUMNS = ("annual_income", "interest_rate", "purpose", "application_channel")

_HOME = (["MORTGAGE", "RENT", "OWN", "OTHER"], [0.45, 0.38, 0.15, 0.02])
_PURPOSE = (
    ["debt_consolidation", "credit_card", "home_improvement", "car", "medical", "small_business", "other"],
    [0.42, 0.22, 0.10, 0.08, 0.06, 0.05, 0.07],
)
_PURPOSE_DRIFTED = [0.30, 0.18, 0.08, 0.07, 0.07, 0.22, 0.08]
_REGION = (["northeast", "midwest", "south", "west"], [0.2, 0.22, 0.36, 0.22])
_VERIFICATION = (["verified", "source_verified", "not_verified"], [0.35, 0.35, 0.30])
_CHANNEL = (["online", "branch", "broker"], [0.55, 0.30, 0.15])
_CHANNEL_DRIFTED = [0.80, 0.12, 0.08]
_GRADES = np.array(list("ABCDEFG"))


def _choice(rng: np.random.Generator, options: tuple[list[str], list[float]], n: int, probs=None):
    values, default_probs = options
    return rng.choice(np.array(values, dtype=object), size=n, p=default_probs if probs is None else probs)


def generate(  # pylint: disable=too-many-locals  # one local per column keeps the story readable
    n: int, seed: int = 0, *, start: str = "2024-01-01", days: int = 181, drift: bool = False) -> pd.DataFrame:
    """Make ``n`` loan applications dated from ``start`` over ``days`` days."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    seconds = rng.integers(0, days * 86_400, size=n)
    dates = pd.Timestamp(start) + pd.to_timedelta(np.sort(seconds), unit="s")

    age = np.clip(rng.normal(41, 12, n), 18, 85).round()
    income_scale = 1.35 if drift else 1.0
    annual_income = np.round(np.exp(rng.normal(11.0, 0.55, n)) * income_scale, -2)
    employment_years = np.clip(rng.gamma(2.0, 3.5, n), 0, 45).round(1)
    credit_score = np.clip(rng.normal(690, 60, n), 300, 850).round()
    dti = np.clip(rng.gamma(4.0, 4.5, n), 0, 60).round(2)
    revolving_utilization = np.clip(rng.beta(2.2, 3.0, n) * 1.3, 0, 1.5).round(3)
    delinquencies_2y = rng.poisson(0.3, n)
    inquiries_6m = rng.poisson(0.9, n)
    open_accounts = rng.poisson(9, n) + 1
    total_credit_lines = open_accounts + rng.poisson(12, n)
    months_since_delinquency = np.where(delinquencies_2y > 0, rng.integers(1, 24, n), np.nan)

    grade_index = np.clip(((760 - credit_score) / 45 + rng.normal(0, 0.8, n)).round(), 0, 6).astype(int)
    interest_rate = (6.0 + grade_index * 3.1 + rng.normal(0, 1.2, n) + (2.5 if drift else 0.0)).round(2)
    term_months = np.where(rng.random(n) < 0.7, "36 months", "60 months")
    loan_amount = np.clip(np.round(rng.lognormal(9.4, 0.6, n), -2), 1000, 40000)
    monthly_rate = interest_rate / 1200
    periods = np.where(term_months == "36 months", 36, 60)
    installment = (loan_amount * monthly_rate / (1 - (1 + monthly_rate) ** -periods)).round(2)

    purpose = _choice(rng, _PURPOSE, n, _PURPOSE_DRIFTED if drift else None)
    channel = _choice(rng, _CHANNEL, n, _CHANNEL_DRIFTED if drift else None)
    home = _choice(rng, _HOME, n)
    region = _choice(rng, _REGION, n)
    verification = _choice(rng, _VERIFICATION, n)
    has_cosigner = (rng.random(n) < 0.08).astype(int)
    savings_balance = np.round(np.exp(rng.normal(8.5, 1.3, n)), -1)

    logit = (
        -2.2
        + 0.012 * (690 - credit_score)
        + 0.035 * (dti - 18)
        + 0.09 * (interest_rate - 14)
        + 0.9 * (revolving_utilization - 0.5)
        + 0.35 * delinquencies_2y
        + 0.12 * inquiries_6m
        - 0.35 * (np.log(annual_income / income_scale) - 11.0)
        + 0.55 * (purpose == "small_business")
        + 0.25 * (term_months == "60 months")
        - 0.5 * has_cosigner
        - 0.02 * employment_years
        + 0.2 * (home == "RENT")
    )
    default = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)

    frame = pd.DataFrame(
        {
            ID_COLUMN: np.arange(1, n + 1) + seed * 10_000_000,
            TIME_COLUMN: dates,
            "age": age,
            "annual_income": annual_income,
            "employment_years": employment_years,
            "credit_score": credit_score,
            "debt_to_income": dti,
            "revolving_utilization": revolving_utilization,
            "delinquencies_2y": delinquencies_2y,
            "inquiries_6m": inquiries_6m,
            "open_accounts": open_accounts,
            "total_credit_lines": total_credit_lines,
            "months_since_delinquency": months_since_delinquency,
            "loan_amount": loan_amount,
            "interest_rate": interest_rate,
            "installment": installment,
            "savings_balance": savings_balance,
            "term_months": term_months,
            "grade": _GRADES[grade_index],
            "home_ownership": home,
            "purpose": purpose,
            "region": region,
            "verification_status": verification,
            "application_channel": channel,
            TARGET: default,
        }
    )
    # Missing values, as real application data has them.
    for column, share in (("annual_income", 0.02), ("employment_years", 0.05), ("savings_balance", 0.03)):
        frame.loc[rng.random(n) < share, column] = np.nan
    return frame


def run(ctx: Context, *, rows: int = 10_000, seed: int = 0, start: str = "2024-01-01", days: int = 181,
        drift: bool = False, out: str = "") -> Result:
    """Write ``rows`` generated applications to ``out`` (.csv or .parquet)."""
    del ctx  # no config needed: the generator is self-contained
    frame = generate(rows, seed, start=start, days=days, drift=drift)
    with atomic_path(out) as temp:
        if out.endswith(".parquet"):
            frame.to_parquet(temp, index=False)
        else:
            frame.to_csv(temp, index=False)
    return Result(message=f"Wrote {len(frame)} rows to {out}")
