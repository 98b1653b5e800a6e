"""An exclusive lock on a file (`fcntl.flock`), held for a whole step: a `sync` pass on its cache, a bump
or rollback on a local deploy checkout.

    with exclusive(path, wait=0):        # LockHeld at once when another holder has it
    with exclusive(path, wait=300, waiting=say):   # `say(holder)` once, then retried until the deadline

The lock goes with the open file: it is released when the holder closes it or exits, however it ends (a
killed process holds nothing, and the file is never removed: removing it would race with a waiter).  The
holder's pid is written on the file's first line, for the message of the one kept waiting or refused
(when it can be: on a full disk the lock is held all the same, its holder "unknown").
A second `exclusive` of one path in one process is refused like any other holder (flock locks an open
file, not a process): a caller that nests takes care of it.
"""

from __future__ import annotations

import fcntl
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gitops_cli.errors import WRITE_FAILURES

POLL = (0.05, 0.2)  # seconds between two tries of a held lock (uniform: waiters do not try in step)


class LockHeld(Exception):  # noqa: N818  (the callers turn it into their own GitopsError)
    """Another holder has the lock (after the wait given, if any): `holder` is the pid it wrote, or "unknown"."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} held by pid {holder}")
        self.path = path
        self.holder = holder


@contextmanager
def exclusive(path: Path, *, wait: float = 0.0, waiting: Callable[[str], None] | None = None,
              owner: tuple[int, int] | None = None) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created when missing; its directory must exist) for the block.
    `owner`: (uid, gid) the file is given (root locking another user's file: that user can lock it then).

    Held by another: LockHeld at once when `wait` is 0, else `waiting(holder pid)` is called once and the
    lock tried again until `wait` seconds have passed (an interrupt stops the wait).  An OSError opening
    the file is the caller's to name."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        if owner is not None and os.fstat(fd).st_uid != owner[0]:
            os.fchown(fd, *owner)
        if not _try(fd):
            if wait <= 0:
                raise LockHeld(path, holder(os.pread(fd, 64, 0)))
            if waiting is not None:
                waiting(holder(os.pread(fd, 64, 0)))
            deadline = time.monotonic() + wait
            while not _try(fd):
                if time.monotonic() >= deadline:
                    raise LockHeld(path, holder(os.pread(fd, 64, 0)))
                time.sleep(random.uniform(*POLL))
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:  # the pid is only for others' messages: a full disk does not stop the holder
            if exc.errno not in WRITE_FAILURES:
                raise
        yield
    finally:
        os.close(fd)  # releases the lock


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def holder(content: bytes) -> str:
    """The pid a holder wrote on the lock file's first line (a shorter pid written over a longer one, without
    truncating, leaves the old tail on later lines), or "unknown"."""
    first = content.decode(errors="replace").split("\n", 1)[0].strip()
    return first if first.isdigit() else "unknown"
