"""The push-retry loop on a real remote: another pipeline pushes right before each of our pushes.

The competing pushes are real commits to the real bare repo; only their timing is arranged (they land
between our clone and our push), which is what makes the race deterministic.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_cli import bump as bump_mod
from gitops_cli import deployrepo
from gitops_cli.errors import PushRetriesExhaustedError
from gitops_cli.imageref import parse
from tests.fixtures.gitremotes import DeployRemote

pytestmark = pytest.mark.integration

API = "registry.example.com/team/api"


def _race(monkeypatch: pytest.MonkeyPatch, remote: DeployRemote, times: int, change: dict[str, str]) -> list:
    """Before each of our first `times` pushes, another pipeline pushes `change` (file -> content) first."""
    real_push = deployrepo.push
    calls: list[str] = []

    def push(repo: Path, target: deployrepo.Remote, branch: str, **kwargs: object) -> deployrepo.PushOutcome:
        if len(calls) < times:
            for rel, content in change.items():
                remote.commit_change(rel, content + f"# competing push {len(calls)}\n", "competing pipeline")
        calls.append(branch)
        return real_push(repo, target, branch, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(deployrepo, "push", push)
    return calls


def _request(remote: DeployRemote, image: str, retries: int = 10) -> bump_mod.BumpRequest:
    return bump_mod.BumpRequest(deploy_repo=remote.url, images=[parse(image)], retries=retries)


def test_rejected_push_is_reapplied_on_the_new_head(
    deploy_remote: DeployRemote, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _race(monkeypatch, deploy_remote, 3, {"apps/search/rollout.yaml": "kind: Rollout\n"})
    sleeps: list[float] = []
    result = bump_mod.bump(_request(deploy_remote, f"{API}:2.0.0"), sleep=sleeps.append)
    assert result.pushed and result.attempts == 4 and len(calls) == 4
    assert len(sleeps) == 3 and all(0 <= s <= bump_mod.BACKOFF_CAP for s in sleeps)
    log = deploy_remote.log("%s")
    assert log[:4] == [f"Update {API} image to {API}:2.0.0"] + ["competing pipeline"] * 3
    assert deploy_remote.git("rev-list", "--merges", "main").strip() == ""
    assert result.commit == deploy_remote.head()
    assert deploy_remote.changed_files() == ["apps/api/deployment.yaml"]
    assert b"# competing push 2" in deploy_remote.show("apps/search/rollout.yaml")  # nothing lost


def test_the_backoff_doubles_up_to_its_cap(deploy_remote: DeployRemote, monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry n waits a random time up to BACKOFF_BASE * 2**n seconds, never more than BACKOFF_CAP (8 s) however
    many retries: the drawn bound is recorded (random.uniform gives its upper end)."""
    _race(monkeypatch, deploy_remote, 7, {"README.md": "busy\n"})
    monkeypatch.setattr(bump_mod.random, "uniform", lambda low, high: high)
    sleeps: list[float] = []
    result = bump_mod.bump(_request(deploy_remote, f"{API}:2.0.0"), sleep=sleeps.append)
    assert result.pushed and result.attempts == 8
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0] and bump_mod.BACKOFF_CAP == 8.0


def test_remote_that_already_has_the_bump_means_done(
    deploy_remote: DeployRemote, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another pipeline pushes the very same bump first: after re-applying there is nothing to push."""
    bumped = deploy_remote.seed["apps/api/deployment.yaml"].replace(f"{API}:1.0.0", f"{API}:2.0.0")
    bumped = bumped.replace(f'"--image={API}:2.0.0"', f'"--image={API}:1.0.0"')
    _race(monkeypatch, deploy_remote, 1, {"apps/api/deployment.yaml": bumped})
    result = bump_mod.bump(_request(deploy_remote, f"{API}:2.0.0"), sleep=lambda s: None)
    assert result.up_to_date and not result.pushed and result.commit is None
    assert deploy_remote.log("%s")[0] == "competing pipeline"


def test_a_file_added_by_the_competing_push_is_bumped_too(
    deploy_remote: DeployRemote, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clone holds only the files that named the image; after a fetch the selection is redone."""
    _race(monkeypatch, deploy_remote, 1, {"apps/api-canary/deployment.yaml": f"image: {API}:1.0.0\n"})
    result = bump_mod.bump(_request(deploy_remote, f"{API}:2.0.0"), sleep=lambda s: None)
    assert result.pushed and result.attempts == 2
    assert deploy_remote.changed_files() == ["apps/api-canary/deployment.yaml", "apps/api/deployment.yaml"]
    assert deploy_remote.show("apps/api-canary/deployment.yaml") == f"image: {API}:2.0.0\n# competing push 0\n".encode()


def test_retries_exhausted_exits_12(deploy_remote: DeployRemote, monkeypatch: pytest.MonkeyPatch) -> None:
    before_count = len(deploy_remote.log())
    _race(monkeypatch, deploy_remote, 100, {"README.md": "busy\n"})
    with pytest.raises(PushRetriesExhaustedError) as exc:
        bump_mod.bump(_request(deploy_remote, f"{API}:2.0.0", retries=2), sleep=lambda s: None)
    assert exc.value.exit_code == 12 and "after 2 retries" in exc.value.message
    subjects = deploy_remote.log("%s")
    assert len(subjects) == before_count + 3 and set(subjects[:3]) == {"competing pipeline"}


def test_a_retry_in_a_local_checkout_never_overwrites_an_ignored_file(
    deploy_remote: DeployRemote, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The competing push adds a file the user has, ignored, in the checkout: the fast-forward of the retry
    (reset --keep) overwrote it; it is refused (exit 4) and the checkout put back."""
    from gitops_cli.errors import DirtyTreeError
    from tests.fixtures.gitremotes import git

    checkout = deploy_remote.clone(tmp_path / "checkout")
    (checkout / ".git" / "info" / "exclude").write_text("*.local\n")
    mine = checkout / "notes.local"
    mine.write_text("my own notes\n")
    before = git("rev-parse", "HEAD", cwd=checkout).strip()
    calls = _race(monkeypatch, deploy_remote, 1, {"notes.local": "from origin\n"})
    request = bump_mod.BumpRequest(deploy_repo=str(checkout), images=[parse(f"{API}:2.0.0")],
                                   author="Bot <bot@x.org>")
    with pytest.raises(DirtyTreeError, match=r"would overwrite untracked files \(notes.local\)") as exc:
        bump_mod.bump(request, sleep=lambda s: None)
    assert exc.value.exit_code == 4 and len(calls) == 1
    assert mine.read_text() == "my own notes\n"
    assert git("rev-parse", "HEAD", cwd=checkout).strip() == before
    assert deploy_remote.log("%s")[0] == "competing pipeline"
