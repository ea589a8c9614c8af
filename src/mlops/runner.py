"""The stage table, and the runner that carries one command through it.

Input: a stage name, a :class:`~mlops.context.Context`, and the stage's options. Output: the
stage's :class:`~mlops.context.Result`, published as it arrives: the message printed, step
outputs written to ``$GITHUB_OUTPUT``, the summary appended to ``$GITHUB_STEP_SUMMARY``.

:data:`STAGES` is the one list of stages: each has a name (its Makefile target, CLI sub-command,
``mlops.stages.<name>`` module and, where it runs in CI, the ``actions/<action>`` that runs it),
its options, and for a composition (``pipeline``, ``retrain``) its steps in order, which share
one context: the data is read once, and a step hands on what it made (``train`` its model,
``collect`` the training set). A composition stops at the first step that fails.
"""

from __future__ import annotations

import importlib
import shutil
from dataclasses import dataclass
from typing import Any, Callable

from mlops import github
from mlops.context import Context, Result


@dataclass(frozen=True)
class Option:
    """One command-line option of a stage; its ``dest`` is the keyword the stage's ``run`` takes."""

    flag: str
    help: str
    type: Callable | None = None
    default: Any = None
    choices: tuple | None = None
    switch: bool = False  # a flag without a value (store_true)
    env: str | None = None  # the default comes from this environment variable when it is set
    make: str | None = None  # the Makefile variable (make deploy VERSION=...) read from the environment
    pattern: str | None = None  # a value must match this (full match), whatever its source

    @property
    def dest(self) -> str:
        """The keyword argument name (``--base-ref`` -> ``base_ref``)."""
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Stage:
    """One entry of the stage table."""

    name: str
    help: str
    options: tuple[Option, ...] = ()
    action: str | None = None  # the composite action under actions/ that runs it in CI
    config: bool = True  # loads mlops.yaml first
    steps: tuple[tuple[str, dict], ...] = ()  # a composition: (stage, fixed options) in order
    # Result files under reports/ the stage (re)writes ({option} filled in): removed before it runs,
    # so a run that fails leaves none of them behind to be mistaken for its result.
    owns: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        """The module holding the stage's ``run``."""
        return f"mlops.stages.{self.name.replace('-', '_')}"


# Values from outside (dispatch inputs, make variables) are checked against these before use.
PATH_PATTERN = r"(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/)?[A-Za-z0-9_.*?\[\]/-]{1,512}"
VERSION_PATTERN = r"[0-9]{8}T[0-9]{6}Z-[0-9a-z]{1,40}"  # mlops.lineage.VERSION_PATTERN (kept import-free)
ENV_PATTERN = r"[a-z][a-z0-9-]{0,20}"

# Options that fill the context instead of a stage's keyword arguments.
DATA = Option("--data", "data to use instead of data.source (path, glob, s3:// URI or data manifest)",
              make="DATA", pattern=PATH_PATTERN)
MODEL = Option("--model", "model folder (default: the version in models/LATEST)", make="MODEL", pattern=PATH_PATTERN)
CONTEXT_OPTIONS = {"data", "model"}
CURRENT = Option("--current", "production data instead of drift.current (path, glob, s3://, capture, "
                 "capture:<folder or s3:// prefix>)", make="CURRENT", pattern=f"(capture:)?{PATH_PATTERN}")


def _env(default: str) -> Option:
    return Option("--env", f"environment from deploy.environments (default {default})", default=default,
                  make="ENV", pattern=ENV_PATTERN)


