"""Compare a challenger model with the champion and apply the gates (``make compare``).

Inputs: the config (``gates`` and ``compare`` sections), the data (``data.source`` or
``--data``), the challenger's model folder (the context's, ``--model``, else ``models/LATEST``)
and the champion's (:func:`mlops.champion.resolve`). Outputs, in ``reports/`` (or
``reports/<out>/``): ``compare.json``, ``compare.md`` (the PR comment: verdict line first, under
65,000 characters, charts as Mermaid) and ``compare.html`` (full report, SVG charts inlined),
plus the verdict in the job summary and the step outputs ``verdict`` and ``headline``. Exits 1
when a gate fails, after writing the reports.

Both models are scored on the SAME held-out rows (:mod:`mlops.comparison`). With ``compute:
sagemaker`` and more held-out rows than ``compute.compare_above_rows`` (the challenger's lineage
counts them) the scoring runs as a SageMaker Processing job (:func:`mlops.remote.compare_job`) and
this stage renders what it brings back: the data is never read on the runner.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mlops import jobs, remote
from mlops.champion import resolve
from mlops.comparison import compare, contract_diff
from mlops.context import Context, Result
from mlops.io import atomic_write_json, atomic_write_text
from mlops.lineage import resolve_model_dir
from mlops.plots import curve_overlays
from mlops.render import environment, fit_comment

log = logging.getLogger(__name__)


def run(ctx: Context, champion: str = "auto", base_ref: str | None = None, out: str | None = None,
        gate: bool = True, schema_diff: bool = True) -> Result:
    """Resolve the champion, validate, compare, render; fail (exit 1) when a gate fails.

    ``gate=False`` records the verdict without failing (a retrain's PR is opened either way);
    ``schema_diff=False`` leaves out the contract diff against the base commit.
    """
    config = ctx.config
    challenger_dir = resolve_model_dir(config, ctx.model)
    in_job = jobs.wanted(config) and remote.compare_remotely(config, challenger_dir)
    # With gates.require_validation (the default) data that breaks the contract is refused here,
    # before anything is scored or written; without it the breach is reported in the comparison.
    dataset = None if in_job else ctx.checked() if config.gates.require_validation else ctx.load()
    found = resolve(config, champion, base_ref)
    diff = contract_diff(config, found.base_sha) if schema_diff else None
    if in_job:  # the job validates the data and refuses it the same way
        result = remote.compare_job(config, ctx.data, ctx.source, found, challenger_dir, diff)
    else:
        validation = {**ctx.validated(), "schema_file": config.data.schema_file}  # relative: no runner paths
        result = compare(config, dataset, found.model_dir, challenger_dir, champion=found, validation=validation,
                         schema_diff=diff)
    render_reports(result, config.reports_dir / out if out else config.reports_dir)
    verdict = ("✅ " if result["verdict"] == "pass" else "❌ ") + result["headline"]
    outputs = {"verdict": result["verdict"], "headline": " ".join(result["headline"].split())}
    return Result(message=verdict, outputs=outputs,
                  summary=summary_markdown(result), exit_code=1 if gate and result["failures"] else 0,
                  error=("; ".join(result["failures"]) or None) if gate else None)


def render_reports(result: dict, out_dir: Path) -> tuple[Path, Path, Path]:
    """Write compare.json, compare.md (the PR comment) and compare.html into ``out_dir``."""
    env = environment()
    context = {"r": result, "validation": result["validation"], "svgs": curve_overlays(result["curves"])}
    markdown = fit_comment(env.get_template("compare.md.j2").render(**context))
    html = env.get_template("compare.html.j2").render(**context)
    paths = out_dir / "compare.json", out_dir / "compare.md", out_dir / "compare.html"
    atomic_write_json(paths[0], result)
    atomic_write_text(paths[1], markdown)
    atomic_write_text(paths[2], html)
    log.info("wrote %s, %s and %s", *paths)
    return paths


def summary_markdown(result: dict) -> str:
    """The verdict and the metric table for the job summary."""
    lines = [f"### {'✅' if result['verdict'] == 'pass' else '❌'} {result['headline']}", "",
             "| metric | champion | challenger | change | CI |", "|---|---:|---:|---:|---|"]
    for row in result["metrics"]:
        champ = "n/a" if row["champion"] is None else f"{row['champion']:.4f}"
        delta = "n/a" if row["delta"] is None else f"{row['delta']:+.4f}"
        ci = "n/a" if row["ci_low"] is None else f"{row['ci_low']:+.4f} to {row['ci_high']:+.4f}"
        lines.append(f"| {row['name']} | {champ} | {row['challenger']:.4f} | {delta} | {ci} |")
    return "\n".join(lines) + "\n"
