"""The act harness itself: stand-ins for pinned actions behave like the real ones offline."""

from __future__ import annotations

import pytest

from act_support import PINS, git, run_workflow

pytestmark = pytest.mark.workflow

WORKFLOW = """\
name: harness
on: [pull_request, workflow_dispatch]
permissions: {}
jobs:
  produce:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@fbc6f3992d24b796d5a048ff273f7fcc4a7b6c09 # v5.1.0
      - uses: actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97 # v7.0.0
        with: {python-version: "3.11"}
      - run: mkdir -p out && echo "${PR_NUMBER}" > out/number.txt && echo "## verdict pass" >> "$GITHUB_STEP_SUMMARY"
        shell: bash
        env:
          PR_NUMBER: ${{ github.event.pull_request.number }}
      - uses: actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f # v7.0.0
        with: {name: report, path: out}
  consume:
    needs: produce
    runs-on: ubuntu-latest
    steps:
      - uses: actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c # v8.0.1
        with: {name: report, path: got}
      - uses: iterative/setup-cml@f12ea7685438c1fc438d50f77519b3860cf5fa98 # v2.0.1
      - run: cml comment update --target="pr/$(cat got/number.txt)" --watermark-title=t --no-publish got/number.txt
        shell: bash
      - run: cml pr create --branch retrain/x --title t && cml pr create --branch retrain/x --title t
        shell: bash
"""


def test_pins_cover_every_stand_in():
    """Every stand-in folder is mapped from a full-SHA pin."""
    assert all(len(pin.split("@")[1]) == 40 for pin in PINS)


def test_artifacts_cml_and_summary_round_trip(template_repo, act_world):
    """An artifact uploaded by one job is downloaded by the next; cml calls are recorded with file contents."""
    workflow = template_repo / ".github" / "workflows" / "harness.yml"
    workflow.parent.mkdir(parents=True, exist_ok=True)
    workflow.write_text(WORKFLOW)
    git(template_repo, "add", "-A")
    git(template_repo, "commit", "-q", "-m", "harness")
    result = run_workflow(
        template_repo, ".github/workflows/harness.yml", event="pull_request",
        payload={"pull_request": {"number": 42}}, world=act_world,
    )
    assert result.returncode == 0, result.output[-3000:]
    assert result.jobs == {"produce": "succeeded", "consume": "succeeded"}
    assert (result.artifacts / "report" / "number.txt").read_text().strip() == "42"
    comment, first_pr, second_pr = result.cml_calls
    assert comment["argv"][:2] == ["comment", "update"] and "--target=pr/42" in comment["argv"]
    assert list(comment["files"].values()) == ["42\n"]
    assert first_pr["pr"]["existing"] is False and second_pr["pr"]["existing"] is True
    assert "## verdict pass" in result.summary
