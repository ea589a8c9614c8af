"""Find a Python 3.12 and uv; build, once per requirement set, the venv the toolkit tests serve from.

Input: the PyPI packages the image has, the overrides it applies, a package's ``code/`` folder and
a cache folder. Output: a venv in ``<cache>/<key>`` built as the container's environment comes to
be: uv installs the image's packages, then sagemaker_containers' own install step runs the image's
pip on a copy of ``code/`` (``pip install . -r requirements.txt``), replacing the libraries the
package pins. The key hashes all of that and the interpreter (version and path): a changed pin
builds a new venv, the same set is reused on this machine (CI starts clean). A file lock
serialises builds, so pytest-xdist workers wait for one build instead of racing; a new build
removes all but the two venvs used last.
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
RECIPE = 5  # bump when _build changes: the cache key includes it
KEEP = 2  # venvs kept in the cache folder: the one just built and the last one used before it
_PROBE = ("import os, sys, sysconfig; print(sys.version.split()[0], "
          "os.path.isfile(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))")
MODULE = "inference"  # SAGEMAKER_PROGRAM without .py
# sagemaker_containers' prepare() writes the setup.py the container generates, and install() runs the
# container's pip command; the alias stands for the image's _mapping.py patch (see toolkit_driver.py).
_CONTAINER_INSTALL = ("import collections, collections.abc, sys; collections.Mapping = collections.abc.Mapping; "
                      "from sagemaker_containers import _modules; "
                      f"_modules.prepare(sys.argv[1], {MODULE!r}); _modules.install(sys.argv[1], capture_error=True)")
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
        record = self.record
        return (f"toolkit venv ({record['python']}, {record['packages']} distributions): "
                f"{'reused' if self.reused else 'built'}; the build took {record['seconds']} s (image packages "
                f"{record['image_seconds']} s, the container's pip install {record['install_seconds']} s, "
                f"byte-compiling {record['compile_seconds']} s); "
                f"{self.folder}")


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

    def venv(self, packages, overrides, code_dir: Path, cache: Path) -> ToolkitVenv:
        """The venv with ``packages``, then what the container installs from ``code_dir``: built or reused."""
        pins = pins_of((Path(code_dir) / "requirements.txt").read_text(encoding="utf-8"))
        key = hashlib.sha256(json.dumps({"python": [self.version, str(self.python)], "packages": list(packages),
                                         "overrides": list(overrides), "pins": pins, "recipe": RECIPE},
                                        sort_keys=True).encode())
        folder = Path(cache) / key.hexdigest()[:16]
        with _locked(Path(cache) / f"{folder.name}.lock"):
            done = folder / "built.json"
            if done.is_file() and (folder / "bin" / "python").exists():  # exists(): its interpreter is still there
                done.touch()  # last used: prune keeps the most recently used
                return ToolkitVenv(folder, json.loads(done.read_text(encoding="utf-8")), reused=True)
            shutil.rmtree(folder, ignore_errors=True)
            record = {"python": self.version, **self._build(folder, packages, overrides, Path(code_dir))}
            done.write_text(json.dumps(record), encoding="utf-8")
        prune(Path(cache), keep=KEEP)
        return ToolkitVenv(folder, record, reused=False)

    def _build(self, folder: Path, packages, overrides, code_dir: Path) -> dict:
        """The image's venv (its packages, its overrides), then the container's start-up install of ``code_dir``."""
        started = time.perf_counter()
        python = str(folder / "bin" / "python")
        self._uv("venv", "--quiet", "--python", str(self.python), str(folder))
        for name, lines in (("image.txt", packages), ("overrides.txt", overrides)):
            (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        # Byte-code is compiled once at the end: the libraries the pins replace would be compiled for nothing.
        self._uv("pip", "install", "--quiet", "--python", python,
                 "-r", str(folder / "image.txt"), "--override", str(folder / "overrides.txt"))
        image = time.perf_counter()
        # The container's own install step, by sagemaker_containers' functions and the image's pip:
        # `python -m pip install . -r requirements.txt` in a copy of code/, replacing the image's pinned libraries.
        code = folder / "opt-ml-code"
        shutil.copytree(code_dir, code, ignore=shutil.ignore_patterns("__pycache__"))
        done = subprocess.run([python, "-c", _CONTAINER_INSTALL, str(code)], capture_output=True, text=True,
                              check=False, env=clean_environment(), cwd=code, timeout=900)
        (folder / "container-install.log").write_text(done.stdout + done.stderr, encoding="utf-8")
        if done.returncode:
            raise AssertionError(f"the container's install step failed ({done.returncode}):\n{done.stderr[-3000:]}")
        _remove_installed_module(folder)
        shutil.rmtree(code)
        installed = time.perf_counter()
        # Each driver start then imports from .pyc files, even where PYTHONDONTWRITEBYTECODE is set.
        site = [str(path) for path in folder.glob("lib/python*/site-packages")]
        subprocess.run([python, "-m", "compileall", "-q", "-j", "0", *site], capture_output=True, check=False,
                       env=clean_environment(), timeout=900)
        listed = self._uv("pip", "list", "--format", "json", "--python", python)
        ended = time.perf_counter()
        return {"seconds": round(ended - started, 1), "image_seconds": round(image - started, 1),
                "install_seconds": round(installed - image, 1), "compile_seconds": round(ended - installed, 1),
                "packages": len(json.loads(listed))}

    def _uv(self, *args: str) -> str:
        done = subprocess.run([str(self.uv), "--no-config", *args], capture_output=True, text=True, check=False,
                              env=clean_environment(), cwd=Path(self.uv).parent, timeout=900)
        if done.returncode:
            raise AssertionError(f"uv {' '.join(args[:2])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout


def _remove_installed_module(folder: Path) -> None:
    """Remove what the install step put in site-packages for the module itself (the venv is keyed by pins only).

    Its generated setup.py (``packages=['']``, everything included) installs ``inference.py``,
    ``setup.py``, ``requirements.txt`` and more at the top of site-packages, and ``pip uninstall``
    says it finds no files to remove; the files its RECORD lists are deleted here. The driver
    serves the package's own ``code/``, first on sys.path, as before.
    """
    for record in folder.glob(f"lib/python*/site-packages/{MODULE}-*.dist-info/RECORD"):
        site = record.parents[1]
        for line in record.read_text(encoding="utf-8").splitlines():
            (site / line.split(",")[0]).unlink(missing_ok=True)
        for leftover in (record.parent, site / f"{MODULE}.egg-info", site / "build" / "lib" / "__pycache__",
                         site / "build" / "lib", site / "build"):
            if leftover.is_dir() and not any(p.is_file() for p in leftover.rglob("*")):
                shutil.rmtree(leftover)


def prune(cache: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently used venvs (each is ~600 MB), skipping any another build holds."""
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
