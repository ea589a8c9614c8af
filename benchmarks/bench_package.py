"""Benchmark how the pins reach the serving container: package size and cold-start install time.

Usage: python benchmarks/bench_package.py [--python /path/to/python3.12]

Trains the configured model on the bundled data in a temporary copy of the project and packages
it twice: as deployed by default (``code/requirements.txt`` only: the container installs the pins
from PyPI at start, which needs internet from the endpoint) and with ``deploy.vendor_wheels``
(the pins' wheels for the image's Python inside ``model.tar.gz``: no index needed, works in a VPC
without NAT and with network isolation). Then, in a fresh venv on the image's Python (3.12) with
the packages AWS's 1.9-0 image has preinstalled (scikit-learn 1.9.0, numpy 2.5.1, scipy 1.18.0,
pandas 2.2.3), it times the container's own install command, ``pip install -r requirements.txt``,
online with no pip cache and offline from the vendored wheels. Prints a Markdown table.
Downloads from PyPI: run it on its own, not in CI.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import yaml
from _measure import ROOT, table

from mlops.config import load_config
from mlops.data import load_training
from mlops.package import build
from mlops.stages.train import train

# What sagemaker-scikit-learn:1.9-0-cpu-py3 has installed (aws/deep-learning-containers docker/sklearn/1.9-0 uv.lock).
IMAGE_PACKAGES = ("scikit-learn==1.9.0", "numpy==2.5.1", "scipy==1.18.0", "pandas==2.2.3")


def _python312() -> str:
    uv = shutil.which("uv") or str(Path(os.sys.executable).with_name("uv"))
    found = subprocess.run([uv, "python", "find", "3.12"], capture_output=True, text=True, check=False).stdout.strip()
    return found or "/root/.pyenv/versions/3.12.1/bin/python3.12"


def _project(workdir: Path, vendor: bool) -> Path:
    project = workdir / ("vendored" if vendor else "default")
    shutil.copytree(ROOT / "data", project / "data")
    for name in ("mlops.yaml", "schema.yaml"):
        shutil.copy(ROOT / name, project / name)
    config = yaml.safe_load((project / "mlops.yaml").read_text())
    config.setdefault("deploy", {})["vendor_wheels"] = vendor
    (project / "mlops.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return project / "mlops.yaml"


def _install_seconds(python: str, requirements: Path, env: dict, workdir: Path) -> float:
    """A fresh venv like the image (its preinstalled versions), then the container's pip install, timed."""
    venv = workdir / f"venv-{len(list(workdir.glob('venv-*')))}"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", *IMAGE_PACKAGES], check=True)
    started = time.perf_counter()
    subprocess.run([*pip, "install", "-r", str(requirements)], check=True, env={**os.environ, **env})
    return time.perf_counter() - started


def main() -> None:
    """Build both packages, time both installs, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=None, help="the image's Python (default: uv python find 3.12)")
    args = parser.parse_args()
    python = args.python or _python312()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-package-") as temp:
        workdir = Path(temp)
        os.environ["MLOPS_MODELS_DIR"] = str(workdir / "models")
        trained = load_config(_project(workdir, False))
        version, folder = train(trained, load_training(trained))
        for vendor in (False, True):
            config = load_config(_project(workdir, vendor)) if vendor else trained
            started = time.perf_counter()
            package = build(config, folder, workdir / f"package-{vendor}")
            seconds = time.perf_counter() - started
            unpacked = workdir / f"unpacked-{vendor}"
            with tarfile.open(package.tarball) as tar:
                tar.extractall(unpacked, filter="data")
            requirements = unpacked / "code" / "requirements.txt"
            env = {"PIP_NO_CACHE_DIR": "1"} if not vendor else {
                "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(unpacked / "code" / "wheels"), "PIP_NO_BUILD_ISOLATION": "0"}
            install = _install_seconds(python, requirements, env, workdir)
            wheels = len(list((unpacked / "code" / "wheels").glob("*.whl"))) if vendor else 0
            rows.append(["vendored wheels" if vendor else "requirements.txt (default)",
                         f"{package.tarball.stat().st_size / 1e6:.2f}", f"{seconds:.1f}", wheels, f"{install:.1f}",
                         "offline, from code/wheels" if vendor else "online, PyPI, no pip cache"])
    print(f"Serving image Python: {python}; model {version}\n")
    print(table(["package", "model.tar.gz MB", "build s", "wheels", "cold install s", "install"], rows))


if __name__ == "__main__":
    main()
