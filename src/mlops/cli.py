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
import re
import sys
from pathlib import Path

from mlops import github
from mlops.config import load_config
from mlops.context import Context
from mlops.errors import ConfigError, MlopsError
from mlops.runner import CONTEXT_OPTIONS, STAGES, Option, run

log = logging.getLogger("mlops")


class _Version(argparse.Action):
    """``--version``: the suite's version line, computed only when asked for (it runs git)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from mlops.lineage import suite_line  # pylint: disable=import-outside-toplevel  # only --version

        print(suite_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every stage of the table."""
    parser = argparse.ArgumentParser(prog="python -m mlops", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default: $MLOPS_CONFIG or mlops.yaml)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    parser.add_argument("--version", action=_Version, help="print the suite's version, commit and folder")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="STAGE")
    for stage in STAGES.values():
        sub = subparsers.add_parser(stage.name, help=stage.help, description=stage.help)
        for option in stage.options:
            # No argparse default: options() tells a flag given from one to read from the environment.
            if option.switch:
                sub.add_argument(option.flag, action="store_const", const=True, default=None, help=option.help)
            else:
                sub.add_argument(option.flag, help=option.help, default=None, choices=option.choices)
    return parser


def _from_environment(option: Option) -> tuple[str | None, str]:
    """The option's value from the environment, and where it came from (for error messages)."""
    if option.make and os.environ.get("MLOPS_FROM_MAKE") and os.environ.get(option.make, "") != "":
        return os.environ[option.make], f"{option.make}= (make variable)"
    if option.env and os.environ.get(option.env, "") != "":
        return os.environ[option.env], f"${option.env}"
    return None, ""


def options(stage_name: str, given: dict) -> dict:
    """Each option's value: the flag, else its make variable or environment variable, else the default.

    Every value that came from outside is checked: a number must parse, a switch must be a boolean
    word, a patterned value (a version, a path, an environment name) must match in full.
    """
    values = {}
    for option in STAGES[stage_name].options:
        raw, source = given.get(option.dest), option.flag
        if raw is None:
            raw, source = _from_environment(option)
        if raw is None:
            values[option.dest] = option.default if not option.switch else False
            continue
        values[option.dest] = _checked(option, raw, source)
    return values


def _checked(option: Option, raw, source: str):
    if option.switch:
        if raw is True:
            return True
        word = str(raw).strip().lower()
        if word not in ("1", "true", "yes", "0", "false", "no"):
            raise ConfigError(f"{source} must be true or false (1/0), got {raw!r}")
        return word in ("1", "true", "yes")
    text = str(raw)
    if option.pattern and not re.fullmatch(option.pattern, text):
        raise ConfigError(f"{source} {text[:80]!r} is not a valid {option.dest.replace('_', ' ')}: it must match "
                          f"{option.pattern}")
    if option.choices and text not in option.choices:
        raise ConfigError(f"{source} {text[:80]!r} must be one of {', '.join(option.choices)}")
    if option.type is not None:
        try:
            return option.type(text)
        except ValueError:
            kind = "a number" if option.type is float else "a whole number"
            raise ConfigError(f"{source} must be {kind}, got {text[:80]!r}") from None
    return text


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
        values = options(name, args)
        config = load_config(config_path and Path(config_path)) if STAGES[name].config else None
        ctx = Context(config, config_path=config_path, **{k: values.pop(k) for k in CONTEXT_OPTIONS if k in values})
        result = run(name, ctx, values)
    except MlopsError as error:
        report_error(str(error))
        return error.exit_code
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130
    if result.error:
        report_error(result.error)
    return result.exit_code
