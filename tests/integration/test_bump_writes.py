"""`gitops bump` on a local checkout whose files cannot be written: an immutable file or directory
(`chattr +i`), a file bind-mounted read-only, a full file system (a small tmpfs).  Each is exit 74 with one
line naming the file or the file system, and leaves the checkout as it was.  Root only (chattr, mount):
every attribute and mount is undone in the fixtures' teardown."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.gitremotes import git, make_bare_remote
from tests.integration.test_bump import API, no_identity_env

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="chattr +i and mounts need root")]

FILES = {
    "a/values.yaml": f"image:\n  repository: {API}\n  tag: 1.0.0\n",
    "b/values.yaml": f"image:\n  repository: {API}\n  tag: 1.0.0\n",
}


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Paths appended are made immutable (chattr +i), and mutable again after the test."""
    paths: list[Path] = []
    yield paths
    for path in paths:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def _make_immutable(immutable: list[Path], path: Path) -> None:
    _run("chattr", "+i", str(path))
    immutable.append(path)


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    """Mount points appended are unmounted after the test (in reverse order)."""
    points: list[Path] = []
    yield points
    for point in reversed(points):
        if subprocess.run(["umount", str(point)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)


def _checkout(tmp_path: Path) -> Path:
    return make_bare_remote(tmp_path / "remotes", files=FILES).clone(tmp_path / "co")


def _status(checkout: Path) -> str:
    return git("status", "--porcelain", "--untracked-files=all", "--ignored", cwd=checkout)


@pytest.mark.parametrize("mode", ["commit", "--no-commit"])
@pytest.mark.parametrize("what", ["file", "directory", "read-only bind mount"])
def test_a_file_that_cannot_be_replaced_is_exit_74_naming_it(what, mode, gitops, tmp_path, immutable, mounts):
    checkout = _checkout(tmp_path)
    target = checkout / "b" / "values.yaml"  # the second file: the first one's edit must not stay
    if what == "file":
        _make_immutable(immutable, target)
        reason = "Operation not permitted"
    elif what == "directory":
        _make_immutable(immutable, target.parent)
        reason = "Operation not permitted"
    else:
        _run("mount", "--bind", str(target), str(target))
        mounts.append(target)
        _run("mount", "-o", "remount,ro,bind", str(target))
        reason = "Device or resource busy"
    head = git("rev-parse", "HEAD", cwd=checkout)
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"]
                 + ([mode] if mode != "commit" else []), env=no_identity_env(tmp_path))
    assert res.returncode == 74, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [f"error: cannot write {target}: {reason}"]
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    assert any(ln.startswith("hint:") for ln in res.stderr.splitlines())
    assert _status(checkout) == ""  # neither edit stays, no temp file
    assert git("rev-parse", "HEAD", cwd=checkout) == head
