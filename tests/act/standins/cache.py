"""Folder-backed cache for the actions/cache stand-in: `cache.py restore|save`."""

import hashlib
import os
import shutil
import sys
from pathlib import Path


def _copy_if_missing(source: str, target: str) -> None:
    if not os.path.lexists(target):
        shutil.copy2(source, target)


def main(mode: str) -> None:
    """Restore the key's folders into place, or save them under the key (first save wins)."""
    root = Path(os.environ.get("STANDIN_CACHE_DIR", "/tmp/standin-cache"))
    key = hashlib.sha256(os.environ["CACHE_KEY"].encode()).hexdigest()[:16]
    paths = [Path(os.path.expanduser(p.strip())) for p in os.environ["CACHE_PATHS"].splitlines() if p.strip()]
    hit = False
    for index, path in enumerate(paths):
        stored = root / key / str(index)
        if mode == "restore" and stored.exists():
            # Never write into an existing file: a restored ~/.cache/uv holds files that uv hardlinks
            # into every venv (and act's own binary), so rewriting them in place corrupts running
            # programs (segfaults, "Text file busy"). Only missing files are copied.
            shutil.copytree(stored, path, dirs_exist_ok=True, copy_function=_copy_if_missing)
            hit = True
        elif mode == "save" and path.exists() and not stored.exists():
            shutil.copytree(path, stored)
    if mode == "restore":
        with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
            out.write(f"cache-hit={'true' if hit else 'false'}\n")


if __name__ == "__main__":
    main(sys.argv[1])
