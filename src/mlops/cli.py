"""The one command line: ``python -m mlops <stage>``; each Makefile target calls one stage.

The sub-commands and their options come from the stage table (:data:`mlops.runner.STAGES`).
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

from mlops import github
from mlops.config import load_config
from mlops.context import Context
from mlops.errors import MlopsError
from mlops.runner import CONTEXT_OPTIONS, STAGES, run

log = logging.getLogger("mlops")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every stage of the table."""
    parser = argparse.ArgumentParser(prog="python -m mlops", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default: $MLOPS_CONFIG or mlops.yaml)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="STAGE")
    for stage in STAGES.values():
        sub = subparsers.add_parser(stage.name, help=stage.help, description=stage.help)
        for option in stage.options:
            default = os.environ.get(option.env, option.default) if option.env else option.default
            if option.switch:
                sub.add_argument(option.flag, action="store_true", help=option.help)
            else:
                sub.add_argument(option.flag, help=option.help, type=option.type, default=default,
                                 choices=option.choices)
    return parser


def report_error(message: str) -> None:
    """Print an expected failure; in GitHub Actions also annotate it and add it to the summary."""
    print(f"Error: {message}", file=sys.stderr)
    if github.in_actions():
        print(github.annotate_error(message), file=sys.stderr)
        github.append_summary(f"\n**Error:**\n\n```\n{message}\n```\n")


def main(argv: list[str] | None = None) -> int:
    """Run one stage; return the process exit code."""
    args = vars(build_parser().parse_args(argv))
    logging.basicConfig(
        level=logging.WARNING if args.pop("quiet") else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    name, config_path = args.pop("command"), args.pop("config")
    try:
        config = load_config(config_path and Path(config_path)) if STAGES[name].config else None
        ctx = Context(config, config_path=config_path, **{k: args.pop(k) for k in CONTEXT_OPTIONS if k in args})
        result = run(name, ctx, args)
    except MlopsError as error:
        report_error(str(error))
        return error.exit_code
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130
    if result.error:
        report_error(result.error)
    return result.exit_code
