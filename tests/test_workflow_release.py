"""The release workflow, run under act: a vX.Y.Z tag moves (or creates) the major tag vX."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from act_support import git, run_workflow

pytestmark = pytest.mark.workflow


class FakeGitHub(BaseHTTPRequestHandler):
    """Records REST calls; the major tag 'exists' only when ``existing`` says so."""

    calls: list = []
    existing = False

    def _handle(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        FakeGitHub.calls.append((self.command, self.path, body, self.headers.get("Authorization")))
        status = 200 if (self.command == "PATCH" and FakeGitHub.existing) else 201 if self.command == "POST" else 422
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"{}")

    do_PATCH = do_POST = _handle

    def log_message(self, *args):  # pylint: disable=arguments-differ  # silence the default stderr log
        return


@pytest.fixture(name="fake_github")
def fixture_fake_github():
    """A fake GitHub REST API on 127.0.0.1."""
    FakeGitHub.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("existing", [True, False])
def test_release_tag_moves_major_tag(template_repo, act_world, fake_github, existing):
    """Pushing v1.4.2 force-moves v1 to the release commit, creating v1 when it does not exist yet."""
    FakeGitHub.existing = existing
    sha = git(template_repo, "rev-parse", "HEAD").strip()
    result = run_workflow(
        template_repo, ".github/workflows/release.yml", event="push",
        payload={"ref": "refs/tags/v1.4.2", "after": sha, "repository": {"full_name": "acme/models"}},
        env={"GITHUB_API_URL": fake_github, "GITHUB_REPOSITORY": "acme/models"}, world=act_world,
    )
    assert result.returncode == 0, result.output[-3000:]
    methods = [(method, path) for method, path, _, _ in FakeGitHub.calls]
    assert methods[0] == ("PATCH", "/repos/acme/models/git/refs/tags/v1")
    assert FakeGitHub.calls[0][2] == {"sha": sha, "force": True}
    if existing:
        assert len(methods) == 1
    else:
        assert methods[1] == ("POST", "/repos/acme/models/git/refs")
        assert FakeGitHub.calls[1][2] == {"ref": "refs/tags/v1", "sha": sha}
    assert FakeGitHub.calls[0][3].startswith("Bearer ")
