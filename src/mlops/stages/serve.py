"""Serve the model locally with the SageMaker container's routes (``make serve``).

Input: a model folder (default ``models/LATEST``, or ``--model``) and ``--port`` (``PORT=``,
default 8080). Output: the model packaged as for a deploy (``model.tar.gz``) and served on
``http://127.0.0.1:<port>`` (``GET /ping``, ``POST /invocations``) until Ctrl-C or SIGTERM, after
which its temporary folders are gone. A port in use is an error naming it and ``PORT=``. Every
request is captured in SageMaker's data-capture format under ``capture.local_dir``
(``<project>-serve/AllTraffic/yyyy/mm/dd/hh/``), unless ``capture.enabled`` is false.
"""

from __future__ import annotations

import errno
import signal
import tempfile
import time
from pathlib import Path

from mlops.capture import Writer
from mlops.context import Context, Result
from mlops.errors import MlopsError
from mlops.lineage import resolve_model_dir
from mlops.package import build
from mlops.server import running


def _stop(signum, frame) -> None:
    """SIGTERM ends the server like Ctrl-C: the with-blocks below then remove the temporary folders."""
    del signum, frame
    raise KeyboardInterrupt


def run(ctx: Context, port: int = 8080) -> Result:
    """Package the model and serve it until interrupted."""
    model_dir = resolve_model_dir(ctx.config, ctx.model)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        with tempfile.TemporaryDirectory(prefix="mlops-package-") as workdir:
            package = build(ctx.config, model_dir, Path(workdir))
            settings = ctx.config.capture
            capture = Writer(ctx.config.resolve(settings.local_dir), f"{ctx.config.project}-serve") \
                if settings.enabled else None
            try:
                with running(package.tarball, port, capture=capture) as server:
                    print(f"Serving {package.version} on {server.url} (GET /ping, POST /invocations; Ctrl-C stops)",
                          flush=True)
                    if capture is not None:
                        print(f"  capturing requests to {capture.destination}/{capture.endpoint}/ "
                              "(SageMaker's data-capture format)", flush=True)
                    print(f"  curl -s {server.url}/invocations -H 'Content-Type: text/csv' --data-binary @rows.csv",
                          flush=True)
                    while True:
                        time.sleep(3600)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise MlopsError(f"port {port} on 127.0.0.1 is in use; stop what listens there, or serve on "
                                     f"another port: make serve PORT={port + 1}") from None
                raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    return Result()
