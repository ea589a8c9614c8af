"""Render the run report (``make report``).

Input: ``reports/metrics.json`` (evaluate), ``reports/validation.json`` (validate) and the
model's ``metadata.json`` (the context's model, else ``models/LATEST``). Output:
``reports/report.md`` (fits a GitHub comment: under 65,000 characters) and a self-contained
``reports/report.html`` (plots inlined as SVG), from ``templates/report.{md,html}.j2``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mlops.context import Context, Result
from mlops.errors import MlopsError
from mlops.io import atomic_write_text, read_json
from mlops.lineage import resolve_model_dir
from mlops.render import fit_comment, render

log = logging.getLogger(__name__)


def run(ctx: Context) -> Result:
    """Render report.md and report.html for the model."""
    markdown, html = render_report(ctx.config.reports_dir, resolve_model_dir(ctx.config, ctx.model))
    return Result(message=f"Wrote {markdown} and {html}")


def _load(path: Path, stage: str):
    if not path.is_file():
        raise MlopsError(f"{path} not found; run `make {stage}` first")
    return read_json(path)


def render_report(reports: Path, model_dir: Path) -> tuple[Path, Path]:
    """Render report.md and report.html from the stage outputs in ``reports``."""
    metrics = _load(reports / "metrics.json", "evaluate")
    validation = read_json(reports / "validation.json") if (reports / "validation.json").is_file() else None
    metadata = _load(model_dir / "metadata.json", "train")
    plots = {name: (reports / rel).read_text(encoding="utf-8") for name, rel in metrics["plots"].items()
             if (reports / rel).is_file()}
    context = {"metrics": metrics, "validation": validation, "meta": metadata, "plots": plots}
    atomic_write_text(reports / "report.md", fit_comment(render("report.md.j2", **context)))
    atomic_write_text(reports / "report.html", render("report.html.j2", **context))
    log.info("wrote %s and %s", reports / "report.md", reports / "report.html")
    return reports / "report.md", reports / "report.html"
