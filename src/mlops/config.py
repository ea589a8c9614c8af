"""The one config file a forker edits (``mlops.yaml``), loaded and validated.

Input: a YAML file (default ``mlops.yaml`` at the repo root, or ``$MLOPS_CONFIG``).
Output: a frozen :class:`Config`. Only this module reads the file (and :func:`set_data_source`
is the one edit a stage makes to it). An unknown key, a wrong type, or a bad value raises
:class:`~mlops.errors.ConfigError` naming the key, the file and the allowed values. Over 300
lines because it is one pydantic model per config section plus the error messages that name
each key; splitting it would scatter the config reference.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from mlops.errors import ConfigError, MlopsError
from mlops.io import atomic_write_text
from mlops.tasks import TASK_METRICS

DEFAULT_PATH = "mlops.yaml"


class _Section(BaseModel):
    """Strict base: unknown keys are errors, values are not silently coerced to other types."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    """Where the training data is and what its columns mean."""

    source: str = Field(description="Local path, glob, or s3:// URI of CSV or Parquet data.")
    target: str
    positive_label: str | int | bool | None = Field(
        None, description="binary tasks: the positive class (default: the second of the sorted labels)")
    id_column: str | None = None
    time_column: str | None = None
    numeric_features: list[str] | None = None
    categorical_features: list[str] | None = None
    drop_columns: list[str] = []
    schema_file: str = "schema.yaml"


class SplitConfig(_Section):
    """How the held-out rows are chosen; the same rows for every model compared."""

    method: Literal["random", "time"] = "random"
    test_size: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 42


class ModelConfig(_Section):
    """The estimator (import path) and its parameters; preprocessing is built around it."""

    estimator: str = "sklearn.ensemble.HistGradientBoostingClassifier"
    params: dict[str, Any] = {}

    @field_validator("estimator")
    @classmethod
    def _dotted(cls, value: str) -> str:
        if "." not in value:
            raise ValueError(
                f"{value!r} is not an import path; write e.g. sklearn.linear_model.LogisticRegression"
            )
        return value


class MetricsConfig(_Section):
    """The primary metric decides gates; every metric of the task is reported."""

    primary: str | None = None


# A tolerance: a number in the metric's own units, or "N%" of the reference value (see mlops.tasks.tolerance).
Tolerance = Annotated[float | str, Field(union_mode="left_to_right")]


def _check_tolerance(value, key: str):
    if isinstance(value, str) and not re.fullmatch(r"\d+(\.\d+)?%", value.strip()):
        raise ValueError(f"{key} must be a number in the metric's units (0.01) or a share of the reference like "
                         f"'2%', got {value!r}")
    if isinstance(value, (int, float)) and value < 0:
        raise ValueError(f"{key} must be 0 or more, got {value!r}")
    return value.strip() if isinstance(value, str) else float(value)


class GatesConfig(_Section):
    """Pass/fail rules for a challenger; the PR status check follows them."""

    min_primary: float | None = None  # the challenger's primary metric must reach this (<= for rmse-like)
    max_drop: Tolerance = 0.01  # fail when worse than the champion by more (units, or "N%"), and the CI excludes 0
    require_validation: bool = True  # the data must meet the contract (schema.yaml)
    fail_on_slice_regression: bool = False  # a flagged slice fails the check, not only a warning

    @field_validator("max_drop")
    @classmethod
    def _max_drop(cls, value):
        return _check_tolerance(value, "gates.max_drop")


class CompareConfig(_Section):
    """Champion-vs-challenger comparison settings."""

    slices: list[str] = []
    slice_tolerance: Tolerance = 0.05  # a slice worse than the champion's by more is flagged (units, or "N%")
    min_slice_rows: int = Field(50, ge=1)
    bootstrap_resamples: int = Field(1000, ge=100, le=100_000)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    max_slice_values: int = Field(50, ge=2, le=1000)  # more distinct values in a text slice column is an error
    slice_bins: int = Field(5, ge=2, le=20)  # a numeric slice column with more than 20 values is cut into quantiles

    @field_validator("slice_tolerance")
    @classmethod
    def _slice_tolerance(cls, value):
        return _check_tolerance(value, "compare.slice_tolerance")


class DriftConfig(_Section):
    """Production-data drift checks (``make drift``); defaults are evidently's at every size.

    A column with more than ``small_sample_rows`` non-null reference values is decided by its
    distance (``threshold``); one with fewer by a two-sample test at ``p_value``, corrected
    across the feature columns (``correction``). 0 keeps distances at every size.
    """

    current: str = Field("data/production/*.csv", description="Production batch(es): path, glob or s3:// prefix; "
                         "'capture' for the traffic the endpoint captured, or 'capture:<folder or s3:// prefix>'.")
    window_days: float = Field(7.0, gt=0.0, le=366.0)  # captured traffic: the last N days
    capture_environment: str = "prod"  # captured traffic: whose endpoint's
    max_invalid_share: float = Field(0.1, ge=0.0, le=1.0)  # more rows breaking the contract (or unusable) is an error
    min_rows: int = Field(50, ge=1)  # fewer current rows: no decision, no retrain PR (said in the summary)
    numeric_method: Literal["wasserstein", "jensenshannon", "psi"] = "wasserstein"
    categorical_method: Literal["jensenshannon", "psi"] = "jensenshannon"
    threshold: float = Field(0.1, gt=0.0)
    column_thresholds: dict[str, float] = {}
    small_sample_rows: int = Field(1000, ge=0)
    p_value: float = Field(0.05, gt=0.0, lt=0.5)
    correction: Literal["benjamini-hochberg", "none"] = "benjamini-hochberg"
    drift_share: float = Field(0.1, gt=0.0, le=1.0)
    max_metric_drop: Tolerance = 0.05  # performance drift: a drop beyond this (units, or "N%" of held out)
    model_sample_rows: int = Field(100_000, ge=1000)
    report_sample_rows: int = Field(5_000, ge=1000)
    report_timeout_seconds: float = Field(120.0, gt=0.0)  # the HTML report, awaited after the decision is written
    report_html: bool = True

    @field_validator("max_metric_drop")
    @classmethod
    def _max_metric_drop(cls, value):
        return _check_tolerance(value, "drift.max_metric_drop")


class CaptureConfig(_Section):
    """Captured traffic: SageMaker data capture on every endpoint, and ``make serve``'s local copy of it."""

    enabled: bool = True
    local_dir: str = "capture"  # make serve (and drift.current: capture with a local registry) use this folder


