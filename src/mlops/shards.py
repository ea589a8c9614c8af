"""Statistics that merge exactly: each shard of the data reduces to small tables; merged tables give one pass's result.

Input: one shard's frame (the files a SageMaker Processing instance got, sharded by S3 key), and
for validation the data contract. Output: a shard's statistics, written to and read from a folder
(:func:`write_shard`, :func:`read_shard`), and their merge:

- drift: per column the count of each distinct value (numeric values as floats with NaN, null and
  infinities dropped; categorical values as strings with nulls dropped), exactly what
  :func:`mlops.drift_stats.decide` reduces a column to. Counts add, so the merged tables, and
  every distance, histogram and test computed from them, equal the single pass's.
- validation: rows, null counts per column, value counts of ``unique`` columns, and every row-level
  failure (dtype, range, categories) with its row count and examples. Rules about the whole data
  (``min_rows``, all-null columns, nulls, duplicates) are decided after the merge from those sums.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import polars as pl

from mlops.contract import Contract
from mlops.drift_stats import ColumnDrift, decide
from mlops.validation import MAX_EXAMPLES, check_frame

SIDES = ("reference", "current")
# The problems :func:`merge_validation` recomputes from merged sums (validation._CHECK_TEXT's wording).
ALL_NULL = "every value is null"
NULLS = "null values in a non-nullable column"
DUPLICATES = "duplicate values in a unique column"


def _value(column: str, kind: str) -> tuple[pl.Expr, pl.Expr]:
    if kind == "numeric":
        return pl.col(column).cast(pl.Float64), pl.col("value").is_finite()
    return pl.col(column).cast(pl.String), pl.col("value").is_not_null()


def value_counts(frame: pl.DataFrame, columns: dict[str, str]) -> dict[str, pl.DataFrame]:
    """Per column (``{name: "numeric" | "categorical"}``) its distinct values and their counts (``value``, ``n``)."""
    queries = []
    for name, kind in columns.items():
        value, clean = _value(name, kind)
        source = frame.lazy() if name in frame.columns else pl.LazyFrame({name: pl.Series([], dtype=pl.Null)})
        queries.append(source.select(value.alias("value")).filter(clean.fill_null(False))
                       .group_by("value").agg(pl.len().cast(pl.Int64).alias("n")))
    return dict(zip(columns, pl.collect_all(queries)))


def merge_counts(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Count tables of one column from several shards, summed by value."""
    return pl.concat(parts).group_by("value").agg(pl.col("n").sum()) if parts else pl.DataFrame()


def drift_shard(reference: pl.DataFrame | None, current: pl.DataFrame | None, columns: dict[str, str]) -> dict:
    """One shard's drift statistics: count tables per side and column, and each side's integer columns."""
    shard: dict = {"counts": {}, "integers": {}, "rows": {}}
    for side, frame in zip(SIDES, (reference, current)):
        if frame is None:
            continue
        shard["counts"][side] = value_counts(frame, columns)
        shard["integers"][side] = [n for n, k in columns.items() if k == "numeric" and n in frame.columns
                                   and frame.schema[n].is_integer()]
        shard["rows"][side] = frame.height
    return shard


def merge_drift(shards: list[dict], columns: dict[str, str], **options) -> list[ColumnDrift]:
    """Drift decisions from merged shard statistics (``options``: :func:`mlops.drift_stats.decide`'s)."""
    tables = []
    for name, kind in columns.items():
        sides = []
        for side, label in zip(SIDES, ("ref", "cur")):
            parts = [s["counts"][side][name] for s in shards if side in s["counts"]]
            dtype = pl.Float64 if kind == "numeric" else pl.String
            merged = merge_counts(parts) if parts else pl.DataFrame({"value": [], "n": []},
                                                                   schema={"value": dtype, "n": pl.Int64})
            sides.append(merged.with_columns(pl.col("value").cast(dtype)).rename({"n": label}))
        joined = sides[0].join(sides[1], on="value", how="full", coalesce=True)
        tables.append(joined.with_columns(pl.col("ref").fill_null(0), pl.col("cur").fill_null(0)).sort("value"))
    # single pass: the concatenated reference is an integer column only when every shard's was
    with_reference = [s for s in shards if "reference" in s["integers"]]
    integers = {n for n in columns if with_reference and all(n in s["integers"]["reference"] for s in with_reference)}
    return decide(tables, columns, integers, **options)


