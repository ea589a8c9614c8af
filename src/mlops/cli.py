"""The one command line: ``python -m mlops <stage>``; each Makefile target calls one stage.

Expected failures (:class:`~mlops.errors.MlopsError`) print ``Error: <message>`` and exit
non-zero without a traceback; inside GitHub Actions they also become an ``::error::``
annotation and a line in the job summary.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from mlops.config import Config, load_config
from mlops.errors import MlopsError

log = logging.getLogger("mlops")

Command = Callable[[Config, argparse.Namespace], int]
COMMANDS: dict[str, tuple[str, Command, Callable[[argparse.ArgumentParser], None] | None]] = {}


def command(name: str, help_text: str, arguments: Callable[[argparse.ArgumentParser], None] | None = None):
    """Register a stage as a sub-command."""

    def register(func: Command) -> Command:
        COMMANDS[name] = (help_text, func, arguments)
        return func

    return register


def _data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="data to use instead of data.source (path, glob or s3:// URI)")


def _model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model folder (default: the version in models/LATEST)")


def _load_data(config: Config, args: argparse.Namespace):
    from mlops.data import load, load_training  # pylint: disable=import-outside-toplevel  # keep `--help` fast

    cached = getattr(args, "loaded_dataset", None)
    if cached is None:  # `pipeline` runs several stages on one namespace: read the data once
        cached = load(args.data, label="--data") if getattr(args, "data", None) else load_training(config)
        args.loaded_dataset = cached
    return cached


@command("validate", "check the data against the data contract (schema.yaml)", _data_argument)
def _validate(config: Config, args: argparse.Namespace) -> int:
    from mlops.io import atomic_write_json  # pylint: disable=import-outside-toplevel  # keep `--help` fast
    from mlops.schema import load_contract  # pylint: disable=import-outside-toplevel  # same
    from mlops.validate import format_table, raise_if_failed, validate  # pylint: disable=import-outside-toplevel  # same

    contract = load_contract(config)
    dataset = _load_data(config, args)
    source = args.data or config.data.source
    result = validate(dataset.frame, contract, source=source)
    atomic_write_json(config.reports_dir / "validation.json", result)
    raise_if_failed(result)
    print(f"Validation passed: {result['rows']} rows x {result['columns']} columns of {source} "
          f"meet {config.data.schema_file} ({result['seconds']:.2f}s)")
    if result["failures"]:
        print(format_table(result["failures"]))
    return 0


@command("schema", "draft schema.yaml from the data (review it before committing)", _data_argument)
def _schema(config: Config, args: argparse.Namespace) -> int:
    from mlops.schema import infer_contract, write_contract  # pylint: disable=import-outside-toplevel  # keep `--help` fast

    dataset = _load_data(config, args)
    path = config.resolve(config.data.schema_file)
    if os.path.exists(path) and not args.force:
        raise MlopsError(f"{path} exists; pass --force (make schema FORCE=1) to overwrite it")
    write_contract(infer_contract(config, dataset.frame), path)
    print(f"Wrote {path}: review bounds and categories, then commit it")
    return 0


@command("train", "fit the model and save a new version under models/", _data_argument)
def _train(config: Config, args: argparse.Namespace) -> int:
    from mlops.train import train  # pylint: disable=import-outside-toplevel  # keep `--help` fast

    version, folder = train(config, _load_data(config, args))
    print(f"Trained {version} -> {folder}")
    return 0


def _evaluate_args(parser: argparse.ArgumentParser) -> None:
    _data_argument(parser)
    _model_argument(parser)


@command("evaluate", "score the model on the held-out rows; write reports/metrics.json and plots", _evaluate_args)
def _evaluate(config: Config, args: argparse.Namespace) -> int:
    from mlops.evaluate import evaluate  # pylint: disable=import-outside-toplevel  # keep `--help` fast
    from mlops.lineage import resolve_model_dir  # pylint: disable=import-outside-toplevel  # same

    record = evaluate(config, _load_data(config, args), resolve_model_dir(config, args.model))
    primary = record["primary_metric"]
    print(f"Evaluated {record['version']} on {record['test_rows']} held-out rows: "
          f"{primary}={record['metrics'][primary]:.4f}")
    return 0


@command("report", "render reports/report.md and reports/report.html", _model_argument)
def _report(config: Config, args: argparse.Namespace) -> int:
    from mlops.report import render  # pylint: disable=import-outside-toplevel  # keep `--help` fast
    from mlops.lineage import resolve_model_dir  # pylint: disable=import-outside-toplevel  # same

    markdown, html = render(config.reports_dir, resolve_model_dir(config, args.model))
    print(f"Wrote {markdown} and {html}")
    return 0


@command("pipeline", "validate -> train -> evaluate -> report, in one process", _data_argument)
def _pipeline(config: Config, args: argparse.Namespace) -> int:
    args.model = None
    for stage in ("validate", "train", "evaluate", "report"):
        COMMANDS[stage][1](config, args)
    return 0


def _drift_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--current", help="production data to check instead of drift.current (path, glob, s3://)")
    parser.add_argument("--threshold", type=float, help="per-column drift threshold instead of drift.threshold")
    parser.add_argument("--no-html", action="store_true", help="skip the evidently HTML report")
    parser.add_argument("--exit-zero", action="store_true",
                        help="exit 0 when drift is found (read `drifted` from reports/drift.json or $GITHUB_OUTPUT)")


@command("drift", "compare production data with the champion's training data (exit 3: drift found)", _drift_args)
def _drift(config: Config, args: argparse.Namespace) -> int:
    from mlops.drift import EXIT_DRIFT, check, summary_line  # pylint: disable=import-outside-toplevel  # keep `--help` fast

    if args.threshold is not None and args.threshold <= 0:
        raise MlopsError(f"--threshold must be above 0, got {args.threshold}")
    result = check(config, current_source=args.current, threshold=args.threshold, html=False if args.no_html else None)
    print(summary_line(result.record))
    html = " and drift.html" if result.record["html_report"] else ""
    print(f"Wrote {config.reports_dir / 'drift.json'} and drift.md{html}")
    return EXIT_DRIFT if result.drifted and not args.exit_zero else 0


def _retrain_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--current", help="new data instead of drift.current (path, glob, s3://)")


@command("retrain", "train on reference + new data, compare with the champion, write the data manifest", _retrain_args)
def _retrain(config: Config, args: argparse.Namespace) -> int:
    from mlops.retrain import run  # pylint: disable=import-outside-toplevel  # keep `--help` fast

    record = run(config, current_source=args.current)
    print(f"Retrained {record['version']} on {record['rows']} rows ({record['manifest']}): {record['headline']}")
    print(f"Wrote {config.reports_dir / 'retrain'}/comparison.md and retrain.json")
    return 0


def _gate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--remote", default="origin", help="git remote holding the retrain branch")
    parser.add_argument("--force", action="store_true", help="ignore retrain.cooldown_hours")


@command("retrain-gate", "may the retrain PR be updated now? (retrain.cooldown_hours; writes $GITHUB_OUTPUT)",
         _gate_args)
def _retrain_gate(config: Config, args: argparse.Namespace) -> int:
    from mlops.retrain import gate, write_gate_outputs  # pylint: disable=import-outside-toplevel  # keep `--help` fast

    state = gate(config, remote=args.remote, force=args.force)
    write_gate_outputs(state)
    print(("Proceed: " if state["proceed"] else "Skip: ") + state["reason"])
    return 0


def _compare_args(parser: argparse.ArgumentParser) -> None:
    _data_argument(parser)
    _model_argument(parser)
    parser.add_argument("--champion", choices=("auto", "registry", "base", "none"),
                        default=os.environ.get("MLOPS_CHAMPION", "auto"),
                        help="where the champion comes from (default $MLOPS_CHAMPION or auto: registry, "
                             "then the base branch, then none)")
    parser.add_argument("--base-ref", help="base branch or commit for the champion (default $MLOPS_BASE_REF, "
                                           "$GITHUB_BASE_REF, main)")


@command("compare", "compare the model with the champion on the same held-out rows; fail when a gate fails",
         _compare_args)
def _compare(config: Config, args: argparse.Namespace) -> int:
    from mlops.compare import run  # pylint: disable=import-outside-toplevel  # keep `--help` fast

    run(config, model=args.model, data=args.data, champion_mode=args.champion, base_ref=args.base_ref)
    return 0


def _datagen_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=10_000, help="rows to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", default="2024-01-01", help="first application date")
    parser.add_argument("--days", type=int, default=181)
    parser.add_argument("--drift", action="store_true", help="shift the known drifted columns")
    parser.add_argument("--out", required=True, help="output .csv or .parquet file")


@command("datagen", "generate example loan data of any size (for benchmarks and demos)", _datagen_args)
def _datagen(config: Config | None, args: argparse.Namespace) -> int:
    del config  # datagen does not need the config; it is the same signature as every stage
    from mlops.datagen import generate  # pylint: disable=import-outside-toplevel  # keep `--help` fast
    from mlops.io import atomic_path  # pylint: disable=import-outside-toplevel  # same

    frame = generate(args.rows, args.seed, start=args.start, days=args.days, drift=args.drift)
    with atomic_path(args.out) as temp:
        if args.out.endswith(".parquet"):
            frame.to_parquet(temp, index=False)
        else:
            frame.to_csv(temp, index=False)
    print(f"Wrote {len(frame)} rows to {args.out}")
    return 0


def _serve_args(parser: argparse.ArgumentParser) -> None:
    _model_argument(parser)
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080)")


@command("serve", "serve the model over HTTP on 127.0.0.1 (GET /ping, POST /invocations)", _serve_args)
def _serve(config: Config, args: argparse.Namespace) -> int:
    from mlops.serve import serve  # pylint: disable=import-outside-toplevel  # keep `--help` fast

    serve(config, args.model, args.port)
    return 0


def _deploy_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="local", help="environment from deploy.environments (default local)")
    parser.add_argument("--version", help="registered version (default: models/LATEST, or what `requires` serves)")


@command("deploy", "package, register and deploy a version to an environment, then smoke-test it", _deploy_args)
def _deploy(config: Config, args: argparse.Namespace) -> int:
    from mlops.deploy import deploy, publish  # pylint: disable=import-outside-toplevel  # keep `--help` fast

    record = deploy(config, args.env, args.version)
    publish(record, f"Deployed to {args.env}")
    tested = "endpoint tested" if record["smoke"]["endpoint_tested"] else "local serve tested, not a real endpoint"
    print(f"Deployed {record['version']} to {args.env} ({record['stack_action']}; {tested}); "
          f"previous: {record['previous'] or 'none'}")
    return 0


def _env_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="prod", help="environment from deploy.environments (default prod)")


@command("rollback", "redeploy the version an environment served before the current one", _env_argument)
def _rollback(config: Config, args: argparse.Namespace) -> int:
    from mlops.deploy import publish, rollback  # pylint: disable=import-outside-toplevel  # keep `--help` fast

    record = rollback(config, args.env)
    publish(record, f"Rolled back {args.env}")
    print(f"Rolled {args.env} back to {record['version']} (from {record['rollback_of']})")
    return 0


@command("deploy-check", "check an environment serves the version its registry pointer names", _env_argument)
def _deploy_check(config: Config, args: argparse.Namespace) -> int:
    from mlops.deploy import check, publish  # pylint: disable=import-outside-toplevel  # keep `--help` fast

    record = check(config, args.env)
    publish(record, f"Post-deploy check of {args.env}")
    print(f"{args.env} serves {record['version']} on {record['endpoint']} (stack {record['status']})")
    return 0


def _bootstrap_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repository", help="owner/name allowed to deploy (default: the origin remote)")


@command("bootstrap", "create or update the foundation stack (bucket, OIDC deploy roles) in AWS", _bootstrap_args)
def _bootstrap(config: Config, args: argparse.Namespace) -> int:
    from mlops.deploy import bootstrap  # pylint: disable=import-outside-toplevel  # keep `--help` fast

    result = bootstrap(config, args.repository)
    out = result["outputs"]
    print(f"Foundation stack {result['stack']} {result['action']}. Next steps (README 'Deploying'):\n"
          f"  1. in {config.path}: registry.uri: {out.get('RegistryUri')}\n"
          f"  2. repository variables: AWS_ROLE_ARN_STAGING={out.get('StagingDeployRoleArn')}\n"
          f"                           AWS_ROLE_ARN_PROD={out.get('ProdDeployRoleArn')}\n"
          f"                           AWS_ROLE_ARN_READ={out.get('ReadOnlyRoleArn')}\n"
          "  3. environments `staging` and `production` (add required reviewers to production)")
    return 0


@command("doctor", "check the local setup, and AWS/GitHub setup when credentials are present")
def _doctor(config: Config | None, args: argparse.Namespace) -> int:
    del config  # doctor loads the config itself, so a broken config is one failed check, not a crash
    from mlops.doctor import format_checks, run_checks  # pylint: disable=import-outside-toplevel  # keep `--help` fast

    checks = run_checks(args.config)
    print(format_checks(checks))
    failed = [c.name for c in checks if c.status == "fail"]
    if failed:
        raise MlopsError(f"{len(failed)} check(s) failed: {', '.join(failed)}; fix them as shown above")
    print("All checks passed" + (" (some skipped: see above)" if any(c.status == "skip" for c in checks) else ""))
    return 0


NO_CONFIG = {"datagen", "doctor"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered stage."""
    parser = argparse.ArgumentParser(prog="python -m mlops", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default: $MLOPS_CONFIG or mlops.yaml)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="STAGE")
    for name, (help_text, _, arguments) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if arguments:
            arguments(sub)
        if name == "schema":
            sub.add_argument("--force", action="store_true", help="overwrite an existing schema file")
    return parser


def report_error(message: str) -> None:
    """Print an expected failure; in GitHub Actions also annotate it and add it to the summary."""
    print(f"Error: {message}", file=sys.stderr)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        first = message.splitlines()[0]
        escaped = first.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        print(f"::error title=mlops::{escaped}", file=sys.stderr)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(f"\n**Error:**\n\n```\n{message}\n```\n")


def main(argv: list[str] | None = None) -> int:
    """Run one stage; return the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    try:
        config = None if args.command in NO_CONFIG else load_config(args.config and Path(args.config))
        return COMMANDS[args.command][1](config, args)
    except MlopsError as error:
        report_error(str(error))
        return error.exit_code
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130
