"""Folder-backed cache for the actions/cache stand-in: `cache.py restore|save`.

In host mode, paths outside the workspace (e.g. ~/.cache/uv) are the host's own, shared by every
run and already warm: they are neither saved nor restored (copying a GB-sized uv cache per run
would be slow and could overwrite files in use), and count as a miss.
"""

import hashlib
import os
import shutil
import sys
from pathlib import Path


def main(mode: str) -> None:
    """Restore the key's folders into place, or save them under the key (first save wins)."""
    root = Path(os.environ.get("STANDIN_CACHE_DIR", "/tmp/standin-cache"))
    key = hashlib.sha256(os.environ["CACHE_KEY"].encode()).hexdigest()[:16]
    paths = [Path(os.path.expanduser(p.strip())) for p in os.environ["CACHE_PATHS"].splitlines() if p.strip()]
    workspace = Path(os.environ.get("GITHUB_WORKSPACE") or os.getcwd()).resolve()
    hit = False
    for index, path in enumerate(paths):
        if not path.resolve().is_relative_to(workspace):
            print(f"cache stand-in: {path} is outside the workspace (host-global, already warm): skipped")
            continue
        stored = root / key / str(index)
        if mode == "restore" and stored.exists():
            shutil.copytree(stored, path, dirs_exist_ok=True)
            hit = True
        elif mode == "save" and path.exists() and not stored.exists():
            shutil.copytree(path, stored)
    if mode == "restore":
        with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
            out.write(f"cache-hit={'true' if hit else 'false'}\n")


if __name__ == "__main__":
    main(sys.argv[1])
