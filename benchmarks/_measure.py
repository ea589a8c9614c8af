"""Shared helpers for the benchmarks: run a command, report wall time and peak memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def run(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall seconds, peak RSS in MiB of the child, stdout). Raises on failure."""
    started = time.perf_counter()
    with subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0,):
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{err[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, out


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def bench_table(rows: list[dict]) -> str:
    """The one benchmark table: stage, rows, seconds, peak memory, note (goal or comparison)."""
    return table(
        ["stage", "rows", "wall s", "peak MiB", "note"],
        [[r["stage"], f"{r['rows']:,}" if r.get("rows") else "", f"{r['seconds']:.2f}",
          f"{r['peak_mib']:.0f}" if r.get("peak_mib") else "", r.get("note", "")] for r in rows],
    )
