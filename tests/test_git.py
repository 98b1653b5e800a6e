"""git's refusal of a repository another user owns (git.ownership_error), from its exact words."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gitops_cli import git
from gitops_cli.errors import GitError


def refusal(where: Path) -> str:
    """What git (2.35.2 and later) writes when safe.directory does not name `where`."""
    return (f"fatal: detected dubious ownership in repository at '{where}'\n"
            "To add an exception for this directory, call:\n\n"
            f"\tgit config --global --add safe.directory {where}\n")


def test_a_refused_repository_is_named_with_the_setting_that_trusts_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("GIT_CONFIG_COUNT", raising=False)
    where = tmp_path / "a checkout"
    (where / "sub").mkdir(parents=True)
    (where / ".git").mkdir()
    err = git.ownership_error(refusal(where), cwd=where / "sub")  # git ran in it (a subdirectory of it)
    assert isinstance(err, GitError) and err.exit_code == 10
    assert err.message.startswith(f"{where}: git refuses this repository (\"dubious ownership\"): ")
    quoted = f"'{where}'"  # a blank in it: quoted for the shell
    assert err.hint == (f"if you trust it: git config --global --add safe.directory {quoted} (in CI, as "
                        f"environment: GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0={quoted})")


def test_a_directory_of_the_user_is_said_not_to_be_theirs_without_an_owner(tmp_path: Path) -> None:
    """git refused it, yet the directory and its .git are the user's (a parent's owner, an ACL): no owner
    is named that is not the reason."""
    (tmp_path / ".git").mkdir()
    err = git.ownership_error(refusal(tmp_path), cwd=tmp_path)
    assert err is not None and err.message.endswith(f"not owned by {git._user(os.geteuid())}, who runs gitops")
    assert f"(uid {os.geteuid()})" in git._user(os.geteuid()) or git._user(os.geteuid()) == f"uid {os.geteuid()}"


def test_every_failed_git_command_in_a_refused_repository_says_so(tmp_path: Path) -> None:
    err = git.error_for(["fetch", "origin"], 128, refusal(tmp_path), cwd=tmp_path)
    assert err.exit_code == 10 and err.message.startswith(f"{tmp_path}: git refuses this repository")
    assert err.hint is not None and "safe.directory" in err.hint
    assert git.ownership_error("fatal: not a git repository (or any of the parent directories): .git",
                               cwd=tmp_path) is None


def test_a_refused_entry_is_added_after_the_users_own(tmp_path: Path, monkeypatch) -> None:
    """GIT_CONFIG_COUNT already set (the user's entries, a first refusal's fix): the hint adds the next
    entry, never one that replaces theirs."""
    monkeypatch.setenv("GIT_CONFIG_COUNT", "2")
    (tmp_path / ".git").mkdir()
    err = git.ownership_error(refusal(tmp_path), cwd=tmp_path)
    assert err is not None and err.hint == (
        f"if you trust it: git config --global --add safe.directory {tmp_path} (in CI, as environment, add an entry "
        f"after the 2 already set: GIT_CONFIG_COUNT=3 GIT_CONFIG_KEY_2=safe.directory GIT_CONFIG_VALUE_2={tmp_path})")


def test_a_refused_remote_is_trusted_by_the_global_config_only(tmp_path: Path) -> None:
    """A remote reached by path (a clone of file:///x.git, run outside any repository; a checkout's local
    origin): git's upload-pack for it reads no GIT_CONFIG_* variable, so the hint gives none."""
    checkout, origin = tmp_path / "deploy", tmp_path / "origin.git"
    (checkout / ".git").mkdir(parents=True)
    origin.mkdir()
    for cwd in (None, Path("/"), checkout):
        err = git.ownership_error(refusal(origin), cwd=cwd)
        assert err is not None and err.hint == (
            f"if you trust it: git config --global --add safe.directory {origin} (in CI too: run that first; git "
            "ignores GIT_CONFIG_* variables for a remote it reaches by path)"), cwd
    # a repository within the refused one is not the refused one: git ran in the nearer one
    nested = origin / "vendor" / "lib"
    (nested / ".git").mkdir(parents=True)
    err = git.error_for(["fetch"], 128, refusal(origin), cwd=nested)
    assert err.hint is not None and "GIT_CONFIG_COUNT" not in err.hint


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs")
def test_a_git_failure_on_a_full_file_system_is_exit_74_whatever_gits_words(small_fs) -> None:
    """git's words do not always tell a full disk (`failed to write new configuration file`, `couldn't
    write ...main.lock`, "Aborting commit due to empty commit message"): the file system it ran on does.
    A failure that is the remote's stays exit 10."""
    fs = small_fs("fs")
    repo = fs.root / "repo"
    subprocess.run(["git", "init", "--quiet", str(repo)], check=True)
    fs.fill(0)
    err = git.error_for(["commit"], 1, "Aborting commit due to empty commit message.\n", cwd=repo)
    assert err.exit_code == 74
    assert err.message == (f"git commit failed (exit 1): the file system of {repo} is full (0 KiB free; git said: "
                           "Aborting commit due to empty commit message.)")
    assert err.hint == f"free some space on the file system of {repo}"
    remote = git.error_for(["fetch"], 128, "fatal: unable to access 'https://h.example/x.git/': Could not resolve "
                           "host: h.example\n", cwd=repo)
    assert remote.exit_code == 10
    fs.empty()
    assert git.error_for(["commit"], 1, "Aborting commit due to empty commit message.\n", cwd=repo).exit_code == 10


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs")
@pytest.mark.parametrize("stderr", [
    "fatal: Remote branch nope not found in upstream origin\n",
    "fatal: Unable to create '{repo}/.git/index.lock': File exists.\n\nAnother git process seems to be running\n",
    "fatal: cannot lock ref 'refs/heads/main': is at 1234 but expected 5678\n",
    "fatal: ambiguous argument 'nope': unknown revision or path not in the working tree.\n",
])
def test_a_failure_that_is_no_write_is_no_full_disk_however_little_space_is_left(small_fs, stderr: str) -> None:
    """A branch that is not there, a lock another git holds: git's own error (exit 10), not "the file system
    is full", on a file system with no space left."""
    fs = small_fs("fs")
    repo = fs.root / "repo"
    subprocess.run(["git", "init", "--quiet", str(repo)], check=True)
    fs.fill(0)
    err = git.error_for(["add"], 128, stderr.format(repo=repo), cwd=repo)
    assert err.exit_code == 10 and "is full" not in err.message, err.message


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mkfs.ext4"), reason="root mounts an ext4 image")
def test_root_may_write_into_the_blocks_a_file_system_reserves(tmp_path: Path, mounts: list[Path]) -> None:
    """ext4 keeps 5% (here: half) of its blocks for root: a file system with room for root is not full for
    gitops run as root, whatever it has left for other users."""
    image, mount = tmp_path / "fs.img", tmp_path / "fs"
    with image.open("wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-m", "50", str(image)], check=True)
    mount.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
    mounts.append(mount)
    fs = os.statvfs(mount)
    (mount / "fill").write_bytes(b"\0" * (fs.f_bavail * fs.f_frsize - (64 << 10)))  # 64 KiB for other users
    assert os.statvfs(mount).f_bavail * fs.f_frsize < git.LOW_SPACE <= os.statvfs(mount).f_bfree * fs.f_frsize
    err = git.error_for(["commit"], 1, "error: unable to write file x\n", cwd=mount)
    assert err.exit_code == 10, err.message


