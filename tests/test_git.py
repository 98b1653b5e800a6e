"""git's refusal of a repository another user owns (git.ownership_error), from its exact words."""

from __future__ import annotations

import os
from pathlib import Path

from gitops_cli import git
from gitops_cli.errors import GitError


def refusal(where: Path) -> str:
    """What git (2.35.2 and later) writes when safe.directory does not name `where`."""
    return (f"fatal: detected dubious ownership in repository at '{where}'\n"
            "To add an exception for this directory, call:\n\n"
            f"\tgit config --global --add safe.directory {where}\n")


def test_a_refused_repository_is_named_with_the_setting_that_trusts_it(tmp_path: Path) -> None:
    where = tmp_path / "a checkout"
    where.mkdir()
    err = git.ownership_error(refusal(where))
    assert isinstance(err, GitError) and err.exit_code == 10
    assert err.message.startswith(f"{where}: git refuses this repository (\"dubious ownership\"): ")
    quoted = f"'{where}'"  # a blank in it: quoted for the shell
    assert err.hint == (f"if you trust it: git config --global --add safe.directory {quoted} (in CI, as "
                        f"environment: GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0={quoted})")


def test_a_directory_of_the_user_is_said_not_to_be_theirs_without_an_owner(tmp_path: Path) -> None:
    """git refused it, yet the directory and its .git are the user's (a parent's owner, an ACL): no owner
    is named that is not the reason."""
    (tmp_path / ".git").mkdir()
    err = git.ownership_error(refusal(tmp_path))
    assert err is not None and err.message.endswith(f"not owned by {git._user(os.geteuid())}, who runs gitops")
    assert f"(uid {os.geteuid()})" in git._user(os.geteuid()) or git._user(os.geteuid()) == f"uid {os.geteuid()}"


def test_every_failed_git_command_in_a_refused_repository_says_so(tmp_path: Path) -> None:
    err = git.error_for(["fetch", "origin"], 128, refusal(tmp_path))
    assert err.exit_code == 10 and err.message.startswith(f"{tmp_path}: git refuses this repository")
    assert err.hint is not None and "safe.directory" in err.hint
    assert git.ownership_error("fatal: not a git repository (or any of the parent directories): .git") is None
