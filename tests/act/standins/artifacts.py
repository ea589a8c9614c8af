"""Copy-to-folder artifact store for the upload/download-artifact stand-ins."""

import glob
import os
import shutil
import sys
from pathlib import Path

store = Path(os.environ.get("STANDIN_ARTIFACTS_DIR", "/tmp/standin-artifacts"))
name = os.environ.get("NAME") or "artifact"
if sys.argv[1] == "upload":
    target = store / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    found = []
    for pattern in (p.strip() for p in os.environ["PATHS"].splitlines() if p.strip()):
        found.extend(glob.glob(os.path.expanduser(pattern), recursive=True))
    if not found:
        level = os.environ.get("IF_NO_FILES", "warn")
        print(f"::{'error' if level == 'error' else 'warning'}::no files found for artifact {name}")
        sys.exit(1 if level == "error" else 0)
    for item in found:
        path = Path(item)
        # Like the real action: a single folder's contents go to the artifact root.
        if path.is_dir():
            shutil.copytree(path, target if len(found) == 1 else target / path.name, dirs_exist_ok=True)
        else:
            shutil.copy2(path, target / path.name)
    print(f"uploaded {len(found)} path(s) to artifact {name}")
else:
    source = store / name
    if not source.is_dir():
        sys.exit(f"::error::artifact {name} not found")
    dest = Path(os.environ.get("DEST") or ".")
    shutil.copytree(source, dest, dirs_exist_ok=True)
    with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
        out.write(f"download-path={dest.resolve()}\n")
    print(f"downloaded artifact {name} to {dest}")
