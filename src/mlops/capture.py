"""Captured traffic in SageMaker's data-capture format: written locally, read back for a time window.

Format (SageMaker Developer Guide, "Capture data from real-time endpoint" and "View Data Capture
Data"; ``tests/fixtures/capture/sagemaker.jsonl`` follows it): JSON Lines, one object per request::

    {"captureData": {"endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                                        "data": "...", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "...", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2026-12-03T15:04:05Z",
                       "inferenceId": "<the caller's InferenceId, when sent>"},
     "eventVersion": "0"}

``encoding`` is CSV or JSON for the content types the endpoint config lists
(``CaptureContentTypeHeader``), BASE64 for any other. Objects are keyed
``<destination>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<mmm>-<uuid>.jsonl``.

:class:`Writer` writes that format (``make serve``, and the emulator's stand-in for SageMaker,
which moto does not write); :func:`list_window` finds a window's files by the hour in their key;
:func:`read_events` reads them (a line that is not JSON is counted, not fatal). Decoding the
requests into rows is :mod:`mlops.capture_decode`.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import random
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from mlops import s3

log = logging.getLogger(__name__)

VARIANT = "AllTraffic"
CSV_TYPES = ("text/csv",)
JSON_TYPES = ("application/json", "application/jsonlines")
# The envelope's columns, flattened: what read_events returns per event.
EVENT_COLUMNS = ("input_type", "input_data", "input_encoding", "output_type", "output_data", "output_encoding",
                 "event_id", "inference_time", "inference_id")
_PART = pl.Struct({"observedContentType": pl.String, "mode": pl.String, "data": pl.String, "encoding": pl.String})
_SCHEMA = {
    "captureData": pl.Struct({"endpointInput": _PART, "endpointOutput": _PART}),
    "eventMetadata": pl.Struct({"eventId": pl.String, "inferenceTime": pl.String, "inferenceId": pl.String}),
    "eventVersion": pl.String,
}
_HOUR = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+\.jsonl$")


def media_type(content_type: str | None) -> str:
    """``text/csv; charset=utf-8`` -> ``text/csv``."""
    return (content_type or "").split(";")[0].strip().lower()


def encoding_for(content_type: str | None) -> str:
    """How SageMaker stores a body of this type: CSV, JSON, or BASE64 for any type not listed."""
    media = media_type(content_type)
    if media in CSV_TYPES:
        return "CSV"
    return "JSON" if media in JSON_TYPES else "BASE64"


def _part(body: bytes, content_type: str, mode: str) -> dict:
    encoding = encoding_for(content_type)
    text = None
    if encoding != "BASE64":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "BASE64"  # not text: stored as bytes, as SageMaker stores what it cannot read as text
    data = text if text is not None else base64.b64encode(body).decode("ascii")
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def event(request: bytes, request_type: str, response: bytes, response_type: str, *,
          inference_id: str | None = None, when: datetime | None = None) -> dict:
    """One captured request and its answer, as SageMaker writes it."""
    when = when or datetime.now(timezone.utc)
    metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if inference_id:
        metadata["inferenceId"] = inference_id
    return {"captureData": {"endpointInput": _part(request, request_type, "INPUT"),
                            "endpointOutput": _part(response, response_type, "OUTPUT")},
            "eventMetadata": metadata, "eventVersion": "0"}


def object_key(endpoint: str, when: datetime, variant: str = VARIANT) -> str:
    """``<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<mmm>-<uuid>.jsonl`` (below the destination)."""
    return (f"{endpoint}/{variant}/{when:%Y/%m/%d/%H}/{when:%M-%S}-{when.microsecond // 1000:03d}-"
            f"{uuid.uuid4()}.jsonl")


class Writer:
    """Captures requests under ``destination`` (a folder or ``s3://`` prefix), a file per flush.

    Thread-safe (one server, many request threads). A local folder gets each event at once, in the
    file of the current hour; S3 gets a file per ``flush_every`` events and one at :meth:`close`.
    ``sampling`` is the share of requests kept (SageMaker's InitialSamplingPercentage / 100).
    """

    def __init__(self, destination: str, endpoint: str, *, sampling: float = 1.0, flush_every: int = 1000,
                 s3_client=None):
        self.destination, self.endpoint, self.sampling = destination.rstrip("/"), endpoint, sampling
        self._s3 = s3_client
        self.flush_every = flush_every
        self.written = 0
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._file: tuple[str, Path] | None = None  # (hour, path) of the local file being appended to
        self._random = random.Random()

    def record(self, request: bytes, request_type: str, response: bytes, response_type: str,
               inference_id: str | None = None) -> None:
        """Capture one request and its answer (or not, by the sampling share)."""
        when = datetime.now(timezone.utc)
        line = json.dumps(event(request, request_type, response, response_type, inference_id=inference_id,
                                when=when), separators=(",", ":"))
        with self._lock:
            if self.sampling < 1.0 and self._random.random() >= self.sampling:
                return
            self.written += 1
            if not s3.is_s3(self.destination):
                self._append_local(line, when)
                return
            self._lines.append(line)
            if len(self._lines) >= self.flush_every:
                self._flush_s3()

    def _append_local(self, line: str, when: datetime) -> None:
        hour = f"{when:%Y%m%d%H}"
        if self._file is None or self._file[0] != hour:
            path = Path(self.destination) / object_key(self.endpoint, when)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = (hour, path)
        with self._file[1].open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def _flush_s3(self) -> None:
        if not self._lines:
            return
        bucket, prefix = s3.parse(self.destination)
        key = f"{prefix}/{object_key(self.endpoint, datetime.now(timezone.utc))}".lstrip("/")
        (self._s3 or s3.client()).put_object(Bucket=bucket, Key=key,
                                             Body=("\n".join(self._lines) + "\n").encode("utf-8"))
        self._lines = []

    def close(self) -> None:
        """Write what is buffered."""
        with self._lock:
            if s3.is_s3(self.destination):
                self._flush_s3()


def _hour_of(key: str) -> datetime | None:
    match = _HOUR.search(key)
    if match is None:
        return None
    year, month, day, hour = map(int, match.groups())
    return datetime(year, month, day, hour, tzinfo=timezone.utc)


def list_window(location: str, since: datetime, until: datetime | None = None, s3_client=None) -> list[str]:
    """The capture files under ``location`` whose hour folder lies in [since's hour, until]."""
    until = until or datetime.now(timezone.utc)
    first = since.replace(minute=0, second=0, microsecond=0)
    if s3.is_s3(location):
        keys = [entry["uri"] for entry in s3.list_objects(location.rstrip("/") + "/", (".jsonl",),
                                                          s3_client=s3_client)]
    else:
        root = Path(location)
        keys = sorted(str(p) for p in root.rglob("*.jsonl")) if root.is_dir() else []
    chosen = []
    for key in keys:
        hour = _hour_of(key.replace("\\", "/"))
        if hour is not None and first <= hour <= until:
            chosen.append(key)
    return chosen


@dataclass
class Events:
    """The events of some capture files, flattened (:data:`EVENT_COLUMNS`), and the lines that were not events."""

    frame: pl.DataFrame
    files: list[str]
    bad_lines: int = 0
    bad_examples: list[str] = field(default_factory=list)


def _flatten(frame: pl.DataFrame) -> pl.DataFrame:
    data, meta = pl.col("captureData"), pl.col("eventMetadata")
    parts = []
    for side, name in (("endpointInput", "input"), ("endpointOutput", "output")):
        part = data.struct.field(side)
        parts += [part.struct.field("observedContentType").alias(f"{name}_type"),
                  part.struct.field("data").alias(f"{name}_data"),
                  part.struct.field("encoding").alias(f"{name}_encoding")]
    parts += [meta.struct.field("eventId").alias("event_id"),
              meta.struct.field("inferenceTime").alias("inference_time"),
              meta.struct.field("inferenceId").alias("inference_id")]
    return frame.select(parts)


def _lines_one_by_one(blob: bytes, location: str, events: Events) -> pl.DataFrame:
    """The slow path for a file with a bad line: keep every line that is an event, count the others."""
    good = []
    for number, line in enumerate(blob.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("captureData"), dict):
                raise ValueError("not a capture event (no captureData object)")
            good.append(line)
        except ValueError as exc:
            events.bad_lines += 1
            if len(events.bad_examples) < 5:
                events.bad_examples.append(f"{location} line {number}: {str(exc)[:120]}")
    if not good:
        return pl.DataFrame(schema=_SCHEMA)
    return pl.read_ndjson(io.BytesIO(b"\n".join(good)), schema=_SCHEMA)


def read_events(files: list[str], s3_client=None) -> Events:
    """Every event of ``files`` (JSON Lines); lines that are not capture events are counted in ``bad_lines``."""
    events = Events(pl.DataFrame(), list(files))
    frames = []
    for location in files:
        blob = s3.read(location, s3_client) if s3.is_s3(location) else Path(location).read_bytes()
        if not blob.strip():
            continue
        try:
            frames.append(pl.read_ndjson(io.BytesIO(blob), schema=_SCHEMA))
        except (pl.exceptions.PolarsError, ValueError):
            frames.append(_lines_one_by_one(blob, location, events))
    events.frame = _flatten(pl.concat(frames)) if frames else pl.DataFrame(
        schema={name: pl.String for name in EVENT_COLUMNS})
    return events


def window_start(days: float, now: datetime | None = None) -> datetime:
    """The start of a window of ``days`` ending now."""
    return (now or datetime.now(timezone.utc)) - timedelta(days=days)
