"""A fake GitHub REST API on 127.0.0.1 for workflow and bootstrap tests: routes you declare, calls it records.

``FakeGitHub().route("GET", r"/repos/acme/x/pulls", body=[...])`` answers matching requests
(the path is matched without its query string; ``status`` and ``body`` may be a callable of the
request); every request is recorded as ``(method, path with query, JSON body, Authorization)``.
Unrouted requests get 404 with GitHub's error shape, so a test sees what the code asked for.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Call:
    """One request the fake received."""

    method: str
    path: str
    body: Any
    authorization: str | None

    @property
    def route(self) -> str:
        """The path without its query string."""
        return self.path.split("?", 1)[0]


@dataclass
class FakeGitHub:
    """Routes, recorded calls, and the server's URL once started."""

    routes: list = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def route(self, method: str, pattern: str, body: Any = None, status: int | Callable = 200) -> FakeGitHub:
        """Answer ``method`` requests whose path fully matches ``pattern``; later routes win."""
        self.routes.insert(0, (method, re.compile(pattern), body, status))
        return self

    def answer(self, call: Call) -> tuple[int, Any]:
        """The status and body for one call."""
        for method, pattern, body, status in self.routes:
            if method == call.method and pattern.fullmatch(call.route):
                status = status(call) if callable(status) else status
                return status, body(call) if callable(body) else body
        return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}

    def made(self, method: str, pattern: str) -> list[Call]:
        """The recorded calls of ``method`` whose path matches ``pattern``."""
        return [c for c in self.calls if c.method == method and re.fullmatch(pattern, c.route)]

    def __enter__(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            """Dispatches every method to the fake's routes."""

            def _handle(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                call = Call(self.command, self.path, json.loads(raw) if raw else None,
                            self.headers.get("Authorization"))
                fake.calls.append(call)
                status, body = fake.answer(call)
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args):  # pylint: disable=arguments-differ  # keep test output quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