class LabelsConfig(_Section):
    """Ground truth that arrives after the predictions: files or an s3:// prefix of ``id,label,time`` rows."""

    source: str | None = None  # the id is data.id_column when the requests carry it, else the capture's inferenceId


class RetrainConfig(_Section):
    """How a retrain builds its training set, where it records it, and how often it may update its PR."""

    window: Literal["reference_plus_current", "current_only"] = "reference_plus_current"
    max_age_days: int | None = Field(None, ge=1)
    manifest: str = "data/manifest.json"
    cooldown_hours: float = Field(24.0, ge=0.0)
    branch: str = Field("retrain/drift", pattern=r"^[A-Za-z0-9._/-]+$")
    base_branch: str = Field("main", pattern=r"^[A-Za-z0-9._/-]+$")


class RegistryConfig(_Section):
    """Where models are registered: a local folder (default) or an s3:// prefix.

    staging and prod need an s3:// registry (the foundation stack's bucket, printed by
    ``make bootstrap``): SageMaker reads ``model.tar.gz`` from there.
    """

    uri: str = ".registry"


class EnvironmentConfig(_Section):
    """One deploy target: a serving stack ``<project>-<name>``."""

    instance_type: str = "ml.m5.large"
    instance_count: int = Field(1, ge=1, le=20)
    requires: str | None = Field(None, description="an environment a version must have passed first")
    emulator: bool = Field(False, description="deploy to a local AWS emulator (moto_server), never to AWS")
    capture_percent: int = Field(100, ge=0, le=100)  # share of requests SageMaker captures (0: capture off)


