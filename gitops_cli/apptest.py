"""`gitops test`: run the app's unit tests, on the host or inside the built image (network none).

The command is the configured `test_command`, else `make test` when make itself finds a `test` target in the
app's makefile (default_test_command: make prints its data base, no recipe runs).
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

MAKEFILES = ("GNUmakefile", "makefile", "Makefile")  # the names make looks for, in its order
DEFAULT_TEST_COMMAND = "make test"
MAKE_TIMEOUT = 60.0  # seconds make has to read the app's makefile and print its targets
# the shell every recipe gets while make lists the targets: it does not exist, so no recipe runs (make
# remakes an included makefile it has a rule for even under -q); make names it when it tries one
NO_RECIPE_SHELL = "/nonexistent/gitops-runs-no-recipe"


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


def make_targets(database: str) -> frozenset[str] | None:
    """The targets make has something to do for, in GNU make's data base (what `make -p` prints): the
    entries of its "# Files" section with prerequisites or a recipe, less those marked "# Not a target:"
    (a prerequisite without a rule, a makefile, a name with target-specific variables only).  A name
    only declared .PHONY, or with an empty rule (`test:`), has neither: `make test` does nothing there
    and says so with status 0.  Pattern rules are not in this section, nor variables.  None when
    `database` holds no data base (not GNU make).

    An entry is a blank line, then: target-specific variable lines (`NAME: VAR = value`, make 4), an
    optional "# Not a target:", the rule line (`NAME:` or `NAME::`, then the prerequisites), status
    lines "#  ..." of which "#  Implicit rule search has..." is always there, and the recipe after
    "#  recipe to execute", whose continuation lines start in the first column (they may look like a
    rule line).  The rule line is thus the last line before "#  Implicit rule search" that is no
    comment.  Output of the makefile itself (`$(info ...)`) comes before the data base, printed last."""
    lines = database.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("# Make data base")]
    if not starts:
        return None
    try:
        first = lines.index("# Files", starts[-1]) + 1
    except ValueError:
        return None
    targets: set[str] = set()
    rule: tuple[str, bool] | None = None  # the entry's target and whether it has prerequisites
    not_a_target = in_body = False
    for line in lines[first:]:
        if line.startswith(("# files hash-table stats", "# VPATH Search Paths", "# Finished Make data base")):
            break  # the end of the section
        if not line:  # the next entry
            rule, not_a_target, in_body = None, False, False
        elif in_body:  # status lines and the recipe
            if rule is not None and line.startswith(("#  recipe to execute", "#  commands to execute")):
                targets.add(rule[0])
        elif line.startswith("#  Implicit rule search has"):
            in_body = True
            if rule is not None and rule[1]:
                targets.add(rule[0])
        elif line.startswith("#"):
            not_a_target = line == "# Not a target:"
        else:  # a target-specific variable line, or the rule line
            match = _RULE_LINE.fullmatch(line)
            rule = (match.group(1), bool(match.group(2).strip())) if match and not not_a_target else None
            not_a_target = False
    return frozenset(targets)


_RULE_LINE = re.compile(r"(.+?)::?((?: .*)?)")  # `NAME:` / `NAME::`, alone or before the prerequisites


_RULE_RE = re.compile(r"^([^\s:#=][^:#=]*?)\s*::?(?!=)", re.MULTILINE)


def names_target(text: str, target: str) -> bool:
    """True when a rule line of makefile `text` names `target` (`test:`, `lint test:`, `test::`; not
    `X := test`): what a make that prints no data base (make_targets' None) leaves to go by.  It misses
    what make alone finds (includes, variables) and takes a rule in a false conditional for one."""
    return any(target in match.group(1).split() for match in _RULE_RE.finditer(text))


def find_makefile(repo: Path) -> str | None:
    """The makefile `make` in `repo` reads: the first of GNUmakefile, makefile, Makefile there."""
    return next((name for name in MAKEFILES if (repo / name).is_file()), None)


def default_test_command(repo: Path, in_image: bool = False, flag: str = "--command",
                         timeout: float = MAKE_TIMEOUT) -> str | None:
    """`make test` when make itself finds a `test` target in the app's makefile, None when there is no
    makefile or no such target.

    make is asked, not the makefile's text read: `make -pqr` prints the data base of the makefile as it
    reads it (includes, variables, conditionals, `$(eval ...)`), with MAKECMDGOALS=test as under
    `make test`, and make_targets finds the explicit targets in it.  Reading a makefile runs its
    `$(shell ...)` functions, as any make command does; no recipe runs: every target gets a shell that
    does not exist (NO_RECIPE_SHELL), and the makefile is the goal, so -q leaves it unmade (GNU make
    remakes the makefiles it reads even under -n and -q).  When make would have to run a recipe (to
    remake an included makefile) and no `test` target is found without it: ConfigError, saying so.  The
    one recipe that still runs: a rule for an included makefile with a SHELL of its own (a target's
    variables come before a pattern's), as `make test` would run it.

    A make that prints no data base (GNU make before 3.82, such as macOS' 3.81, has no --eval; BSD make):
    a rule line of the makefile's own text naming `test` (names_target) decides.

    Without make on PATH: CommandStartError (exit 14), `make test` could not start; `in_image` (the
    command runs in the image, whose make decides), `make test`.  A makefile make cannot read, or one it
    takes over `timeout` seconds to read: ConfigError (exit 2).  `flag`: the verb's test-command flag,
    for the hints."""
    name = find_makefile(repo)
    if name is None:
        return None
    makefile = repo.absolute() / name
    hint = _set_test_command(flag)
    argv = ["make", "-pqr", "-f", name, f"--eval=%: override SHELL := {NO_RECIPE_SHELL}", "MAKECMDGOALS=test",
            name]
    # no locale: the data base's comments are make's English ones; gitops' own secrets stay out of it
    env = {**_without_own_secrets(), "LC_ALL": "C"}

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(argv, cwd=repo, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, process_group=0, encoding="utf-8",
                                errors="replace")

    try:
        with interrupts.owning(start, group=True) as proc:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                interrupts.stop(proc, group=True)
                raise ConfigError(f"{makefile}: make did not read it within {timeout:g} s (a $(shell ...) "
                                  "in it still running?)", hint=hint) from None
    except FileNotFoundError as exc:
        if exc.filename != "make":
            raise CommandStartError(f"{makefile}: make could not be started: {exc.strerror}", hint=hint) from None
        if in_image:
            return DEFAULT_TEST_COMMAND
        raise CommandStartError(f"{makefile}: make is not on PATH: the default test command {DEFAULT_TEST_COMMAND!r} "
                                "cannot start", hint=f"install make, or {hint}") from None
    except OSError as exc:
        raise CommandStartError(f"{makefile}: make could not be started: {exc.strerror or exc}", hint=hint) from None
    targets = make_targets(out)
    reason = _make_error(err)
    if targets is None:  # no GNU make 3.82+ (macOS' 3.81, a BSD make): the makefile's own text decides
        text = makefile.read_text(encoding="utf-8", errors="replace")
        return DEFAULT_TEST_COMMAND if names_target(text, "test") else None
    wanted_a_recipe = NO_RECIPE_SHELL in err
    if "test" in targets and (proc.returncode != 2 or wanted_a_recipe):
        return DEFAULT_TEST_COMMAND
    if wanted_a_recipe:
        raise ConfigError(f"{makefile}: make would run a recipe (to remake a makefile it reads) before it knows "
                          "its targets; gitops runs none to look for a `test` target", hint=hint)
    if proc.returncode == 2:
        raise ConfigError(f"{makefile}: make cannot read it: {reason or 'make exited with status 2'}", hint=hint)
    return None


def _without_own_secrets() -> dict[str, str]:
    """gitops' environment less settings.OWN_SECRETS, for the commands of the app it runs (make, the test and
    build commands): gitops' own secrets are not the app's, whose output goes to the log as it is, never
    masked (settings.child_environment)."""
    from gitops_cli.settings import OWN_SECRETS, child_environment

    return child_environment(OWN_SECRETS)


def _make_error(stderr: str) -> str:
    """make's error line (`Makefile:3: *** missing separator.  Stop.`), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return next((line for line in lines if "*** " in line), lines[-1] if lines else "")


def _set_test_command(flag: str) -> str:
    return f"set test_command in gitops.toml or [tool.gitops] (or GITOPS_TEST_COMMAND / {flag})"


def resolve_test_command(repo: Path, configured: str | None, flag: str = "--command", in_image: bool = False) -> str:
    """The configured test command, else `make test` when make finds a `test` target in the app's makefile
    (default_test_command); ConfigError (exit 2) naming the app directory and the verb's own flag (`flag`)
    otherwise.  `in_image`: the command runs in an image (see default_test_command)."""
    # a blank command is no command: it would run nothing and report "tests passed"
    if configured and configured.strip():
        return configured
    command = default_test_command(repo, in_image=in_image, flag=flag)
    if not command:
        raise ConfigError(
            f"{repo.absolute()}: no test command: test_command is not set and no Makefile with a `test` target",
            hint=_set_test_command(flag),
        )
    return command


def run_command(command: str, cwd: Path) -> int:
    """Run `command` through /bin/sh in `cwd` with its output on stderr; return its exit status.
    Its environment is gitops' without settings.OWN_SECRETS.

    Without a controlling terminal (CI) the command runs in a process group of its own: when gitops is
    interrupted (SIGTERM from a CI cancel reaches gitops alone), the whole group -- the shell and what it
    started -- gets SIGTERM, then SIGKILL after interrupts.STOP_GRACE seconds, so no test or build process
    outlives the run.  With one (a developer's shell, whatever stdin is) it stays in gitops' group, where
    Ctrl-C reaches it as always and it may use the terminal (a background group touching it would be
    stopped)."""
    sys.stdout.flush()
    sys.stderr.flush()
    own_group = not interrupts.has_controlling_terminal()
    env = _without_own_secrets()
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
    cmd = resolve_test_command(root, command, in_image=image is not None)
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
