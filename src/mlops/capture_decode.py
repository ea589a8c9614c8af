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
CSV bodies without quotes and JSON answers are decoded column-wise by polars (one CSV read per
header); JSON and BASE64 bodies, and quoted CSV, one event at a time. Over 300 lines because
both paths must count the same problems the same way, and they are kept side by side.
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
    """The rows of each event (the Python path: JSON and BASE64 bodies, and CSV the fast path cannot take)."""
    csv_bodies, json_records, counts = [], [], {}
    for index, data, encoding, content_type in events.select(
            "_event", "input_data", "input_encoding", "input_type").iter_rows():
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


def _fast_csv(events: pl.DataFrame, features: list[str], columns: set[str],
              traffic: Traffic) -> tuple[pl.DataFrame, pl.DataFrame]:
    """CSV bodies without quotes, vectorised: (rows with ``_event``, the events left for the Python path)."""
    simple = events.filter((pl.col("input_encoding") == "CSV") & ~pl.col("input_data").str.contains('"')
                           & pl.col("input_data").is_not_null())
    rest = events.filter(~pl.col("_event").is_in(simple.get_column("_event").implode()))
    lines = simple.select("_event", pl.col("input_data").str.strip_chars_end("\r\n").str.split("\n").alias("lines"))
    first = lines.get_column("lines").list.first()
    maybe = first.filter(first.str.split_exact(",", 1).struct.field("field_0").str.strip_chars().is_in(list(columns)))
    headers = {line: names for line in maybe.unique().to_list() if (names := _header(line, columns))}
    opening = pl.col("lines").list.first()
    lines = lines.with_columns(pl.when(opening.is_in(list(headers))).then(opening).alias("header"))
    body = lines.with_columns(pl.when(pl.col("header").is_not_null()).then(pl.col("lines").list.slice(1))
                              .otherwise(pl.col("lines")).alias("lines")).explode("lines")
    body = body.filter(pl.col("lines").str.strip_chars("\r ").str.len_chars() > 0)
    empty = simple.filter(~pl.col("_event").is_in(body.get_column("_event").unique().implode()))
    for index in empty.get_column("_event").to_list():
        traffic.problem("a CSV request without rows", f"event {index}")
    body = body.with_columns((pl.col("lines").str.count_matches(",") + 1).alias("width"))
    frames = []
    for header, part in body.group_by("header", maintain_order=True):
        names = headers[header[0]] if header[0] is not None else list(features)
        wrong = part.filter(pl.col("width") != len(names)).get_column("_event").unique()
        for index in wrong.to_list():
            traffic.problem("CSV rows whose field count is not the header's (or the features')",
                            f"event {index}: expected {len(names)} fields")
        part = part.filter(~pl.col("_event").is_in(wrong.implode()))
        if not part.height:
            continue
        text = part.get_column("lines").str.join("\n").item() + "\n"
        frame = pl.read_csv(io.StringIO(text), has_header=False, new_columns=names, infer_schema=False)
        frames.append(frame.with_columns(part.get_column("_event").cast(pl.Int64)))
    rows = pl.concat(frames, how="diagonal") if frames else pl.DataFrame(schema={"_event": pl.Int64})
    return rows, rest


_ANSWER = {"model_version": pl.String, "predictions": pl.List(pl.String), "classes": pl.List(pl.String),
           "probabilities": pl.List(pl.List(pl.Float64)), "error": pl.String}


def _answers(events: pl.DataFrame, traffic: Traffic) -> pl.DataFrame:
    """Per event the answer's version, predictions and probabilities (``_ok``: a usable answer)."""
    dtype = pl.Struct(_ANSWER)
    try:
        fast = events.filter(pl.col("output_encoding") == "JSON").select(
            "_event", pl.col("output_data").str.json_decode(dtype).alias("a")).unnest("a")
    except (pl.exceptions.PolarsError, ValueError):  # a body that is not JSON: each event on its own
        fast = pl.DataFrame(schema={"_event": pl.Int64, **_ANSWER})
    rest = events.filter(~pl.col("_event").is_in(fast.get_column("_event").implode()))
    slow = []
    for index, data, encoding, content_type in rest.select(
            "_event", "output_data", "output_encoding", "output_type").iter_rows():
        text, _ = _body(data, encoding, content_type)
        answer = _answer(text) if text is not None else "an answer that cannot be decoded"
        if isinstance(answer, tuple):
            slow.append({"_event": index, "model_version": answer[1], "error": "error"})
        elif isinstance(answer, str):
            traffic.problem(f"answer: {answer}", f"event {index}")
        else:
            slow.append({"_event": index, "model_version": answer.get("model_version"),
                         "predictions": [_text(p) for p in answer["predictions"]],
                         "classes": [_text(c) for c in answer.get("classes") or []] or None,
                         "probabilities": answer.get("probabilities")})
    answers = pl.concat([fast, pl.DataFrame(slow, schema={"_event": pl.Int64, **_ANSWER})]) if slow else fast
    missing = answers.filter(pl.col("error").is_null() & pl.col("predictions").is_null())
    for index in missing.get_column("_event").to_list():
        traffic.problem("answer: an answer without a predictions list", f"event {index}")
    answers = answers.filter(pl.col("error").is_not_null() | pl.col("predictions").is_not_null())
    return answers.with_columns(pl.col("model_version").fill_null("unknown"))


