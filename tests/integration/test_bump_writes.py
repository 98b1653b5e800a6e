"""`gitops bump` on a local checkout whose files cannot be written: an immutable file or directory
(`chattr +i`), a file bind-mounted read-only, a full file system (a small tmpfs).  Each is exit 74 with one
line naming the file or the file system, and leaves the checkout as it was.  Root only (chattr, mount):
every attribute and mount is undone in the fixtures' teardown."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.filesystems import bind_read_only, make_immutable
from tests.fixtures.gitremotes import git, make_bare_remote
from tests.integration.test_bump import API, no_identity_env

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="chattr +i and mounts need root")]

FILES = {
    "a/values.yaml": f"image:\n  repository: {API}\n  tag: 1.0.0\n",
    "b/values.yaml": f"image:\n  repository: {API}\n  tag: 1.0.0\n",
}


def _checkout(tmp_path: Path) -> Path:
    return make_bare_remote(tmp_path / "remotes", files=FILES).clone(tmp_path / "co")


def git_bytes(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True).stdout


def _status(checkout: Path) -> str:
    return git("status", "--porcelain", "--untracked-files=all", "--ignored", cwd=checkout)


@pytest.mark.parametrize("mode", ["commit", "--no-commit"])
@pytest.mark.parametrize("what", ["file", "directory", "read-only bind mount"])
def test_a_file_that_cannot_be_replaced_is_exit_74_naming_it(what, mode, gitops, tmp_path, immutable, mounts):
    checkout = _checkout(tmp_path)
    target = checkout / "b" / "values.yaml"  # the second file: the first one's edit must not stay
    if what == "file":
        make_immutable(immutable, target)
        reason = "Operation not permitted"
    elif what == "directory":
        make_immutable(immutable, target.parent)
        reason = "Operation not permitted"
    else:
        bind_read_only(mounts, target)
        reason = "Device or resource busy"
    head = git("rev-parse", "HEAD", cwd=checkout).strip()
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"]
                 + ([mode] if mode != "commit" else []), env=no_identity_env(tmp_path))
    assert res.returncode == 74, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [f"error: cannot write {target}: {reason}"]
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    assert any(ln.startswith("hint:") for ln in res.stderr.splitlines())
    assert _status(checkout) == ""  # neither edit stays, no temp file
    assert git("rev-parse", "HEAD", cwd=checkout).strip() == head


def test_a_full_local_checkout_is_exit_74_naming_it_and_left_as_it_was(gitops, tmp_path, small_fs):
    """Whichever of git's writes the full disk stops (`git add`, the commit's objects, its index, its
    COMMIT_EDITMSG: "Aborting commit due to empty commit message"), the bump is exit 74 naming the checkout's
    file system (not TMPDIR), and the checkout's files are put back; its index and HEAD too whenever the
    freed space allows it (the warning says so when it does not)."""
    fs = small_fs("fs")
    checkout = make_bare_remote(tmp_path / "remotes", files=FILES).clone(fs.root / "co")
    head = git("rev-parse", "HEAD", cwd=checkout).strip()
    codes: dict[int, int] = {}
    for free in range(0, 44, 4):
        fs.fill(free)
        res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.{free}"],
                     env=no_identity_env(tmp_path))
        codes[free] = res.returncode
        fs.empty()
        if res.returncode == 0:  # enough space: the next round starts from the bump pushed
            head = git("rev-parse", "HEAD", cwd=checkout).strip()
            continue
        assert res.returncode == 74, (free, res.stderr)
        assert "Traceback" not in res.stderr and "TMPDIR" not in res.stderr, res.stderr
        assert len([ln for ln in res.stderr.splitlines() if ln.startswith("hint: free some space")]) == 1, res.stderr
        assert str(fs.root) in res.stderr, res.stderr  # the file or the file system
        for rel in FILES:  # the edit is gone from the files, whatever else is left
            assert (checkout / rel).read_bytes() == git_bytes(checkout, "show", f"{head}:{rel}"), (free, res.stderr)
        assert git("rev-parse", "HEAD", cwd=checkout).strip() == head
        if "its files are back" in res.stderr:  # no room for git's index: the way out is said
            assert f"then `git reset --hard {head[:12]}`" in res.stderr
            git("reset", "--quiet", "--hard", head, cwd=checkout)
        assert _status(checkout) == "", (free, res.stderr)
    assert 74 in codes.values() and 0 in codes.values(), codes


def test_a_full_tmpdir_under_a_clone_is_exit_74_naming_tmpdir(gitops, tmp_path, small_fs):
    fs = small_fs("tmp")
    remote = make_bare_remote(tmp_path / "remotes", files=FILES)
    fs.fill(8)  # with none, Python would take /tmp instead (tempfile checks TMPDIR by writing to it)
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", f"{API}:2.0.0"],
                 env=no_identity_env(tmp_path, TMPDIR=str(fs.root)))
    assert res.returncode == 74, res.stderr
    [hint] = [ln for ln in res.stderr.splitlines() if ln.startswith("hint:")]
    assert hint.startswith(f"hint: free some space on the file system of {fs.root}") and "TMPDIR" in hint, hint


def test_a_lock_another_git_holds_leaves_the_checkout_as_it_was(gitops, tmp_path: Path) -> None:
    """An index.lock another git process holds fails the bump's `git add` after the files are edited, and the
    reset too: the files are put back in place all the same (no lock needed), and the error is git's (exit
    10), not a full disk however the disk is."""
    checkout = _checkout(tmp_path)
    head = git("rev-parse", "HEAD", cwd=checkout).strip()
    (checkout / ".git" / "index.lock").touch()
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], env=no_identity_env(tmp_path))
    assert res.returncode == 10, res.stderr
    assert "index.lock': File exists" in res.stderr and "Traceback" not in res.stderr
    (checkout / ".git" / "index.lock").unlink()
    assert _status(checkout) == ""
    assert git("rev-parse", "HEAD", cwd=checkout).strip() == head


@pytest.mark.parametrize("mode", ["commit", "--no-commit"])
def test_root_bumping_another_users_checkout_keeps_the_files_owner(mode, gitops, tmp_path):
    """The safe.directory case (a CI container, as root, on the runner's checkout): the edited files were
    replaced with root-owned ones, which the runner's user then could not change or remove."""
    checkout = _checkout(tmp_path)
    for root, dirs, files in os.walk(checkout):
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), 1234, 1234, follow_symlinks=False)
    os.chown(checkout, 1234, 1234)
    (checkout / "a" / "values.yaml").chmod(0o640)
    env = {**no_identity_env(tmp_path), "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory",
           "GIT_CONFIG_VALUE_0": str(checkout)}
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"]
                 + ([mode] if mode != "commit" else []), env=env)
    assert res.returncode == 0, res.stderr
    for rel in FILES:
        st = (checkout / rel).stat()
        assert "tag: 2.0.0" in (checkout / rel).read_text() and (st.st_uid, st.st_gid) == (1234, 1234), rel
    assert oct((checkout / "a" / "values.yaml").stat().st_mode & 0o777) == oct(0o640)
