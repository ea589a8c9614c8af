"""The shape of the code, read from the code: import rules, one name per stage end to end, module sizes."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from mlops.cli import build_parser
from mlops.runner import STAGES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "mlops"
# Actions that run no stage: installing, and posting a comment without running repository code.
NON_STAGE_ACTIONS = {"setup", "comment"}
MAX_LINES = 300
# A module over MAX_LINES says why in its docstring with this phrase.
SIZE_REASON = "Over 300 lines because"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """mlops modules a file imports, at the top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names if alias.name.startswith("mlops"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mlops"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                out.add(candidate if candidate in MODULES else node.module)
    return {name for name in out if name in MODULES and name != "mlops"}


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _kind(name: str) -> str:
    if name.startswith("mlops.stages."):
        return "stage"
    if name in ("mlops.cli", "mlops.runner", "mlops.__main__"):
        return "top"
    return "helper"


def test_there_are_no_import_cycles():
    """The module graph has no cycle (a depth-first search finds no back edge)."""
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                pytest.fail(f"import cycle: {' -> '.join([*trail, node, nxt])}")
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [])


def test_stages_never_import_stages_and_helpers_never_import_upward():
    """A stage imports helpers only; a helper imports neither a stage nor the runner or CLI."""
    broken = []
    for name, imported in GRAPH.items():
        for other in imported:
            if _kind(name) == "stage" and _kind(other) == "stage":
                broken.append(f"stage {name} imports stage {other}")
            if _kind(name) == "helper" and _kind(other) != "helper":
                broken.append(f"helper {name} imports {other}")
    assert not broken, "\n".join(sorted(broken))


def test_the_serving_code_is_self_contained():
    """code/inference.py runs in the container without the mlops package: it imports none of it."""
    assert not GRAPH["mlops.serving.inference"]


# How an action runs a stage: the Makefile of the action's own repository (at the ref the caller used),
# in the caller's working directory.
SUITE_MAKE = 'make -f "$GITHUB_ACTION_PATH/../../Makefile"'


def _make_targets() -> dict[str, str]:
    targets, current = {}, None
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([a-z][a-z-]*):", line)
        if match:
            current = match.group(1)
            targets[current] = ""
        elif current and line.startswith("\t"):
            targets[current] += line + "\n"
    return targets


@pytest.mark.parametrize("name", sorted(STAGES))
def test_each_stage_has_one_name_from_make_target_to_module(name):
    """`make <stage>` runs `python -m mlops <stage>`, which runs mlops.stages.<stage>.run, and its action runs it."""
    stage = STAGES[name]
    recipe = _make_targets().get(name, "")
    assert f"$(MLOPS) {name}" in recipe, f"make {name} must run $(MLOPS) {name}; it runs: {recipe!r}"
    # pylint: disable-next=protected-access  # argparse has no public accessor for sub-commands
    subcommands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert name in subcommands
    if stage.steps:  # a composition lives in the table only
        assert stage.module not in MODULES and all(step in STAGES for step, _ in stage.steps)
        return
    path = MODULES[stage.module]
    functions = {n.name for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, ast.FunctionDef)}
    assert "run" in functions, f"{path} has no run(ctx, **options)"
    if stage.action:
        action = ROOT / "actions" / stage.action / "action.yml"
        assert action.is_file(), f"{name} runs in CI through actions/{stage.action}, which does not exist"
        text = action.read_text(encoding="utf-8")
        in_composition = any(step == name for step, _ in STAGES.get(stage.action, stage).steps)
        assert f"{SUITE_MAKE} {name}" in text or in_composition, \
            f"actions/{stage.action} neither runs {SUITE_MAKE} {name} nor a composition that has it as a step"


def test_every_action_runs_a_stage_of_its_name_or_is_plumbing():
    """Each folder under actions/ is a stage's action (same name) or setup/comment, with a README."""
    for folder in sorted(p for p in (ROOT / "actions").iterdir() if p.is_dir()):
        assert (folder / "README.md").is_file(), f"{folder.name} has no README.md"
        if folder.name in NON_STAGE_ACTIONS:
            continue
        assert folder.name in STAGES and STAGES[folder.name].action == folder.name, \
            f"actions/{folder.name} does not belong to a stage of the same name (src/mlops/runner.py)"
        runs = yaml.safe_load((folder / "action.yml").read_text(encoding="utf-8"))["runs"]["steps"]
        assert any(f"{SUITE_MAKE} {folder.name}" in step.get("run", "") for step in runs)
        # Every make call is the suite's own Makefile, so the action works from any repository by tag.
        for step in runs:
            for call in re.findall(r"(?m)(?:^\s*|[;&|]\s*|\"\s+)(make\b[^\n]*)", step.get("run", "")):
                assert call.startswith(SUITE_MAKE), f"actions/{folder.name} runs `{call}`, not {SUITE_MAKE}"


def test_every_make_target_that_runs_the_cli_names_a_stage():
    """No Makefile target runs a CLI sub-command of another name."""
    for target, recipe in _make_targets().items():
        for called in re.findall(r"\$\(MLOPS\) ([a-z][a-z-]*)", recipe):
            assert called == target and called in STAGES, f"make {target} runs mlops {called}"


def test_modules_stay_small_or_say_why():
    """No module is over 300 lines unless its docstring gives the reason."""
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_LINES:
            docstring = ast.get_docstring(ast.parse(text)) or ""
            assert SIZE_REASON in " ".join(docstring.split()), f"{name} has {lines} lines and no reason"


def test_no_helper_name_is_defined_in_two_modules():
    """Outside each stage's run(), a top-level function or class is defined once in the package."""
    homes = defaultdict(list)
    for name, path in MODULES.items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                homes[node.name].append(name)
    twice = {fn: where for fn, where in homes.items() if len(where) > 1 and fn not in ("run", "main")}
    assert not twice, twice
