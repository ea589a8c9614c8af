"""Captured requests back into rows: the contract's columns, and what the model answered for each.

Input: :class:`~mlops.capture.Events` and the model's feature names. The request side is decoded
like the serving code reads it (:mod:`mlops.serving.inference`): CSV with or without a header row
(then in feature order), JSON ``{"instances": [...]}``, a list of records or of rows in feature
order, one record, or JSON Lines; BASE64 when the body's type was not listed as CSV or JSON.
The answer side is the serving code's JSON: ``model_version``, ``predictions`` and, for
classifiers, ``classes`` and ``probabilities``; an ``error`` answer is a failed request.

Output: :class:`Traffic`: one row per predicted row (features as text, to be cast by the
contract; ``_version``, ``_inference_id``, ``_time``, ``_prediction``, ``_proba``), the requests
per model version, and every event that could not be used, counted by reason with examples.
CSV bodies go through one polars read per header; JSON bodies are parsed per event.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from mlops.capture import CSV_TYPES, JSON_TYPES, Events, media_type

MAX_EXAMPLES = 5


@dataclass
class Traffic:
    """Decoded traffic: rows, requests per version, and what could not be used."""

    rows: pl.DataFrame
    requests: dict = field(default_factory=dict)  # model version -> {"requests", "errors", "rows"}
    problems: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)
    classes: dict = field(default_factory=dict)  # model version -> its classes (classifiers)
    events: int = 0

    def problem(self, reason: str, example: str) -> None:
        """Count an event that could not be used."""
        self.problems[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < MAX_EXAMPLES:
            shown.append(example[:200])

    def summary(self) -> list[dict]:
        """The problems as records {problem, events, examples}, most frequent first."""
        return [{"problem": reason, "events": count, "examples": self.examples.get(reason, [])}
                for reason, count in self.problems.most_common()]


# pylint: disable-next=too-many-return-statements  # one answer per way a body is unusable
def _body(data: str | None, encoding: str | None, content_type: str | None) -> tuple[str | None, str]:
    """The body as text and its media type, or (None, why not)."""
    if data is None:
        return None, "the event has no captureData.endpointInput/endpointOutput data"
    media = media_type(content_type)
    if encoding == "BASE64":
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return None, "BASE64 data that does not decode"
        if media not in CSV_TYPES + JSON_TYPES:
            return None, f"content type {content_type!r} is neither CSV nor JSON (captured as BASE64)"
        try:
            return raw.decode("utf-8"), media
        except UnicodeDecodeError:
            return None, "BASE64 data that is not UTF-8 text"
    if encoding not in ("CSV", "JSON"):
        return None, f"unknown capture encoding {encoding!r} (SageMaker writes CSV, JSON or BASE64)"
    return data, media or ("text/csv" if encoding == "CSV" else "application/json")


def _answer(text: str) -> dict | tuple | str:
    """The serving code's answer, or why it is not one."""
    try:
        answer = json.loads(text)
    except ValueError:
        return "an answer that is not JSON"
    if not isinstance(answer, dict):
        return "an answer that is not a JSON object"
    if "error" in answer:
        return "error", str(answer.get("model_version") or "unknown")
    if not isinstance(answer.get("predictions"), list):
        return "an answer without a predictions list"
    return answer


def _json_rows(text: str, media: str, features: list[str]) -> list[dict] | str:
    """The records of a JSON body as {column: value}, or why they cannot be read."""
    try:
        if media == "application/jsonlines" and text.strip().count("\n"):
            payload = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            payload = json.loads(text)
    except ValueError:
        return "a JSON request that does not parse"
    if isinstance(payload, dict):
        payload = payload["instances"] if "instances" in payload else [payload]
    if not isinstance(payload, list) or not payload:
        return "a JSON request without records"
    if all(isinstance(row, dict) for row in payload):
        return payload
    if all(isinstance(row, list) and len(row) == len(features) for row in payload):
        return [dict(zip(features, row)) for row in payload]
    return "JSON records that are neither objects nor rows in feature order"


def _text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, (list, dict)) else repr(value)


def _header(line: str, columns: set[str]) -> list[str] | None:
    names = [name.strip() for name in next(csv.reader([line]), [])]
    return names if names and all(name in columns for name in names) else None


def _csv_rows(bodies: list[tuple[int, str]], features: list[str], columns: set[str],
              traffic: Traffic) -> tuple[pl.DataFrame, dict[int, int]]:
    """CSV bodies to rows (text), one polars read per header; returns the rows and rows per event."""
    groups: dict[tuple[str, ...], list[tuple[int, list[str]]]] = {}
    for index, text in bodies:
        lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
        if not lines:
            traffic.problem("a CSV request without rows", f"event {index}")
            continue
        header = _header(lines[0], columns)
        names = tuple(header) if header else tuple(features)
        groups.setdefault(names, []).append((index, lines[1:] if header else lines))
    frames, counts = [], {}
    for names, items in groups.items():
        kept = []
        for index, lines in items:
            widths = {len(row) for row in csv.reader(lines)} if any('"' in line for line in lines) \
                else {line.count(",") + 1 for line in lines}
            if widths != {len(names)}:
                traffic.problem("CSV rows whose field count is not the header's (or the features')",
                                f"event {index}: {sorted(widths)} fields, expected {len(names)}")
                continue
            kept.append((index, lines))
        if not kept:
            continue
        text = "\n".join(line for _, lines in kept for line in lines) + "\n"
        frame = pl.read_csv(io.StringIO(text), has_header=False, new_columns=list(names), infer_schema=False)
        index_column = [index for index, lines in kept for _ in lines]
        frames.append(frame.with_columns(pl.Series("_event", index_column, dtype=pl.Int64)))
        counts.update({index: len(lines) for index, lines in kept})
    return (pl.concat(frames, how="diagonal") if frames else pl.DataFrame()), counts


