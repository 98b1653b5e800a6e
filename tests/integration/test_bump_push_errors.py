"""What a bump reports when its push fails: the failure git reports is checked against the remote (a push
that went through is never reported as failed), and a refusal that is no race is not retried as one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.gitremotes import git, make_bare_remote
from tests.integration.test_bump import API, API_FILE, no_identity_env

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("local", [False, True], ids=["url", "local-checkout"])
def test_a_push_the_remote_took_is_reported_as_pushed_though_git_saw_an_error(
        local: bool, http_git_server, gitops, tmp_path: Path) -> None:
    """A proxy forwards the push to the server, which applies it, and answers the client 502: git push
    fails.  It was exit 10 with nothing on stdout (and a local checkout reset "(the bump was not pushed)")
    while the commit was on the remote."""
    remote = make_bare_remote(tmp_path / "srv")
    server = http_git_server(tmp_path / "srv", push_answer=502)
    target = server.url()
    if local:
        target = str(tmp_path / "checkout")
        git("clone", "--quiet", server.url(), target)
    res = gitops(["bump", "--deploy-repo", target, "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == remote.head()
    assert f"{API}:2.0.0" in remote.show(API_FILE).decode()
    assert "git push reported a failure" in res.stderr and "502" in res.stderr
    assert "the push went through" in res.stderr
    if local:  # the bump commit stays: it is origin's head
        assert "reset to" not in res.stderr
        assert git("rev-parse", "HEAD", "refs/remotes/origin/main", cwd=target).split() == [remote.head()] * 2


def test_a_push_the_remote_did_not_take_is_still_a_failure(http_git_server, gitops, tmp_path: Path) -> None:
    """The same 502, but the push never reached the server: exit 10, and the local checkout is put back."""
    remote = make_bare_remote(tmp_path / "srv")
    before = remote.head()
    server = http_git_server(tmp_path / "srv", push_answer=502, push_dropped=True)
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", server.url(), str(checkout))
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 10, res.stderr
    assert res.stdout == "" and "502" in res.stderr
    assert f"reset to {before[:12]}, where it was before the bump (the bump was not pushed)" in res.stderr
    assert remote.head() == before == git("rev-parse", "HEAD", cwd=checkout).strip()


@pytest.mark.parametrize("local", [False, True], ids=["url", "local-checkout"])
def test_a_branch_the_server_cannot_update_is_no_race(local: bool, gitops, tmp_path: Path) -> None:
    """A stale `refs/heads/main.lock` on the server: every push is `[remote rejected] (failed to update ref)`,
    which a lost ref-update race gives too.  It was retried with backoff up to --retries and ended in "the
    remote kept moving" (exit 12), never showing the server's reason.  The branch did not move: after one
    more try, exit 10 quoting the server's lines."""
    remote = make_bare_remote(tmp_path / "srv")
    before = remote.head()
    target = remote.url
    if local:
        target = str(remote.clone(tmp_path / "checkout"))
    (remote.path / "refs" / "heads" / "main.lock").write_text("")
    res = gitops(["bump", "--deploy-repo", target, "--image", f"{API}:2.0.0", "--retries", "5"],
                 env=no_identity_env(tmp_path))
    assert res.returncode == 10, res.stderr
    assert res.stderr.count("push rejected ([remote rejected] (failed to update ref))") == 2
    error, hint = res.stderr.strip().splitlines()[-2:]
    assert error.startswith("error: push to ") and "did not move" in error, error
    assert hint.startswith("hint: the remote says: error: cannot lock ref 'refs/heads/main'") and "File exists" in hint
    assert remote.head() == before and res.stdout == ""
    if local:  # no bump commit left behind
        assert git("rev-parse", "HEAD", cwd=target).strip() == before
        assert git("status", "--porcelain", cwd=target) == ""


_DELETE_BEFORE_THE_PUSH = '''
import os, subprocess

import gitops_cli.deployrepo as deployrepo

real = deployrepo.push


def push(repo, remote, branch, *args, **kwargs):  # another job deletes the deploy branch meanwhile
    subprocess.run(["git", "update-ref", "-d", f"refs/heads/{branch}"], cwd=os.environ["DELETE_IN"], check=True)
    return real(repo, remote, branch, *args, **kwargs)


deployrepo.push = push
'''


@pytest.mark.parametrize("local", [False, True], ids=["url", "local-checkout"])
def test_a_deploy_branch_deleted_while_the_bump_runs_is_not_re_created(local: bool, gitops, tmp_path: Path) -> None:
    """The deploy branch existed when the bump fetched it and is deleted before its push (by a sitecustomize of
    this test, another branch left): the push expects it where it was (a lease), so it is refused, not pushed
    as a new branch on the old base (which was exit 0 from a clone, and `couldn't find remote ref` from a
    local checkout)."""
    remote = make_bare_remote(tmp_path / "srv")
    git("update-ref", "refs/heads/keep", remote.head(), cwd=remote.path)
    before = remote.head()
    target = remote.url
    if local:
        target = str(tmp_path / "checkout")
        git("clone", "--quiet", remote.url, target)
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(_DELETE_BEFORE_THE_PUSH)
    env = dict(no_identity_env(tmp_path), PYTHONPATH=str(shim), DELETE_IN=str(remote.path))
    res = gitops(["bump", "--deploy-repo", target, "--image", f"{API}:2.0.0"], env=env)
    assert res.returncode == 10 and res.stdout == "", res.stderr
    assert (f"refused: the branch main was deleted on the remote while the bump ran (it was at {before[:12]}); "
            "it was not re-created") in res.stderr
    assert git("for-each-ref", "--format=%(refname)", cwd=remote.path).split() == ["refs/heads/keep"]
    if local:  # put back where it was, as after any failed push
        assert git("rev-parse", "HEAD", cwd=target).strip() == before
