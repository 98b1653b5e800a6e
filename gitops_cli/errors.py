"""Errors that reach the user: each carries a documented exit code and an optional one-line hint.

The CLI turns any GitopsError into two lines on stderr (what failed, how to fix it) and its exit code:
one `error:` line and at most one `hint:` line, whatever the message holds (output.error escapes line
breaks and control characters); a failed build's last log lines (`details`) come before them.  Any other
exception is a bug and gets a traceback only with --debug.  The table of exit codes in the README
is generated from EXIT_CODES below (keep them in sync: tests/test_errors.py checks).
"""

from __future__ import annotations

import errno

# code -> meaning, documented in the README.
EXIT_CODES: dict[int, str] = {
    0: "success (also: nothing to do, e.g. already published / already up to date)",
    1: "failure reported by the verb: `lint` found something at its `--fail-level` (default: an error); "
       "`build-and-bump`: the tests failed (the test command's own status is in the message and in the JSON's "
       "`test_status`). Not `gitops test`: it exits with the test command's own status, whatever it is (a "
       "`--command` the shell does not find: 127)",
    2: "invalid input: bad flag or option value (an empty one too), invalid image reference or tag (also one "
       "the container engine refuses), bad configuration",
    3: "nothing to change: no reference to the image found in the deploy repo, or no change of it in its history "
       "(`history`, `rollback`); `rollback --steps N`: fewer than N earlier values, or the one N changes back has "
       "no tag; `rollback`: the value to go back to or from is several (containers at different tags: choose "
       "with `--container` or `--path`), or the change rolled back set no reference still at its value (its files "
       "were deleted since, or by it: `--path DIR --to TAG`); `sync`: no Kubernetes objects in the repo or its "
       "`--path` (nothing applied)",
    4: "working tree not clean (uncommitted or untracked files, also changes `git status` does not show: see "
       "`gitops tag`), or changed by the tests or the build command after it was tagged; a sparse checkout "
       "that leaves out files the build context would send (`build`, `build-and-bump`); not a git checkout; "
       "a local deploy checkout that is detached or ahead of its origin, has several remotes and no upstream or "
       "several push URLs, pushes its branch to another remote (`pushRemote`, `remote.pushDefault`) or branch "
       "(`branch.<b>.merge`), or has a merge, cherry-pick, revert or rebase in progress, or YAML files in the "
       "bump's scope that its sparse checkout leaves out or its index marks skip-worktree / assume-unchanged",
    5: "build failed (app build command or image build)",
    6: "refused: tag already exists for a different image (also: another publish of the tag pushed at the same "
       "time and the tag names its image), or a mutable tag (latest, main, ...) without override; "
       "`rollback`: the target tag (or its recorded digest) is not in the registry, or the tag names another image "
       "now than the recorded digest and a reference rolled back carries no digest",
    7: "container engine unreachable, or lost during a build, a push or `test --in-image` (the connection broke)",
    8: "registry unreachable or returned an error",
    9: "registry authentication failed",
    10: "git remote unreachable or git operation failed, with git's own reason (its `fatal:` or `error:` "
        "line, else its first words that are no `hint:`) (also: the deploy branch was deleted on the remote "
        "while a bump ran: it is not re-created); no `git` on PATH; a git configuration git cannot read (a "
        "bad line in a `.git/config` or the global config, an include or `GIT_CONFIG_GLOBAL` naming a "
        'directory: `fatal: bad config line 6 in file .git/config`, never "not a git checkout"); a repository '
        "git refuses because another user owns it (its safe.directory check: the hint gives the setting that "
        "trusts it)",
    11: "git authentication failed",
    12: "push still rejected after all retries (the remote kept moving); `rollback`: the image was changed on the "
        "remote after the rollback was computed (it would have undone that change)",
    13: "edit could not be verified, would change a container `--container` leaves out, or a digest could not "
        "be resolved; nothing was written",
    14: "a command run for the verb could not start: kubectl (`sync`); `/bin/sh` for the app's test or build command "
        "(with `test --in-image`: in the image, or no container could be made from it); the default `make test` with "
        "no make on PATH; for `build-and-bump` only, also a test command the shell could not start, its status 127 "
        "(not found) or 126 (not executable), which `gitops test` passes on as they are",
    15: "sync failed: an object was not applied or pruned (named on stderr), or a manifest was unreadable",
    16: "another gitops run holds the lock: `sync`, another pass on the cache directory; `bump` / `rollback` / "
        "`build-and-bump`, another bump or rollback of the same local deploy checkout, still after waiting "
        "`--lock-wait` seconds (`lock_wait`, default 300; 0: at once, no wait)",
    70: "internal error (a bug: re-run with --debug and report it)",
    74: "the output or a file could not be written (disk full, quota, read-only file system, I/O error, a file "
        "gitops edits that is immutable, in a directory it may not write, or a mount point; a closed standard "
        "output: `>&-`); with standard error closed, the exit code is all that tells",
    130: "interrupted (Ctrl-C, or SIGTERM as CI systems cancel a job), at any moment once Python has started gitops "
         "(its imports included; a signal in the interpreter's own first ~50 ms gets Python's default: a traceback, "
         "or 143): one line, temporary files removed, no git, kubectl or test process left running; a push under "
         "way is given 4 s to finish and the line says whether it went through, or that the server may still apply "
         "it (see `bump`); a second SIGTERM ends gitops at once, killed by it (the shell's 143, no message, the "
         "temporary clone left behind: the next run removes it; a local checkout's unpushed bump commit: the next "
         "bump of it resets it, see `bump`)",
}
EXIT_WRITE_FAILED = 74  # sysexits' EX_IOERR: the CLI's code for an OSError of a write the system refused:
# a write the system refused: disk full, quota, file too big, read-only, I/O error, a closed descriptor
WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO, errno.EBADF})


