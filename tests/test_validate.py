"""Data validation: every contract failure is found in one run and reported readably."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from mlops.stages.datagen import generate
from mlops.contract import ColumnRule, Contract
from mlops.validation import check_frame


def test_bundled_data_passes(project):
    """Generated data meets the contract inferred from it, and validation.json says so."""
    code, out, _ = project.run("validate")
    assert code == 0, out
    result = json.loads((project.root / "reports" / "validation.json").read_text())
    assert result["passed"] is True and result["rows"] == 800 and result["failures"] == []


def test_every_failure_kind_reported_at_once(project):
    """Missing and unexpected columns, dtype, nulls, range, unseen category and duplicate ids in one report."""
    frame = generate(300, seed=4)
    frame = frame.drop(columns=["region"])
    frame["surprise"] = 1
    frame["credit_score"] = frame["credit_score"].astype(object)
    frame.loc[3, "credit_score"] = "excellent"
    frame["default"] = frame["default"].astype(float)
    frame.loc[5, "default"] = np.nan
    frame.loc[7, "age"] = -4
    frame.loc[9, "purpose"] = "crypto"
    frame.loc[11, "loan_id"] = frame.loc[12, "loan_id"]
    project.write_data(frame)
    code, _, err = project.run("validate")
    assert code == 1
    assert err.startswith("Error: ")
    assert "Traceback" not in err
    result = json.loads((project.root / "reports" / "validation.json").read_text())
    problems = {(f["column"], f["problem"].split(" (")[0].split(":")[0]) for f in result["failures"]}
    assert ("region", "missing column") in problems
    assert ("surprise", "unexpected column") in problems
    assert ("credit_score", "wrong dtype") in problems
    assert ("default", "null values in a non-nullable column") in problems
    assert ("age", "value below the minimum 0") in problems
    assert ("purpose", "value not in the allowed categories") in problems
    assert ("loan_id", "duplicate values in a unique column") in problems
    assert "crypto" in err  # the example value is shown in the table


def test_all_null_column_is_one_clear_failure():
    """A column that is entirely null is reported as such, not as hundreds of null rows."""
    contract = Contract(columns={"a": ColumnRule(dtype="float", nullable=False), "b": ColumnRule(dtype="str")})
    frame = pl.DataFrame({"a": [None, None, None], "b": ["x", "y", "z"]}, schema={"a": pl.Float64, "b": pl.String})
    failures = check_frame(frame, contract)
    assert failures == [{"column": "a", "problem": "every value is null", "rows": 3, "examples": []}]


def test_min_rows():
    """Too few rows is a failure of its own."""
    contract = Contract(columns={"a": ColumnRule(dtype="int")}, min_rows=5)
    failures = check_frame(pl.DataFrame({"a": [1, 2]}), contract)
    assert failures[0]["problem"].startswith("too few rows: 2 < min_rows 5")


def test_missing_contract_says_run_make_schema(project):
    """Without schema.yaml the error tells how to draft one."""
    (project.root / "schema.yaml").unlink()
    code, _, err = project.run("validate")
    assert code == 1 and "make schema" in err


def test_schema_refuses_to_overwrite(project):
    """`make schema` keeps a reviewed contract unless told to overwrite."""
    code, _, err = project.run("schema")
    assert code == 1 and "--force" in err
    code, _, _ = project.run("schema", "--force")
    assert code == 0


def test_every_unexpected_column_and_a_missing_target_are_reported(project):
    """Two unexpected columns are two failures (pandera named only the first); a missing data.target is one."""
    frame = generate(200, seed=6)
    frame["extra_one"], frame["extra_two"] = 1, 2
    project.write_data(frame)
    assert project.run("validate")[0] == 1
    result = json.loads((project.root / "reports" / "validation.json").read_text())
    unexpected = {f["column"] for f in result["failures"] if f["problem"].startswith("unexpected column")}
    assert unexpected == {"extra_one", "extra_two"}
    contract = Contract(columns={"x": ColumnRule("int")})
    failures = check_frame(pl.DataFrame({"x": [1, 2]}), contract, required=("target=default",))
    assert [f["problem"] for f in failures] == ["missing target column 'default' (data.target in the config)"]


def test_a_date_only_column_round_trips_from_draft_to_validate(project):
    """`make schema` drafts `dtype: date` for YYYY-MM-DD values, and `make validate` accepts them (it refused)."""
    frame = generate(200, seed=8)
    frame["signup_day"] = frame["application_date"].dt.strftime("%Y-%m-%d")
    project.write_data(frame)
    assert project.run("schema", "--force")[0] == 0
    contract = (project.root / "schema.yaml").read_text()
    assert "signup_day: {dtype: date" in contract
    code, out, err = project.run("validate")
    assert code == 0, err + out