def validation_shard(frame: pl.DataFrame, contract: Contract, required: tuple[str, ...] = ()) -> dict:
    """One shard's validation statistics (whole-data rules left to :func:`merge_validation`)."""
    failures = [f for f in check_frame(frame, replace(contract, min_rows=0), required)
                if f["problem"] not in (ALL_NULL, NULLS, DUPLICATES)]
    unique = {name: "categorical" for name, rule in contract.columns.items() if rule.unique and name in frame.columns}
    return {"rows": frame.height, "columns": frame.columns, "failures": failures,
            "nulls": frame.null_count().row(0, named=True), "unique": value_counts(frame, unique)}


def merge_validation(shards: list[dict], contract: Contract) -> tuple[int, list[str], list[dict]]:
    """(rows, columns, failures) of the whole data from its shards' statistics."""
    rows = sum(s["rows"] for s in shards)
    names = list(dict.fromkeys(name for s in shards for name in s["columns"]))
    merged: dict[tuple, dict] = {}
    for shard in shards:
        for failure in shard["failures"]:
            entry = merged.setdefault((failure["column"], failure["problem"]),
                                      {**failure, "rows": 0, "examples": []})
            entry["rows"] += failure["rows"]
            entry["examples"] += [e for e in failure["examples"] if e not in entry["examples"]]
            entry["examples"] = entry["examples"][:MAX_EXAMPLES]
    failures = list(merged.values())
    if rows < contract.min_rows:
        return rows, names, failures + [{"column": None, "problem": f"too few rows: {rows} < min_rows "
                                         f"{contract.min_rows}", "rows": rows, "examples": []}]
    for name, rule in contract.columns.items():
        if name not in names:
            continue
        nulls = sum(s["nulls"].get(name, s["rows"]) for s in shards)
        if nulls == rows:
            failures.append({"column": name, "problem": ALL_NULL, "rows": nulls, "examples": []})
        elif nulls and not rule.nullable:
            failures.append({"column": name, "problem": NULLS, "rows": nulls, "examples": []})
        if rule.unique:
            counts = merge_counts([s["unique"][name] for s in shards if name in s["unique"]])
            duplicated = int(counts.filter(pl.col("n") > 1).get_column("n").sum()) if counts.height else 0
            if duplicated:
                failures.append({"column": name, "problem": DUPLICATES, "rows": duplicated, "examples": []})
    return rows, names, failures


def write_shard(shard: dict, folder: Path) -> None:
    """A shard's statistics as files: tables as Parquet, the rest as JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {}
    for key in ("counts", "unique"):
        for path, table in _tables(shard.get(key, {}), key):
            file = f"{len(tables):05d}.parquet"
            table.write_parquet(folder / file)
            tables[file] = path
    rest = {k: v for k, v in shard.items() if k not in ("counts", "unique")}
    (folder / "shard.json").write_text(json.dumps({"tables": tables, **rest}, default=str), encoding="utf-8")


def _tables(node: dict, *prefix: str):
    for key, value in node.items():
        if isinstance(value, pl.DataFrame):
            yield [*prefix, key], value
        else:
            yield from _tables(value, *prefix, key)


def read_shard(folder: Path) -> dict:
    """The statistics :func:`write_shard` wrote."""
    record = json.loads((folder / "shard.json").read_text(encoding="utf-8"))
    shard = {k: v for k, v in record.items() if k != "tables"}
    for file, path in record["tables"].items():
        node = shard
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = pl.read_parquet(folder / file)
    shard.setdefault("unique", {})
    return shard
