"""The installed `gitops` in the machines it meets: no git on PATH, a checkout another user owns (git's
safe.directory check), no HOME, a locale that is not UTF-8.  Each ends in gitops' own error lines or
works: never an internal error (exit 70)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.services import commit_all, git

pytestmark = pytest.mark.integration



def checkout(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "deploy.yaml").write_text("image: registry.example.com/team/api:1.0.0\n")
    (path / "Dockerfile").write_text("FROM scratch\n")
    commit_all(path, "first")
    return path


def error_lines(stderr: str) -> list[str]:
    """stderr, asserted to be one `error:` line and at most one `hint:` line."""
    lines = stderr.splitlines()
    assert lines and lines[0].startswith("error: ") and len(lines) <= 2, stderr
    assert len(lines) == 1 or lines[1].startswith("hint: "), stderr
    return lines


@pytest.mark.parametrize("verb", ["tag", "history"])
def test_without_git_on_path_gitops_says_so(gitops, tmp_path: Path, verb: str) -> None:
    """GitPython, imported where git is missing, raises an ImportError of ~700 characters: gitops' own
    error instead, exit 10."""
    repo = checkout(tmp_path / "repo")
    empty = tmp_path / "bin"
    empty.mkdir()
    args = ["tag"] if verb == "tag" else ["history", "--deploy-repo", str(repo)]
    for refresh in (None, "raise"):  # whatever the user set GitPython's switch to
        env = {"PATH": str(empty), **({"GIT_PYTHON_REFRESH": refresh} if refresh else {})}
        res = gitops(args, cwd=repo, env=env)
        assert res.returncode == 10, res.stderr
        assert error_lines(res.stderr) == ["error: git is not installed (no `git` on PATH)",
                                           "hint: install git (apt-get install git)"]


def test_a_git_on_path_that_cannot_be_run_is_named(gitops, tmp_path: Path) -> None:
    repo = checkout(tmp_path / "repo")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text("#!/bin/sh\n")  # not executable, for root too
    res = gitops(["tag"], cwd=repo, env={"PATH": str(bin_dir)})
    assert res.returncode == 10, res.stderr
    assert error_lines(res.stderr) == ["error: git cannot be run: Permission denied",
                                       "hint: check the `git` found on PATH (its permissions) or reinstall git"]
