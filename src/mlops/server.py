"""An HTTP server with the SageMaker container's routes, serving one packaged model.

Input: a ``model.tar.gz`` built by :mod:`mlops.package`. Output: a server on 127.0.0.1 (stdlib
``ThreadingHTTPServer``): ``GET /ping`` answers 200 once the model is loaded, ``POST
/invocations`` runs the package's own ``code/inference.py`` (``input_fn`` -> ``predict_fn`` ->
``output_fn``), exactly the file the container runs. ``make serve`` runs it in the foreground;
the deploy smoke test uses it when the target is an emulator, which cannot run a container. With
a :class:`~mlops.capture.Writer` every request and its answer are captured as SageMaker's data
capture would (the caller's ``X-Amzn-SageMaker-Inference-Id`` header is the ``inferenceId``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import tempfile
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Iterator

from mlops.capture import Writer
from mlops.errors import ModelError
from mlops.package import unpack

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's InvokeEndpoint payload limit
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"  # InvokeEndpoint's InferenceId


def load_inference(package_dir: Path) -> ModuleType:
    """Import ``code/inference.py`` from an unpacked package (not the installed mlops copy)."""
    path = package_dir / "code" / "inference.py"
    if not path.is_file():
        raise ModelError(f"{path} is missing: {package_dir} is not an unpacked model.tar.gz")
    spec = importlib.util.spec_from_file_location(f"mlops_served_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


class _Handler(BaseHTTPRequestHandler):
    server: InferenceServer

    def _send(self, status: int, body: str, content_type: str = "application/json") -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # pylint: disable=invalid-name  # http.server's method naming
        """``GET /ping``: healthy once the model is loaded."""
        if self.path != "/ping":
            self._send(404, json.dumps({"error": f"no route GET {self.path}; use GET /ping or POST /invocations"}))
            return
        self._send(200, json.dumps({"status": "ok", "model_version": self.server.served.version}))

    def do_POST(self) -> None:  # pylint: disable=invalid-name  # http.server's method naming
        """``POST /invocations``: the request through the package's four inference handlers."""
        if self.path != "/invocations":
            self._send(404, json.dumps({"error": f"no route POST {self.path}; use POST /invocations"}))
            return
        declared = (self.headers.get("Content-Length") or "").strip()
        if not declared:
            self._send(411, json.dumps({"error": "send the body with a Content-Length header"}))
            return
        if not declared.isdigit():  # "-1", "abc", "1e3": never a length, never a read to EOF
            self._send(400, json.dumps({"error": f"Content-Length {declared[:40]!r} is not a byte count"}))
            return
        length = int(declared)
        if length > MAX_BODY_BYTES:
            self._send(413, json.dumps({"error": f"body of {length} bytes is over the {MAX_BODY_BYTES}-byte limit"}))
            return
        body = self.rfile.read(length)
        inference = self.server.inference
        content_type = self.headers.get("Content-Type", "")
        reply = inference.handle(self.server.served, body, content_type, self.headers.get("Accept", "application/json"))
        self._send(reply.status, reply.body, reply.content_type)
        if self.server.capture is not None:
            self.server.capture.record(body, content_type, reply.body.encode("utf-8"), reply.content_type,
                                       self.headers.get(INFERENCE_ID_HEADER))

    def log_message(self, format, *args) -> None:  # pylint: disable=redefined-builtin  # signature of the base class
        log.debug("%s %s", self.address_string(), format % args)


class InferenceServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer holding the loaded model and the package's inference module."""

    daemon_threads = True

    def __init__(self, package_dir: Path, port: int = 0, expected_digest: str = "", capture: Writer | None = None):
        self.capture = capture
        self.inference = load_inference(package_dir)
        self.inference.verify_package(package_dir, expected_digest)  # as the container does with MLOPS_PACKAGE_DIGEST
        self.served = self.inference.model_fn(str(package_dir))
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:8080."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


@contextmanager
def running(tarball: Path, port: int = 0, expected_digest: str = "",
            capture: Writer | None = None) -> Iterator[InferenceServer]:
    """Unpack ``tarball`` and serve it in a background thread until the block ends (refusing a package
    whose content digest is not ``expected_digest``, when given; capturing traffic to ``capture``)."""
    with tempfile.TemporaryDirectory(prefix="mlops-serve-") as workdir:
        server = InferenceServer(unpack(tarball, Path(workdir)), port, expected_digest, capture)
        thread = threading.Thread(target=server.serve_forever, name="mlops-serve", daemon=True)
        thread.start()
        try:
            yield server
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            if capture is not None:
                capture.close()
