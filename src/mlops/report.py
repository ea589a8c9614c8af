"""Render the run report (``make report``).

Input: ``reports/metrics.json`` (evaluate), ``reports/validation.json`` (validate) and the
model's ``metadata.json``. Output: ``reports/report.md`` (fits a GitHub comment: under 65,000
characters) and a self-contained ``reports/report.html`` (plots inlined as SVG). Templates are
Jinja2 files in ``mlops/templates/``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from mlops.errors import MlopsError
from mlops.io import atomic_write_text, read_json

log = logging.getLogger(__name__)

# GitHub rejects comments over 65,536 characters; keep a margin for CML's watermark.
MAX_COMMENT_CHARS = 65_000


def fmt(value, digits: int = 4) -> str:
    """A number for a table: fixed digits, 'n/a' for missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def environment() -> Environment:
    """The Jinja2 environment for every template in the package (Markdown and HTML)."""
    env = Environment(
        loader=PackageLoader("mlops", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = fmt
    return env


def fit_comment(markdown: str, limit: int = MAX_COMMENT_CHARS) -> str:
    """Cut a Markdown report to GitHub's comment limit, saying so at the end."""
    if len(markdown) <= limit:
        return markdown
    note = "\n\n> Report truncated to fit a GitHub comment; the full report is in the workflow artifact.\n"
    return markdown[: limit - len(note)].rsplit("\n", 1)[0] + note


def _load(path: Path, stage: str):
    if not path.is_file():
        raise MlopsError(f"{path} not found; run `make {stage}` first")
    return read_json(path)


def render(reports: Path, model_dir: Path) -> tuple[Path, Path]:
    """Render report.md and report.html from the stage outputs in ``reports``."""
    metrics = _load(reports / "metrics.json", "evaluate")
    validation = read_json(reports / "validation.json") if (reports / "validation.json").is_file() else None
    metadata = _load(model_dir / "metadata.json", "train")
    plots = {name: (reports / rel).read_text(encoding="utf-8") for name, rel in metrics["plots"].items()
             if (reports / rel).is_file()}
    context = {"metrics": metrics, "validation": validation, "meta": metadata, "plots": plots}
    env = environment()
    markdown = fit_comment(env.get_template("report.md.j2").render(**context))
    html = env.get_template("report.html.j2").render(**context)
    atomic_write_text(reports / "report.md", markdown)
    atomic_write_text(reports / "report.html", html)
    log.info("wrote %s and %s", reports / "report.md", reports / "report.html")
    return reports / "report.md", reports / "report.html"
