"""`gitops bump` (and `rollback`) on a LOCAL checkout whose state a bump must not work around: an operation
in progress, a sparse checkout or flagged index entries that hide files in its scope, a remote that is not
named `origin` or has a push URL of its own, and root bumping another user's checkout."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.gitremotes import FIXTURE_IDENTITY, git, make_bare_remote
from tests.integration.test_bump import no_identity_env

pytestmark = pytest.mark.integration

APP = "team/app"
FILES = {
    "app/dep.yaml": ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  template:\n"
                     "    spec:\n      containers:\n      - name: app\n        image: team/app:v1\n"),
    "app/kustomization.yaml": "resources: [dep.yaml]\nimages:\n- name: team/app\n  newTag: v1\n",
    "notes.txt": "a file that is no manifest\n",
}


def _head(repo: Path, rev: str = "HEAD") -> str:
    return git("rev-parse", rev, cwd=repo).strip()


def _bump(gitops, checkout: Path, tmp_path: Path, *extra: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{APP}:v2", *extra],
                  env=no_identity_env(tmp_path, **(env or {})))


def _side_branch(checkout: Path) -> str:
    """A branch `wip` with one commit changing notes.txt, and a commit on main (pushed) changing it
    otherwise: `wip` does not apply on main without a conflict.  The checkout stays on main."""
    git("checkout", "--quiet", "-b", "wip", cwd=checkout)
    (checkout / "notes.txt").write_text("changed on wip\n")
    git("commit", "--quiet", "-am", "wip", cwd=checkout)
    git("checkout", "--quiet", "main", cwd=checkout)
    (checkout / "notes.txt").write_text("changed on main\n")
    git("commit", "--quiet", "-am", "main", cwd=checkout)
    git("push", "--quiet", "origin", "main", cwd=checkout)
    return _head(checkout, "wip")


def _stop_with_a_conflict(checkout: Path, *args: str) -> None:
    """Run a git command that stops on notes.txt's conflict, then resolve it as HEAD has it: a clean tree."""
    res = git_status(checkout, *args)
    assert res != 0
    git("checkout", "HEAD", "--", "notes.txt", cwd=checkout)
    assert git("status", "--porcelain", "--untracked-files=no", cwd=checkout) == ""


def git_status(cwd: Path, *args: str) -> int:
    """git's exit status (a command expected to fail)."""
    return subprocess.run(["git", *args], cwd=cwd, env=dict(os.environ, **FIXTURE_IDENTITY),
                          capture_output=True).returncode


@pytest.mark.parametrize("operation", ["merge", "cherry-pick", "revert", "rebase"])
def test_an_operation_in_progress_is_refused_touching_nothing(operation: str, gitops, tmp_path: Path) -> None:
    """A merge (or cherry-pick, ...) stopped with a clean tree: the bump edited the files, failed at its
    commit (exit 10, `cannot do a partial commit during a merge`) and its reset aborted the user's merge."""
    remote = make_bare_remote(tmp_path / "remotes", files=FILES)
    checkout = remote.clone(tmp_path / "co")
    wip = _side_branch(checkout)
    if operation == "merge":
        git("merge", "--quiet", "-s", "ours", "--no-commit", "wip", cwd=checkout)
        marker, said = "MERGE_HEAD", "a merge"
    elif operation == "cherry-pick":
        _stop_with_a_conflict(checkout, "cherry-pick", wip)
        marker, said = "CHERRY_PICK_HEAD", "a cherry-pick"
    elif operation == "revert":
        _stop_with_a_conflict(checkout, "revert", "--no-edit", wip)  # its undoing conflicts with main
        marker, said = "REVERT_HEAD", "a revert"
    else:
        git("rebase", "--quiet", "-i", "main", "wip", cwd=checkout,
            env={"GIT_SEQUENCE_EDITOR": "sed -i '1i break'"})
        marker, said = "rebase-merge", "a rebase"
    assert (checkout / ".git" / marker).exists()
    before, remote_before = _head(checkout), remote.head()
    res = _bump(gitops, checkout, tmp_path)
    assert res.returncode == 4, res.stderr
    assert f"{checkout.resolve()}: {said} is in progress there; nothing was changed" in res.stderr
    assert "finish it or abort it" in res.stderr
    assert (checkout / ".git" / marker).exists()  # the user's operation is still there
    assert _head(checkout) == before and remote.head() == remote_before
    assert "team/app:v1" in (checkout / "app/dep.yaml").read_text()