def write_failure(exc: OSError) -> GitopsError:
    """A write the system refused (exc.errno in WRITE_FAILURES) as the error of exit 74, naming the file."""
    return GitopsError(f"cannot write {exc.filename}: {exc.strerror}" if exc.filename
                       else f"write failed: {exc.strerror or exc}", exit_code=EXIT_WRITE_FAILED)


# A write gitops knows to be one (replacing a file it edits: yamledit.write_atomic) refused for a reason of
# the file's or its directory's, not a bug: no permission (EACCES), an immutable file or directory (EPERM:
# `chattr +i`), a mount point that cannot be replaced (EBUSY: a file bind-mounted over another).  Not in
# WRITE_FAILURES: an EACCES opening a cache or reading a file is no write of the output.
REFUSED_WRITES = WRITE_FAILURES | {errno.EPERM, errno.EACCES, errno.EBUSY}
_REFUSED_HINTS = {
    errno.EPERM: "gitops replaces the file (a new file in its directory, renamed over it): the file and its "
                 "directory must not be immutable (lsattr; chattr -i)",
    errno.EACCES: "gitops replaces the file (a new file in its directory, renamed over it): its directory must "
                  "be writable by the user gitops runs as",
    errno.EBUSY: "the file is a mount point (a bind mount), which cannot be replaced: edit the file it is "
                 "mounted from, or mount its directory instead",
    errno.ENOSPC: "free some space on that file system",
    errno.EDQUOT: "free some space within your quota on that file system",
}


def refused_write(exc: OSError, path: object) -> GitopsError:
    """The error of exit 74 for a write of `path` the system refused (exc.errno in REFUSED_WRITES): one line
    naming `path` (not the temp file the write went through), with a hint when there is one."""
    error = write_failure(OSError(exc.errno, exc.strerror, str(path)))
    error.hint = _REFUSED_HINTS.get(exc.errno or 0)
    return error


class GitopsError(Exception):
    """An error with a message for the user, an exit code, an optional hint and optional details (lines
    shown before the message: the last log lines of a failed build)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None,
                 details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(GitopsError):
    exit_code = 2


class InvalidReferenceError(UsageError):
    """An image reference or tag that fails the distribution/reference grammar."""


class ConfigError(UsageError):
    pass


class NotFoundError(GitopsError):
    exit_code = 3


class DirtyTreeError(GitopsError):
    exit_code = 4


class BuildError(GitopsError):
    exit_code = 5


class RefusedError(GitopsError):
    exit_code = 6


class EngineUnavailableError(GitopsError):
    exit_code = 7


class RegistryError(GitopsError):
    exit_code = 8


class RegistryAuthError(GitopsError):
    exit_code = 9


class GitError(GitopsError):
    exit_code = 10


class GitAuthError(GitError):
    exit_code = 11


class RemoteMovedError(GitopsError):
    """The remote moved under the verb: it kept moving (PushRetriesExhaustedError), or moved the very value
    a rollback was computed from."""

    exit_code = 12


class PushRetriesExhaustedError(RemoteMovedError):
    pass


class VerificationError(GitopsError):
    exit_code = 13


class CommandStartError(GitopsError):
    exit_code = 14


class SyncError(GitopsError):
    exit_code = 15


class LockedError(GitopsError):
    exit_code = 16


class SyncLockedError(LockedError):
    pass