def decode(events: Events, features: list[str], columns: set[str], regression: bool) -> Traffic:
    """Every event's rows and answers; what cannot be used is counted in :attr:`Traffic.problems`.

    ``features`` is the order of a request without a header; ``columns`` every column a header may
    name (the contract's: ids and times travel with the features).
    """
    frame = events.frame.with_row_index("_event").with_columns(pl.col("_event").cast(pl.Int64))
    traffic = Traffic(pl.DataFrame(), events=frame.height + events.bad_lines)
    if events.bad_lines:
        reason = "a line that is not a JSON capture event (truncated or not JSON)"
        traffic.problems[reason] += events.bad_lines
        traffic.examples[reason] = list(events.bad_examples)
    answers = _answers(frame, traffic)
    for version, errors, answered in answers.group_by("model_version").agg(
            pl.col("error").is_not_null().sum().alias("errors"),
            pl.col("error").is_null().sum().alias("answered")).iter_rows():
        traffic.requests[version] = Counter({k: v for k, v in (("requests", answered), ("errors", errors)) if v})
    for version, classes in answers.filter(pl.col("classes").is_not_null()).group_by("model_version").agg(
            pl.col("classes").first()).iter_rows():
        traffic.classes[version] = classes
    columns = columns | set(features)
    fast_rows, rest = _fast_csv(frame, features, columns, traffic)
    slow_rows, _ = _rows_of(rest, features, columns, traffic)
    rows = pl.concat([fast_rows, slow_rows], how="diagonal") if slow_rows.height else fast_rows
    rows = rows.sort("_event", maintain_order=True)
    traffic.rows = _aligned(rows, answers, frame, traffic, regression)
    return traffic


def _aligned(rows: pl.DataFrame, answers: pl.DataFrame, frame: pl.DataFrame, traffic: Traffic,
             regression: bool) -> pl.DataFrame:
    """Each row beside its prediction: events whose answer has one prediction per row."""
    good = answers.filter(pl.col("error").is_null()).select(
        "_event", "model_version", "predictions", "probabilities", n=pl.col("predictions").list.len())
    counts = rows.group_by("_event").len().join(good, on="_event", how="inner")
    wrong = counts.filter(pl.col("len") != pl.col("n"))
    for index, got, want in wrong.select("_event", "n", "len").iter_rows():
        traffic.problem("an answer whose prediction count is not the request's row count",
                        f"event {index}: {got} predictions for {want} rows")
    keep = counts.filter(pl.col("len") == pl.col("n")).get_column("_event")
    rows = rows.filter(pl.col("_event").is_in(keep.implode()))
    per_row = good.filter(pl.col("_event").is_in(keep.implode())).sort("_event").with_columns(
        pl.when(pl.col("probabilities").is_null())  # regression: no probabilities, one null per prediction
        .then(pl.col("predictions").list.eval(pl.lit(None, dtype=pl.List(pl.Float64))))
        .otherwise(pl.col("probabilities")).alias("probabilities"))
    per_row = per_row.explode("predictions", "probabilities")
    for version, n in per_row.group_by("model_version").len().iter_rows():
        traffic.requests[version]["rows"] += n
    metadata = frame.select("_event", "inference_id", "inference_time")
    rows = rows.join(metadata, on="_event", how="left", maintain_order="left")
    prediction = per_row.get_column("predictions")
    return rows.with_columns(
        (prediction.cast(pl.Float64, strict=False) if regression else prediction).alias("_prediction"),
        per_row.get_column("probabilities").cast(pl.List(pl.Float64)).alias("_proba"),
        per_row.get_column("model_version").alias("_version"),
        pl.col("inference_id").alias("_inference_id"), pl.col("inference_time").alias("_time"),
    ).drop("inference_id", "inference_time")
