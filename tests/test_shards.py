"""Mergeable statistics (mlops.shards): shards merged give exactly the single pass's drift and validation results."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.contract import ColumnRule, Contract
from mlops.drift_stats import CATEGORICAL_METHODS, NUMERIC_METHODS, column_drift
from mlops.shards import drift_shard, merge_drift, merge_validation, read_shard, validation_shard, write_shard
from mlops.validation import check_frame

COLUMNS = {"amount": "numeric", "term": "numeric", "grade": "categorical", "flag": "numeric"}


def _frame(rng: np.random.Generator, rows: int, shift: float) -> pl.DataFrame:
    amount = rng.normal(shift, 1.0, rows).round(2)
    amount[rng.random(rows) < 0.05] = np.nan
    grade = rng.choice(["A", "B", "C", "D"], rows, p=[0.4 - shift / 10, 0.3, 0.2, 0.1 + shift / 10]).astype(object)
    grade[rng.random(rows) < 0.05] = None
    return pl.DataFrame({"amount": amount, "term": rng.integers(6, 60 + int(10 * shift), rows),
                         "grade": pl.Series(grade.tolist(), dtype=pl.String),
                         "flag": rng.integers(0, 2, rows)})


def _cuts(rng: np.random.Generator, rows: int, shards: int) -> list[tuple[int, int]]:
    bounds = sorted({0, rows, *rng.integers(0, rows, shards - 1).tolist()})
    return list(zip(bounds, bounds[1:]))


def _shards(reference: pl.DataFrame, current: pl.DataFrame, rng, count: int, tmp_path) -> list[dict]:
    """Each side cut at random rows into up to ``count`` shards, each written and read back as a job would."""
    shards = []
    for side, frame in (("reference", reference), ("current", current)):
        for start, stop in _cuts(rng, frame.height, count):
            part = frame.slice(start, stop - start)
            folder = tmp_path / f"{side}-{start}"
            write_shard(drift_shard(part if side == "reference" else None, part if side == "current" else None,
                                    COLUMNS), folder)
            shards.append(read_shard(folder))
    return shards


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), count=st.integers(1, 6), shift=st.sampled_from([0.0, 0.5]),
       small=st.sampled_from([0, 10_000]))
def test_merged_shards_decide_every_drift_method_exactly_as_one_pass(tmp_path_factory, seed, count, shift, small):
    """For every numeric and categorical method, distances and small-sample tests, merged shards equal one pass."""
    rng = np.random.default_rng(seed)
    reference, current = _frame(rng, 1500, 0.0), _frame(rng, 900, shift)
    shards = _shards(reference, current, rng, count, tmp_path_factory.mktemp("shards"))
    for numeric in NUMERIC_METHODS:
        for categorical in CATEGORICAL_METHODS:
            options = {"threshold": 0.1, "numeric_method": numeric, "categorical_method": categorical,
                       "small_sample_rows": small}
            single = [c.to_dict() for c in column_drift(reference, current, COLUMNS, **options)]
            merged = [c.to_dict() for c in merge_drift(shards, COLUMNS, **options)]
            assert merged == single, (numeric, categorical)


def test_a_float_shard_makes_the_merged_column_non_integer_as_concatenation_does(tmp_path):
    """A column read as integers in one shard and floats in another bins like the concatenated float column."""
    reference = pl.DataFrame({"amount": list(range(0, 3000, 3)), "term": [1.5] * 1000, "grade": ["A"] * 1000,
                              "flag": [0, 1] * 500})
    current = reference.with_columns(pl.col("amount") + 7)
    ints = reference.head(500).with_columns(pl.col("term").cast(pl.Int64))
    shards = [drift_shard(ints, None, COLUMNS), drift_shard(reference.tail(500), None, COLUMNS),
              drift_shard(None, current, COLUMNS)]
    whole = pl.concat([ints, reference.tail(500)], how="diagonal_relaxed")
    options = {"threshold": 0.1, "small_sample_rows": 0, "numeric_method": "psi"}
    assert merge_drift(shards, COLUMNS, **options) == column_drift(whole, current, COLUMNS, **options)
    write_shard(shards[0], tmp_path / "s")
    assert read_shard(tmp_path / "s")["integers"] == {"reference": ["amount", "term", "flag"]}


CONTRACT = Contract(columns={
    "id": ColumnRule("int", nullable=False, unique=True),
    "amount": ColumnRule("float", nullable=False, min=0.0, max=100.0),
    "grade": ColumnRule("str", allowed=("A", "B", "C")),
    "empty": ColumnRule("float"),
}, strict=True, min_rows=10)


def _bad_frame(rng: np.random.Generator, rows: int) -> pl.DataFrame:
    ids = rng.integers(0, rows * 2, rows)
    amount = rng.uniform(-10, 110, rows)
    amount[rng.random(rows) < 0.1] = None
    return pl.DataFrame({"id": ids, "amount": pl.Series(amount.tolist(), dtype=pl.Float64).fill_nan(None),
                         "grade": rng.choice(["A", "B", "C", "Z"], rows).tolist(),
                         "empty": pl.Series([None] * rows, dtype=pl.Float64), "extra": np.zeros(rows)})


def _canonical(failures: list[dict]) -> list[tuple]:
    return sorted((str(f["column"]), f["problem"], f["rows"], len(f["examples"])) for f in failures)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merged_validation_shards_find_every_failure_of_one_pass(seed):
    """Range, category, unexpected-column, null, all-null and duplicate failures: the merged counts equal one pass."""
    rng = np.random.default_rng(seed)
    frame = _bad_frame(rng, 400)
    shards = [validation_shard(frame.slice(a, b - a), CONTRACT) for a, b in _cuts(rng, frame.height, 4)]
    rows, columns, failures = merge_validation(shards, CONTRACT)
    single = check_frame(frame, CONTRACT)
    assert rows == 400 and columns == frame.columns
    assert _canonical(failures) == _canonical(single)
    assert {f["problem"] for f in failures} >= {"duplicate values in a unique column", "every value is null",
                                                "null values in a non-nullable column"}


def test_min_rows_is_decided_on_the_whole_data_not_per_shard():
    """Shards of 4 rows each pass min_rows 10 together; 6 rows in all fail it once."""
    frame = _bad_frame(np.random.default_rng(3), 12).with_columns(pl.Series("id", range(12)))
    shards = [validation_shard(frame.slice(i, 4), CONTRACT) for i in (0, 4, 8)]
    assert not any("too few rows" in f["problem"] for f in merge_validation(shards, CONTRACT)[2])
    _, _, failures = merge_validation(shards[:1] + shards[2:3], CONTRACT)
    assert [f["problem"] for f in failures if f["column"] is None] == ["too few rows: 8 < min_rows 10"]