STAGES: dict[str, Stage] = {stage.name: stage for stage in (
    Stage("validate", "check the data against the data contract (schema.yaml)", (DATA,), action="validate",
          owns=("validation.json",)),
    Stage("schema", "draft schema.yaml from the data (review it before committing)",
          (DATA, Option("--force", "overwrite an existing schema file", switch=True, make="FORCE"))),
    Stage("train", "fit the model and save a new version under models/", (DATA,), action="train"),
    Stage("evaluate", "score the model on the held-out rows; write reports/metrics.json and plots", (DATA, MODEL),
          owns=("metrics.json", "plots")),
    Stage("report", "render reports/report.md and reports/report.html", (MODEL,), owns=("report.md", "report.html")),
    Stage("pipeline", "validate -> train -> evaluate -> report, in one process", (DATA,), action="pipeline",
          steps=(("validate", {}), ("train", {}), ("evaluate", {}), ("report", {}))),
    Stage("compare", "compare the model with the champion on the same held-out rows; fail when a gate fails", (
        DATA, MODEL,
        Option("--champion", "where the champion comes from (default $MLOPS_CHAMPION or auto: registry, then the "
                             "base branch, then none)", choices=("auto", "registry", "base", "none"), default="auto",
               env="MLOPS_CHAMPION"),
        Option("--base-ref", "base branch or commit for the champion (default $MLOPS_BASE_REF, $GITHUB_BASE_REF, "
                             "main)", pattern=r"[A-Za-z0-9._/-]{1,255}"),
        Option("--out", "a folder under reports/ for the reports (default reports/ itself)",
               pattern=r"[a-z0-9_-]{1,64}"),
    ), action="compare", owns=("{out}/compare.json", "{out}/compare.md", "{out}/compare.html")),
    Stage("drift", "compare production data with the champion's training data (exit 3: drift found)", (
        CURRENT,
        Option("--threshold", "distance threshold instead of drift.threshold (small samples: drift.p_value)",
               type=float, make="THRESHOLD"),
        Option("--no-html", "skip the evidently HTML report", switch=True),
        Option("--exit-zero", "exit 0 when drift is found (read `drifted` from reports/drift.json or $GITHUB_OUTPUT)",
               switch=True, make="EXIT_ZERO"),
    ), action="drift", owns=("drift.json", "drift.md", "drift.html")),
    Stage("collect", "build a retrain's training set (reference + new data) and stage its data manifest",
          (CURRENT,), action="retrain", owns=("retrain/manifest.json", "retrain/collect.json")),
    Stage("propose", "write a retrain's change: data manifest, data.source, the retrain PR's comment",
          action="retrain", owns=("retrain/retrain.json", "retrain/comparison.md")),
    Stage("retrain", "collect -> validate -> train -> compare -> propose: retrain on new data, compare with the "
                     "champion", (CURRENT,), action="retrain",
          steps=(("collect", {}), ("validate", {}), ("train", {}),
                 ("compare", {"out": "retrain", "gate": False, "schema_diff": False}), ("propose", {}))),
    Stage("retrain-gate", "may the retrain PR be updated now? (retrain.cooldown_hours; step outputs)", (
        Option("--remote", "git remote holding the retrain branch", default="origin", pattern=r"[A-Za-z0-9._-]{1,64}"),
        Option("--force", "ignore retrain.cooldown_hours", switch=True, make="FORCE"),
    ), action="retrain"),
    Stage("serve", "serve the model over HTTP on 127.0.0.1 (GET /ping, POST /invocations)",
          (MODEL, Option("--port", "port on 127.0.0.1 (default 8080)", type=int, default=8080, make="PORT"))),
    Stage("deploy", "package, register and deploy a version to an environment, then smoke-test it", (
        _env("local"),
        Option("--version", "registered version (default: models/LATEST, or what `requires` serves)",
               make="VERSION", pattern=VERSION_PATTERN),
    ), action="deploy", owns=("deploy-{env}.json",)),
    Stage("rollback", "redeploy the version an environment served before the current one", (_env("prod"),),
          action="rollback", owns=("deploy-{env}.json",)),
    Stage("deploy-check", "check an environment serves the version its registry pointer names", (
        _env("prod"), Option("--expect", "fail unless the environment serves this version", make="EXPECT",
                             pattern=VERSION_PATTERN)), action="deploy-check"),
    Stage("bootstrap", "create or update the foundation stack in AWS; with GH_TOKEN configure the repository", (
        Option("--repository", "owner/name allowed to deploy (default: the origin remote)", make="REPOSITORY",
               pattern=r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}"),
        Option("--reviewers", "GitHub logins that must approve prod deploys (default: the token's user)",
               make="REVIEWERS", pattern=r"[A-Za-z0-9-]{1,39}(,[A-Za-z0-9-]{1,39})*"),
        Option("--allow-self-review", "let a prod reviewer approve a deploy they triggered (a team of one)",
               switch=True, make="ALLOW_SELF_REVIEW"))),
    Stage("doctor", "check the local setup, and AWS/GitHub setup when credentials are present", config=False),
    Stage("datagen", "generate example loan data of any size (for benchmarks and demos)", (
        Option("--rows", "rows to generate", type=int, default=10_000, make="ROWS"),
        Option("--seed", "random seed", type=int, default=0, make="SEED"),
        Option("--start", "first application date", default="2024-01-01", pattern=r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
        Option("--days", "days the applications span", type=int, default=181),
        Option("--drift", "shift the known drifted columns", switch=True, make="DRIFT"),
        Option("--out", "output .csv or .parquet file", make="OUT", pattern=r"[A-Za-z0-9_./-]{1,512}\.(csv|parquet)"),
    ), config=False),
)}


def publish(result: Result) -> None:
    """Print the message; in GitHub Actions write the step outputs and the job summary."""
    if result.message:
        print(result.message, flush=True)
    github.set_outputs(result.outputs)
    github.append_summary(result.summary)


def remove_stale(stage: Stage, ctx: Context, options: dict) -> None:
    """Delete the result files the stage is about to rewrite (a failed run then leaves none)."""
    if ctx.config is None:
        return
    values = {o.dest: options.get(o.dest) or "" for o in stage.options}
    for pattern in stage.owns:
        path = ctx.config.reports_dir / pattern.format(**values).lstrip("/")
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _call(name: str, ctx: Context, options: dict) -> Result:
    remove_stale(STAGES[name], ctx, options)
    module = importlib.import_module(STAGES[name].module)  # imported on use: `--help` stays fast
    result = module.run(ctx, **{k: v for k, v in options.items() if k not in CONTEXT_OPTIONS})
    publish(result)
    return result


def run(name: str, ctx: Context, options: dict | None = None) -> Result:
    """Run a stage, or each step of a composition in order; the last result (the first failing one)."""
    stage = STAGES[name]
    options = dict(options or {})
    if not stage.steps:
        return _call(name, ctx, options)
    result = Result()
    for step, fixed in stage.steps:
        accepted = {o.dest for o in STAGES[step].options} - CONTEXT_OPTIONS
        passed = {key: value for key, value in options.items() if key in accepted}
        result = _call(step, ctx, {**passed, **fixed})
        if result.exit_code:
            break
    return result
