"""The data contract: a reviewable YAML file (``schema.yaml``) and the pandera schema built from it.

Checking data against it is :mod:`mlops.validation`; ``make schema`` (:mod:`mlops.stages.schema`)
drafts it.

Input: ``data.schema_file`` from the config, or a data frame to infer a first draft from
(``make schema``). Output: a :class:`Contract` that builds a pandera (polars backend) schema.

File format::

    strict: true          # columns not listed here are errors
    min_rows: 1
    columns:
      age: {dtype: float, nullable: false, min: 18, max: 100}
      purpose: {dtype: str, allowed: [car, other]}
      loan_id: {dtype: int, unique: true}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandera.polars as pa
import polars as pl
import yaml

from mlops.config import Config
from mlops.errors import ConfigError
from mlops.io import atomic_write_text

DTYPES: dict[str, Any] = {
    "int": pl.Int64,
    "float": pl.Float64,
    "str": pl.String,
    "bool": pl.Boolean,
    "datetime": pl.Datetime,
    "date": pl.Date,
}
_COLUMN_KEYS = {"dtype", "nullable", "unique", "min", "max", "allowed"}
MAX_CATEGORIES = 100


@dataclass(frozen=True)
class ColumnRule:
    """What one column must satisfy."""

    dtype: str
    nullable: bool = True
    unique: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple | None = None

    def to_yaml(self) -> dict:
        """The column's entry in schema.yaml, defaults left out."""
        out: dict[str, Any] = {"dtype": self.dtype, "nullable": self.nullable}
        if self.unique:
            out["unique"] = True
        for key in ("min", "max"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.allowed is not None:
            out["allowed"] = list(self.allowed)
        return out


@dataclass(frozen=True)
class Contract:
    """The whole data contract."""

    columns: dict[str, ColumnRule]
    strict: bool = True
    min_rows: int = 1
    source: str = field(default="schema.yaml", compare=False)

    def pandera_schema(self, only: set[str] | None = None, skip: set[str] | None = None) -> pa.DataFrameSchema:
        """The pandera schema (columns already cast to their dtypes by ``validate.coerce``).

        ``only`` restricts it to some columns (e.g. a serving request, not strict);
        ``skip`` leaves out columns that failed their dtype (reported already).
        """
        columns = {}
        for name, rule in self.columns.items():
            if (only is not None and name not in only) or (skip and name in skip):
                continue
            checks = []
            if rule.min is not None:
                checks.append(pa.Check.ge(rule.min))
            if rule.max is not None:
                checks.append(pa.Check.le(rule.max))
            if rule.allowed is not None:
                checks.append(pa.Check.isin(list(rule.allowed)))
            columns[name] = pa.Column(
                DTYPES[rule.dtype], checks=checks, nullable=rule.nullable, unique=rule.unique
            )
        return pa.DataFrameSchema(columns, strict=self.strict and only is None, name=self.source)

    def to_yaml(self) -> str:
        """The contract as reviewable YAML text."""
        body = {
            "strict": self.strict,
            "min_rows": self.min_rows,
            "columns": {name: rule.to_yaml() for name, rule in self.columns.items()},
        }
        header = (
            "# Data contract, checked by `make validate` before training and by the serving code on\n"
            "# every request. First drafted by `make schema`; review the bounds and categories by hand.\n"
            "# dtype: int | float | str | bool | date | datetime. Keys: nullable, unique, min, max, allowed.\n"
        )
        return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=100)


def _rule_from_yaml(name: str, raw: Any, path: str) -> ColumnRule:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: column '{name}' must be a mapping like {{dtype: float}}, got {raw!r}")
    unknown = set(raw) - _COLUMN_KEYS
    if unknown:
        raise ConfigError(
            f"{path}: column '{name}' has unknown key(s) {sorted(unknown)}; allowed: {sorted(_COLUMN_KEYS)}"
        )
    dtype = raw.get("dtype")
    if dtype not in DTYPES:
        raise ConfigError(f"{path}: column '{name}' dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    allowed = raw.get("allowed")
    if allowed is not None and not isinstance(allowed, list):
        raise ConfigError(f"{path}: column '{name}' allowed must be a list, got {allowed!r}")
    return ColumnRule(
        dtype=dtype,
        nullable=bool(raw.get("nullable", True)),
        unique=bool(raw.get("unique", False)),
        min=raw.get("min"),
        max=raw.get("max"),
        allowed=tuple(allowed) if allowed is not None else None,
    )


def load_contract(config: Config) -> Contract:
    """Read ``data.schema_file``; a missing file says how to create one."""
    path = config.resolve(config.data.schema_file)
    if not os.path.isfile(path):
        raise ConfigError(
            f"data contract {path} (data.schema_file in {config.path}) not found; "
            "run `make schema` to draft one from your data, then review it"
        )
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("columns"), dict) or not raw["columns"]:
        raise ConfigError(f"{path} must have a non-empty 'columns:' mapping (see `make schema`)")
    unknown = set(raw) - {"strict", "min_rows", "columns"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}; allowed: strict, min_rows, columns")
    columns = {str(name): _rule_from_yaml(str(name), rule, path) for name, rule in raw["columns"].items()}
    return Contract(
        columns=columns,
        strict=bool(raw.get("strict", True)),
        min_rows=int(raw.get("min_rows", 1)),
        source=config.data.schema_file,
    )


def _dtype_name(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "int"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if dtype == pl.Boolean:
        return "bool"
    if dtype == pl.Date:
        return "date"  # a date-only column (YYYY-MM-DD): polars reads it as a Date, not a Datetime
    if dtype.is_temporal():
        return "datetime"
    return "str"


def infer_contract(config: Config, frame: pl.DataFrame) -> Contract:
    """A first-draft contract from data: observed dtypes, nulls, categories, and sign of numbers."""
    columns = {}
    for name in frame.columns:
        series = frame.get_column(name)
        dtype = _dtype_name(series.dtype)
        is_target = name == config.data.target
        rule: dict[str, Any] = {"dtype": dtype, "nullable": bool(series.null_count()) and not is_target}
        if name == config.data.id_column:
            rule["unique"] = True
        if dtype in ("int", "float") and not (is_target and config.task != "regression"):
            low = series.min()
            if low is not None and low >= 0:
                rule["min"] = 0
        if dtype == "str" or (is_target and config.task != "regression"):
            values = series.drop_nulls().unique().sort().to_list()
            if len(values) <= MAX_CATEGORIES:
                rule["allowed"] = tuple(values)
        columns[name] = ColumnRule(**rule)
    return Contract(columns=columns, source=config.resolve(config.data.schema_file))


def write_contract(contract: Contract, path: str) -> None:
    """Write the contract atomically."""
    atomic_write_text(path, contract.to_yaml())
