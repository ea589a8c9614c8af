"""Config loading: valid files load; every kind of mistake names the key, the file and the fix."""

from __future__ import annotations

import copy

import pytest

from conftest import BASE_CONFIG
from mlops.config import load_config
from mlops.errors import ConfigError


def _write(tmp_path, text: str):
    path = tmp_path / "mlops.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_config_loads():
    """The committed mlops.yaml is valid and uses the task's default metric set."""
    config = load_config("mlops.yaml")
    assert config.task == "binary"
    assert config.primary_metric == "roc_auc"
    assert config.data.target == "default"


def test_unknown_key_names_key_and_allowed_keys(tmp_path):
    """A misspelt key is rejected with its dotted path and the keys allowed there."""
    import yaml  # pylint: disable=import-outside-toplevel  # local to this test

    data = copy.deepcopy(BASE_CONFIG)
    data["split"]["tets_size"] = 0.3
    path = _write(tmp_path, yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "unknown key 'split.tets_size'" in message
    assert "test_size" in message and str(path) in message


def test_bad_value_lists_allowed_values(tmp_path):
    """A value outside a fixed set names the allowed ones and the value given."""
    path = _write(tmp_path, "project: demo-x\ntask: clustering\ndata: {source: a.csv, target: y}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "'task'" in str(info.value)
    assert "'binary', 'multiclass' or 'regression'" in str(info.value)
    assert "clustering" in str(info.value)


def test_wrong_type_and_missing_key_are_reported_together(tmp_path):
    """Several problems are reported at once, not one per run."""
    path = _write(tmp_path, "project: demo-x\ntask: binary\nsplit: {test_size: big}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "missing required key 'data'" in str(info.value)
    assert "'split.test_size'" in str(info.value)


def test_metric_must_fit_task(tmp_path):
    """A regression metric for a binary task is refused with the allowed list."""
    text = "project: demo-x\ntask: binary\ndata: {source: a.csv, target: y}\nmetrics: {primary: rmse}\n"
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match="roc_auc, pr_auc"):
        load_config(path)


def test_time_split_needs_time_column(tmp_path):
    """split.method=time without data.time_column is a config error, not a crash later."""
    path = _write(tmp_path, "project: demo-x\ntask: binary\ndata: {source: a.csv, target: y}\nsplit: {method: time}\n")
    with pytest.raises(ConfigError, match="time_column"):
        load_config(path)


def test_malformed_yaml_points_at_line(tmp_path):
    """Broken YAML names the line."""
    path = _write(tmp_path, "project: demo\ntask: [binary\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(path)


def test_missing_file_says_how_to_fix(tmp_path):
    """A missing config says where it looked and how to point elsewhere."""
    with pytest.raises(ConfigError, match="MLOPS_CONFIG"):
        load_config(tmp_path / "nope.yaml")


def test_non_mapping_is_refused(tmp_path):
    """A YAML list instead of a mapping is a clear error."""
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"))


def test_drift_small_sample_settings_are_validated(tmp_path):
    """drift.small_sample_rows, p_value and correction reject bad values, naming the key and the value."""
    import yaml  # pylint: disable=import-outside-toplevel  # local to this test

    data = copy.deepcopy(BASE_CONFIG)
    data["drift"] = {"small_sample_rows": -1, "p_value": 0.7, "correction": "bonferroni"}
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, yaml.safe_dump(data)))
    message = str(info.value)
    assert "'drift.small_sample_rows'" in message and "-1" in message
    assert "'drift.p_value'" in message and "0.7" in message
    assert "'drift.correction'" in message and "'benjamini-hochberg' or 'none'" in message
    data["drift"] = {"small_sample_rows": 0, "p_value": 0.01, "correction": "none"}
    drift = load_config(_write(tmp_path, yaml.safe_dump(data))).drift
    assert (drift.small_sample_rows, drift.p_value, drift.correction) == (0, 0.01, "none")
