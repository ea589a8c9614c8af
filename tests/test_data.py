"""Data loading and splitting: clear errors for bad files; a stable held-out set."""

from __future__ import annotations

import polars as pl
import pytest

from conftest import BASE_CONFIG
from mlops.config import Config
from mlops.data import holdout_mask, load
from mlops.errors import DataError


def test_missing_file(tmp_path):
    """A path that does not exist names the config key and what is accepted."""
    with pytest.raises(DataError, match="data.source: no data found at .*nope.csv"):
        load(str(tmp_path / "nope.csv"))


def test_empty_file(tmp_path):
    """A zero-byte file is an error naming the file."""
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match="is empty"):
        load(str(path))


def test_header_only(tmp_path):
    """A header with no rows is an error."""
    path = tmp_path / "header.csv"
    path.write_text("a,b\n")
    with pytest.raises(DataError, match="no rows"):
        load(str(path))


def test_wrong_extension(tmp_path):
    """Only CSV and Parquet are read."""
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    with pytest.raises(DataError, match="neither .csv nor .parquet"):
        load(str(path))


def test_glob_and_parquet_concatenate(tmp_path):
    """A glob reads every file, CSV and Parquet alike, into one frame with one fingerprint."""
    pl.DataFrame({"a": [1, 2]}).write_csv(tmp_path / "part1.csv")
    pl.DataFrame({"a": [3]}).write_parquet(tmp_path / "part2.parquet")
    dataset = load(str(tmp_path / "part*"))
    assert dataset.frame.get_column("a").to_list() == [1, 2, 3]
    assert len(dataset.fingerprint) == 64


def test_id_split_is_stable_when_rows_are_added():
    """With an id column, a row stays in the same split when other rows are added or reordered."""
    config = Config(**{**BASE_CONFIG, "split": {"method": "random", "test_size": 0.3, "seed": 1}})
    small = pl.DataFrame({"loan_id": list(range(1000)), "application_date": [0] * 1000})
    big = pl.DataFrame({"loan_id": list(range(2000))[::-1], "application_date": [0] * 2000})
    small_mask = holdout_mask(config, small)
    big_mask = dict(zip(big["loan_id"].to_list(), holdout_mask(config, big)))
    assert all(big_mask[i] == small_mask[i] for i in range(1000))
    assert 0.25 < small_mask.mean() < 0.35


def test_time_split_holds_out_latest_rows():
    """The time split holds out the latest test_size share."""
    config = Config(**BASE_CONFIG)
    frame = pl.DataFrame({"loan_id": range(100), "application_date": range(100)})
    mask = holdout_mask(config, frame)
    assert mask[75:].all() and not mask[:75].any()


def test_duplicated_header_is_named(tmp_path):
    """A CSV header that repeats a column is refused naming it (polars would rename it silently)."""
    path = tmp_path / "dup.csv"
    path.write_text("age,income,age\n41,100,41\n")
    with pytest.raises(DataError, match=r"names the column\(s\) \['age'\] more than once"):
        load(str(path))


def test_semicolon_separated_csv_gets_a_delimiter_hint(tmp_path):
    """A one-column header full of semicolons says the file looks semicolon-separated, not 26 failures."""
    path = tmp_path / "semi.csv"
    path.write_text("age;income;purpose\n41;100;car\n")
    with pytest.raises(DataError, match="looks semicolon-separated. Save it comma-separated"):
        load(str(path))
