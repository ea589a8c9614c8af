"""Wall time of the whole PR workflow (.github/workflows/pr.yml) under act on the bundled data.

Makes a throw-away copy of this repository (as the tests' template repo), opens a docs-only
"pull request" branch, and runs pr.yml with act in host mode twice in the same world: a cold run
(the base-branch champion is trained in a git worktree) and a warm one (the champion comes from
the actions/cache stand-in, keyed on the base SHA). Lint and tests are skipped
(MLOPS_PR_SKIP_TESTS=true), as in the workflow tests. Prints per run: total wall time, the
dependency install step (`make install`), total minus install (the goal: under 60 s), and the
slowest steps.

    .venv/bin/python benchmarks/bench_pr_workflow.py
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import bench_table  # pylint: disable=wrong-import-position  # after the sys.path lines
from act_support import ActWorld, git, make_template_repo, run_workflow  # pylint: disable=wrong-import-position  # same

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}


def go_duration(text: str) -> float:
    """Seconds in a Go duration string such as 1m2.5s, 29.6s, 11.1ms."""
    return sum(float(n) * _UNITS[u] for n, u in re.findall(r"([\d.]+)(h|ms|µs|us|ns|m|s)", text))


def step_times(output: str) -> dict[str, float]:
    """Seconds per top-level 'Main' step, from act's '✅ Success - Main <step> [duration]' lines."""
    times = {}
    for match in re.finditer(r"^\[[^\]]+\] {3}(?:✅  Success|❌  Failure) - Main (.+?) \[([^\]]+)\]$", output, re.M):
        times[match.group(1)] = go_duration(match.group(2))
    return times


def measure() -> list[dict]:
    """Benchmark rows for ``make bench``: pr.yml cold and warm, total minus install."""
    with tempfile.TemporaryDirectory(prefix="bench-pr-") as temp:
        repo = make_template_repo(ROOT, Path(temp) / "repo")
        base = git(repo, "rev-parse", "HEAD").strip()
        git(repo, "checkout", "-q", "-b", "pr")
        (repo / "NOTES.md").write_text("A docs-only change.\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "docs")
        payload = {"number": 1, "pull_request": {"number": 1, "base": {"sha": base, "ref": "main"},
                                                 "head": {"sha": git(repo, "rev-parse", "HEAD").strip()}}}
        world = ActWorld(Path(temp) / "world")
        rows = []
        for label in ("cold (champion trained)", "warm (champion cached)"):
            result = run_workflow(repo, ".github/workflows/pr.yml", event="pull_request", payload=payload,
                                  world=world, variables={"MLOPS_PR_SKIP_TESTS": "true"})
            if result.returncode != 0:
                raise SystemExit(f"pr.yml failed:\n{result.output}")
            steps = step_times(result.output)
            install = steps.get("make install", 0.0)
            slowest = sorted(((s, n) for n, s in steps.items() if n != "./actions/setup"), reverse=True)[:4]
            rows.append({"stage": f"PR workflow under act, {label}, excluding install", "rows": None,
                         "seconds": result.seconds - install, "peak_mib": None,
                         "note": f"goal < 60 s; total {result.seconds:.1f} s, install {install:.1f} s; slowest: "
                                 + ", ".join(f"{n} {s:.1f}s" for s, n in slowest)})
    return rows


def main() -> None:
    """Run pr.yml cold and warm; print the figures."""
    print(bench_table(measure()))


if __name__ == "__main__":
    main()