class DeployConfig(_Section):
    """Deploy targets; an ``emulator`` environment (``local``) runs against moto_server on 127.0.0.1."""

    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    image_uri: str | None = None
    image_python: str | None = Field(None, pattern=r"^3\.\d{1,2}$",
                                     description="the Python (3.X) of deploy.image_uri; required with it")
    vendor_wheels: bool = False  # ship the pinned wheels in model.tar.gz: no internet needed at start, isolated
    startup_timeout_seconds: int = Field(900, ge=60, le=3600)  # first start: download, pip install, model_fn
    environments: dict[str, EnvironmentConfig] = {
        "local": EnvironmentConfig(emulator=True),
        "staging": EnvironmentConfig(),
        "prod": EnvironmentConfig(instance_count=2, requires="staging", capture_percent=20),
    }
    smoke_rows: int = Field(20, ge=1, le=1000)
    smoke_max_latency_ms: float = Field(2000.0, gt=0.0)
    alarm_latency_ms: float = Field(500.0, gt=0.0)
    stack_timeout_minutes: int = Field(60, ge=5, le=240)
    canary_max_shift: float | None = Field(0.2, gt=0.0)  # new vs old version's predictions: above it, roll back
    canary_wait_seconds: int = Field(300, ge=0, le=3600)  # real AWS writes capture files after a minute or two

    @model_validator(mode="after")
    def _check_environments(self) -> DeployConfig:
        if self.image_uri and not self.image_python:
            raise ValueError("deploy.image_uri is set but deploy.image_python is not: say which Python (e.g. '3.12') "
                             "the image runs, so a deploy can refuse a model whose libraries it cannot install")
        for name, env in self.environments.items():
            if not re.fullmatch(r"[a-z][a-z0-9-]{0,20}", name):
                raise ValueError(f"environment name {name!r} must match [a-z][a-z0-9-]{{0,20}} (used in stack names)")
            if env.requires is None:
                continue
            if env.requires not in self.environments or env.requires == name:
                raise ValueError(
                    f"deploy.environments.{name}.requires is {env.requires!r}; it must name another "
                    f"environment: {', '.join(n for n in self.environments if n != name)}"
                )
            if self.environments[env.requires].emulator and not env.emulator:
                raise ValueError(
                    f"deploy.environments.{name} (real AWS) requires {env.requires!r}, an emulator: "
                    "a version must pass a real environment before a real one"
                )
        return self


