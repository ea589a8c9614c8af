"""The toolkit venv helper: which pins it reads, which venvs it keeps, and why it skips."""

from __future__ import annotations

import json
import os
import sys

import toolkit_venv
from toolkit_venv import pins_of, prune


def test_pins_are_read_by_normalised_name_and_comments_are_skipped():
    """code/requirements.txt's header comments are skipped and names compare as pip compares them."""
    text = "# Installed by AWS's container\nscikit-learn==1.9.1\nInotify_Simple==1.2.1  # note\n\n"
    assert pins_of(text) == {"scikit-learn": "1.9.1", "inotify-simple": "1.2.1"}


def test_a_new_build_keeps_only_the_venvs_used_last(tmp_path):
    """Of four cached venvs, the two most recently used stay and the others are removed."""
    for age, name in enumerate(("newest", "recent", "old", "oldest")):
        (tmp_path / name).mkdir()
        marker = tmp_path / name / "built.json"
        marker.write_text(json.dumps({"seconds": 1}), encoding="utf-8")
        os.utime(marker, (1_000_000 - age * 1000, 1_000_000 - age * 1000))
    prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["newest", "recent"]


def test_without_a_python_312_the_reason_names_where_it_looked(monkeypatch):
    """A missing interpreter and a 3.11 are passed over, and the skip reason says where 3.12 was looked for."""
    monkeypatch.setattr(toolkit_venv, "_candidates", lambda: iter(["/nonexistent/python3.12", sys.executable]))
    found = toolkit_venv.find_toolkit()
    assert isinstance(found, str) and "no Python 3.12" in found and "MLOPS_TOOLKIT_PYTHON" in found
