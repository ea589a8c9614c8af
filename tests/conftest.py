"""Shared fixtures: small projects built in a temporary folder, and an in-process CLI runner."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops.cli import main
from mlops.config import load_config
from mlops.stages.datagen import generate
from mlops.contract import infer_contract, write_contract

ROOT = Path(__file__).resolve().parents[1]

BASE_CONFIG = {
    "project": "test-project",
    "task": "binary",
    "data": {"source": "data/train.csv", "target": "default", "id_column": "loan_id",
             "time_column": "application_date"},
    "split": {"method": "time", "test_size": 0.25, "seed": 7},
    "model": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 300}},
}


def multiclass_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Three-class problem with numeric and categorical signal."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], n)
    score = x1 + 0.8 * (colour == "red") - 0.8 * (colour == "blue")
    label = np.where(score > 0.6, "high", np.where(score < -0.6, "low", "mid"))
    return pd.DataFrame({"row_id": np.arange(n), "x1": x1, "x2": x2, "colour": colour, "label": label})


def regression_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Linear target with noise, a categorical offset and missing values."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(30, 200, n)
    rooms = rng.integers(1, 6, n).astype(float)
    area = rng.choice(["north", "south"], n)
    price = 1000 * size + 5000 * rooms + 20000 * (area == "north") + rng.normal(0, 5000, n)
    rooms[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({"house_id": np.arange(n), "size_m2": size, "rooms": rooms, "area": area, "price": price})


class Project:
    """A throw-away project folder: config, data and contract, plus a CLI runner."""

    def __init__(self, root: Path, capsys):
        self.root = root
        self._capsys = capsys

    @property
    def config_path(self) -> Path:
        """Path of the project's mlops.yaml."""
        return self.root / "mlops.yaml"

    def write_config(self, config: dict) -> None:
        """Write mlops.yaml."""
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    def write_data(self, frame: pd.DataFrame, name: str = "data/train.csv") -> Path:
        """Write a CSV under the project."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        return path

    def write_contract(self) -> None:
        """Infer schema.yaml from the current data (as `make schema` does)."""
        from mlops.data import load_training  # pylint: disable=import-outside-toplevel  # fixture-only

        config = load_config(self.config_path)
        write_contract(infer_contract(config, load_training(config).frame), config.resolve("schema.yaml"))

    def run(self, *args: str) -> tuple[int, str, str]:
        """Run ``python -m mlops --config <project> <args>`` in-process; return (code, out, err)."""
        self._capsys.readouterr()
        code = main(["--config", str(self.config_path), *args])
        captured = self._capsys.readouterr()
        return code, captured.out, captured.err


@pytest.fixture
def project(tmp_path, capsys, monkeypatch):
    """A binary loan-default project on 800 generated rows, with its contract."""
    monkeypatch.delenv("MLOPS_MODELS_DIR", raising=False)
    monkeypatch.delenv("MLOPS_REPORTS_DIR", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    proj = Project(tmp_path, capsys)
    proj.write_config(copy.deepcopy(BASE_CONFIG))
    proj.write_data(generate(800, seed=3))
    proj.write_contract()
    return proj


@pytest.fixture
def template_repo(tmp_path) -> Path:
    """A fresh git repository made from this template's working tree, one commit on main."""
    from act_support import make_template_repo  # pylint: disable=import-outside-toplevel  # act tests only

    return make_template_repo(ROOT, tmp_path / "repo")


@pytest.fixture
def act_world(tmp_path):
    """Folders shared by the act runs of one test (artifacts, cml recordings, caches)."""
    from act_support import ActWorld  # pylint: disable=import-outside-toplevel  # act tests only

    return ActWorld(tmp_path / "act-world")


@pytest.fixture(scope="session", name="moto_server_url")
def _moto_server_url():
    """A real moto_server on 127.0.0.1 at a free port for the whole session; stopped at the end."""
    from mlops.aws import emulator  # pylint: disable=import-outside-toplevel  # only AWS tests pay for boto

    with emulator() as url:
        yield url


@pytest.fixture
def moto(moto_server_url):
    """The session's moto_server, emptied (POST /moto-api/reset) for this test."""
    import urllib.request  # pylint: disable=import-outside-toplevel  # only AWS tests need it

    reset = urllib.request.Request(f"{moto_server_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(reset, timeout=10):
        pass
    return moto_server_url
