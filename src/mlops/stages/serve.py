"""Serve the model locally with the SageMaker container's routes (``make serve``).

Input: a model folder (default ``models/LATEST``, or ``--model``) and ``--port`` (``PORT=``,
default 8080). Output: the model packaged as for a deploy (``model.tar.gz``) and served on
``http://127.0.0.1:<port>`` (``GET /ping``, ``POST /invocations``) until interrupted.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from mlops.context import Context, Result
from mlops.lineage import resolve_model_dir
from mlops.package import build
from mlops.server import running


def run(ctx: Context, port: int = 8080) -> Result:
    """Package the model and serve it until interrupted."""
    model_dir = resolve_model_dir(ctx.config, ctx.model)
    with tempfile.TemporaryDirectory(prefix="mlops-package-") as workdir:
        package = build(ctx.config, model_dir, Path(workdir))
        with running(package.tarball, port) as server:
            print(f"Serving {package.version} on {server.url} (GET /ping, POST /invocations; Ctrl-C stops)", flush=True)
            print(f"  curl -s {server.url}/invocations -H 'Content-Type: text/csv' --data-binary @rows.csv", flush=True)
            while True:
                time.sleep(3600)
    return Result()
