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


def _sparse_checkout(remote, where: Path, *patterns: str) -> Path:  # type: ignore[no-untyped-def]
    checkout = remote.clone(where)
    git("sparse-checkout", "set", "--no-cone", *patterns, cwd=checkout)
    return checkout


def test_a_sparse_checkout_leaving_out_a_yaml_file_is_refused(gitops, tmp_path: Path) -> None:
    """The kustomization left out of the sparse checkout kept `newTag: v1` (which wins when kustomize renders)
    while the bump of dep.yaml was pushed, exit 0: the old image stayed deployed."""
    remote = make_bare_remote(tmp_path / "remotes", files=FILES)
    checkout = _sparse_checkout(remote, tmp_path / "co", "/*", "!/app/kustomization.yaml")
    before = remote.head()
    for mode in ([], ["--dry-run"], ["--no-commit"]):
        res = _bump(gitops, checkout, tmp_path, *mode)
        assert res.returncode == 4, (mode, res.stderr)
        assert (f"{checkout.resolve()}: its sparse checkout leaves out 1 tracked YAML file(s) in the bump's scope "
                "(app/kustomization.yaml)") in res.stderr
        assert "git sparse-checkout disable" in res.stderr and "URL" in res.stderr
    assert remote.head() == before and _head(checkout) == before
    assert "team/app:v1" in (checkout / "app/dep.yaml").read_text()
    assert git("status", "--porcelain", cwd=checkout) == ""
    git("sparse-checkout", "disable", cwd=checkout)  # the hint's fix
    res = _bump(gitops, checkout, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "newTag: v2" in remote.show("app/kustomization.yaml").decode()


def test_a_cone_sparse_checkout_without_the_app_names_the_checkout(gitops, tmp_path: Path) -> None:
    """Cone mode leaving out app/: exit 3 `no reference ... found in file:///...`, naming origin."""
    files = dict(FILES, **{"other/app.yaml": "image: team/other:v1\n",
                           "third/Kustomization": "images:\n- name: team/app\n  newTag: v1\n"})
    remote = make_bare_remote(tmp_path / "remotes", files=files)
    checkout = remote.clone(tmp_path / "co")
    git("sparse-checkout", "set", "other", cwd=checkout)
    res = _bump(gitops, checkout, tmp_path)
    assert res.returncode == 4, res.stderr
    assert "sparse checkout leaves out 3 tracked YAML file(s) in the bump's scope (app/dep.yaml, " \
           "app/kustomization.yaml, third/Kustomization)" in res.stderr
    res = gitops(["bump", "--deploy-repo", str(checkout), "--path", "other", "--image", "team/other:v2"],
                 env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr  # nothing in that scope is left out
    assert remote.show("other/app.yaml").decode() == "image: team/other:v2\n"


def test_a_yaml_file_origin_adds_outside_the_sparse_checkout_is_refused_after_the_fetch(gitops,
                                                                                      tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path / "remotes", files=FILES)
    checkout = _sparse_checkout(remote, tmp_path / "co", "/app/", "/notes.txt")
    before = _head(checkout)
    remote.commit_change("prod/values.yaml", "image: team/app:v1\n")  # outside the sparse checkout
    res = _bump(gitops, checkout, tmp_path)
    assert res.returncode == 4, res.stderr
    assert "leaves out 1 tracked YAML file(s) in the bump's scope (prod/values.yaml)" in res.stderr
    assert _head(checkout) == before and git("status", "--porcelain", cwd=checkout) == ""
    assert remote.log("%s")[0] == "unrelated change"


def test_a_rollback_of_a_sparse_checkout_is_refused(gitops, tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path / "remotes", files=FILES)
    checkout = remote.clone(tmp_path / "co")
    assert _bump(gitops, checkout, tmp_path).returncode == 0
    bumped = remote.head()
    git("sparse-checkout", "set", "--no-cone", "/*", "!/app/kustomization.yaml", cwd=checkout)
    res = gitops(["rollback", "--deploy-repo", str(checkout), "--image", APP, "--no-verify"],
                 env=no_identity_env(tmp_path))
    assert res.returncode == 4, res.stderr
    assert "sparse checkout leaves out 1 tracked YAML file(s)" in res.stderr
    assert remote.head() == bumped == _head(checkout)


@pytest.mark.parametrize("flag", ["--skip-worktree", "--assume-unchanged"])
def test_a_flagged_file_in_scope_is_refused_touching_nothing(flag: str, gitops, tmp_path: Path) -> None:
    """skip-worktree: `git add` failed (exit 10, git's reason lost), the edit survived the reset and stacked
    up with each re-run.  assume-unchanged: the bump went through and cleared the user's flag in silence."""
    remote = make_bare_remote(tmp_path / "remotes", files=FILES)
    checkout = remote.clone(tmp_path / "co")
    git("update-index", flag, "app/kustomization.yaml", cwd=checkout)
    flags = git("ls-files", "-v", cwd=checkout)
    before = remote.head()
    res = _bump(gitops, checkout, tmp_path)
    assert res.returncode == 4, res.stderr
    assert (f"{checkout.resolve()}: 1 file(s) in the bump's scope are marked skip-worktree or assume-unchanged "
            "in the index (app/kustomization.yaml)") in res.stderr
    assert "git update-index --no-skip-worktree" in res.stderr
    assert git("ls-files", "-v", cwd=checkout) == flags  # the flag stays
    assert (checkout / "app/kustomization.yaml").read_text() == FILES["app/kustomization.yaml"]
    assert "team/app:v1" in (checkout / "app/dep.yaml").read_text()
    assert remote.head() == before == _head(checkout)
    # outside the bump's scope, a flagged file does not matter
    git("update-index", flag, "notes.txt", cwd=checkout)
    git("update-index", flag.replace("--", "--no-"), "app/kustomization.yaml", cwd=checkout)
    res = _bump(gitops, checkout, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "newTag: v2" in remote.show("app/kustomization.yaml").decode()


def test_the_branchs_upstream_remote_is_used_whatever_its_name(gitops, tmp_path: Path) -> None:
    """A checkout cloned with `-o upstream`: "committed (not pushed: no remote)", exit 0, and the checkout left
    ahead of upstream/main, each later bump stacking up."""
    remote = make_bare_remote(tmp_path / "remotes", files=FILES)
    checkout = tmp_path / "co"
    git("clone", "--quiet", "-o", "upstream", remote.url, str(checkout))
    for tag in ("v2", "v3"):
        res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{APP}:{tag}"],
                     env=no_identity_env(tmp_path))
        assert res.returncode == 0, res.stderr
        assert "pushed to main" in res.stderr and "not pushed" not in res.stderr
        assert remote.head() == res.stdout.strip() == _head(checkout) == _head(checkout, "upstream/main")
    assert "newTag: v3" in remote.show("app/kustomization.yaml").decode()


def test_several_remotes_and_no_upstream_is_refused_naming_them(gitops, tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path / "remotes", files=FILES)
    other = make_bare_remote(tmp_path / "other", files=FILES)
    checkout = remote.clone(tmp_path / "co")
    git("remote", "add", "mirror", other.url, cwd=checkout)
    git("fetch", "--quiet", "mirror", cwd=checkout)
    git("branch", "--quiet", "--unset-upstream", cwd=checkout)
    before = remote.head()
    res = _bump(gitops, checkout, tmp_path)
    assert res.returncode == 4, res.stderr
    assert (f"{checkout.resolve()}: branch main has no upstream, and the checkout has several remotes "
            "(mirror, origin)") in res.stderr
    assert "git branch --set-upstream-to REMOTE/main" in res.stderr
    assert remote.head() == before == _head(checkout) and git("status", "--porcelain", cwd=checkout) == ""
    git("branch", "--quiet", "--set-upstream-to", "mirror/main", cwd=checkout)  # the hint's fix: pushed there
    git("reset", "--quiet", "--hard", "mirror/main", cwd=checkout)
    res = _bump(gitops, checkout, tmp_path)
    assert res.returncode == 0, res.stderr
    assert other.head() == res.stdout.strip() and remote.head() == before


def test_a_branch_git_pushes_to_another_remote_is_refused_naming_the_setting(gitops, tmp_path: Path) -> None:
    """A triangular checkout (fetch from upstream, push to a fork: branch.<b>.pushRemote, remote.pushDefault):
    the bump was pushed to the upstream, where `git push` would not push.  Now exit 4 naming the setting,
    before any work, nothing changed anywhere; a setting naming the upstream itself is pushed there."""
    upstream = make_bare_remote(tmp_path / "remotes", files=FILES)
    fork = tmp_path / "fork.git"
    git("clone", "--quiet", "--bare", upstream.url, str(fork))
    checkout = upstream.clone(tmp_path / "co")
    git("remote", "add", "fork", fork.as_uri(), cwd=checkout)
    before, forked = upstream.head(), _head(fork, "main")
    for key in ("branch.main.pushRemote", "remote.pushDefault"):
        git("config", key, "fork", cwd=checkout)
        assert git("for-each-ref", "--format=%(push:remotename)", "refs/heads/main", cwd=checkout).strip() == "fork"
        res = _bump(gitops, checkout, tmp_path)
        assert res.returncode == 4, res.stderr
        assert [ln for ln in res.stderr.splitlines() if ln.startswith(("error:", "hint:"))] == [
            f"error: {checkout.resolve()}: `git push` pushes branch main to 'fork' ({key}), not to origin (its "
            "upstream, branch.main.remote), which a bump fetches from: gitops fetches, commits and pushes one "
            "remote's branch; nothing was changed",
            "hint: to bump origin's main: `git config branch.main.pushRemote origin`; to bump the branch fork "
            "holds, give its URL as --deploy-repo (gitops clones it)"]
        assert " -> " not in res.stderr  # before any work
        assert upstream.head() == before == _head(checkout) and _head(fork, "main") == forked
        assert git("status", "--porcelain", cwd=checkout) == ""
        if key.startswith("branch."):
            git("config", "--unset", key, cwd=checkout)
    git("config", "branch.main.pushRemote", "origin", cwd=checkout)  # the hint's fix (it beats pushDefault)
    assert git("for-each-ref", "--format=%(push:remotename)", "refs/heads/main", cwd=checkout).strip() == "origin"
    res = _bump(gitops, checkout, tmp_path)
    assert res.returncode == 0, res.stderr
    assert upstream.head() == res.stdout.strip() == _head(checkout) and _head(fork, "main") == forked
    res = gitops(["bump", "--deploy-repo", fork.as_uri(), "--image", f"{APP}:v3"],  # the other fix: its URL
                 env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert _head(fork, "main") == res.stdout.strip() != forked and "newTag: v3" in git(
        "show", "main:app/kustomization.yaml", cwd=fork)


def test_a_branch_tracking_a_branch_of_another_name_is_refused(gitops, tmp_path: Path) -> None:
    """main tracks origin's release (branch.main.merge): `git push` refuses (push.default simple) or pushes to
    release (upstream), where the bump was pushed to origin's main.  Now exit 4 before any work, nothing
    changed anywhere; with push.default current (git pushes main to main) it is bumped as before."""
    remote = make_bare_remote(tmp_path / "remotes", files=FILES)
    checkout = remote.clone(tmp_path / "co")
    git("push", "--quiet", "origin", "main:release", cwd=checkout)
    git("config", "branch.main.merge", "refs/heads/release", cwd=checkout)
    before, release = remote.head(), remote.head("release")
    for default, pushes in (("simple", "refuses to push branch main (push.default simple)"),
                            ("upstream", "pushes branch main to origin's release")):
        git("config", "push.default", default, cwd=checkout)
        res = _bump(gitops, checkout, tmp_path)
        assert res.returncode == 4, res.stderr
        assert [ln for ln in res.stderr.splitlines() if ln.startswith(("error:", "hint:"))] == [
            f"error: {checkout.resolve()}: branch main tracks origin's release (branch.main.merge = "
            f"refs/heads/release), so `git push` {pushes}; a bump fetches, commits and pushes origin's main: "
            "nothing was changed",
            "hint: to bump origin's main: `git branch --set-upstream-to origin/main`; to bump release, give the "
            "deploy repo's URL as --deploy-repo with --branch release (gitops clones it)"]
        assert " -> " not in res.stderr  # before any work
        assert remote.head() == before == _head(checkout) and remote.head("release") == release
        assert git("status", "--porcelain", cwd=checkout) == ""
    git("config", "push.default", "current", cwd=checkout)
    res = _bump(gitops, checkout, tmp_path)
    assert res.returncode == 0, res.stderr
    assert remote.head() == res.stdout.strip() == _head(checkout) != before
    assert remote.head("release") == release


def test_a_checkout_without_any_remote_commits_only(gitops, tmp_path: Path) -> None:
    remote = make_bare_remote(tmp_path / "remotes", files=FILES)
    checkout = remote.clone(tmp_path / "co")
    git("remote", "remove", "origin", cwd=checkout)
    res = _bump(gitops, checkout, tmp_path)
    assert res.returncode == 0, res.stderr
    assert "committed (not pushed: no remote)" in res.stderr
    assert _head(checkout) == res.stdout.strip() != remote.head()


def test_the_push_url_is_pushed_to_and_read_from(gitops, tmp_path: Path) -> None:
    """remote.origin.pushurl (fetch from a mirror, push to the primary): the bump went to the fetch URL, and
    the primary never got it."""
    primary = make_bare_remote(tmp_path / "remotes", files=FILES)
    mirror = tmp_path / "mirror.git"
    git("clone", "--quiet", "--mirror", primary.url, str(mirror))
    checkout = tmp_path / "co"
    git("clone", "--quiet", mirror.as_uri(), str(checkout))
    git("remote", "set-url", "--push", "origin", primary.url, cwd=checkout)
    mirrored = _head(mirror, "main")
    for tag in ("v2", "v3"):  # the mirror lags behind: the second bump is made on the primary's head
        res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{APP}:{tag}"],
                     env=no_identity_env(tmp_path))
        assert res.returncode == 0, res.stderr
        assert f"Pushing {res.stdout.strip()[:12]} to {primary.url} (main)" in res.stderr
        assert primary.head() == res.stdout.strip() == _head(checkout)
    assert _head(mirror, "main") == mirrored
    assert "newTag: v3" in primary.show("app/kustomization.yaml").decode()
    git("remote", "set-url", "--add", "--push", "origin", mirror.as_uri(), cwd=checkout)
    res = _bump(gitops, checkout, tmp_path)
    assert res.returncode == 4, res.stderr
    assert "remote origin pushes to 2 URLs (remote.origin.pushurl)" in res.stderr
    git("config", "--unset-all", "remote.origin.pushurl", cwd=checkout)
    git("remote", "set-url", "--push", "origin", "no_push", cwd=checkout)  # a common way to forbid pushes
    res = _bump(gitops, checkout, tmp_path)
    assert res.returncode == 2 and "error: remote origin (its pushurl) " in res.stderr
    assert " -> " not in res.stderr  # refused before any work (build-and-bump: before its build), not at the commit


def _not_owned_by(top: Path, uid: int) -> list[str]:
    out = []
    for where, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            path = os.path.join(where, name)
            if os.lstat(path).st_uid != uid:
                out.append(os.path.relpath(path, top))
    return sorted(out)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
@pytest.mark.parametrize("outcome", ["pushed", "refused", "--no-commit"])
def test_root_gives_back_what_it_wrote_in_another_users_checkout(outcome: str, gitops, tmp_path: Path) -> None:
    """Root (a CI container on the runner's checkout) left .git/gitops.lock, FETCH_HEAD, refs, logs and objects
    root's: the owner's next `git fetch` failed (Permission denied), and gitops run as the owner failed on its
    lock (exit 10).  Now everything it created or changed there is the owner's again."""
    remote = make_bare_remote(tmp_path / "remotes", files=FILES)
    checkout = remote.clone(tmp_path / "co")
    remote.commit_change("prod/new/values.yaml", "a: 1\n")  # the fast-forward writes new directories
    if outcome == "refused":
        hook = remote.path / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\nexit 1\n")
        hook.chmod(0o755)
    for where, dirs, files in os.walk(checkout):
        for name in (*dirs, *files):
            os.chown(os.path.join(where, name), 1234, 1234, follow_symlinks=False)
    os.chown(checkout, 1234, 1234)
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": str(checkout)}
    res = _bump(gitops, checkout, tmp_path, *([outcome] if outcome.startswith("--") else []), env=env)
    assert res.returncode == {"pushed": 0, "refused": 10, "--no-commit": 0}[outcome], res.stderr
    assert _not_owned_by(checkout, 1234) == []
    lock = checkout / ".git" / "gitops.lock"
    assert (lock.stat().st_uid, lock.stat().st_gid) == (1234, 1234)
    if outcome == "pushed":
        assert remote.head() == res.stdout.strip()
        assert (checkout / "prod/new/values.yaml").exists()


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(("error:", "hint:"))]


@pytest.mark.parametrize("state", ["edited", "edited-elsewhere", "detached", "merge", "ahead", "other-branch",
                                   "in-the-way", "skip-worktree"])
def test_a_dry_run_refuses_what_the_bump_refuses(state: str, gitops, tmp_path: Path) -> None:
    """The --dry-run of a bump that commits took the checkout as it was: a dirty tree gave exit 0 and a diff
    leaving out the file edited by hand (or "already up to date"), where the bump itself is exit 4.  It is
    now refused by the same checks, with the same error, touching nothing."""
    remote = make_bare_remote(tmp_path / "remotes", files=FILES)
    checkout = remote.clone(tmp_path / "co")
    extra: list[str] = []
    if state == "edited":  # by hand, to the target: the old dry run showed only the kustomization
        (checkout / "app/dep.yaml").write_text(FILES["app/dep.yaml"].replace("v1", "v2"))
    elif state == "edited-elsewhere":
        (checkout / "notes.txt").write_text("edited\n")
    elif state == "detached":
        git("checkout", "--quiet", "--detach", cwd=checkout)
    elif state == "merge":
        _side_branch(checkout)
        git("merge", "--quiet", "-s", "ours", "--no-commit", "wip", cwd=checkout)
    elif state == "ahead":
        (checkout / "notes.txt").write_text("local only\n")
        git("commit", "--quiet", "-am", "local only", cwd=checkout)
    elif state == "other-branch":
        extra = ["--branch", "prod"]
    elif state == "in-the-way":  # origin adds a file the checkout has, untracked (fetched: the dry run knows it)
        other = remote.clone(tmp_path / "other")
        (other / "local.txt").write_text("from origin\n")
        git("add", "local.txt", cwd=other)
        git("commit", "--quiet", "-m", "adds local.txt", cwd=other)
        git("push", "--quiet", "origin", "main", cwd=other)
        git("fetch", "--quiet", cwd=checkout)
        (checkout / "local.txt").write_text("mine\n")
    else:
        git("update-index", "--skip-worktree", "app/kustomization.yaml", cwd=checkout)
    status = git("status", "--porcelain", cwd=checkout)
    before, remote_before = _head(checkout), remote.head()
    dry = _bump(gitops, checkout, tmp_path, *extra, "--dry-run")
    real = _bump(gitops, checkout, tmp_path, *extra)
    assert real.returncode == (2 if state == "other-branch" else 4), real.stderr
    assert dry.returncode == real.returncode, dry.stderr
    assert _error_lines(dry.stderr) == _error_lines(real.stderr) != []
    assert dry.stdout == ""  # no diff
    assert _head(checkout) == before and remote.head() == remote_before
    assert git("status", "--porcelain", cwd=checkout) == status


def test_a_dry_run_of_a_checkout_behind_origin_says_so(gitops, tmp_path: Path) -> None:
    """Behind origin's branch: the bump fast-forwards first, the dry run (which fetches nothing) shows the diff
    on the checkout's HEAD and says so; --no-commit keeps its own rules (a dirty tree is fine)."""
    remote = make_bare_remote(tmp_path / "remotes", files=FILES)
    checkout = remote.clone(tmp_path / "co")
    moved = remote.commit_change("notes.txt", "moved on\n")
    res = _bump(gitops, checkout, tmp_path, "--dry-run")
    assert res.returncode == 0, res.stderr
    assert f"origin/main is at {moved[:12]}, which this checkout has not fetched" in res.stderr
    assert "+        image: team/app:v2" in res.stdout
    git("fetch", "--quiet", cwd=checkout)
    res = _bump(gitops, checkout, tmp_path, "--dry-run")
    assert res.returncode == 0, res.stderr
    assert f"branch main is behind origin/main ({moved[:12]}), which the bump fast-forwards to first" in res.stderr
    (checkout / "notes.txt").write_text("edited\n")
    for mode in (["--no-commit", "--dry-run"], ["--no-commit"]):
        res = _bump(gitops, checkout, tmp_path, *mode)
        assert res.returncode == 0, (mode, res.stderr)
    assert "team/app:v2" in (checkout / "app/dep.yaml").read_text()
    res = gitops(["rollback", "--deploy-repo", str(checkout), "--image", APP, "--dry-run"],
                 env=no_identity_env(tmp_path))  # rollback's --dry-run: the same checks
    assert res.returncode == 4 and "uncommitted changes" in res.stderr, res.stderr
