"""Reading and decoding captured traffic: SageMaker data-capture JSON Lines -> rows, at 1M records.

Writes ``--records`` capture events (one loan-data row per request, as a real-time endpoint sees
them) into ``--files`` JSON Lines files in SageMaker's key layout, then times
:func:`mlops.capture.read_events` + :func:`mlops.capture_decode.decode` and the contract cast
(:func:`mlops.traffic.load_captured`'s row checks), for CSV-encoded requests (``text/csv``, the
content type SageMaker's own monitors expect) and JSON-encoded ones (``application/json``). Prints
one table: records, bytes, read, decode, cast, total seconds, records per second, peak RSS.

    python benchmarks/bench_capture.py --records 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# pylint: disable=wrong-import-position  # after the path setup, as every benchmark here
from mlops.capture import list_window, read_events, window_start  # noqa: E402
from mlops.capture_decode import decode  # noqa: E402
from mlops.stages.datagen import generate  # noqa: E402
from mlops.traffic import _row_problems  # noqa: E402  # pylint: disable=protected-access


def _write(folder: Path, frame: pl.DataFrame, files: int, kind: str) -> int:
    """``frame``'s rows as one request each, in ``files`` capture files; returns the bytes written."""
    when = datetime.now(timezone.utc)
    answer = json.dumps({"model_version": "20261201T000000Z-bench", "rows": 1, "predictions": [0],
                         "classes": [0, 1], "probabilities": [[0.83, 0.17]]})
    output = {"observedContentType": "application/json", "mode": "OUTPUT", "data": answer, "encoding": "JSON"}
    if kind == "csv":
        bodies = frame.write_csv(include_header=False).splitlines()
        content_type, encoding = "text/csv", "CSV"
    else:
        bodies = [json.dumps({"instances": [row]}, default=str) for row in frame.iter_rows(named=True)]
        content_type, encoding = "application/json", "JSON"
    per_file = -(-len(bodies) // files)
    written = 0
    for number in range(files):
        lines = []
        for index, body in enumerate(bodies[number * per_file:(number + 1) * per_file]):
            lines.append(json.dumps({
                "captureData": {"endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": body,
                                                  "encoding": encoding}, "endpointOutput": output},
                "eventMetadata": {"eventId": f"{number:04d}-{index:09d}",
                                  "inferenceTime": f"{when:%Y-%m-%dT%H:%M:%SZ}"},
                "eventVersion": "0"}, separators=(",", ":")))
        path = folder / f"bench-prod/AllTraffic/{when:%Y/%m/%d/%H}/{number:02d}-00-000-bench.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "\n".join(lines) + "\n"
        path.write_text(text, encoding="utf-8")
        written += len(text)
    return written


def _measure(folder: Path, reference: pl.DataFrame, features: list[str]) -> dict:
    started = time.perf_counter()
    events = read_events(list_window(str(folder), window_start(1)))
    read = time.perf_counter()
    traffic = decode(events, features, set(reference.columns), regression=False)
    decoded = time.perf_counter()
    _, bad, _ = _row_problems(traffic.rows, None, reference, features)
    cast = time.perf_counter()
    assert traffic.rows.height == events.frame.height and not bad.any(), (traffic.summary(), int(bad.sum()))
    return {"read": read - started, "decode": decoded - read, "cast": cast - decoded, "total": cast - started,
            "rows": traffic.rows.height}


def main() -> None:
    """Write, read and decode; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--kinds", default="csv,json")
    args = parser.parse_args()
    frame = pl.from_pandas(generate(args.records, seed=1, start="2024-07-01", days=31))
    features = [c for c in frame.columns if c not in ("loan_id", "application_date", "default")]
    reference = frame.select(features)
    print("| requests | encoding | MB | read s | decode s | cast s | total s | records/s | peak RSS MB |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind in args.kinds.split(","):
        with tempfile.TemporaryDirectory(prefix="bench-capture-") as temp:
            size = _write(Path(temp), frame.select(features), args.files, kind)
            figures = _measure(Path(temp), reference, features)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"| {figures['rows']:,} | {kind.upper()} | {size / 1e6:.0f} | {figures['read']:.2f} | "
              f"{figures['decode']:.2f} | {figures['cast']:.2f} | {figures['total']:.2f} | "
              f"{figures['rows'] / figures['total']:,.0f} | {peak:.0f} |", flush=True)


if __name__ == "__main__":
    main()
