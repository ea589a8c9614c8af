"""Find a Python 3.12 and uv; build, once per requirement set, the venv the toolkit tests serve from.

Input: the PyPI packages to install (the image's), the overrides the image applies, a package's
``code/requirements.txt`` and a cache folder. Output: a venv in ``<cache>/<key>``, the key a hash
of all of those and of the interpreter (version and path): a changed pin builds a new venv, the
same set is reused on this machine (CI starts clean). A file lock serialises builds, so
pytest-xdist workers wait for one build instead of racing; a new build removes all but the two
venvs used last.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MINOR = "3.12"  # the sagemaker-scikit-learn:1.9-0-cpu-py3 image's Python
KEEP = 2  # venvs kept in the cache folder: the one just built and the last one used before it
_PROBE = ("import os, sys, sysconfig; print(sys.version.split()[0], "
          "os.path.isfile(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))")
# Variables of this process that must not reach the toolkit's interpreter or uv.
_PRIVATE = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "UV_PYTHON", "UV_PROJECT_ENVIRONMENT")


def clean_environment() -> dict:
    """This process's environment without its Python paths and any container or mlops variables."""
    return {k: v for k, v in os.environ.items()
            if k not in _PRIVATE and not k.startswith(("SAGEMAKER_", "SM_", "MLOPS_"))}


def _name(requirement: str) -> str:
    """The normalised distribution name of ``name==version``."""
    return re.sub(r"[-_.]+", "-", requirement.split("==")[0].strip()).lower()


def pins_of(requirements: str) -> dict:
    """``{normalised name: version}`` of a requirements.txt of exact pins (comments skipped)."""
    lines = [line.split("#")[0].strip() for line in requirements.splitlines()]
    return {_name(line): line.split("==", 1)[1].strip() for line in lines if line}


@dataclass(frozen=True)
class ToolkitVenv:
    """A built venv: its folder, how it was built, and whether this session reused it."""

    folder: Path
    record: dict
    reused: bool

    @property
    def python(self) -> Path:
        """The venv's interpreter."""
        return self.folder / "bin" / "python"

    def summary(self) -> str:
        """One line for the terminal: built (and how long it took) or reused."""
        how = "reused" if self.reused else "built"
        return (f"toolkit venv ({self.record['python']}, {self.record['packages']} distributions): {how}; "
                f"the build took {self.record['seconds']} s; {self.folder}")


@contextmanager
def _locked(path: Path):
    with open(path, "w", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Toolkit:
    """A Python 3.12 interpreter and uv."""

    python: Path
    version: str
    uv: Path

    def venv(self, packages, overrides, requirements: str, cache: Path) -> ToolkitVenv:
        """The venv with ``packages`` (minus what ``requirements`` pins), then ``requirements``: built or reused."""
        pins = pins_of(requirements)
        key = hashlib.sha256(json.dumps({"python": [self.version, str(self.python)], "packages": list(packages),
                                         "overrides": list(overrides), "pins": pins}, sort_keys=True).encode())
        folder = Path(cache) / key.hexdigest()[:16]
        with _locked(Path(cache) / f"{folder.name}.lock"):
            done = folder / "built.json"
            if done.is_file() and (folder / "bin" / "python").exists():  # exists(): its interpreter is still there
                done.touch()  # last used: prune keeps the most recently used
                return ToolkitVenv(folder, json.loads(done.read_text(encoding="utf-8")), reused=True)
            shutil.rmtree(folder, ignore_errors=True)
            started = time.perf_counter()
            count = self._build(folder, packages, overrides, pins)
            record = {"python": self.version, "seconds": round(time.perf_counter() - started, 1), "packages": count}
            done.write_text(json.dumps(record), encoding="utf-8")
        prune(Path(cache), keep=KEEP)
        return ToolkitVenv(folder, record, reused=False)

    def _build(self, folder: Path, packages, overrides, pins: dict) -> int:
        """The container's two installs: the image's packages (with its overrides), then code/requirements.txt."""
        self._uv("venv", "--quiet", "--python", str(self.python), str(folder))
        files = {"image.txt": [p for p in packages if _name(p) not in pins],
                 "overrides.txt": list(overrides),
                 "requirements.txt": [f"{name}=={version}" for name, version in pins.items()]}
        for name, lines in files.items():
            (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        install = ("pip", "install", "--quiet", "--compile-bytecode", "--python", str(folder / "bin" / "python"))
        # The image's packages resolve under the package's pins: pip in the container would replace them anyway.
        self._uv(*install, "-r", str(folder / "image.txt"), "--constraint", str(folder / "requirements.txt"),
                 "--override", str(folder / "overrides.txt"))
        self._uv(*install, "-r", str(folder / "requirements.txt"))  # what the container installs at start
        listed = self._uv("pip", "list", "--format", "json", "--python", str(folder / "bin" / "python"))
        return len(json.loads(listed))

    def _uv(self, *args: str) -> str:
        done = subprocess.run([str(self.uv), "--no-config", *args], capture_output=True, text=True, check=False,
                              env=clean_environment(), cwd=Path(self.uv).parent, timeout=900)
        if done.returncode:
            raise AssertionError(f"uv {' '.join(args[:2])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout


def prune(cache: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently used venvs (each is ~500 MB), skipping any another build holds."""
    built = sorted(cache.glob("*/built.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for marker in built[keep:]:
        with open(cache / f"{marker.parent.name}.lock", "w", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(marker.parent, ignore_errors=True)


def _candidates():
    """Places a Python 3.12 may be: MLOPS_TOOLKIT_PYTHON, pyenv, GitHub's tool cache, PATH."""
    if os.environ.get("MLOPS_TOOLKIT_PYTHON"):
        yield os.environ["MLOPS_TOOLKIT_PYTHON"]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for pattern in (str(pyenv / "versions" / f"{MINOR}*" / "bin" / f"python{MINOR}"),
                    f"/opt/hostedtoolcache/Python/{MINOR}*/x64/bin/python{MINOR}"):
        yield from sorted(glob.glob(pattern), key=lambda p: [int(n) for n in re.findall(r"\d+", p)], reverse=True)
    for name in (f"python{MINOR}", "python3"):
        if shutil.which(name):
            yield shutil.which(name)


def find_toolkit() -> Toolkit | str:
    """A Python 3.12 (one with C headers first: sagemaker-containers compiles an extension) and uv, or why not."""
    uv = Path(sys.executable).with_name("uv")
    uv = uv if uv.is_file() else (Path(shutil.which("uv")) if shutil.which("uv") else None)
    if uv is None:
        return f"uv is not next to {sys.executable} or on PATH (make install provides it)"
    found = []
    for candidate in dict.fromkeys(_candidates()):
        try:
            probe = subprocess.run([candidate, "-c", _PROBE], capture_output=True, text=True, timeout=30,
                                   check=False, env=clean_environment())
        except OSError:
            continue
        version, _, headers = probe.stdout.strip().partition(" ")
        if probe.returncode == 0 and version.startswith(f"{MINOR}."):
            found.append((headers != "True", Toolkit(Path(candidate), version, uv)))
    if not found:
        return (f"no Python {MINOR} (the 1.9-0 image's) found in MLOPS_TOOLKIT_PYTHON, pyenv, the tool cache "
                f"or PATH; install one (e.g. `pyenv install {MINOR}`)")
    return min(found, key=lambda item: item[0])[1]
