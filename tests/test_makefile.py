"""The real Makefile with hostile values: nothing they carry runs; each is refused with the variable's name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# The values a workflow_dispatch input could carry (deploy.yml version, drift.yml current/threshold).
PAYLOADS = ("$(shell touch {marker})", "`touch {marker}`", "$$(touch {marker})", 'x"; touch {marker}; echo "',
            "x' $(touch {marker}) '")
# Make variables the stages read, each with the target that reads it.
VARIABLES = {"VERSION": "deploy", "CURRENT": "drift", "THRESHOLD": "drift", "ENV": "deploy-check",
             "EXPECT": "deploy-check", "FORCE": "retrain-gate", "REPOSITORY": "bootstrap", "OUT": "datagen"}


def _make(target: str, project, tmp_path: Path, **variables: str) -> subprocess.CompletedProcess:
    """``make <target>`` as a workflow step runs it: values in the environment, never on the command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "GITHUB_"))}
    env.update(VENV=str(Path(sys.executable).parent.parent), MLOPS_CONFIG=str(project.config_path),
               MLOPS_MODELS_DIR=str(tmp_path / "models"), MLOPS_REPORTS_DIR=str(tmp_path / "reports"), **variables)
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), target], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.parametrize("variable", ["VERSION", "CURRENT"])
@pytest.mark.parametrize("payload", PAYLOADS)
def test_dispatch_payloads_run_nothing(project, tmp_path, variable, payload):
    """Every payload in VERSION or CURRENT is refused with an error naming the variable, and runs no command."""
    marker = tmp_path / "pwned"
    result = _make(VARIABLES[variable], project, tmp_path, **{variable: payload.format(marker=marker)})
    assert not marker.exists(), f"the payload ran: {result.stdout}{result.stderr}"
    assert result.returncode != 0
    assert f"Error: {variable}= (make variable)" in result.stderr, result.stderr


@pytest.mark.parametrize("variable", sorted(set(VARIABLES) - {"VERSION", "CURRENT"}))
def test_every_stage_variable_is_checked_before_use(project, tmp_path, variable):
    """The other variables the Makefile's stages read refuse a payload the same way."""
    marker = tmp_path / "pwned"
    result = _make(VARIABLES[variable], project, tmp_path, **{variable: PAYLOADS[0].format(marker=marker)})
    assert not marker.exists()
    assert result.returncode != 0 and f"Error: {variable}= (make variable)" in result.stderr, result.stderr


def test_a_valid_value_still_reaches_the_stage(project, tmp_path):
    """A well-formed value passes its check and the stage uses it (here: an unknown environment, named)."""
    result = _make("deploy-check", project, tmp_path, ENV="qa")
    assert result.returncode != 0 and "unknown environment 'qa'" in result.stderr, result.stderr


def test_recipes_expand_no_stage_variable():
    """No recipe line mentions a stage variable as $(NAME): make never expands those values."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipes = "\n".join(line for line in text.splitlines() if line.startswith("\t"))
    names = {*VARIABLES, "DATA", "MODEL", "PORT", "EXIT_ZERO", "ROWS", "SEED", "DRIFT"}
    found = {name for name in names if re.search(rf"\$[({{]{name}[)}}]", text)}
    assert not found, f"the Makefile expands {found}"
    assert "$(MLOPS)" in recipes


def test_workflows_and_actions_pass_values_through_the_environment():
    """No step runs `make <target> NAME=value`: command-line variables are expanded by make itself."""
    files = [*(ROOT / ".github" / "workflows").glob("*.yml"), *(ROOT / "actions").glob("*/action.yml")]
    offending = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for script in re.findall(r"run: \|?\n?((?:.*\n?)*?)(?=\n\s*-|\Z)", text) or [text]:
            offending += [f"{path.name}: {line.strip()}" for line in script.splitlines()
                          if re.search(r"\bmake\b.*\s[A-Z_]+=", line)]
    assert not offending, offending
    deploy = yaml.safe_load((ROOT / "actions" / "deploy" / "action.yml").read_text())["runs"]["steps"][0]
    assert deploy["env"]["VERSION"] and deploy["run"] == 'make -f "$GITHUB_ACTION_PATH/../../Makefile" deploy'


def _make_from(folder: Path, target: str, **env: str) -> subprocess.CompletedProcess:
    """``make -f <suite>/Makefile <target>`` from another folder, as the actions run it by tag."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "GITHUB_"))}
    environ.update(VENV=str(Path(sys.executable).parent.parent), **env)
    return subprocess.run(["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), target], cwd=folder,
                          env=environ, capture_output=True, text=True, timeout=120, check=False)


def test_the_makefile_runs_the_suite_from_any_folder(tmp_path):
    """From a folder that is not the suite, `make -f` finds the suite's code and names it and its ref."""
    result = _make_from(tmp_path, "version", MLOPS_SUITE_REF="acme/mlops@v1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("mlops 0.1.0 (") and f"acme/mlops@v1) from {ROOT}" in result.stdout


def test_a_folder_without_mlops_yaml_is_named_in_the_error(tmp_path):
    """No mlops.yaml where the stage runs: Error: names the file and the working directory, exit non-zero."""
    result = _make_from(tmp_path, "validate")
    assert result.returncode != 0
    assert f"Error: config file mlops.yaml not found (working directory: {tmp_path})" in result.stderr
