"""Benchmark serving: package build time and request latency of `make serve` per batch size.

Usage: python benchmarks/bench_serving.py [--batches 1 100 1000] [--repeats 30]

Trains the configured model on the bundled data in a temporary copy of the project, builds
model.tar.gz, serves it with the container's routes on 127.0.0.1, and times POST /invocations
(JSON and CSV) per batch size, next to the bare pipeline.predict_proba on the same rows, so the
cost of parsing, the per-row contract check and JSON is visible. Prints a Markdown table of p50
(and p95 in the note). Goal: a one-row request answers in under 50 ms (p50) on a laptop core.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from _measure import ROOT, bench_table

from mlops.config import load_config
from mlops.data import Features, load_training, split
from mlops.package import build
from mlops.server import running
from mlops.stages.train import train


def _post(url: str, body: bytes, content_type: str) -> float:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": content_type})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:  # nosec: 127.0.0.1 only
        response.read()
    return time.perf_counter() - started


def _timings(func, repeats: int) -> tuple[float, float]:
    func()  # warm-up
    samples = sorted(func() for _ in range(repeats))
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as workdir:
        work = Path(workdir)
        for name in ("mlops.yaml", "schema.yaml"):
            shutil.copy(ROOT / name, work / name)
        shutil.copytree(ROOT / "data", work / "data")
        os.environ["MLOPS_MODELS_DIR"] = str(work / "models")
        config = load_config(work / "mlops.yaml")
        dataset = load_training(config)
        version, folder = train(config, dataset)
        started = time.perf_counter()
        package = build(config, folder, work / "package")
        rows = [{"stage": "package model.tar.gz", "seconds": time.perf_counter() - started,
                 "note": f"{package.tarball.stat().st_size / 1024:.0f} KiB, {version}"}]
        meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
        features = Features(tuple(meta["features"]["numeric"]), tuple(meta["features"]["categorical"]))
        parts = split(config, dataset.frame, features)
        from mlops.model import load_model  # pylint: disable=import-outside-toplevel  # after training

        pipeline = load_model(folder / "model.skops")
        with running(package.tarball) as server:
            for size in args.batches:
                rows += _batch_rows(server.url, pipeline, parts, features, size, args.repeats)
    print(bench_table(rows))


def _batch_rows(url: str, pipeline, parts, features: Features, size: int, repeats: int) -> list[dict]:
    """Served JSON and CSV latency for ``size`` held-out rows, and the bare predict for comparison."""
    batch = parts.test_frame.select(features.all).head(size)
    records = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in batch.to_dicts()]
    rows = []
    for label, payload, kind in (("json", json.dumps({"instances": records}).encode(), "application/json"),
                                 ("csv", batch.write_csv().encode(), "text/csv")):
        p50, p95 = _timings(lambda payload=payload, kind=kind: _post(url, payload, kind), repeats)
        rows.append({"stage": f"POST /invocations ({label})", "rows": size, "seconds": p50,
                     "note": f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
                             + ("; goal p50 < 50 ms" if size == 1 else "")})
    frame = parts.x_test.iloc[:size]
    p50, p95 = _timings(lambda: _time(pipeline.predict_proba, frame), repeats)
    rows.append({"stage": "bare predict_proba", "rows": size, "seconds": p50,
                 "note": f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms (comparison, frame as evaluate builds it)"})
    return rows


def _time(func, *args) -> float:
    started = time.perf_counter()
    func(*args)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
