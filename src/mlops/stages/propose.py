"""Propose the retrain's change (``make propose``; the last step of ``make retrain``).

Inputs, from the earlier steps in ``reports/retrain/``: the staged manifest and ``collect.json``
(``make collect``), ``compare.json`` and ``compare.md`` (``make compare`` with ``--out
retrain``), and the latest drift summary (``reports/drift.json``, ``drift.md``) when present.

Outputs: the data manifest ``retrain.manifest`` (``data/manifest.json``, local URIs relative to
its folder), ``data.source`` in ``mlops.yaml`` pointed at it (once), and in ``reports/retrain/``
``retrain.json``, ``comparison.md`` (the retrain PR's comment: training data, drift summary,
comparison) and copies of ``drift.json``/``drift.md``. Reports are written first, then the
manifest, then the config, so a failure never leaves a manifest unexplained. Those text files,
not a model binary, are the reviewable change of a retrain pull request.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from mlops.config import set_data_source
from mlops.context import Context, Result
from mlops.errors import MlopsError
from mlops.io import atomic_write_json, atomic_write_text, read_json
from mlops.manifest import DataFile, build_manifest, listed_files, staged_paths, write_manifest
from mlops.render import fit_comment, render

log = logging.getLogger(__name__)


def _read(path: Path, step: str) -> dict:
    if not path.is_file():
        raise MlopsError(f"{path} not found; run `make {step}` first (`make retrain` runs every step in order)")
    return read_json(path)


def run(ctx: Context) -> Result:
    """Write the manifest, point data.source at it, and write the retrain PR's comment."""
    config = ctx.config
    staged, collected_path = staged_paths(config.reports_dir)
    out = staged.parent
    collected = _read(collected_path, "collect")
    staged_record = _read(staged, "collect")
    comparison = _read(out / "compare.json", "compare --out retrain")
    final = Path(config.resolve(config.retrain.manifest))
    manifest_rel = os.path.relpath(final, config.root)
    files = [DataFile(uri=e["uri"], role=e["role"], sha256=e["sha256"], bytes=e["bytes"], rows=e["rows"],
                      version_id=e.get("version_id"), etag=e.get("etag"), first=e.get("first"), last=e.get("last"))
             for e in listed_files(str(staged))]
    version = comparison["challenger"]["version"]
    manifest = build_manifest(final, files, window=staged_record["window"], rows=staged_record["rows"],
                              created_by=f"make retrain ({version})")
    record = {
        "version": version,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "manifest": manifest_rel,
        "window": staged_record["window"],
        "rows": staged_record["rows"],
        "files": manifest["files"],
        "held_out_rows": collected["held_out_rows"],
        "held_out_new_period_rows": collected["held_out_new_period_rows"],
        "held_out_reference_rows": collected["held_out_reference_rows"],
        "champion": {"source": comparison["champion_source"], "description": comparison["champion_description"]},
        "verdict": comparison["verdict"],
        "headline": comparison["headline"],
        "failures": comparison["failures"],
    }
    _write_reports(config.reports_dir, record, out)
    write_manifest(final, manifest)
    record["config_changed"] = set_data_source(config, manifest_rel)
    if record["config_changed"]:
        log.info("data.source in %s now names the manifest %s", config.path, manifest_rel)
    atomic_write_json(out / "retrain.json", record)
    return Result(message=f"Retrained {version} on {record['rows']} rows ({manifest_rel}): {record['headline']}\n"
                          f"Wrote {out}/comparison.md and retrain.json")


def _write_reports(reports: Path, record: dict, out: Path) -> None:
    for name in ("drift.json", "drift.md"):
        source = reports / name
        if source.is_file():
            shutil.copyfile(source, out / name)
    drift_md = (out / "drift.md").read_text(encoding="utf-8") if (out / "drift.md").is_file() else None
    compare_md = (out / "compare.md").read_text(encoding="utf-8")
    comment = render("retrain.md.j2", r=record, drift_md=drift_md, compare_md=compare_md)
    atomic_write_text(out / "comparison.md", fit_comment(comment))
    atomic_write_json(out / "retrain.json", record)
    log.info("wrote %s and %s", out / "retrain.json", out / "comparison.md")
