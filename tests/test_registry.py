"""The local model registry: register, list, fetch, and environment pointers with history."""

from __future__ import annotations

import json

import pytest

from mlops.config import load_config
from mlops.lineage import HOLDOUT_PREDICTIONS
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


def test_held_out_outputs_travel_with_the_version_when_recorded(project, tmp_path):
    """evaluate's holdout_predictions.parquet is registered and fetched; a version without it still fetches."""
    assert project.run("train")[0] == 0 and project.run("evaluate")[0] == 0
    config = load_config(project.config_path)
    model_dir = config.models_dir / (config.models_dir / "LATEST").read_text().strip()
    registry = Registry.from_config(config)
    version = registry.register(model_dir)
    fetched = registry.fetch(version, tmp_path / "fetched")
    assert (fetched / HOLDOUT_PREDICTIONS).read_bytes() == (model_dir / HOLDOUT_PREDICTIONS).read_bytes()
    # A version registered by an older suite (or before evaluate ran) has no such file.
    (project.root / ".registry" / config.project / "models" / version / HOLDOUT_PREDICTIONS).unlink()
    older = registry.fetch(version, tmp_path / "older")
    assert (older / "model.skops").is_file() and not (older / HOLDOUT_PREDICTIONS).exists()


def test_passed_records_and_rollback_targets(tmp_path):
    """Pass records are per version and environment; rollback skips versions already rolled back."""
    from mlops.errors import DeployError  # pylint: disable=import-outside-toplevel  # only this test needs it
    from mlops.registry import LocalStore  # pylint: disable=import-outside-toplevel  # same

    registry = Registry(LocalStore(tmp_path), "proj")
    assert registry.passed("v1", "staging") is None
    registry.record_pass("v1", "staging", {"rows": 5})
    assert registry.passed("v1", "staging")["rows"] == 5 and registry.passed("v1", "prod") is None
    with pytest.raises(DeployError, match="nothing has been deployed to prod"):
        registry.rollback_target("prod")
    for version in ("v1", "v2", "v3"):
        registry.set_pointer("prod", version)
    assert registry.rollback_target("prod") == "v2"
    record = registry.set_pointer("prod", "v2", rollback_of="v3")
    assert record["rolled_back"] == ["v3"] and registry.rollback_target("prod") == "v1"
    registry.set_pointer("prod", "v3")  # deploying a rolled-back version again on purpose clears the mark
    assert registry.pointer("prod")["rolled_back"] == []
