"""Serve an unpacked model.tar.gz through the 1.9-0 image's own handler chain: one JSON request per line.

Run by tests/test_serving_toolkit.py with the Python 3.12 venv holding the image's serving
toolkit (sagemaker-containers 2.8.6.post2, Flask, Werkzeug, ...) and the package's pinned
libraries; the 3.11 test process never imports it. The environment is the container's:
``SAGEMAKER_BASE_DIR`` stands for ``/opt/ml`` (the package unpacked in ``<base>/model``), and
``SAGEMAKER_PROGRAM`` / ``SAGEMAKER_SUBMIT_DIRECTORY`` name ``code/inference.py`` as the
deploy's CloudFormation Model sets them.

This plays the part of the image's ``sagemaker_sklearn_container`` glue (not on PyPI), using
none of its code. Single model (the default): import the module ServingEnv names, hand its
model_fn / input_fn / predict_fn / output_fn to sagemaker_containers' ``Transformer``,
``initialize()`` it (model_fn), and serve its ``transform`` from sagemaker_containers' ``Worker``
(the Flask app gunicorn runs); a werkzeug test client makes the WSGI calls gunicorn would make.
With ``SAGEMAKER_MULTI_MODEL`` set (the variable the image's entry point switches on), each
request goes to sagemaker_inference's ``Transformer.transform`` instead, with a stand-in for the
multi-model server's request context (the server itself is Java).

Input (stdin): JSON lines ``{"method", "path", "headers", "body"}``. Output (stdout): first
``{"ready": true, "versions", "python", "response_class", "startup_seconds"}`` (or ``{"ready":
false, "error"}``), then ``{"status", "content_type", "body", "seconds"}`` per request. Logs go
to stderr.
"""

from __future__ import annotations

import collections
import collections.abc
import importlib
import importlib.metadata
import json
import os
import platform
import sys
import time
import traceback

# The image sed-patches sagemaker_containers/_mapping.py because collections.Mapping is gone since
# Python 3.10; this alias, set before the first import, has the same effect without editing site-packages.
collections.Mapping = collections.abc.Mapping  # type: ignore[attr-defined]


def _start():
    """The chain the image builds on a worker's first request; returns (test client, user module)."""
    # pylint: disable-next=import-outside-toplevel,import-error  # only in the 3.12 toolkit venv, after the alias
    from sagemaker_containers.beta.framework import env, transformer, worker
    from werkzeug.test import Client  # pylint: disable=import-outside-toplevel  # the toolkit venv's werkzeug

    serving_env = env.ServingEnv()
    # The image pip-installs the module directory at start; putting it on sys.path imports the same file.
    sys.path.insert(0, serving_env.module_dir)
    user = importlib.import_module(serving_env.module_name)
    chain = transformer.Transformer(model_fn=user.model_fn, input_fn=user.input_fn,
                                    predict_fn=user.predict_fn, output_fn=user.output_fn)
    chain.initialize()
    app = worker.Worker(transform_fn=chain.transform, module_name=serving_env.module_name)
    return Client(app), user


class _ServerContext:
    """The members of the multi-model server's request context that sagemaker_inference's Transformer uses."""

    def __init__(self, model_dir: str, headers: dict):
        self.system_properties = {"model_dir": model_dir}
        self.request_processor = [_Headers(headers)]
        self.status, self.content_type = 200, None

    def set_response_content_type(self, index: int, value: str) -> None:
        """The content type of answer ``index`` (one request per batch here)."""
        assert index == 0
        self.content_type = value

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        """The HTTP status the server answers with."""
        assert idx == 0 and phrase is not None
        self.status = code


class _Headers:  # pylint: disable=too-few-public-methods  # the one accessor the Transformer calls
    def __init__(self, headers: dict):
        self._headers = headers

    def get_request_properties(self) -> dict:
        """The request's headers."""
        return self._headers


def _multi_model_client():
    """A client with the test client's ``open`` that sends each request to sagemaker_inference's Transformer."""
    # pylint: disable-next=import-outside-toplevel,import-error  # only in the 3.12 toolkit venv
    from sagemaker_inference import transformer

    sys.path.insert(0, os.environ["SAGEMAKER_SUBMIT_DIRECTORY"])
    model_dir = os.path.join(os.environ["SAGEMAKER_BASE_DIR"], "model")
    chain = transformer.Transformer()

    class Client:  # pylint: disable=too-few-public-methods  # open() is what main() calls
        """Answers as the multi-model server would from the Transformer's result and the context."""

        @staticmethod
        def open(path, method, headers, data):
            """One request through ``Transformer.transform``; a stand-in werkzeug response."""
            if (method, path) != ("POST", "/invocations"):  # the server answers /ping itself, in Java
                return _Answer(404, "application/json", '{"error": "only POST /invocations reaches the Transformer"}')
            context = _ServerContext(model_dir, headers)
            answer = chain.transform([{"body": bytearray(data)}], context)[0]
            return _Answer(context.status, context.content_type, answer)

    chain.validate_and_initialize(model_dir=model_dir)  # model_fn, as on the first request
    return Client(), importlib.import_module(os.environ["SAGEMAKER_PROGRAM"].removesuffix(".py"))


class _Answer:
    """What main() reads from a werkzeug response, for the multi-model path."""

    def __init__(self, status: int, content_type, body):
        self.status_code, self.headers, self._body = status, {"Content-Type": content_type}, body

    def get_data(self, as_text: bool):
        """The body as text (str or bytes answers), or its repr when it is neither (the server could not send it)."""
        assert as_text
        if isinstance(self._body, (bytes, bytearray)):
            return self._body.decode("utf-8")
        return self._body if isinstance(self._body, str) else f"not sendable: {self._body!r}"


def _send(out, message: dict) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def main() -> int:
    """Start the chain, report readiness, then answer each request line until stdin closes."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, never into the protocol
    sys.stdout = sys.stderr
    started = time.perf_counter()
    try:
        client, user = _multi_model_client() if os.environ.get("SAGEMAKER_MULTI_MODEL") else _start()
    except Exception:  # pylint: disable=broad-exception-caught  # any start failure is the answer (no /ping 200)
        _send(out, {"ready": False, "error": traceback.format_exc()})
        return 1
    # pylint: disable-next=protected-access  # which response type our output_fn picks inside this toolkit
    probe = user._container_response("{}", 200)
    _send(out, {"ready": True, "startup_seconds": round(time.perf_counter() - started, 3),
                "python": platform.python_version(),
                "response_class": f"{type(probe).__module__}.{type(probe).__qualname__}",
                "versions": {d.metadata["Name"].lower().replace("_", "-"): d.version
                             for d in importlib.metadata.distributions()}})
    for line in sys.stdin:
        request = json.loads(line)
        began = time.perf_counter()
        response = client.open(request["path"], method=request["method"], headers=request.get("headers") or {},
                               data=request.get("body", "").encode("utf-8"))
        _send(out, {"status": response.status_code, "content_type": response.headers.get("Content-Type"),
                    "body": response.get_data(as_text=True), "seconds": time.perf_counter() - began})
    return 0


if __name__ == "__main__":
    sys.exit(main())
