"""gitops' temporary directories (a bump's clone, history's, tag's private index), and the removal of those
a killed run left behind.

    with TempDir("bump") as path: ...        # or held = TempDir("bump"); ...; held.cleanup()

Each is `<TMPDIR>/gitops-<purpose>-XXXXXXXX/` (tempfile.mkdtemp: mode 0700; TMPDIR as tempfile finds it)
holding a file `lock` on which its owner keeps an exclusive flock for as long as the directory exists.  The
lock file is made and locked under another name, then renamed to `lock`: a `lock` is never unlocked while
its owner lives.  The descriptor is not inherited: git and the other programs gitops runs do not hold it.
The owner removes the directory, then lets the lock go, when it is done, on an error or an interrupt, and
at exit.  A run ended without running any code of its own (kill -9, the OOM killer, a CI runner killing
the job, a second SIGTERM) leaves it behind; a deploy repo's clone can be large, and its files may hold
secrets.  So the first TempDir a process makes sweeps TMPDIR first (one listdir), and removes an entry
only when all of this holds:

- its name is one this module gives: `gitops-`, a PURPOSES word, `-`, mkdtemp's 8 characters [a-z0-9_];
- it is a directory, not a symlink (lstat, then the directory opened with O_NOFOLLOW), owned by the
  effective uid;
- its `lock` is a regular file owned by the effective uid (opened with O_NOFOLLOW) whose flock can be
  taken at once: its owner is dead.  The kernel lets a flock go when its holder ends, however it ends,
  and a flock is seen across PID namespaces (a container sharing /tmp), which a recorded PID is not;
- or it has no `lock` and was last modified more than STALE_WITHOUT_LOCK (a day) ago: one made by a
  gitops from before these locks, or one whose run was killed between making it and locking it.

The sweep keeps the stale lock while it removes the directory (rmtree relative to TMPDIR's descriptor,
which follows no symlink), so two sweeps never remove one together.  It never fails a run: an entry it
cannot judge or remove is left, and any error is ignored.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import stat
import tempfile
import time
import weakref
from pathlib import Path

PURPOSES = ("bump", "history", "tag")
LOCK = "lock"
STALE_WITHOUT_LOCK = 24 * 3600.0  # seconds
_NAME = re.compile(rf"gitops-(?:{'|'.join(PURPOSES)})-[a-z0-9_]{{8}}")
_STAGED = ".lock-new"
_swept = False  # the sweep runs once a process, before its first TempDir


class TempDir:
    """A gitops temporary directory, `path`, this process holds; removed by cleanup(), at the end of a
    `with` block (which gives `path`), or at exit."""

    def __init__(self, purpose: str) -> None:
        global _swept
        if purpose not in PURPOSES:
            raise ValueError(f"unknown temporary directory purpose {purpose!r}")
        if not _swept:
            _swept = True
            sweep()
        path = tempfile.mkdtemp(prefix=f"gitops-{purpose}-")
        try:
            fd = _hold(path)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        self.path = Path(path)
        self._finalizer = weakref.finalize(self, _remove, path, fd)

    def cleanup(self) -> None:
        self._finalizer()

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _hold(path: str) -> int | None:
    """Create `path`/lock already locked; its descriptor, or None when the file system refuses the file or
    the lock (the directory then has no lock: see the module's rule for that)."""
    staged = os.path.join(path, _STAGED)
    try:
        fd = os.open(staged, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file, in a directory of ours: nobody else has it
        os.rename(staged, os.path.join(path, LOCK))
    except OSError:
        os.close(fd)
        try:
            os.unlink(staged)
        except OSError:
            pass
        return None
    return fd


def _remove(path: str, fd: int | None) -> None:
    """Remove the directory, then let its lock go (a sweep never sees it unlocked while it is there).  What
    cannot be removed is left to a later sweep."""
    try:
        shutil.rmtree(path, ignore_errors=True)
    finally:
        if fd is not None:
            os.close(fd)


def sweep(root: str | None = None, now: float | None = None) -> list[str]:
    """Remove the stale gitops temporary directories in `root` (default: TMPDIR, as tempfile finds it) by
    the module's rules; the names of those removed.  Never raises."""
    removed: list[str] = []
    try:
        top = os.open(root or tempfile.gettempdir(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except Exception:
        return removed
    try:
        names = [name for name in os.listdir(top) if name.startswith("gitops-") and _NAME.fullmatch(name)]
        when = time.time() if now is None else now
        for name in names:
            try:
                if _remove_if_stale(top, name, when):
                    removed.append(name)
            except Exception:  # this entry is left as it is
                continue
    except Exception:
        pass
    finally:
        os.close(top)
    return removed


def _remove_if_stale(top: int, name: str, now: float) -> bool:
    euid = os.geteuid()
    st = os.stat(name, dir_fd=top, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != euid:
        return False
    sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=top)
    try:
        opened = os.fstat(sub)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) or opened.st_uid != euid:
            return False  # replaced since the stat
        try:
            lock = os.open(LOCK, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=sub)
        except FileNotFoundError:
            if now - opened.st_mtime < STALE_WITHOUT_LOCK:
                return False  # being made, or an old gitops' run: not known to be dead
            return _rmtree(top, name)
        try:
            held = os.fstat(lock)
            if not stat.S_ISREG(held.st_mode) or held.st_uid != euid:
                return False
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # its owner lives
            return _rmtree(top, name)  # with the lock kept: no other sweep removes it meanwhile
        finally:
            os.close(lock)
    finally:
        os.close(sub)


def _rmtree(top: int, name: str) -> bool:
    shutil.rmtree(name, ignore_errors=True, dir_fd=top)
    try:
        os.stat(name, dir_fd=top, follow_symlinks=False)
    except FileNotFoundError:
        return True
    return False
