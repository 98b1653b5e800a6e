"""gitops' temporary directories: held with a lock while their owner lives; the sweep removes only stale
ones of its own (the integration test, a real `gitops bump` killed with SIGKILL, is in
tests/integration/test_cli_signals.py)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitops_cli import tempdirs
from gitops_cli.tempdirs import LOCK, STALE_WITHOUT_LOCK, TempDir, sweep


@pytest.fixture
def root(private_tmp: Path) -> Path:
    """tempfile's directory for this test only (conftest's private_tmp)."""
    return private_tmp


def _dead(root: Path, name: str = "gitops-bump-abc123_z") -> Path:
    """A directory as a killed owner leaves it: its lock file, which nobody holds, and a clone."""
    path = root / name
    (path / "deploy" / ".git").mkdir(parents=True)
    (path / "deploy" / "values.yaml").write_text("token: s3cret\n")
    (path / LOCK).touch()
    return path


def _locked(path: Path) -> bool:
    fd = os.open(path / LOCK, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_temp_dir_is_locked_while_held_and_removed_by_cleanup(root: Path) -> None:
    held = TempDir("bump")
    assert held.path.parent == root and held.path.name.startswith("gitops-bump-")
    assert sorted(p.name for p in held.path.iterdir()) == [LOCK] and _locked(held.path)
    assert sweep() == [] and held.path.is_dir()  # its owner lives: left alone
    held.cleanup()
    assert list(root.iterdir()) == []
    held.cleanup()  # twice is harmless
    with TempDir("history") as path:
        assert path.is_dir() and path.name.startswith("gitops-history-")
    assert not path.exists()


def test_a_dead_owners_directory_is_removed_and_nothing_else(root: Path) -> None:
    stale = [_dead(root), _dead(root, "gitops-history-00000000"), _dead(root, "gitops-tag-________")]
    foreign = [_dead(root, name) for name in (
        "gitops-bump-notes", "gitops-bump-abc123_zz", "gitops-bump-ABC123_Z", "gitops-build-abc123_z",
        "gitops-homeless-abc123_z", "gitops-bump-abc123_z.bak", "xgitops-bump-abc123_z", "tmpabc123_z")]
    assert sorted(sweep()) == sorted(p.name for p in stale)
    assert not any(p.exists() for p in stale)
    assert all((p / "deploy" / "values.yaml").is_file() for p in foreign)


def test_symlinks_are_never_followed(root: Path, tmp_path: Path) -> None:
    target = _dead(tmp_path, "elsewhere")
    (root / "gitops-bump-abc123_z").symlink_to(target)  # the name is ours, the directory is not
    with_link = root / "gitops-tag-abc123_z"
    with_link.mkdir()
    outside = tmp_path / "lockfile"
    outside.touch()
    (with_link / LOCK).symlink_to(outside)  # a lock that is a symlink: not ours to judge
    (with_link / "kept").touch()
    assert sweep() == []
    assert (target / "deploy" / "values.yaml").is_file() and (target / LOCK).is_file()
    assert (with_link / "kept").is_file() and outside.is_file()


def test_inside_a_stale_directory_symlinks_are_removed_not_followed(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").touch()
    stale = _dead(root)
    (stale / "deploy" / "link").symlink_to(outside)
    assert sweep() == [stale.name]
    assert (outside / "precious").is_file()


def test_without_a_lock_file_only_a_day_old_directory_is_removed(root: Path) -> None:
    young, old = root / "gitops-bump-young000", root / "gitops-bump-old00000"
    for path in (young, old):
        (path / "deploy").mkdir(parents=True)
    then = time.time() - STALE_WITHOUT_LOCK - 60
    os.utime(old, (then, then))
    assert sweep() == [old.name]
    assert young.is_dir()
    assert sweep(now=time.time() + STALE_WITHOUT_LOCK + 60) == [young.name]  # a day later


def test_a_file_with_our_name_or_a_directory_of_another_user_is_left(root: Path) -> None:
    (root / "gitops-bump-file0000").write_text("not a directory")
    theirs = _dead(root, "gitops-bump-theirs00")
    if os.geteuid() != 0:
        pytest.skip("giving a directory to another user needs root")
    os.chown(theirs, 4242, 4242)
    assert sweep() == []
    assert theirs.is_dir() and (root / "gitops-bump-file0000").is_file()
    os.chown(theirs, os.geteuid(), os.getegid())
    os.chown(theirs / LOCK, 4242, 4242)  # a lock file someone else made
    assert sweep() == []
    assert theirs.is_dir()


def test_a_lock_held_by_another_live_process_keeps_its_directory(root: Path) -> None:
    code = ("import sys\nfrom gitops_cli.tempdirs import TempDir\n"
            "held = TempDir('bump')\nprint(held.path, flush=True)\nsys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(root)})
    try:
        assert proc.stdout is not None and proc.stdin is not None
        live = Path(proc.stdout.readline().strip())
        assert live.parent == root
        stale = _dead(root)
        assert sweep() == [stale.name] and live.is_dir()
        proc.stdin.close()  # it ends normally: its directory goes with it
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(root.iterdir()) == []


def test_the_sweep_never_raises(root: Path, tmp_path: Path) -> None:
    assert sweep(str(tmp_path / "missing")) == []
    (tmp_path / "a-file").touch()
    assert sweep(str(tmp_path / "a-file")) == []
    fifo = root / "gitops-bump-fifo0000"
    fifo.mkdir()
    os.mkfifo(fifo / LOCK)  # opening it for the lock must not hang, and it is no lock of ours
    assert sweep() == []
    assert fifo.is_dir()


def test_the_first_temp_dir_of_a_process_sweeps(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = _dead(root)
    monkeypatch.setattr(tempdirs, "_swept", False)
    with TempDir("tag") as path:
        assert not stale.exists()
        again = _dead(root)
        with TempDir("tag"):  # once a process: the second leaves it to the next run
            assert again.exists()
    assert not path.exists()
