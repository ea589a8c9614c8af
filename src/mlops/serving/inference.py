"""Inference handlers for AWS's prebuilt SageMaker scikit-learn container (and ``make serve``).

Input: the unpacked ``model.tar.gz`` (``model_dir``): ``model.skops``, ``metadata.json``,
``schema.json`` (the data contract of the features), ``trusted_types.txt``, and this file under
``code/``. Requests are ``text/csv`` (with a header row, or columns in feature order),
``application/json`` (``{"instances": [{column: value}, ...]}``, a list of records, or one
record) or ``application/jsonlines`` (one record per line).
Output: JSON ``{"model_version", "predictions", "classes", "probabilities"}``; a request that
breaks the data contract gets a 400 JSON body listing each bad row and column, an unsupported
content type 415, an unsupported Accept 406.

This file is self-contained (standard library, numpy, pandas, skops only): it runs inside the
container, where the ``mlops`` package is not installed. The container calls ``model_fn`` once,
then ``input_fn`` -> ``predict_fn`` -> ``output_fn`` per request. A rejected request travels
through ``predict_fn`` as a :class:`Rejected` value, because the container turns exceptions
into HTTP 500; ``output_fn`` answers it with its 4xx status. Over 300 lines because the container
loads this one file: parsing, the contract checks and the answers cannot be split into modules.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio

log = logging.getLogger(__name__)

JSON = "application/json"
JSONLINES = "application/jsonlines"
CSV = "text/csv"
MAX_ERRORS = 50
MAX_ROWS = 10_000


@dataclass
class Served:
    """What ``model_fn`` loads: the fitted pipeline and what it needs to check requests."""

    pipeline: object
    metadata: dict
    columns: dict
    features: list

    @property
    def version(self) -> str:
        """The model version (registry id)."""
        return self.metadata.get("version", "unknown")


@dataclass
class Rejected:
    """A request that cannot be answered: an HTTP status and the reasons."""

    status: int
    message: str
    errors: list = field(default_factory=list)
    version: str | None = None  # the model that refused it (captured traffic counts errors per version)

    def body(self) -> dict:
        """The JSON error body."""
        out = {"error": self.message}
        if self.errors:
            out["errors"] = self.errors
        if self.version:
            out["model_version"] = self.version
        return out


@dataclass
class Reply:
    """A response outside the container (``make serve``, tests): status, body, content type."""

    status: int
    body: str
    content_type: str = JSON


# The content digest the deploy recorded (the package staging tested); set on the SageMaker Model.
DIGEST_VARIABLE = "MLOPS_PACKAGE_DIGEST"


class PackageMismatch(RuntimeError):
    """The unpacked package is not the one the deploy recorded: it is not served."""


def digest_items(items) -> str:
    """sha256 over (relative path, bytes) pairs in path order, each length-prefixed: a package's content digest."""
    digest = hashlib.sha256()
    for name, data in sorted(items):
        encoded = name.encode("utf-8")
        digest.update(len(encoded).to_bytes(4, "big") + encoded + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def content_digest(model_dir) -> str:
    """The content digest of an unpacked package: every file but Python's byte-code caches."""
    root = Path(model_dir)
    files = [p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return digest_items((p.relative_to(root).as_posix(), p.read_bytes()) for p in files)


def verify_package(model_dir, expected: str | None) -> None:
    """Refuse a package whose content is not what the deploy recorded (``expected``; empty checks nothing)."""
    if expected:
        actual = content_digest(model_dir)
        if actual != expected:
            raise PackageMismatch(f"the package in {model_dir} has content digest {actual}, but the deploy "
                                  f"recorded {expected} (the package staging tested): refusing to serve it")


def model_fn(model_dir: str) -> Served:
    """Check the package is the recorded one, then load the skops model, trusting only ``trusted_types.txt``."""
    verify_package(model_dir, os.environ.get(DIGEST_VARIABLE))
    root = Path(model_dir)
    trusted = [
        line.strip()
        for line in (root / "trusted_types.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    pipeline = sio.load(root / "model.skops", trusted=trusted)
    metadata = json.loads((root / "metadata.json").read_text(encoding="utf-8"))
    schema = json.loads((root / "schema.json").read_text(encoding="utf-8"))
    log.info("loaded model %s from %s", metadata.get("version"), model_dir)
    return Served(pipeline=pipeline, metadata=metadata, columns=schema["columns"], features=schema["features"])


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _csv_frame(text: str) -> pd.DataFrame | Rejected:
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit(), a NUL byte
        return Rejected(400, f"the CSV body cannot be read: {exc} (a field may be at most "
                             f"{csv.field_size_limit()} characters)")
    if not rows:
        return Rejected(400, "the CSV body has no rows")
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        return Rejected(400, f"CSV rows have different numbers of fields: {sorted(widths)}")
    # Columns are numbered here; predict_fn knows the contract and takes the first row as the
    # header when it names contract columns, else the columns are in feature order.
    return pd.DataFrame(rows, dtype=object).replace({"": None})


def _json_frame(text: str) -> pd.DataFrame | Rejected:  # pylint: disable=too-many-return-statements  # one answer per shape of bad body
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        return Rejected(400, f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")
    except RecursionError:
        return Rejected(400, "the JSON body is nested too deeply; send flat records {column: value}")
    if isinstance(payload, dict) and "instances" in payload:
        payload = payload["instances"]
    elif isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list) or not payload:
        return Rejected(400, 'send {"instances": [{"column": value, ...}, ...]} with at least one row')
    if all(isinstance(row, dict) for row in payload):
        return pd.DataFrame.from_records(payload).astype(object)
    if all(isinstance(row, list) for row in payload):
        widths = {len(row) for row in payload}
        if len(widths) > 1:
            return Rejected(400, f"rows in feature order have different lengths: {sorted(widths)}")
        return pd.DataFrame(payload, dtype=object)  # columns in feature order, checked in predict_fn
    return Rejected(400, "instances must all be objects ({column: value}) or all be lists in feature order")


def input_fn(request_body, request_content_type: str) -> pd.DataFrame | Rejected:
    """Parse a CSV or JSON request into a frame of raw values (checked against the contract later)."""
    media = _media_type(request_content_type)
    if isinstance(request_body, (bytes, bytearray)):
        try:
            request_body = request_body.decode("utf-8")
        except UnicodeDecodeError:
            return Rejected(400, "the body is not UTF-8 text")
    if media in (CSV, "text/plain"):
        frame = _csv_frame(request_body)
    elif media in (JSON, "") or (media == JSONLINES and request_body.count("\n") < 1):
        frame = _json_frame(request_body)
    elif media == JSONLINES:
        lines = [line for line in request_body.splitlines() if line.strip()]
        frame = _json_frame("[" + ",".join(lines) + "]")
    else:
        return Rejected(415, f"content type {request_content_type!r} is not supported; send {CSV}, {JSON} "
                             f"or {JSONLINES}")
    if isinstance(frame, pd.DataFrame) and len(frame) > MAX_ROWS:
        return Rejected(413, f"{len(frame)} rows in one request; send at most {MAX_ROWS}")
    return frame


def _scalar(value) -> bool:
    """A JSON scalar or CSV cell; lists and objects are not values of one column."""
    return not isinstance(value, (list, dict, tuple, set))


def _problem(rule: dict, name: str, raw: pd.Series) -> tuple[pd.Series, np.ndarray, str]:
    """Coerce a column to its contract dtype; return (values, bad mask, what is wrong)."""
    dtype = rule["dtype"]
    scalar = raw.map(_scalar).to_numpy(dtype=bool)
    raw = raw.where(scalar, None)
    present = raw.notna().to_numpy()
    if dtype in ("int", "float"):
        text = raw.map(lambda v: v.strip() if isinstance(v, str) else (float(v) if isinstance(v, bool) else v))
        values = pd.to_numeric(text, errors="coerce").astype(float)
        finite = np.isfinite(values.to_numpy())
        bad = (present & ~finite) | ~scalar
        values = values.where(finite, np.nan)
        if dtype == "int":
            number = values.to_numpy()
            fractional = finite & (number != np.floor(np.where(finite, number, 0)))
            return values, bad | fractional, f"'{name}' must be an integer"
        return values, bad, f"'{name}' must be a number"
    if dtype == "bool":
        values = raw.map(_to_bool)
        return values, (present & values.isna().to_numpy()) | ~scalar, f"'{name}' must be true or false"
    if dtype in ("datetime", "date"):
        values = pd.to_datetime(raw.map(lambda v: v if isinstance(v, str) else None), errors="coerce", utc=False)
        return values, (present & values.isna().to_numpy()) | ~scalar, f"'{name}' must be a date/time"
    values = raw.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    return values, ~scalar, f"'{name}' must be a single value, not a list or an object"


def _to_bool(value):
    """true/false, 1/0 (text or JSON) as a bool; anything else None (reported as bad)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    return {"true": True, "false": False, "1": True, "0": False}.get(text)


def _rule_masks(rule: dict, values: pd.Series, ok: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """Range and category failures of the usable (non-null, well-typed) values of one column."""
    failing = []
    if rule.get("min") is not None:
        failing.append((ok & (values < rule["min"]).to_numpy(dtype=bool), f"below the minimum {rule['min']}"))
    if rule.get("max") is not None:
        failing.append((ok & (values > rule["max"]).to_numpy(dtype=bool), f"above the maximum {rule['max']}"))
    if rule.get("allowed") is not None:
        allowed = set(rule["allowed"])
        failing.append((ok & ~values.isin(allowed).to_numpy(dtype=bool), f"not one of {sorted(map(str, allowed))}"))
    return failing


def _with_header(frame: pd.DataFrame, served: Served) -> tuple[pd.DataFrame | None, list]:
    """Name the columns: the CSV header when the first row names contract columns, else feature order."""
    if not all(isinstance(c, int) for c in frame.columns):
        return frame, []
    if len(frame) and all(isinstance(v, str) and v.strip() in served.columns for v in frame.iloc[0]):
        names = [v.strip() for v in frame.iloc[0]]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            return None, [{"row": None, "column": n, "problem": "the header names this column more than once"}
                          for n in repeated]
        return frame.iloc[1:].set_axis(names, axis=1).reset_index(drop=True), []
    if frame.shape[1] != len(served.features):
        return None, [{"row": None, "column": None,
                       "problem": f"rows without a header must have {len(served.features)} fields in this "
                                  f"order: {', '.join(served.features)}; got {frame.shape[1]}"}]
    return frame.set_axis(served.features, axis=1), []


def _check(frame: pd.DataFrame, served: Served) -> tuple[pd.DataFrame | None, list, int]:
    """Check each row against the contract; return (model input, the first errors, rows with an error).

    At most MAX_ERRORS errors are kept per rule: a request of 10,000 bad rows costs masks, not dicts.
    """
    frame, errors = _with_header(frame, served)
    if frame is None:
        return None, errors, 0
    columns = [str(c) for c in frame.columns]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    errors += [{"row": None, "column": c, "problem": "this column appears more than once"} for c in repeated]
    errors += [{"row": None, "column": c, "problem": "unexpected column (not in the data contract)"}
               for c in columns if c not in served.columns]
    errors += [{"row": None, "column": c, "problem": "missing feature column"}
               for c in served.features if c not in columns]
    if errors:
        return None, errors[:MAX_ERRORS], 0
    frame = frame.astype(object).where(frame.notna(), None)
    out, any_bad = {}, np.zeros(len(frame), dtype=bool)
    for name in served.features:
        rule = served.columns[name]
        values, bad, problem = _problem(rule, name, frame[name])
        failing = [(bad, problem)]
        ok = values.notna().to_numpy() & ~bad
        if not rule.get("nullable", True):
            failing.append((~bad & values.isna().to_numpy(), f"'{name}' may not be null"))
        failing += _rule_masks(rule, values, ok)
        for mask, what in failing:
            any_bad |= mask
            for row in np.flatnonzero(mask)[:MAX_ERRORS]:
                shown = frame[name].iloc[row] if what == problem else values.iloc[row]
                errors.append({"row": int(row), "column": name, "value": _plain(shown), "problem": what})
        out[name] = values
    errors.sort(key=lambda e: (e["row"], e["column"]))
    model_input = pd.DataFrame(out)
    for name in served.features:
        if served.columns[name]["dtype"] == "str":
            model_input[name] = model_input[name].astype(object).where(model_input[name].notna(), np.nan)
    return model_input, errors[:MAX_ERRORS], int(any_bad.sum())


def _plain(value):
    """A JSON-able scalar."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def predict_fn(input_data, model: Served):
    """Check the rows against the data contract, then predict; a rejection passes through."""
    if isinstance(input_data, Rejected):
        input_data.version = model.version
        return input_data
    answer = _predict(input_data, model)
    if isinstance(answer, Rejected):
        answer.version = model.version
    return answer


def _predict(input_data: pd.DataFrame, model: Served):
    """The contract check and the prediction of a parsed request."""
    try:
        x, errors, bad_rows = _check(input_data, model)
    except (ValueError, TypeError, OverflowError, KeyError) as exc:
        # Checking is reading the request: a value it cannot read is the request's fault (400), and a
        # 5xx would count against the endpoint's error alarm and roll back a good deploy.
        return Rejected(400, f"the request could not be checked against the data contract: {exc}")
    if x is not None and x.empty and not errors:
        return Rejected(400, "the request has a header but no rows")
    if errors:
        what = f"{bad_rows} row(s)" if bad_rows else "the request's columns"
        return Rejected(400, f"{what} break the data contract (schema.yaml); nothing was predicted", errors)
    pipeline = model.pipeline
    result = {"model_version": model.version, "rows": len(x)}
    if hasattr(pipeline, "predict_proba"):
        proba = pipeline.predict_proba(x)
        classes = [_plain(c) for c in pipeline.classes_]
        result["predictions"] = [classes[i] for i in proba.argmax(axis=1)]
        result["classes"] = classes
        result["probabilities"] = [[round(float(p), 8) for p in row] for row in proba]
    else:
        result["predictions"] = [float(v) for v in pipeline.predict(x)]
    return result


def _container_response(body: str, status: int):
    """The answer in the form the running server expects, carrying the HTTP status.

    Outside SageMaker (``make serve``, tests): a :class:`Reply`. In AWS's scikit-learn image,
    ``SAGEMAKER_MULTI_MODEL`` says which server runs, as it does for the image's entry point: the
    image installs both toolkits, so an import that succeeds does not. Single model (gunicorn +
    sagemaker_containers): its Flask ``Response`` with the status. Multi-model server
    (sagemaker_inference), or no sagemaker_containers: errors are raised as its toolkit error,
    which it answers with that status. Otherwise ``(body, content type)``, which every toolkit accepts.
    """
    if not os.environ.get("SAGEMAKER_PROGRAM"):
        return Reply(status, body)
    if not os.environ.get("SAGEMAKER_MULTI_MODEL"):
        try:
            from sagemaker_containers.beta.framework import worker  # pylint: disable=import-outside-toplevel,import-error
        except ImportError:
            worker = None
        if worker is not None:
            return worker.Response(response=body, status=status, mimetype=JSON)
    if status != 200:
        try:
            from sagemaker_inference import errors  # pylint: disable=import-outside-toplevel,import-error
        except ImportError:
            errors = None
        if errors is not None:
            raise errors.BaseInferenceToolkitError(status, body, "Bad Request" if status == 400 else "Error")
    return body, JSON


def output_fn(prediction, accept: str):
    """Serialise the prediction (or the rejection) as JSON."""
    media = _media_type(accept)
    if media not in ("", "*/*", JSON):
        prediction = Rejected(406, f"Accept {accept!r} is not supported; this endpoint answers {JSON}")
    if isinstance(prediction, Rejected):
        return _container_response(json.dumps(prediction.body()), prediction.status)
    return _container_response(json.dumps(prediction), 200)


def handle(model: Served, body, content_type: str, accept: str = JSON) -> Reply:
    """One request through the four handlers, as the container runs them (used by ``make serve``)."""
    reply = output_fn(predict_fn(input_fn(body, content_type), model), accept)
    if isinstance(reply, Reply):
        return reply
    if isinstance(reply, tuple):
        return Reply(200, reply[0], reply[1])
    return Reply(reply.status_code, reply.get_data(as_text=True))
