"""The drift workflow under act: drift opens one retrain PR, a second drift updates it, no drift does nothing."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest
import yaml

from act_support import add_origin, cml_option, git, run_workflow
from fake_github import FakeGitHub
from mlops.capture import Writer
from mlops.cli import main
from mlops.config import load_config
from mlops.package import build
from mlops.registry import Registry
from mlops.server import running
from mlops.stages.datagen import generate

pytestmark = pytest.mark.workflow

WORKFLOW = ".github/workflows/drift.yml"
DRIFT_JOB = "Check production data for drift"
RETRAIN_JOB = "Retrain and open or update the retrain PR"


@pytest.fixture(name="repo")
def fixture_repo(template_repo, tmp_path):
    """The template on main with a bare 'origin' to push to; small model and no cooldown, for speed."""
    config = yaml.safe_load((template_repo / "mlops.yaml").read_text())
    config["model"]["params"]["max_iter"] = 40
    config["compare"]["bootstrap_resamples"] = 200
    config["drift"]["report_html"] = False
    config["retrain"]["cooldown_hours"] = 0
    (template_repo / "mlops.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    git(template_repo, "commit", "-qam", "Test settings")
    add_origin(template_repo, tmp_path)
    return template_repo


def _run(repo, act_world):
    return run_workflow(repo, WORKFLOW, event="schedule", payload={"schedule": "17 6 * * *"},
                        env={"GITHUB_REPOSITORY": "acme/loans"}, world=act_world)


def test_drift_opens_one_pr_then_updates_it_and_clean_data_does_nothing(repo, act_world, tmp_path):
    """Drifted batch: one `cml pr create` with the summary; again: same PR, new commit; clean batch: no cml."""
    remote = tmp_path / "origin.git"
    first = _run(repo, act_world)
    assert first.returncode == 0, first.output[-4000:]
    assert first.job_succeeded(DRIFT_JOB) and first.job_succeeded(RETRAIN_JOB)
    creates = [c for c in first.cml_calls if c["argv"][:2] == ["pr", "create"]]
    assert len(creates) == 1 and creates[0]["pr"]["existing"] is False
    argv = creates[0]["argv"]
    assert cml_option(argv, "branch") == "retrain/drift" and cml_option(argv, "target-branch") == "main"
    body = cml_option(argv, "body")
    assert "## Drift check: drift found" in body and "`annual_income`" in body
    comments = [c for c in first.cml_calls if c["argv"][:2] == ["comment", "update"]]
    assert len(comments) == 1
    assert "--target=pr/101" in comments[0]["argv"] and "--no-publish" in comments[0]["argv"]
    assert "--watermark-title=retrain-comparison" in comments[0]["argv"]
    (comment_text,) = comments[0]["files"].values()
    assert "## Retrain pull request" in comment_text and "held-out rows" in comment_text

    # The pushed branch carries the reviewable change: the manifest and data.source pointing at it.
    manifest = json.loads(git(remote, "show", "retrain/drift:data/manifest.json"))
    assert [f["role"] for f in manifest["files"]] == ["reference", "current"]
    assert yaml.safe_load(git(remote, "show", "retrain/drift:mlops.yaml"))["data"]["source"] == "data/manifest.json"
    assert "reports/retrain/comparison.md" in git(remote, "ls-tree", "-r", "--name-only", "retrain/drift")
    first_sha = git(remote, "rev-parse", "retrain/drift").strip()

    second = _run(repo, act_world)
    assert second.returncode == 0, second.output[-4000:]
    creates = [c for c in second.cml_calls if c["argv"][:2] == ["pr", "create"]]
    assert len(creates) == 1 and creates[0]["pr"]["existing"] is True
    assert len(json.loads((act_world.cml / "prs.json").read_text())) == 1
    assert git(remote, "rev-parse", "retrain/drift").strip() != first_sha

    clean = generate(3000, seed=77, start="2024-07-01", days=31)
    clean.to_csv(repo / "data/production/2024-07.csv", index=False)
    git(repo, "commit", "-qam", "A batch without drift")
    third = _run(repo, act_world)
    assert third.returncode == 0, third.output[-4000:]
    assert third.job_succeeded(DRIFT_JOB) and RETRAIN_JOB not in third.jobs
    assert not third.cml_calls
    assert "no drift" in third.output


def _pulls_of(world):
    """The fake API's open PRs: the ones the recording cml opened (prs.json), by head branch."""
    def answer(call):
        branch = urllib.parse.parse_qs(urllib.parse.urlparse(call.path).query)["head"][0].split(":", 1)[1]
        path = world.cml / "prs.json"
        prs = json.loads(path.read_text()) if path.exists() else {}
        return [{"number": prs[branch]["number"], "head": {"ref": branch}}] if branch in prs else []
    return answer


