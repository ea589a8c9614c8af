"""The model: one unfitted scikit-learn Pipeline built from config, and its safe persistence.

Input: the config's ``model`` section and the feature lists. Output: a ``Pipeline`` of a
``ColumnTransformer`` (named ``numeric`` and ``categorical`` parts) and the estimator. All fitted
preprocessing lives inside it, so training and serving cannot disagree.

Models are saved with skops and loaded only with the committed list of trusted types in
``trusted_types.txt``: a model file from an untrusted branch cannot run arbitrary code on load.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from pathlib import Path

import skops.io as sio
from sklearn.base import BaseEstimator, is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops.config import Config
from mlops.data import Features
from mlops.errors import ModelError
from mlops.io import atomic_path

log = logging.getLogger(__name__)

TRUSTED_TYPES_FILE = Path(__file__).with_name("trusted_types.txt")


def trusted_types() -> list[str]:
    """The committed allow-list of types a model file may contain (one per line, # comments)."""
    lines = TRUSTED_TYPES_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _estimator_class(config: Config) -> type:
    path = config.model.estimator
    module_name, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError):
        raise ModelError(
            f"model.estimator {path!r} in {config.path} cannot be imported; "
            "use a full import path such as sklearn.ensemble.HistGradientBoostingClassifier"
        ) from None
    if not (inspect.isclass(cls) and issubclass(cls, BaseEstimator)):
        raise ModelError(f"model.estimator {path!r} in {config.path} is not a scikit-learn estimator class")
    wanted = is_regressor if config.task == "regression" else is_classifier
    if not wanted(cls()):
        kind = "regressor" if config.task == "regression" else "classifier"
        raise ModelError(
            f"model.estimator {path!r} is not a {kind}, but task is {config.task!r} in {config.path}"
        )
    return cls


def build_pipeline(config: Config, features: Features) -> Pipeline:
    """The unfitted Pipeline: imputation, scaling and one-hot encoding, then the estimator."""
    cls = _estimator_class(config)
    params = dict(config.model.params)
    if "random_state" in cls().get_params() and "random_state" not in params:
        params["random_state"] = config.split.seed
    try:
        estimator = cls(**params)
        estimator.get_params()
    except TypeError as exc:
        raise ModelError(f"model.params in {config.path} do not fit {config.model.estimator}: {exc}") from None
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False, min_frequency=5)),
        ]
    )
    preprocess = ColumnTransformer(
        [("numeric", numeric, list(features.numeric)), ("categorical", categorical, list(features.categorical))],
        remainder="drop",
    )
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def save_model(pipeline: Pipeline, path: str | Path) -> None:
    """Save with skops, atomically; refuse types outside the trusted list."""
    with atomic_path(path) as temp:
        sio.dump(pipeline, temp)
        untrusted = sorted(set(sio.get_untrusted_types(file=temp)) - set(trusted_types()))
        if untrusted:
            raise ModelError(
                f"the model contains types not in {TRUSTED_TYPES_FILE.name}: {', '.join(untrusted)}. "
                "Review them, then add them to that file so the model can be loaded"
            )


def load_model(path: str | Path) -> Pipeline:
    """Load a skops model, trusting only the committed list of types."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} not found; run `make train` first")
    try:
        return sio.load(path, trusted=trusted_types())
    except sio.exceptions.UntrustedTypesFoundException as exc:
        raise ModelError(f"{path} contains untrusted types and was not loaded: {exc}") from None
    except Exception as exc:  # skops raises many kinds for a corrupt file; all mean "unusable"
        raise ModelError(f"{path} is not a readable skops model: {exc}") from None
