"""Benchmark `make install`: cold (fresh machine), no-op (nothing changed), and warm rebuild.

Usage: python benchmarks/bench_install.py

Copies the repository to a temporary folder and runs `make install` there:
- cold: no uv on PATH (UV= makes the Makefile bootstrap uv with pip), empty uv and pip caches,
  so every package is downloaded, as on a fresh machine or CI runner without a cache;
- no-op: `make install` again with nothing changed (the install stamp is up to date);
- warm: the venv deleted, uv's cache kept (a CI runner with a restored cache).
Goals: cold under 30 s, no-op under 5 s.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from _measure import ROOT, bench_table, run


def measure() -> list[dict]:
    """Benchmark rows for ``make bench``: cold, no-op and warm installs."""
    with tempfile.TemporaryDirectory(prefix="bench-install-") as tmp:
        repo = Path(tmp) / "repo"
        files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        for rel in filter(None, files.decode().split("\0")):
            target = repo / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((ROOT / rel).read_bytes())
        env = {"UV_CACHE_DIR": f"{tmp}/uv-cache", "PIP_NO_CACHE_DIR": "1", "npm_config_cache": f"{tmp}/npm-cache"}
        cold, _, _ = run(["make", "install", "UV="], cwd=repo, env=env)
        noop, _, _ = run(["make", "install", "UV="], cwd=repo, env=env)
        subprocess.run(["rm", "-rf", str(repo / ".venv")], check=True)
        warm, _, _ = run(["make", "install", "UV="], cwd=repo, env=env)
    return [
        {"stage": "make install: cold (empty caches, uv bootstrapped by pip)", "rows": None, "seconds": cold,
         "peak_mib": None, "note": "goal < 30 s"},
        {"stage": "make install: no-op (nothing changed)", "rows": None, "seconds": noop, "peak_mib": None,
         "note": "goal < 5 s"},
        {"stage": "make install: warm (venv deleted, uv cache kept)", "rows": None, "seconds": warm,
         "peak_mib": None, "note": ""},
    ]


def main() -> None:
    """Run the three installs and print the table."""
    print(bench_table(measure()))


if __name__ == "__main__":
    main()
