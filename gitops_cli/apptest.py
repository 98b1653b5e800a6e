"""`gitops test`: run the app's unit tests, on the host or inside the built image (network none).

The command is the configured `test_command`, else `make test` when the Makefile has a `test` target.
Its output streams live to stderr (stdout stays for results); its exit status is the verb's status.
`run_command` is also how `gitops build` runs the app's `build_command`.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_cli import interrupts, output
from gitops_cli.errors import CommandStartError, ConfigError, GitopsError
from gitops_cli.imageref import parse_tagged

if TYPE_CHECKING:
    from docker import APIClient

MAKEFILES = ("GNUmakefile", "makefile", "Makefile")
DEFAULT_TEST_COMMAND = "make test"
_RULE_RE = re.compile(r"^([^\s:#=][^:#=]*?)\s*::?(?!=)", re.MULTILINE)


class TestsFailedError(GitopsError):
    """The test command ran and failed: `gitops test` exits with its own status (`status`)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, exit_code=status)
        self.status = status


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class

    command: str
    where: str  # "host" or the image reference
    status: int


def makefile_has_target(text: str, target: str) -> bool:
    """True when a rule in Makefile `text` names `target` (`test:`, `a test:`, `test::`), not `X := 1`."""
    for match in _RULE_RE.finditer(text):
        if target in match.group(1).split():
            return True
    return False


def default_test_command(repo: Path) -> str | None:
    for name in MAKEFILES:
        path = repo / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            return DEFAULT_TEST_COMMAND if makefile_has_target(text, "test") else None
    return None


def resolve_test_command(repo: Path, configured: str | None, flag: str = "--command") -> str:
    """The configured test command, else `make test` when the app's Makefile has that target; ConfigError
    (exit 2) naming the app directory and the verb's own flag (`flag`) otherwise."""
    # a blank command is no command: it would run nothing and report "tests passed"
    command = configured if configured and configured.strip() else default_test_command(repo)
    if not command:
        raise ConfigError(
            f"{repo.absolute()}: no test command: test_command is not set and no Makefile with a `test` target",
            hint=f"set test_command in gitops.toml or [tool.gitops] (or GITOPS_TEST_COMMAND / {flag})",
        )
    return command


OWN_SECRETS = ("GITOPS_REGISTRY_PASSWORD", "GITOPS_GIT_TOKEN")  # left out of the test and build commands' env


def run_command(command: str, cwd: Path) -> int:
    """Run `command` through /bin/sh in `cwd` with its output on stderr; return its exit status.
    Its environment is gitops' without OWN_SECRETS.

    Without a controlling terminal (CI) the command runs in a process group of its own: when gitops is
    interrupted (SIGTERM from a CI cancel reaches gitops alone), the whole group -- the shell and what it
    started -- gets SIGTERM, then SIGKILL after interrupts.STOP_GRACE seconds, so no test or build process
    outlives the run.  With one (a developer's shell, whatever stdin is) it stays in gitops' group, where
    Ctrl-C reaches it as always and it may use the terminal (a background group touching it would be
    stopped)."""
    sys.stdout.flush()
    sys.stderr.flush()
    own_group = not interrupts.has_controlling_terminal()
    # gitops' own secrets are not the app's: its output goes to the log as it is, never masked
    env = {k: v for k, v in os.environ.items() if k not in OWN_SECRETS}
    relay = _Relay() if _is_pipe(sys.stderr) else None

    def start() -> subprocess.Popen[bytes]:
        out = relay.write_end if relay is not None else sys.stderr.fileno()
        try:
            return subprocess.Popen(["/bin/sh", "-c", command], cwd=cwd, stdout=out, stderr=out,
                                    process_group=0 if own_group else None, env=env)
        except OSError as exc:
            raise CommandStartError(f"cannot start {command!r} in {cwd}: {exc.strerror or exc}") from None
        finally:
            if relay is not None:
                relay.start()

    with interrupts.owning(start, group=own_group) as proc:
        status = proc.wait()
    if relay is not None:
        relay.join()
    return 128 + signal.Signals(-status).value if status < 0 else status