def test_a_refused_pr_fails_loudly_and_the_next_run_opens_it_then_refreshes_its_body(repo, act_world):
    """PR creation refused: the run fails naming the setting; the next run (in the cooldown) opens the PR; a
    forced run then refreshes the open PR's body instead of leaving the first drift summary."""
    config = yaml.safe_load((repo / "mlops.yaml").read_text())
    config["retrain"]["cooldown_hours"] = 24
    (repo / "mlops.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    git(repo, "commit", "-qam", "A real cooldown")
    git(repo, "push", "-q", "origin", "main")
    with FakeGitHub() as api:
        api.route("GET", "/repos/acme/loans/pulls", body=_pulls_of(act_world))
        api.route("PATCH", r"/repos/acme/loans/pulls/\d+", body={})

        def run(**env):
            return run_workflow(repo, WORKFLOW, event="schedule", payload={"schedule": "17 6 * * *"}, world=act_world,
                                env={"GITHUB_REPOSITORY": "acme/loans", "GITHUB_API_URL": api.url, **env},
                                secrets={"GITHUB_TOKEN": "test-token"})

        refused = run(CML_STANDIN_REFUSE_PR="1")
        assert refused.returncode != 0 and refused.jobs.get(RETRAIN_JOB) == "failed", refused.output[-3000:]
        assert "Allow GitHub Actions to create and approve pull requests" in refused.output

        retried = run()  # within the cooldown, but no open PR carries the branch
        assert retried.returncode == 0, retried.output[-3000:]
        assert "no open pull request carries it" in retried.output
        (create,) = [c for c in retried.cml_calls if c["argv"][:2] == ["pr", "create"]]
        assert create["pr"]["existing"] is False

        # (with an open PR and a fresh branch the cooldown holds: tests/test_retrain.py covers that)
        forced = run_workflow(repo, WORKFLOW, event="workflow_dispatch", world=act_world,
                              payload={"inputs": {"force": "true", "threshold": "", "current": ""}},
                              inputs={"force": "true", "threshold": "", "current": ""},
                              env={"GITHUB_REPOSITORY": "acme/loans", "GITHUB_API_URL": api.url},
                              secrets={"GITHUB_TOKEN": "test-token"})
        assert forced.returncode == 0, forced.output[-3000:]
        (patch,) = api.made("PATCH", r"/repos/acme/loans/pulls/101")
        assert patch.body["body"].startswith("## Drift check") and patch.authorization == "Bearer test-token"


def _serve_and_label(repo, tmp_path) -> None:
    """Train and promote the prod model, serve it clean traffic with capture on, label it flipped, commit all."""
    for stage in ("train", "evaluate"):
        assert main(["--config", str(repo / "mlops.yaml"), stage]) == 0
    loaded = load_config(repo / "mlops.yaml")
    model = loaded.models_dir / (loaded.models_dir / "LATEST").read_text().strip()
    registry = Registry.from_config(loaded)
    registry.set_pointer("prod", registry.register(model))
    traffic = generate(1200, seed=5, start="2024-07-01", days=31)  # the reference's distribution: no data drift
    package = build(loaded, model, tmp_path / "package")
    with running(package.tarball, capture=Writer(str(repo / "traffic"), "loan-default-prod")) as server:
        for start in range(0, len(traffic), 100):
            body = traffic.iloc[start:start + 100].drop(columns=["default"]).to_csv(index=False).encode()
            request = urllib.request.Request(f"{server.url}/invocations", data=body,
                                             headers={"Content-Type": "text/csv"})
            with urllib.request.urlopen(request, timeout=30) as response:  # nosec: 127.0.0.1
                assert response.status == 200
    labels = traffic[["loan_id", "default"]].rename(columns={"loan_id": "id", "default": "label"})
    labels["label"] = 1 - labels["label"]  # the world changed under the model
    labels.to_csv(repo / "data/labels.csv", index=False)
    git(repo, "add", "-f", "mlops.yaml", "traffic", "registry-store", "data/labels.csv")
    git(repo, "commit", "-qm", "Captured traffic, its labels, the prod model")


def test_a_label_only_drop_in_captured_traffic_opens_the_retrain_pr(repo, act_world, tmp_path, monkeypatch):
    """The prod model served clean traffic (captured as SageMaker would); the labels that came back no longer
    follow it: the drift job reads the capture, the performance drop alone fires, and the retrain PR trains on
    the labelled captured rows."""
    config = yaml.safe_load((repo / "mlops.yaml").read_text())
    config["registry"]["uri"] = "registry-store"  # committed, so the workflow's checkout has the prod model
    config["drift"]["current"] = "capture:traffic"
    config["labels"] = {"source": "data/labels.csv"}
    (repo / "mlops.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.chdir(repo)
    _serve_and_label(repo, tmp_path)

    result = _run(repo, act_world)
    assert result.returncode == 0, result.output[-4000:]
    assert result.job_succeeded(DRIFT_JOB) and result.job_succeeded(RETRAIN_JOB)
    (create,) = [c for c in result.cml_calls if c["argv"][:2] == ["pr", "create"]]
    body = cml_option(create["argv"], "body")
    assert "**Retrain triggered by**: performance drop." in body and "No dataset drift" in body
    assert "**Captured traffic**" in body and "12 requests" in body and "coverage 100.0%" in body
    remote = tmp_path / "origin.git"
    manifest = json.loads(git(remote, "show", "retrain/drift:data/manifest.json"))
    assert [(f["uri"], f["role"], f["rows"]) for f in manifest["files"]][-1] == (
        "../reports/retrain/captured.parquet", "current", 1200)
    assert "reports/retrain/captured.parquet" in git(remote, "ls-tree", "-r", "--name-only", "retrain/drift")
