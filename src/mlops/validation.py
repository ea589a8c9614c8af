"""Check a frame against the data contract: every failure at once, as records and as a table.

Input: a polars frame and a :class:`~mlops.contract.Contract`. Output: the JSON-able result
``{passed, source, schema_file, rows, columns, failures, seconds}`` (each failure: column,
problem, rows, examples) and a plain-text table. Failures are collected at once (pandera
``lazy=True``, polars backend) after a dtype pass of our own. Used by ``make validate``
(:mod:`mlops.stages.validate`, which writes ``reports/validation.json``) and by the stages that
check their data before they use it.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import pandera.polars as pa
import polars as pl

from mlops.errors import ValidationFailed
from mlops.contract import DTYPES, Contract

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5

_CHECK_TEXT = {
    "column_in_schema": "unexpected column (not in the contract; add it to schema.yaml or drop it)",
    "column_in_dataframe": "missing column (required by the contract)",
    "not_nullable": "null values in a non-nullable column",
    "field_uniqueness": "duplicate values in a unique column",
    "all_null": "every value is null",
    "min_rows": "too few rows",
}


def _describe(check: str, column: str | None, contract: Contract) -> str:
    if check in _CHECK_TEXT:
        return _CHECK_TEXT[check]
    rule = contract.columns.get(column or "")
    if check.startswith("dtype("):
        return f"wrong dtype: cannot be read as {rule.dtype if rule else '?'}"
    if check.startswith("isin") and rule is not None:
        return "value not in the allowed categories (unseen category)"
    if check.startswith("greater_than_or_equal_to") and rule is not None:
        return f"value below the minimum {rule.min}"
    if check.startswith("less_than_or_equal_to") and rule is not None:
        return f"value above the maximum {rule.max}"
    return check


def _failures_from_pandera(error: pa.errors.SchemaErrors, contract: Contract) -> list[dict]:
    cases = error.failure_cases
    grouped: dict[tuple, dict] = defaultdict(lambda: {"count": 0, "examples": []})
    for row in cases.iter_rows(named=True):
        check = str(row["check"])
        column = row["column"]
        if check in ("column_in_schema", "column_in_dataframe"):
            column = row["failure_case"]
        key = (column, _describe(check, column, contract))
        entry = grouped[key]
        entry["count"] += 1
        if check.startswith("dtype(") and row["failure_case"] is not None:
            entry["examples"] = [f"found {row['failure_case']}"]
        elif row["failure_case"] is not None and len(entry["examples"]) < MAX_EXAMPLES:
            if row["failure_case"] not in entry["examples"] and check not in _CHECK_TEXT:
                entry["examples"].append(row["failure_case"])
    return [
        {"column": column, "problem": problem, "rows": entry["count"], "examples": entry["examples"]}
        for (column, problem), entry in grouped.items()
    ]


def cast_column(series: pl.Series, dtype: str) -> pl.Series:
    """``series`` as the contract dtype ``dtype``; a value that is not one becomes null."""
    target = DTYPES[dtype]
    if dtype == "datetime" and series.dtype == pl.String:
        return series.str.to_datetime(strict=False)
    if dtype == "datetime" and series.dtype == pl.Date:
        return series.cast(pl.Datetime)  # a date is a datetime at midnight
    if dtype == "date" and series.dtype == pl.String:
        return series.str.to_date(strict=False)
    if dtype == "date" and isinstance(series.dtype, pl.Datetime):
        times = series.dt.time()
        return series.dt.date().set(times != pl.time(0, 0), None)  # a time of day is not a date
    converted = series.cast(target, strict=False)
    if dtype == "int" and series.dtype.is_float():
        # A float cast to int truncates; a value with a fraction is not an int.
        converted = converted.set(series != series.floor(), None)
    return converted


def coerce(frame: pl.DataFrame, contract: Contract) -> tuple[pl.DataFrame, list[dict]]:
    """Cast each contract column to its dtype; a column that cannot be cast is a failure and dropped."""
    failures, casts, unusable = [], [], []
    for name, rule in contract.columns.items():
        if name not in frame.columns:
            continue
        series = frame.get_column(name)
        wanted = DTYPES[rule.dtype]
        if series.dtype == wanted or (rule.dtype == "datetime" and isinstance(series.dtype, pl.Datetime)):
            continue
        try:
            converted = cast_column(series, rule.dtype)
        except pl.exceptions.PolarsError:
            converted = pl.Series(name, [None] * len(series), dtype=wanted)
        bad = converted.is_null() & series.is_not_null()
        if bad.any():
            examples = series.filter(bad).unique(maintain_order=True).head(MAX_EXAMPLES).cast(pl.String).to_list()
            failures.append({"column": name, "problem": f"wrong dtype: {series.dtype} values that are not {rule.dtype}",
                             "rows": int(bad.sum()), "examples": examples})
            unusable.append(name)
        else:
            casts.append(converted.alias(name))
    return frame.with_columns(casts).drop(unusable), failures


def _column_failures(frame: pl.DataFrame, contract: Contract, required: tuple[str, ...]) -> list[dict]:
    """Every unexpected column (strict contracts), every missing contract column, every missing required one."""
    failures = []
    if contract.strict:
        failures += [{"column": name, "problem": _CHECK_TEXT["column_in_schema"], "rows": frame.height,
                      "examples": []} for name in frame.columns if name not in contract.columns]
    failures += [{"column": name, "problem": _CHECK_TEXT["column_in_dataframe"], "rows": frame.height,
                  "examples": []} for name in contract.columns if name not in frame.columns]
    failures += [{"column": name, "problem": f"missing {role.replace('_column', '')} column '{name}' "
                                             f"(data.{role} in the config)",
                  "rows": frame.height, "examples": []}
                 for role, name in (item.split("=", 1) for item in required)
                 if name not in frame.columns and name not in contract.columns]
    return failures


def check_frame(frame: pl.DataFrame, contract: Contract, required: tuple[str, ...] = ()) -> list[dict]:
    """Every contract failure of ``frame`` as a list of {column, problem, rows, examples}.

    ``required`` names columns the config needs whatever the contract says, as ``role=column``
    (e.g. ``target=default``): a missing one is a failure too.
    """
    failures: list[dict] = _column_failures(frame, contract, required)
    if frame.height < contract.min_rows:
        failures.append(
            {"column": None, "problem": f"too few rows: {frame.height} < min_rows {contract.min_rows}",
             "rows": frame.height, "examples": []}
        )
        return failures
    null_counts = frame.null_count().row(0, named=True)
    for name, nulls in null_counts.items():
        if name in contract.columns and nulls == frame.height:
            failures.append({"column": name, "problem": _CHECK_TEXT["all_null"], "rows": nulls, "examples": []})
    frame, dtype_failures = coerce(frame, contract)
    failures.extend(dtype_failures)
    unusable = {f["column"] for f in dtype_failures}
    present = {name for name in contract.columns if name in frame.columns} - unusable
    try:  # columns are checked above (pandera reports only the first unexpected one)
        contract.pandera_schema(only=present).validate(frame.select(sorted(present)), lazy=True)
    except pa.errors.SchemaErrors as error:
        all_null = {f["column"] for f in failures}
        failures.extend(
            f for f in _failures_from_pandera(error, contract)
            if not (f["column"] in all_null and f["problem"].startswith("null values"))
        )
    return failures


def format_table(failures: list[dict]) -> str:
    """A plain-text table of failures for the terminal and logs."""
    rows = [("column", "problem", "rows", "examples")]
    for failure in failures:
        examples = ", ".join(repr(e) for e in failure["examples"][:MAX_EXAMPLES])
        rows.append((str(failure["column"] or "-"), failure["problem"], str(failure["rows"]), examples))
    rows = [(*row[:3], row[3][:60]) for row in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def validate(frame: pl.DataFrame, contract: Contract, *, source: str, required: tuple[str, ...] = ()) -> dict:
    """Validate and return the JSON-able result (``passed`` false lists every failure)."""
    started = time.perf_counter()
    failures = check_frame(frame, contract, required)
    result = {
        "passed": not failures,
        "source": source,
        "schema_file": contract.source,
        "rows": frame.height,
        "columns": frame.width,
        "failures": failures,
        "seconds": round(time.perf_counter() - started, 4),
    }
    log.info("validated %s rows of %s in %.3fs: %s", frame.height, source, result["seconds"],
             "passed" if not failures else f"{len(failures)} failure(s)")
    return result


def required_columns(config) -> tuple[str, ...]:
    """The columns the config itself needs (``role=column``): the target, and the id and time columns when set."""
    data = config.data
    return tuple(f"{role}={name}" for role, name in (("target", data.target), ("id_column", data.id_column),
                                                     ("time_column", data.time_column)) if name)


def failure_message(result: dict) -> str:
    """What broke: the source, the contract, and the failure table, with the fix."""
    return (f"{result['source']} broke the data contract {result['schema_file']} in "
            f"{len(result['failures'])} way(s):\n{format_table(result['failures'])}\n"
            "Fix the data, or if the change is intended, update the contract (schema.yaml) in the same PR.")


def raise_if_failed(result: dict) -> None:
    """Raise ValidationFailed with the failure table when the result did not pass."""
    if not result["passed"]:
        raise ValidationFailed(failure_message(result))
