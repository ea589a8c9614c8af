"""Package a trained model for serving: ``model.tar.gz`` and its model card.

Input: a model folder (``models/<version>/``: ``model.skops``, ``metadata.json``, optional
``metrics.json``), the data contract (``schema.yaml``) and the config.
Output: in ``out_dir``, ``model.tar.gz`` (self-contained for AWS's scikit-learn serving image:
the model, ``metadata.json``, ``schema.json``, ``trusted_types.txt``, ``code/inference.py`` and
``code/requirements.txt`` pinning the library versions training used; with
``deploy.vendor_wheels`` also their wheels for the image's Python in ``code/wheels/``) and ``model_card.md``
(Markdown rendered from ``templates/model_card.md.j2``). The tarball is byte-for-byte
reproducible, so registering the same version twice uploads identical objects.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlops.config import Config
from mlops.errors import ConfigError, ModelError
from mlops.io import atomic_path, atomic_write_text, read_json
from mlops.lineage import MODEL_FILE
from mlops.model import TRUSTED_TYPES_FILE
from mlops.contract import load_contract
from mlops.images import image_python, serving_image
from mlops.render import render
from mlops.serving.inference import digest_items

log = logging.getLogger(__name__)

TARBALL = "model.tar.gz"
MODEL_CARD = "model_card.md"
INFERENCE_CODE = Path(__file__).with_name("serving") / "inference.py"
# Libraries the inference code imports, pinned in code/requirements.txt (PyPI name -> metadata key).
SERVING_LIBRARIES = ("scikit-learn", "skops", "pandas", "numpy", "scipy")
WHEELS = "code/wheels"  # deploy.vendor_wheels: the pins' wheels, installed from here without an index
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")  # AL2023: glibc 2.34


@dataclass(frozen=True)
class Package:
    """A packaged version: the tarball, its model card, the pins inside, and its content digest."""

    version: str
    tarball: Path
    card: Path
    pins: dict
    content_digest: str = ""


def serving_schema(config: Config, metadata: dict) -> dict:
    """The contract rules the serving code checks: every contract column, and the feature order."""
    contract = load_contract(config)
    features = [*metadata["features"]["numeric"], *metadata["features"]["categorical"]]
    missing = [name for name in features if name not in contract.columns]
    if missing:
        raise ConfigError(
            f"feature(s) {missing} of model {metadata['version']} are not in the data contract "
            f"{contract.source}; run `make schema FORCE=1`, review it, and retrain"
        )
    return {"features": features, "columns": {name: rule.to_yaml() for name, rule in contract.columns.items()}}


def requirements(metadata: dict) -> dict:
    """Exact pins of the serving libraries, from the versions recorded at training."""
    libraries = metadata.get("libraries", {})
    pins = {name: libraries[name] for name in SERVING_LIBRARIES
            if libraries.get(name, "not installed") != "not installed"}
    if "scikit-learn" not in pins or "skops" not in pins:
        raise ModelError(
            f"metadata.json of {metadata.get('version')} does not record the scikit-learn and skops versions "
            "training used; retrain with `make train` so the serving image can load exactly that model"
        )
    return pins


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def build(config: Config, model_dir: Path, out_dir: Path) -> Package:
    """Write ``model.tar.gz`` and ``model_card.md`` for the model in ``model_dir`` into ``out_dir``."""
    model_dir = Path(model_dir)
    for name in (MODEL_FILE, "metadata.json"):
        if not (model_dir / name).is_file():
            raise ModelError(f"{model_dir / name} is missing; the model folder is incomplete. Run `make train`")
    metadata = read_json(model_dir / "metadata.json")
    metrics = read_json(model_dir / "metrics.json") if (model_dir / "metrics.json").is_file() else None
    schema = serving_schema(config, metadata)
    pins = requirements(metadata)
    header = (
        "# Installed by AWS's scikit-learn serving container at start: the exact versions training used,\n"
        f"# recorded in metadata.json of {metadata['version']} (Python {metadata['libraries'].get('python')}).\n"
        + ("# From the wheels in code/wheels/ (deploy.vendor_wheels): no index is needed at start.\n"
           if config.deploy.vendor_wheels else "")
    )
    files = {
        MODEL_FILE: (model_dir / MODEL_FILE).read_bytes(),
        "metadata.json": (model_dir / "metadata.json").read_bytes(),
        "schema.json": (json.dumps(schema, indent=2, default=str) + "\n").encode(),
        "trusted_types.txt": TRUSTED_TYPES_FILE.read_bytes(),
        "code/inference.py": INFERENCE_CODE.read_bytes(),
        "code/requirements.txt": (header + "".join(f"{n}=={v}\n" for n, v in pins.items())).encode(),
    }
    if config.deploy.vendor_wheels:
        files.update({f"{WHEELS}/{path.name}": path.read_bytes()
                      for path in vendored_wheels(config, pins, image_python(config))})
    tarball = Path(out_dir) / TARBALL
    with atomic_path(tarball) as temp:
        with open(temp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as zipped:
            with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name in sorted(files):
                    _add(tar, name, files[name])
    try:
        image = serving_image(config)
    except ConfigError:
        image = "set deploy.image_uri (no prebuilt image known for this region)"
    card = render(
        "model_card.md.j2", project=config.project, meta=metadata, metrics=metrics, features=schema["features"],
        columns=schema["columns"], rules={name: _rule_text(schema["columns"][name]) for name in schema["features"]},
        pins=pins, image=image,
    )
    atomic_write_text(Path(out_dir) / MODEL_CARD, card)
    log.info("packaged %s -> %s (%d bytes)", metadata["version"], tarball, tarball.stat().st_size)
    return Package(metadata["version"], tarball, Path(out_dir) / MODEL_CARD, pins, digest_items(files.items()))


def _rule_text(rule: dict) -> str:
    """A contract rule in words for the model card: categories, or bounds."""
    if rule.get("allowed") is not None:
        return "one of " + ", ".join(map(str, rule["allowed"]))
    bounds = [f"{sign} {rule[key]}" for key, sign in (("min", ">="), ("max", "<=")) if rule.get(key) is not None]
    return ", ".join(bounds) or "any"


def vendored_wheels(config: Config, pins: dict, python: str) -> list[Path]:
    """The wheels of ``pins`` and their dependencies for the image's Python on Linux x86_64, downloaded once
    into ``.cache/wheels/<pins>/`` (pip download, binary wheels only)."""
    key = hashlib.sha256(json.dumps([python, sorted(pins.items())]).encode()).hexdigest()[:16]
    cache = Path(config.resolve(".cache/wheels")) / key
    if not (cache / ".complete").is_file():
        with tempfile.TemporaryDirectory(prefix="mlops-wheels-", dir=_mkdir(cache.parent)) as temp:
            requirements_file = Path(temp) / "requirements.txt"
            requirements_file.write_text("".join(f"{n}=={v}\n" for n, v in pins.items()), encoding="utf-8")
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                       "--only-binary=:all:", "--implementation", "cp", "--python-version", python,
                       *(arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)),
                       "-d", str(Path(temp) / "wheels"), "-r", str(requirements_file)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise ModelError(f"cannot download the wheels of {', '.join(pins)} for Python {python} "
                                 f"(deploy.vendor_wheels): {last}. Check the network to PyPI, or pin versions "
                                 "that publish Linux wheels for that Python")
            shutil.rmtree(cache, ignore_errors=True)
            os.replace(Path(temp) / "wheels", cache)
            (cache / ".complete").touch()
    return sorted(cache.glob("*.whl"))


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def has_wheels(tarball: Path) -> bool:
    """Whether a package carries its wheels (deploy.vendor_wheels)."""
    with tarfile.open(tarball, "r:gz") as tar:
        return any(name.startswith(f"{WHEELS}/") for name in tar.getnames())


def tarball_digest(tarball: Path) -> str:
    """The content digest of a package read from its tarball (what the container computes once unpacked)."""
    with tarfile.open(tarball, "r:gz") as tar:
        return digest_items((member.name, tar.extractfile(member).read()) for member in tar.getmembers()
                            if member.isfile())


def unpack(tarball: Path, dest: Path) -> Path:
    """Extract a package (as the serving container does) into ``dest``; refuse unsafe member paths."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as tar:
        tar.extractall(dest, filter="data")
    return dest
