"""The canary read-out of a deploy: what each model version served, from the endpoint's captured traffic.

Input: the config, the deploy target, the serving stack's outputs (``EndpointName``,
``CaptureDestination``), the new release and the version that served before. Output: a record
per model version (requests, error answers, error rate, rows, the prediction distribution) from
the capture files of the last ``drift.window_days``, the latency percentiles CloudWatch has for
the variant since the deploy started (real AWS only), and the prediction shift of the new version
against the old one: a distance at every size (normed Wasserstein for a score or a value,
Jensen-Shannon for labels), rows deduplicated so a repeated smoke request counts once. Above
``deploy.canary_max_shift`` the read-out raises :class:`CanaryFailed`, which the roll-out undoes
like a failed smoke test. Real endpoints write capture files a minute or two after a request:
the read-out waits up to ``deploy.canary_wait_seconds`` for the new version's records.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import numpy as np
import polars as pl

from mlops.aws import Target
from mlops.capture import list_window, read_events, window_start
from mlops.capture_decode import decode
from mlops.config import Config
from mlops.console import say
from mlops.data import features_of
from mlops.drift_stats import column_drift
from mlops.metrics import model_outputs
from mlops.monitoring import output_frame
from mlops.release import Release
from mlops.smoke import SmokeFailed
from mlops.traffic import served_predictions

POLL_SECONDS = 15


class CanaryFailed(SmokeFailed):
    """The new version's predictions moved further from the old version's than the gate allows."""


def _scores(frame: pl.DataFrame, classes: list, task: str, positive) -> pl.DataFrame:
    """What prediction drift compares (:func:`~mlops.metrics.model_outputs`) of the served rows."""
    if not frame.height or (task != "regression" and not classes):
        return pl.DataFrame(schema={"prediction": pl.String if task == "multiclass" else pl.Float64})
    return output_frame(model_outputs(served_predictions(frame, classes, task, positive), task))


def _distribution(scores: pl.DataFrame, task: str) -> dict:
    values = scores.get_column("prediction")
    if task == "multiclass":
        shares = values.value_counts(normalize=True, sort=True)
        return {"shares": {str(k): round(float(v), 4) for k, v in shares.iter_rows()}}
    array = values.to_numpy()
    quantiles = np.quantile(array, [0.1, 0.5, 0.9]) if array.size else [None] * 3
    return {"mean": round(float(array.mean()), 4) if array.size else None,
            "p10_p50_p90": [None if q is None else round(float(q), 4) for q in quantiles]}


def _latency(target: Target, endpoint: str, since: datetime) -> dict | None:
    """ModelLatency percentiles (ms) CloudWatch has for the variant since ``since``; None on an emulator."""
    if target.emulator or target.emulated:
        return None
    answer = target.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="ModelLatency", StartTime=since, EndTime=datetime.now(timezone.utc),
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
        Period=60, ExtendedStatistics=["p50", "p90", "p99"])
    points = answer.get("Datapoints", [])
    if not points:
        return {"note": "no ModelLatency datapoints yet"}
    return {stat: round(max(p["ExtendedStatistics"][stat] for p in points) / 1000, 1) for stat in ("p50", "p90", "p99")}


def _traffic(config: Config, target: Target, location: str, release: Release):
    meta = release.metadata
    features = features_of(meta).all
    deadline = time.monotonic() + (0 if target.emulator or target.emulated else config.deploy.canary_wait_seconds)
    s3_client = target.client("s3")
    while True:
        events = read_events(list_window(location, window_start(config.drift.window_days), s3_client=s3_client),
                             s3_client)
        traffic = decode(events, features, set(features) | ({config.data.id_column} - {None}),
                         config.task == "regression")
        if release.version in traffic.requests or time.monotonic() >= deadline:
            return traffic
        time.sleep(POLL_SECONDS)


# pylint: disable-next=too-many-arguments  # one per fact the read-out needs
def read_out(config: Config, target: Target, outputs: dict, release: Release, old: str | None,
             started: datetime, *, gate: bool = True) -> dict:
    """Requests, errors, latency and predictions per version; raise CanaryFailed over the shift gate.

    ``gate`` False reports only: a rollback goes back to what served before, however far it moved.
    """
    endpoint, destination = outputs.get("EndpointName"), outputs.get("CaptureDestination")
    if not destination or config.deploy.environments[target.environment].capture_percent == 0 \
            or not config.capture.enabled:
        return {"note": "capture is off for this environment: no read-out"}
    location = f"{destination}/{endpoint}"
    traffic = _traffic(config, target, location, release)
    rows = traffic.rows.unique(subset=[c for c in traffic.rows.columns if not c.startswith("_")] + ["_version"],
                               maintain_order=True)
    versions = {}
    scores = {}
    for version in [v for v in (old, release.version) if v]:
        stats = traffic.requests.get(version, {})
        answered, errors = stats.get("requests", 0), stats.get("errors", 0)
        mine = rows.filter(pl.col("_version") == version)
        scores[version] = _scores(mine, traffic.classes.get(version, []), config.task, config.data.positive_label)
        versions[version] = {"requests": answered + errors, "errors": errors,
                             "error_rate": round(errors / (answered + errors), 4) if answered + errors else None,
                             "rows": stats.get("rows", 0), "distinct_rows": mine.height,
                             "predictions": _distribution(scores[version], config.task)}
    record = {"location": location, "versions": versions, "latency_ms": _latency(target, endpoint, started),
              "unusable_events": sum(traffic.problems.values()), "max_shift": config.deploy.canary_max_shift,
              "shift": None, "passed": True}
    new_rows = scores.get(release.version, pl.DataFrame()).height
    shift = None
    if old and old != release.version and scores.get(old) is not None and scores[old].height and new_rows:
        kind = "categorical" if config.task == "multiclass" else "numeric"
        limit = config.deploy.canary_max_shift
        shift = column_drift(scores[old], scores[release.version], {"prediction": kind},
                             threshold=limit or float("inf"), small_sample_rows=0)[0]
        record["shift"] = {"method": shift.method, "value": shift.value}
        record["passed"] = limit is None or not gate or not shift.drifted
        record["gated"] = gate
    else:
        record["note"] = ("no captured traffic of the new version yet" if not new_rows
                          else "no captured traffic of a previous version to compare with")
    moved = f"{shift.method} {shift.value:.3f}" if shift is not None else ""
    say(f"Canary read-out from {location}: " + "; ".join(
        f"{v} {s['requests']} requests, {s['errors']} errors" for v, s in versions.items())
        + (f"; prediction shift {moved} (gate {config.deploy.canary_max_shift})" if moved
           else f"; {record.get('note')}"))
    if not record["passed"]:
        raise CanaryFailed(f"canary read-out: the predictions of {release.version} moved from those of {old} by "
                           f"{moved}, over deploy.canary_max_shift {config.deploy.canary_max_shift} (captured "
                           f"traffic in {location})")
    return record


def summary_rows(record: dict) -> str:
    """The read-out as a Markdown table for the job summary."""
    if not record or "versions" not in record:
        return f"\n{record.get('note', '')}\n" if record else ""
    lines = ["", "#### Canary read-out (captured traffic)", "",
             "| version | requests | errors | error rate | rows | predictions |", "|---|---:|---:|---:|---:|---|"]
    for version, stats in record["versions"].items():
        lines.append(f"| `{version}` | {stats['requests']} | {stats['errors']} | {stats['error_rate']} | "
                     f"{stats['rows']} | {stats['predictions']} |")
    shift = record.get("shift")
    lines += ["", (f"Prediction shift {shift['method']} {shift['value']:.3f} (gate {record['max_shift']}): "
                   f"{'passed' if record['passed'] else '**failed**'}." if shift else record.get("note", "")),
              f"Latency (CloudWatch ModelLatency, ms): {record['latency_ms'] or 'n/a (emulator)'}.", ""]
    return "\n".join(lines)