def test_a_reason_git_gives_without_fatal_is_its_first_words_not_the_hint_after_them(tmp_path: Path) -> None:
    """`git add` of a path a sparse checkout leaves out says why on three lines, lists the path, then
    gives hints: the error was the last hint (`hint: Disable this message with ...`)."""
    env = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}

    def sh(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, env={**os.environ, **env}, check=True, capture_output=True)

    sh("init", "-q")
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(name)
    sh("add", ".")
    sh("commit", "-qm", "first")
    sh("sparse-checkout", "set", "a")
    with pytest.raises(GitError) as caught:
        git.run(["add", "b/f"], cwd=tmp_path, env=env)
    assert caught.value.message == (
        "git add failed (exit 1): The following paths and/or pathspecs matched paths that exist outside of your "
        "sparse-checkout definition, so will not be updated in the index: b/f")


@pytest.mark.parametrize("stderr, reason", [
    ("hint: a\nhint: b\n", "hint: b"),  # nothing but hints: the last, as before
    ("warning: w\nline 1\nline 2\nhint: h\n", "line 1 line 2"),
    ("l1\nl2\nl3\nl4\nl5\nl6\n", "l1 l2 l3 l4 ... (2 more lines)"),
    ("hint: h\nerror: the reason\nhint: after\n", "error: the reason"),
])
def test_the_reason_of_a_failed_git_command(stderr: str, reason: str) -> None:
    assert git.error_for(["x"], 1, stderr, cwd=None).message == f"git x failed (exit 1): {reason}"
