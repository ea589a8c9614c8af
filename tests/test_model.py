"""Model persistence: skops with a committed allow-list of types."""

from __future__ import annotations

import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mlops.errors import ModelError
from mlops.model import load_model, save_model, trusted_types


def test_untrusted_type_is_refused_on_save(tmp_path):
    """A model with a type outside trusted_types.txt is not written."""
    pipeline = Pipeline([("f", FunctionTransformer(func=print))])
    with pytest.raises(ModelError, match="builtins.print"):
        save_model(pipeline, tmp_path / "m.skops")
    assert not list(tmp_path.iterdir())


def test_untrusted_type_is_refused_on_load(tmp_path):
    """A model file smuggling a function is not loaded."""
    path = tmp_path / "m.skops"
    sio.dump(Pipeline([("f", FunctionTransformer(func=print))]), path)
    with pytest.raises(ModelError, match="untrusted types"):
        load_model(path)


def test_corrupt_file(tmp_path):
    """A file that is not a skops archive is a clear error."""
    path = tmp_path / "m.skops"
    path.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a readable skops model"):
        load_model(path)


def test_trusted_list_is_small_and_reviewed():
    """The allow-list names only data types, never callables such as builtins or os functions."""
    assert all(not t.startswith(("builtins.", "os.", "subprocess.")) for t in trusted_types())