def _is_pipe(stream: object) -> bool:
    """Is `stream` (stderr) a pipe or a socket, whose reader may go away (`gitops test 2>&1 | head`)?"""
    try:
        mode = os.fstat(stream.fileno()).st_mode  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class _Relay:
    """The command's output through gitops when stderr is a pipe: a pipe of gitops' own, copied to stderr
    by a thread.  When the reader of stderr goes away, what follows is dropped (output.reader_gone) and the
    command carries on: it never gets SIGPIPE (it got it when it wrote to stderr itself, and its tests
    "failed" with status 141).  A terminal or a file is given to the command as it is."""

    def __init__(self) -> None:
        self._read_end, self.write_end = os.pipe()
        self._thread = threading.Thread(target=self._copy, name="gitops-command-output", daemon=True)
        # held while bytes move from the pipe to the count of bytes read, and while the pipe is closed: join
        # then sees every byte either still in the pipe or counted as read, never in between
        self._lock = threading.Lock()
        self._closed = False
        self._read = 0  # bytes taken from the pipe
        self._written = 0  # bytes passed on to stderr (or dropped: the reader is gone)

    def start(self) -> None:
        os.close(self.write_end)  # the command has its copy
        self._thread.start()

    def join(self) -> None:
        """Once the command has ended: wait until what it wrote is passed on, however slow the reader --
        what is in the pipe now, and what the thread has read and not yet written -- or until the pipe's
        end.  Not for more: a process the command left running may keep writing (relayed while gitops
        runs; once gitops has exited, it gets SIGPIPE when it writes)."""
        import fcntl
        import struct
        import termios

        with self._lock:
            pending = 0
            if not self._closed:
                pending = struct.unpack("i", fcntl.ioctl(self._read_end, termios.FIONREAD, b"\0\0\0\0"))[0]
            goal = self._read + pending
        while self._thread.is_alive() and self._written < goal:
            self._thread.join(0.05)

    def _copy(self) -> None:
        import select

        target = sys.stderr.fileno()
        poller = select.poll()
        poller.register(self._read_end, select.POLLIN)
        try:
            while True:
                poller.poll()  # bytes or the pipe's end; read under the lock
                with self._lock:
                    data = os.read(self._read_end, 65536)
                    self._read += len(data)
                if not data:
                    break
                size = len(data)
                while data:
                    try:
                        data = data[os.write(target, data):]
                    except BrokenPipeError:
                        output.reader_gone(target)
                self._written += size
        finally:
            with self._lock:
                os.close(self._read_end)
                self._closed = True


def run_tests(
    repo: str | Path,
    command: str | None = None,
    in_image: str | None = None,
    client: APIClient | None = None,
) -> TestResult:
    """Run the tests; return the result on success, raise GitopsError(exit_code=status) on failure.

    `client` (an engine connection) is only used with `in_image`; one is opened when not given.
    """
    root = Path(repo)
    image = parse_tagged(in_image) if in_image else None  # invalid reference: exit 2 before any work
    if not root.is_dir():
        raise ConfigError(f"{root}: no such directory")
    cmd = resolve_test_command(root, command)
    if image is None:
        output.step(f"Running {cmd!r} in {root.resolve()}")
        where, status = "host", run_command(cmd, root)
    else:
        from gitops_cli import engine

        client = client or engine.connect()
        output.step(f"Running {cmd!r} in {image} (network none)")
        where, status = str(image), engine.run_in_image(client, str(image), cmd)
    if status != 0:
        raise TestsFailedError(f"tests failed: {cmd!r} exited with status {status} ({where})", status)
    output.info(f"tests passed: {cmd!r} ({where})")
    return TestResult(command=cmd, where=where, status=status)
