"""A rollback whose push loses to another push: re-applied on the new head only when that push left the
image where the rollback found it; a newer value of the image stops it (exit 12) rather than be undone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.cli import run_gitops
from tests.fixtures.gitremotes import DeployRemote, git

pytestmark = pytest.mark.integration

API = "registry.example.com/team/api"
API_FILE = "apps/api/deployment.yaml"

# pre-receive: the first push to main whose new commit's subject matches the pattern in
# $GIT_DIR/interleave-pattern gets main moved to refs/heads/pending first: a push landing just before it.
INTERLEAVE_HOOK = """#!/bin/sh
pat=$(cat "$GIT_DIR/interleave-pattern" 2>/dev/null) || exit 0
while read old new ref; do
  [ "$ref" = refs/heads/main ] || continue
  [ -e "$GIT_DIR/interleave-done" ] && continue
  if git log -1 --format=%s "$new" | grep -q -- "$pat"; then
    touch "$GIT_DIR/interleave-done"
    env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES \\
      git update-ref refs/heads/main refs/heads/pending
  fi
done
exit 0
"""


def _gitops(*args: str) -> str:
    res = run_gitops(list(args))
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def _interleave(remote: DeployRemote, pattern: str) -> None:
    hook = remote.path / "hooks" / "pre-receive"
    hook.write_text(INTERLEAVE_HOOK)
    hook.chmod(0o755)
    (remote.path / "interleave-pattern").write_text(pattern)


def _rollback(target: str) -> subprocess.CompletedProcess[str]:
    return run_gitops(["rollback", "--deploy-repo", target, "--image", API, "--no-verify"])


@pytest.mark.parametrize("local", [False, True], ids=["url", "local-checkout"])
def test_a_bump_landing_just_before_the_rollback_is_not_undone(local: bool, deploy_remote: DeployRemote,
                                                                tmp_path: Path) -> None:
    """The rollback computes "from 1.1.0 to 1.0.0"; a 1.2.0 bump lands just before its push.  It used to
    re-apply "set to 1.0.0" on top of 1.2.0, with `Rollback-Of:` the 1.1.0 commit, and exit 0."""
    url = deploy_remote.url
    rolled = _gitops("bump", "--deploy-repo", url, "--image", f"{API}:1.1.0")
    target = str(deploy_remote.clone(tmp_path / "checkout")) if local else url
    newer = _gitops("bump", "--deploy-repo", url, "--image", f"{API}:1.2.0", "--push-branch", "pending")
    assert deploy_remote.head() == rolled
    _interleave(deploy_remote, "Roll back")
    res = _rollback(target)
    assert res.returncode == 12, res.stderr
    assert (remote_moved := res.stderr.strip().splitlines()[-2]).startswith(
        f"error: {API} was changed since this rollback read its history: it is now at 1.2.0, not 1.1.0 "
        f"(commit {rolled[:12]})"), remote_moved
    assert res.stdout == ""
    assert deploy_remote.head() == newer  # the newer deploy stays; no rollback commit
    assert f"{API}:1.2.0" in deploy_remote.show(API_FILE).decode()
    if local:  # put back where it was
        assert git("rev-parse", "HEAD", cwd=target).strip() == rolled
        assert git("status", "--porcelain", cwd=target) == ""


def test_a_push_leaving_the_image_alone_is_rolled_back_over(deploy_remote: DeployRemote) -> None:
    """Another file's change lands just before the rollback's push: re-applied on it, as any bump."""
    url = deploy_remote.url
    rolled = _gitops("bump", "--deploy-repo", url, "--image", f"{API}:1.1.0")
    other = "registry.example.com/team/worker"
    _gitops("bump", "--deploy-repo", url, "--image", f"{other}:7.0.0", "--push-branch", "pending")
    _interleave(deploy_remote, "Roll back")
    res = _rollback(url)
    assert res.returncode == 0, res.stderr
    assert "push rejected" in res.stderr  # it did race
    assert deploy_remote.head() == res.stdout.strip()
    assert deploy_remote.log("%s")[:2] == [f"Roll back {API} to 1.0.0", f"Update {other} image to {other}:7.0.0"]
    assert f"Rollback-Of: {rolled}" in deploy_remote.message()
    assert f"{API}:1.0.0" in deploy_remote.show(API_FILE).decode()


def test_a_local_checkout_behind_a_newer_deploy_is_not_rolled_back_over_it(deploy_remote: DeployRemote,
                                                                           tmp_path: Path) -> None:
    """A local checkout's history is its own: 1.1.0 is current there, but origin is at 1.2.0 already.  The
    rollback's bump fast-forwards the checkout to origin's head first, and used to undo 1.2.0 there."""
    url = deploy_remote.url
    rolled = _gitops("bump", "--deploy-repo", url, "--image", f"{API}:1.1.0")
    checkout = deploy_remote.clone(tmp_path / "checkout")
    newer = _gitops("bump", "--deploy-repo", url, "--image", f"{API}:1.2.0")
    res = _rollback(str(checkout))
    assert res.returncode == 12, res.stderr
    assert f"it is now at 1.2.0, not 1.1.0 (commit {rolled[:12]})" in res.stderr
    assert deploy_remote.head() == newer
    assert git("rev-parse", "HEAD", cwd=checkout).strip() == rolled and git("status", "--porcelain", cwd=checkout) == ""
