"""The local model registry: register, list, fetch, and environment pointers with history."""

from __future__ import annotations

import json

from mlops.config import load_config
from mlops.registry import Registry


def test_register_fetch_and_pointers(project, tmp_path):
    """A registered version can be fetched; pointers keep current and previous for rollback."""
    assert project.run("train")[0] == 0
    config = load_config(project.config_path)
    model_dir = config.models_dir / (config.models_dir / "LATEST").read_text().strip()
    registry = Registry.from_config(config)
    version = registry.register(model_dir)
    assert registry.versions() == [version]
    fetched = registry.fetch(version, tmp_path / "fetched")
    assert json.loads((fetched / "metadata.json").read_text())["version"] == version
    assert (fetched / "model.skops").read_bytes() == (model_dir / "model.skops").read_bytes()
    assert registry.pointer("prod") is None
    registry.set_pointer("prod", "v1")
    record = registry.set_pointer("prod", "v2")
    assert record["current"] == "v2" and record["previous"] == "v1" and record["history"] == ["v2", "v1"]
    assert registry.set_pointer("prod", "v2") == record  # idempotent