class ComputeConfig(_Section):
    """Where train, validate, drift (and a large compare) run: on the runner (``local``) or as SageMaker jobs.

    ``compute: sagemaker`` is short for ``compute: {engine: sagemaker}``; :mod:`mlops.jobs` reads the rest.
    """

    engine: Literal["local", "sagemaker"] = "local"
    instance_type: str = Field("ml.m5.2xlarge", pattern=r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
    instance_count: int = Field(1, ge=1, le=100)  # processing jobs shard the files across them; training uses 1
    max_runtime_minutes: int = Field(60, ge=1, le=40320)  # the job's StoppingCondition (SageMaker's limit: 28 days)
    volume_gb: int = Field(30, ge=1, le=16384)
    spot: bool = False  # managed spot training (train only); resumes from checkpoint_prefix after an interruption
    checkpoint_prefix: str | None = Field(None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
    max_wait_minutes: int | None = Field(None, ge=1, le=40320)  # spot: wait for capacity (default 2x max_runtime)
    image_uri: str | None = None  # default: the serving image (mlops.images.serving_image)
    role_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")  # default: the foundation's
    output_prefix: str | None = Field(None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
    # make compare runs as a Processing job above this many held-out rows (the challenger's lineage counts them)
    compare_above_rows: int = Field(2_000_000, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value):
        return {"engine": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_spot(self) -> ComputeConfig:
        if self.max_wait_minutes is not None and self.max_wait_minutes < self.max_runtime_minutes:
            raise ValueError("compute.max_wait_minutes must be at least compute.max_runtime_minutes")
        return self


class Config(_Section):
    """The whole ``mlops.yaml``."""

    project: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    task: Literal["binary", "multiclass", "regression"]
    data: DataConfig
    split: SplitConfig = SplitConfig()
    model: ModelConfig = ModelConfig()
    metrics: MetricsConfig = MetricsConfig()
    gates: GatesConfig = GatesConfig()
    compare: CompareConfig = CompareConfig()
    drift: DriftConfig = DriftConfig()
    retrain: RetrainConfig = RetrainConfig()
    capture: CaptureConfig = CaptureConfig()
    labels: LabelsConfig = LabelsConfig()
    registry: RegistryConfig = RegistryConfig()
    deploy: DeployConfig = DeployConfig()
    compute: ComputeConfig = ComputeConfig()
    # Where the file was read from, and the folder its relative paths are resolved against.
    _path: str = PrivateAttr(DEFAULT_PATH)
    _root: str = PrivateAttr(".")

    @model_validator(mode="after")
    def _check_metric_and_time(self) -> Config:
        allowed = TASK_METRICS[self.task]
        if self.metrics.primary is not None and self.metrics.primary not in allowed:
            raise ValueError(
                f"metrics.primary {self.metrics.primary!r} is not a {self.task} metric; "
                f"allowed: {', '.join(allowed)}"
            )
        if self.split.method == "time" and not self.data.time_column:
            raise ValueError("split.method is 'time' but data.time_column is not set; set it or use 'random'")
        if self.drift.current == "capture" and self.drift.capture_environment not in self.deploy.environments:
            raise ValueError(f"drift.capture_environment {self.drift.capture_environment!r} is not one of "
                             f"deploy.environments ({', '.join(self.deploy.environments)})")
        return self

    @property
    def primary_metric(self) -> str:
        """The configured primary metric, or the task's default."""
        return self.metrics.primary or TASK_METRICS[self.task][0]

    @property
    def path(self) -> str:
        """The file this config was read from."""
        return self._path

    @property
    def root(self) -> str:
        """The folder relative paths in the config are resolved against."""
        return self._root

    @property
    def models_dir(self) -> Path:
        """Where trained model versions are kept (``models/`` beside the config, or $MLOPS_MODELS_DIR)."""
        return Path(self.resolve(os.environ.get("MLOPS_MODELS_DIR", "models")))

    @property
    def reports_dir(self) -> Path:
        """Where generated reports go (``reports/`` beside the config, or $MLOPS_REPORTS_DIR)."""
        return Path(self.resolve(os.environ.get("MLOPS_REPORTS_DIR", "reports")))

    def located(self, path: Path) -> Config:
        """This config, remembering the file it came from (relative paths resolve against its folder)."""
        self._path = str(path)
        self._root = str(path.resolve().parent)
        return self

    def resolve(self, relative: str) -> str:
        """A path from the config made absolute against the config's folder (URIs unchanged)."""
        if "://" in relative or os.path.isabs(relative):
            return relative
        return str(Path(self.root) / relative)


def _format_errors(error: ValidationError, path: str, data: dict) -> str:
    lines = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            parent = _model_at(item["loc"][:-1])
            allowed = ", ".join(parent.model_fields) if parent else "see README"
            lines.append(f"unknown key '{loc}' (allowed here: {allowed})")
        elif item["type"] == "missing":
            lines.append(f"missing required key '{loc}'")
        else:
            message = item["msg"].removeprefix("Value error, ")
            value = _value_at(data, item["loc"])
            where = f"'{loc}'" if loc else "config"
            lines.append(f"{where}: {message}" + (f" (got {value!r})" if value is not None else ""))
    return f"{path} is invalid:\n  - " + "\n  - ".join(lines) + "\nSee 'Config reference' in README.md."


def _model_at(loc: tuple) -> type[BaseModel] | None:
    model: Any = Config
    mapping_key = False  # the previous part was a dict field (e.g. deploy.environments): skip its key
    for part in loc:
        if mapping_key or isinstance(part, int):
            mapping_key = False
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        mapping_key = getattr(annotation, "__origin__", None) is dict
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    return model


def _value_at(data: Any, loc: tuple) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data if not isinstance(data, (dict, list)) else None


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read and validate the config file; raise ConfigError with every problem found."""
    path = Path(path or os.environ.get("MLOPS_CONFIG") or DEFAULT_PATH)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} not found (working directory: {Path.cwd()}); run from the folder holding "
            "mlops.yaml (an action's `working-directory` input), or set MLOPS_CONFIG to its path"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} must be a YAML mapping of keys (project, task, data, ...), got {type(data).__name__}"
        )
    try:
        config = Config(**data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, str(path), data)) from None
    return config.located(path)


def set_data_source(config: Config, value: str) -> bool:
    """Point ``data.source`` in the config file at ``value`` (a one-line, reviewable edit); False if it already is."""
    path = Path(config.path)
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(r"^(data:\s*\n(?:[ \t]+.*\n|\s*\n)*?[ \t]+source:[ \t]*)([^#\n]*?)([ \t]*(#.*)?)$", re.M)
    match = pattern.search(text)
    if match is None:
        raise MlopsError(f"cannot find data.source in {path}; set it to {value} by hand")
    if match.group(2).strip().strip("'\"") == value:
        return False
    atomic_write_text(path, text[:match.start(2)] + value + text[match.end(2):])
    return True
