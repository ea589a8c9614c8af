"""The release workflow, run under act: a vX.Y.Z tag moves (or creates) the major tag vX."""

from __future__ import annotations

import pytest

from act_support import git, run_workflow
from fake_github import FakeGitHub

pytestmark = pytest.mark.workflow


@pytest.mark.parametrize("existing", [True, False])
def test_release_tag_moves_major_tag(template_repo, act_world, existing):
    """Pushing v1.4.2 force-moves v1 to the release commit, creating v1 when it does not exist yet."""
    sha = git(template_repo, "rev-parse", "HEAD").strip()
    with FakeGitHub() as api:
        api.route("PATCH", r"/repos/acme/models/git/refs/tags/v1", body={}, status=200 if existing else 422)
        api.route("POST", r"/repos/acme/models/git/refs", body={}, status=201)
        result = run_workflow(
            template_repo, ".github/workflows/release.yml", event="push",
            payload={"ref": "refs/tags/v1.4.2", "after": sha, "repository": {"full_name": "acme/models"}},
            env={"GITHUB_API_URL": api.url, "GITHUB_REPOSITORY": "acme/models"}, world=act_world,
        )
    assert result.returncode == 0, result.output[-3000:]
    calls = api.calls
    assert (calls[0].method, calls[0].path) == ("PATCH", "/repos/acme/models/git/refs/tags/v1")
    assert calls[0].body == {"sha": sha, "force": True}
    if existing:
        assert len(calls) == 1
    else:
        assert (calls[1].method, calls[1].path) == ("POST", "/repos/acme/models/git/refs")
        assert calls[1].body == {"ref": "refs/tags/v1", "sha": sha}
    assert calls[0].authorization.startswith("Bearer ")
