"""Folder-backed cache for the actions/cache stand-in: `cache.py restore|save`."""

import hashlib
import os
import shutil
import sys
from pathlib import Path

root = Path(os.environ.get("STANDIN_CACHE_DIR", "/tmp/standin-cache"))
key = hashlib.sha256(os.environ["CACHE_KEY"].encode()).hexdigest()[:16]
paths = [Path(os.path.expanduser(p.strip())) for p in os.environ["CACHE_PATHS"].splitlines() if p.strip()]
hit = False
for index, path in enumerate(paths):
    stored = root / key / str(index)
    if sys.argv[1] == "restore" and stored.exists():
        shutil.copytree(stored, path, dirs_exist_ok=True)
        hit = True
    elif sys.argv[1] == "save" and path.exists() and not stored.exists():
        shutil.copytree(path, stored)
if sys.argv[1] == "restore":
    with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
        out.write(f"cache-hit={'true' if hit else 'false'}\n")
