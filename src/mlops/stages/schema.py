"""Draft the data contract from the data (``make schema``; review it before committing).

Input: the data (``data.source`` or ``--data``) and the config (target, id column, task).
Output: ``data.schema_file`` (``schema.yaml``): observed dtypes, nulls, categories, and the sign
of numbers. An existing file is kept unless ``--force`` (``make schema FORCE=1``).
"""

from __future__ import annotations

import os

from mlops.context import Context, Result
from mlops.contract import infer_contract, write_contract
from mlops.errors import MlopsError


def run(ctx: Context, force: bool = False) -> Result:
    """Write the first draft of schema.yaml."""
    config = ctx.config
    dataset = ctx.load()
    path = config.resolve(config.data.schema_file)
    if os.path.exists(path) and not force:
        raise MlopsError(f"{path} exists; pass --force (make schema FORCE=1) to overwrite it")
    write_contract(infer_contract(config, dataset.frame), path)
    return Result(message=f"Wrote {path}: review bounds and categories, then commit it")