def _rows_of(events: pl.DataFrame, features: list[str], columns: set[str],
             traffic: Traffic) -> tuple[pl.DataFrame, dict[int, int]]:
    csv_bodies, json_records, counts = [], [], {}
    for index, (data, encoding, content_type) in enumerate(
            events.select("input_data", "input_encoding", "input_type").iter_rows()):
        text, media = _body(data, encoding, content_type)
        if text is None:
            traffic.problem(f"request: {media}", f"event {index}")
        elif media in CSV_TYPES:
            csv_bodies.append((index, text))
        else:
            records = _json_rows(text, media, features)
            if isinstance(records, str):
                traffic.problem(records, f"event {index}: {text[:80]}")
                continue
            counts[index] = len(records)
            json_records += [{**{k: _text(v) for k, v in row.items()}, "_event": index} for row in records]
    frames = []
    csv_frame, csv_counts = _csv_rows(csv_bodies, features, columns, traffic)
    counts.update(csv_counts)
    if csv_frame.height:
        frames.append(csv_frame)
    if json_records:
        names = sorted({k for row in json_records for k in row} - {"_event"})
        frames.append(pl.from_dicts(json_records, schema={**{n: pl.String for n in names}, "_event": pl.Int64}))
    return (pl.concat(frames, how="diagonal") if frames else pl.DataFrame(schema={"_event": pl.Int64})), counts


def decode(events: Events, features: list[str], columns: set[str], regression: bool) -> Traffic:
    """Every event's rows and answers; what cannot be used is counted in :attr:`Traffic.problems`.

    ``features`` is the order of a request without a header; ``columns`` every column a header may
    name (the contract's: ids and times travel with the features).
    """
    frame = events.frame
    traffic = Traffic(pl.DataFrame(), events=frame.height + events.bad_lines)
    if events.bad_lines:
        reason = "a line that is not a JSON capture event (truncated or not JSON)"
        traffic.problems[reason] += events.bad_lines
        traffic.examples[reason] = list(events.bad_examples)
    answers: dict[int, dict] = {}
    for index, (data, encoding, content_type) in enumerate(
            frame.select("output_data", "output_encoding", "output_type").iter_rows()):
        text, _ = _body(data, encoding, content_type)
        answer = _answer(text) if text is not None else "an answer that cannot be decoded"
        version = answer.get("model_version", "unknown") if isinstance(answer, dict) else None
        if isinstance(answer, tuple):  # an error answer: counted against the version that gave it
            traffic.requests.setdefault(answer[1], Counter())["errors"] += 1
        elif isinstance(answer, str):
            traffic.problem(f"answer: {answer}", f"event {index}")
        else:
            answers[index] = answer
            stats = traffic.requests.setdefault(version, Counter())
            stats["requests"] += 1
            if answer.get("classes"):
                traffic.classes.setdefault(version, answer["classes"])
    rows, counts = _rows_of(frame, features, columns | set(features), traffic)
    keep, predictions, probabilities, versions = [], [], [], []
    for index, n in sorted(counts.items()):
        answer = answers.get(index)
        if answer is None:
            continue
        if len(answer["predictions"]) != n:
            traffic.problem("an answer whose prediction count is not the request's row count",
                            f"event {index}: {len(answer['predictions'])} predictions for {n} rows")
            continue
        keep.append(index)
        predictions += answer["predictions"]
        probabilities += answer.get("probabilities") or [None] * n
        versions += [answer.get("model_version", "unknown")] * n
        traffic.requests[answer.get("model_version", "unknown")]["rows"] += n
    if not keep:
        traffic.rows = pl.DataFrame(schema={
            **{f: pl.String for f in features}, "_event": pl.Int64,
            "_prediction": pl.Float64 if regression else pl.String, "_proba": pl.List(pl.Float64),
            "_version": pl.String, "_inference_id": pl.String, "_time": pl.String})
        return traffic
    rows = rows.filter(pl.col("_event").is_in(keep)).sort("_event", maintain_order=True)
    metadata = frame.select("inference_id", "inference_time").with_row_index("_event").with_columns(
        pl.col("_event").cast(pl.Int64))
    rows = rows.join(metadata, on="_event", how="left", maintain_order="left")
    prediction = pl.Series("_prediction", predictions, dtype=pl.Float64 if regression else None, strict=False)
    if not regression:
        prediction = pl.Series("_prediction", [_text(p) for p in predictions], dtype=pl.String)
    traffic.rows = rows.with_columns(
        prediction, pl.Series("_proba", probabilities, dtype=pl.List(pl.Float64), strict=False),
        pl.Series("_version", versions, dtype=pl.String),
        pl.col("inference_id").alias("_inference_id"), pl.col("inference_time").alias("_time"),
    ).drop("inference_id", "inference_time")
    return traffic
